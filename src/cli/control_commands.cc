// `baton reload`, `baton status`, `baton stop`: clients of a running supervisor's control socket.
#include <cstdio>
#include <ctime>

#include <fmt/format.h>

#include "cli/commands.h"
#include "supervisor/control_protocol.h"

namespace baton::cli {
namespace {

struct ControlFlags {
  std::string control;
  bool wait = false;
  bool json = false;
  double timeout = 300;
};

std::string path_of(const ControlFlags& f) {
  return f.control.empty() ? default_control_path() : f.control;
}

// Sends one request; prints errors as one line. Returns the reply, or nullopt (exit status 2
// when the supervisor could not be asked at all).
std::optional<nlohmann::json> call(const char* verb, const ControlFlags& f,
                                   const ControlRequest& request) {
  auto reply = control_call(path_of(f), request,
                            std::chrono::milliseconds(static_cast<int64_t>(f.timeout * 1000)));
  if (!reply) {
    std::fprintf(stderr, "baton %s: %s\n", verb, reply.error().what().c_str());
    return std::nullopt;
  }
  return *reply;
}

std::string text(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int reload(const ControlFlags& f) {
  auto reply = call("reload", f, {ControlRequest::Command::kReload, f.wait});
  if (!reply) return 2;
  if ((*reply)["ok"] == true) {
    std::printf("reload %s: %s\n", f.wait ? "ok" : "started", text(*reply, "message").c_str());
    return 0;
  }
  std::fprintf(stderr, "baton reload: failed: %s\n", text(*reply, "error").c_str());
  std::string tail = text(*reply, "output_tail");
  if (!tail.empty()) {
    std::fprintf(stderr, "--- last output of the failed generation ---\n%s%s", tail.c_str(),
                 tail.back() == '\n' ? "" : "\n");
  }
  return 1;
}

std::string ago(double unix_seconds) {
  double d = static_cast<double>(std::time(nullptr)) - unix_seconds;
  if (d < 0) d = 0;
  if (d < 120) return fmt::format("{:.0f}s ago", d);
  if (d < 7200) return fmt::format("{:.0f}m ago", d / 60);
  return fmt::format("{:.1f}h ago", d / 3600);
}

void print_status(const nlohmann::json& s) {
  const auto& sup = s["supervisor"];
  std::printf("supervisor  pid %d, up %.0fs, readiness %s%s\n", sup.value("pid", 0),
              sup.value("uptime_s", 0.0), sup.value("readiness", "").c_str(),
              sup.value("stopping", false) ? ", STOPPING" : "");
  for (const auto& l : s["listeners"]) {
    std::printf("listener    fd %d  %s=%s\n", l.value("fd", 0), l.value("name", "").c_str(),
                l.value("address", "").c_str());
  }
  for (const auto& g : s["generations"]) {
    std::string extra;
    if (g.contains("ready_after_s")) extra += fmt::format(", ready in {:.2f}s", g["ready_after_s"].get<double>());
    if (g.contains("exit_status")) extra += fmt::format(", exit status {}", g["exit_status"].get<int>());
    if (g.contains("exit_signal")) extra += fmt::format(", killed by signal {}", g["exit_signal"].get<int>());
    if (g.contains("status_text")) extra += ", \"" + g["status_text"].get<std::string>() + "\"";
    std::printf("generation  %-3d pid %-7d %-9s started %s%s\n", g.value("generation", 0),
                g.value("pid", 0),
                g.value("quiescing", false) ? "quiescing" : g.value("state", "").c_str(),
                ago(g.value("started_at", 0.0)).c_str(), extra.c_str());
  }
  if (s["last_reload"].is_object()) {
    const auto& r = s["last_reload"];
    std::printf("last reload #%d %s%s: %s\n", r.value("id", 0), r.value("result", "").c_str(),
                r.contains("duration_s") ? fmt::format(" in {:.2f}s", r["duration_s"].get<double>()).c_str() : "",
                r.value("reason", "").c_str());
  } else {
    std::printf("last reload none\n");
  }
  const auto& c = s["counters"];
  std::printf("counters    reloads ok %llu, failed %llu, coalesced %llu; crashes %llu; drain kills %llu\n",
              c.value("reloads_ok", 0ULL), c.value("reloads_failed", 0ULL),
              c.value("reloads_coalesced", 0ULL), c.value("crashes", 0ULL),
              c.value("drain_kills", 0ULL));
}

int status(const ControlFlags& f) {
  auto reply = call("status", f, {ControlRequest::Command::kStatus, false});
  if (!reply) return 2;
  if ((*reply)["ok"] != true) {
    std::fprintf(stderr, "baton status: %s\n", text(*reply, "error").c_str());
    return 1;
  }
  if (f.json) {
    std::printf("%s\n", (*reply)["status"].dump(2).c_str());
  } else {
    print_status((*reply)["status"]);
  }
  return 0;
}

int stop(const ControlFlags& f) {
  auto reply = call("stop", f, {ControlRequest::Command::kStop, false});
  if (!reply) return 2;
  if ((*reply)["ok"] != true) {
    std::fprintf(stderr, "baton stop: %s\n", text(*reply, "error").c_str());
    return 1;
  }
  std::printf("%s\n", text(*reply, "message").c_str());
  return 0;
}

void add_control_option(CLI::App* cmd, ControlFlags& f) {
  cmd->add_option("--control", f.control,
                  "the supervisor's control socket (default: $BATON_CONTROL, else "
                  "$XDG_RUNTIME_DIR/baton/control.sock, else /tmp/baton-UID/control.sock)");
  cmd->add_option("--timeout", f.timeout, "seconds to wait for the supervisor's answer")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
}

}  // namespace

void add_control_commands(CLI::App& app, Action& action) {
  auto flags = std::make_shared<ControlFlags>();
  CLI::App* r = app.add_subcommand(
      "reload", "Start a new generation; once it is proven ready, drain the old one");
  r->footer(
      "Without --wait it returns once the new generation is starting. With --wait it returns\n"
      "when the new generation serves and the old one has drained (exit 0), or when the new one\n"
      "failed (exit 1, with the reason and its last output); the old one then keeps serving.");
  add_control_option(r, *flags);
  r->add_flag("--wait", flags->wait, "wait for the outcome; exit non-zero if it failed");
  r->callback([&action, flags] { action = [flags] { return reload(*flags); }; });

  CLI::App* s = app.add_subcommand(
      "status", "Show listeners, generations (pid, state, times, exit), the last reload, counters.");
  add_control_option(s, *flags);
  s->add_flag("--json", flags->json, "print the status as JSON");
  s->callback([&action, flags] { action = [flags] { return status(*flags); }; });

  CLI::App* st = app.add_subcommand(
      "stop", "Drain every generation, then end the supervisor (like SIGTERM to it).");
  add_control_option(st, *flags);
  st->callback([&action, flags] { action = [flags] { return stop(*flags); }; });
}

}  // namespace baton::cli

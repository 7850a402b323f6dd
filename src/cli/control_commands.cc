// `baton reload`, `baton status`, `baton stop`, `baton upgrade`: clients of a running supervisor's
// control socket.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "cli/commands.h"
#include "common/duration.h"
#include "supervisor/control_protocol.h"

namespace baton::cli {
namespace {

// A status or stop answers at once; a reload --wait takes as long as the new generation's
// readiness and the old one's drain, each bounded by the supervisor's own timeouts.
constexpr const char* kDefaultTimeout = "5s";
constexpr const char* kDefaultWaitTimeout = "10m";
// An upgrade answers within the new binary's pre-flight check (10 s at most) and, with --wait,
// the exec and the resume.
constexpr const char* kDefaultUpgradeTimeout = "1m";

struct ControlFlags {
  std::string control;
  bool wait = false;
  bool json = false;
  bool check = false;
  std::string timeout;  // "" for the default of the command
  int canary = 0;       // reload --canary PERCENT (0: not a canary reload)
  std::string canary_for;
};

// How long a canary reload's window lasts when --canary-for is not given.
constexpr const char* kDefaultCanaryWindow = "60s";

std::string path_of(const ControlFlags& f) {
  return f.control.empty() ? default_control_path() : f.control;
}

// Sends one request; prints errors as one line. Returns the reply, or nullopt (exit status 2
// when the supervisor could not be asked at all).
std::optional<nlohmann::json> call(const char* verb, const ControlFlags& f,
                                   const ControlRequest& request) {
  const char* fallback =
      request.command == ControlRequest::Command::kReload && request.wait ? kDefaultWaitTimeout
      : request.command == ControlRequest::Command::kUpgrade              ? kDefaultUpgradeTimeout
                                                                          : kDefaultTimeout;
  auto timeout = parse_duration_ms(f.timeout.empty() ? fallback : f.timeout);
  if (!timeout) {
    std::fprintf(stderr, "baton %s: --timeout: %s\n", verb, timeout.error().what().c_str());
    return std::nullopt;
  }
  // A waited-for canary reload takes its window on top of the usual start and drain.
  if (f.timeout.empty() && request.wait) *timeout += request.canary_window;
  auto reply = control_call(path_of(f), request, *timeout);
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
  ControlRequest request{ControlRequest::Command::kReload, f.wait};
  if (f.canary != 0) {
    auto window = parse_duration_ms(f.canary_for.empty() ? kDefaultCanaryWindow : f.canary_for);
    if (!window || *window < std::chrono::milliseconds(1) || *window > kMaxCanaryWindow) {
      std::fprintf(stderr, "baton reload: --canary-for: %s\n",
                   window ? "must be between 1ms and 24h" : window.error().what().c_str());
      return 2;
    }
    request.canary_percent = f.canary;
    request.canary_window = *window;
  } else if (!f.canary_for.empty()) {
    std::fprintf(stderr, "baton reload: --canary-for needs --canary PERCENT\n");
    return 2;
  }
  auto reply = call("reload", f, request);
  if (!reply) return 2;
  if ((*reply)["ok"] == true) {
    // The supervisor's message says what happened: "reload started: generation 3 starting",
    // "generation 3 serving, generation 2 drained".
    std::string message = text(*reply, "message");
    std::printf("%s%s\n", f.wait ? "reload ok: " : "", message.c_str());
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

std::string human(double seconds) {
  return format_duration(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
}

std::string ago(double unix_seconds) {
  return human(static_cast<double>(std::time(nullptr)) - unix_seconds) + " ago";
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

void print_reload(const char* label, const nlohmann::json& r) {
  std::string took =
      r.contains("duration_s") ? " in " + human(r["duration_s"].get<double>()) : std::string();
  std::printf("%s #%d %s%s, %s: %s\n", label, r.value("id", 0), r.value("result", "").c_str(),
              took.c_str(), ago(r.value("requested_at", 0.0)).c_str(),
              r.value("reason", "").c_str());
}

void print_status(const nlohmann::json& s) {
  const auto& sup = s["supervisor"];
  std::printf("supervisor  pid %d, up %s, readiness %s%s\n", sup.value("pid", 0),
              human(sup.value("uptime_s", 0.0)).c_str(), sup.value("readiness", "").c_str(),
              sup.value("stopping", false) ? ", STOPPING" : "");
  for (const char* key : {"config", "working_dir", "metrics"}) {
    const std::string value = sup.value(key, "");
    if (value.empty()) continue;
    const char* label = std::string_view(key) == "working_dir" ? "chdir" : key;
    std::printf("%-11s %s%s\n", label, std::string_view(key) == "metrics" ? "http://" : "",
                (value + (std::string_view(key) == "metrics" ? "/metrics" : "")).c_str());
  }
  for (const auto& l : s["listeners"]) {
    std::printf("listener    fd %d  %s=%s  %s\n", l.value("fd", 0), l.value("name", "").c_str(),
                l.value("address", "").c_str(), l.value("steering", "").c_str());
  }
  for (const auto& g : s["generations"]) {
    std::string extra;
    if (g.contains("ready_after_s"))
      extra += ", ready in " + human(g["ready_after_s"].get<double>());
    if (g.contains("exit_status"))
      extra += fmt::format(", exit status {}", g["exit_status"].get<int>());
    if (g.contains("exit_signal"))
      extra += ", killed by " + signal_name(g["exit_signal"].get<int>());
    // The app's own text: escaped, so it cannot drive the operator's terminal.
    if (g.contains("status_text")) {
      extra += ", \"" + escape_control_chars(g["status_text"].get<std::string>()) + "\"";
    }
    if (g.contains("slot")) extra += fmt::format(", slot {}", g["slot"].get<int>());
    if (g.contains("share_percent")) {
      extra += fmt::format(", {}% of new connections", g["share_percent"].get<int>());
    }
    if (g.contains("connections")) {
      extra += fmt::format(", {} open, {} queued", g["connections"].get<size_t>(),
                           g.value("accept_queue", 0u));
    }
    std::printf("generation  %-3d pid %-7d %-9s started %s%s\n", g.value("generation", 0),
                g.value("pid", 0),
                g.value("quiescing", false) ? "quiescing" : g.value("state", "").c_str(),
                ago(g.value("started_at", 0.0)).c_str(), extra.c_str());
  }
  if (s["last_reload"].is_object()) {
    print_reload("last reload", s["last_reload"]);
  } else {
    std::printf("last reload none\n");
  }
  // The last failure stays in view however many reloads succeeded after it.
  if (s.contains("last_failed_reload") && s["last_failed_reload"].is_object() &&
      s["last_failed_reload"] != s["last_reload"]) {
    print_reload("last failed", s["last_failed_reload"]);
  }
  const auto& c = s["counters"];
  std::printf(
      "counters    reloads ok %llu, failed %llu, coalesced %llu; crashes %llu; drain kills %llu\n",
      c.value("reloads_ok", 0ULL), c.value("reloads_failed", 0ULL),
      c.value("reloads_coalesced", 0ULL), c.value("crashes", 0ULL), c.value("drain_kills", 0ULL));
}

int status(const ControlFlags& f) {
  auto reply = call("status", f, {ControlRequest::Command::kStatus, false});
  if (!reply) return 2;
  if ((*reply)["ok"] != true) {
    std::fprintf(stderr, "baton status: %s\n", text(*reply, "error").c_str());
    return 1;
  }
  const nlohmann::json& st = (*reply)["status"];
  if (f.check) {
    // For a readiness probe or a load balancer's check: serving, or not (exit 1).
    const int serving = st.value("serving_generation", 0);
    const bool stopping = st["supervisor"].value("stopping", false);
    if (serving == 0 || stopping) {
      std::printf("not serving%s\n", stopping ? ": stopping" : "");
      return 1;
    }
    int pid = 0;
    for (const auto& g : st["generations"]) {
      if (g.value("generation", 0) == serving) pid = g.value("pid", 0);
    }
    std::printf("serving: generation %d (pid %d)\n", serving, pid);
    return 0;
  }
  if (f.json) {
    std::printf("%s\n", st.dump(2).c_str());
  } else {
    print_status(st);
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

int upgrade(const ControlFlags& f) {
  auto reply = call("upgrade", f, {ControlRequest::Command::kUpgrade, f.wait});
  if (!reply) return 2;
  if ((*reply)["ok"] != true) {
    std::fprintf(stderr, "baton upgrade: failed: %s\n", text(*reply, "error").c_str());
    return 1;
  }
  std::printf("%s\n", text(*reply, "message").c_str());
  // The upgrade went through; the settings files now say something it did not apply.
  if (reply->contains("warning")) {
    std::fprintf(stderr, "baton upgrade: warning: %s\n", text(*reply, "warning").c_str());
  }
  return 0;
}

void add_control_option(CLI::App* cmd, ControlFlags& f) {
  cmd->add_option("--control", f.control,
                  "the supervisor's control socket (default: $BATON_CONTROL, else "
                  "$RUNTIME_DIRECTORY/control.sock, else /run/baton/control.sock for root, else "
                  "$XDG_RUNTIME_DIR/baton/control.sock, else /tmp/baton-UID/control.sock)");
  cmd->add_option("--timeout", f.timeout,
                  fmt::format("how long to wait for the supervisor's answer (default {}; {} for "
                              "reload --wait, {} for upgrade)",
                              kDefaultTimeout, kDefaultWaitTimeout, kDefaultUpgradeTimeout))
      ->type_name("DURATION");
}

}  // namespace

void add_control_commands(CLI::App& app, Action& action) {
  auto flags = std::make_shared<ControlFlags>();
  CLI::App* r = app.add_subcommand(
      "reload", "Start a new generation; once it is proven ready, drain the old one");
  r->footer(
      "Without --wait it returns once the new generation is starting. With --wait it returns\n"
      "when the new generation serves and the old one has drained (exit 0), or when the new one\n"
      "failed (exit 1, with the reason and its last output); the old one then keeps serving.\n"
      "\n"
      "A canary reload tries the new generation on a share of new connections first:\n"
      "  baton reload --wait --canary 10 --canary-for 5m");
  add_control_option(r, *flags);
  r->add_flag("--wait", flags->wait, "wait for the outcome; exit non-zero if it failed");
  r->add_option("--canary", flags->canary,
                "send PERCENT of new connections (by flow) to the new generation first, the rest "
                "to the old one, which is held; after --canary-for, switch fully. If the new one "
                "fails meanwhile, the old one takes every connection again and the reload fails. "
                "Needs a steered (TCP or UDP) listener; refused while another reload runs")
      ->type_name("PERCENT")
      ->check(CLI::Range(1, 99));
  r->add_option("--canary-for", flags->canary_for,
                fmt::format("how long the canary window lasts (default {}, at most 24h)",
                            kDefaultCanaryWindow))
      ->type_name("DURATION");
  r->callback([&action, flags] { action = [flags] { return reload(*flags); }; });

  CLI::App* s = app.add_subcommand(
      "status",
      "Show listeners, generations (pid, state, times, exit), the last reload, counters.");
  add_control_option(s, *flags);
  s->add_flag("--json", flags->json, "print the status as JSON (schema: docs/status.md)");
  s->add_flag("--check", flags->check,
              "print one line and exit 0 if a generation serves, else 1 (2: no supervisor); for "
              "readiness probes and load balancer checks");
  s->callback([&action, flags] { action = [flags] { return status(*flags); }; });

  CLI::App* u = app.add_subcommand(
      "upgrade",
      "Execute the baton binary at the supervisor's path again, in place: same pid, same "
      "generations, same sockets");
  u->footer(
      "For a new version of baton itself (the app is reloaded with 'baton reload'). Replace the\n"
      "binary at the path the supervisor was started from, then run this. The new binary is\n"
      "first run as a pre-flight check (it must read the supervisor's state and its command\n"
      "line); only then does the supervisor execute it, carrying its listeners, generations,\n"
      "their output, the control socket, counters and drains under way. No request fails and\n"
      "no generation restarts. If the binary is missing, not executable, not baton or cannot\n"
      "resume: one line, exit 1, and the supervisor carries on unchanged.\n"
      "The app keeps running with the settings it ran with: an upgrade applies no edit of the\n"
      "config file (a reload does). With --wait, a warning on stderr says when the file now\n"
      "says other settings, and what would apply them.\n"
      "Refused (exit 1) while a generation starts, a reload is queued, an old generation is held\n"
      "(--hold-old, a canary window), or no generation serves. No signal triggers an upgrade:\n"
      "SIGUSR1 and SIGUSR2 are passed to the serving generation. See docs/upgrade.md.");
  add_control_option(u, *flags);
  u->add_flag("--wait", flags->wait,
              "wait until the upgraded supervisor answers from its loop (its connection crosses "
              "the exec); without it, return once the pre-flight check passed");
  u->callback([&action, flags] { action = [flags] { return upgrade(*flags); }; });

  CLI::App* st = app.add_subcommand(
      "stop", "Drain every generation, then end the supervisor (like SIGTERM to it).");
  add_control_option(st, *flags);
  st->callback([&action, flags] { action = [flags] { return stop(*flags); }; });
}

}  // namespace baton::cli

// soak_command.cc: `baton soak`: load a server over HTTP/1.1 while restarting it, count every
// request's outcome, and say whether any failed.
//
// Exit status: 0 when failed requests <= --max-failures and every reload succeeded; 1 otherwise
// (or when interrupted); 2 when the run could not start or could mean nothing (bad options, bad
// URL, server not answering at start, reload command missing, baton not reachable).
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <fstream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "soak/load.h"
#include "soak/reload.h"
#include "soak/report.h"
#include "soak/spot_check.h"
#include "soak/url.h"

namespace baton::cli {
namespace {

using namespace baton::soak;

struct SoakFlags {
  std::string url;
  int connections = 50;
  int threads = 2;
  std::string duration;
  uint64_t requests = 0;
  bool close = false;
  double rate = 0;
  std::string timeout = "10s";
  std::string connect_timeout = "3s";
  int reloads = 0;
  std::string reload_cmd;
  std::string control;
  std::string verify_header;
  std::string reload_timeout = "120s";
  std::string window = "1s";
  bool no_retry = false;
  uint64_t max_failures = 0;
  std::string json_path;
  std::string svg_path;
  std::vector<std::string> headers;
  bool quiet = false;
};

int bad(const std::string& message) {
  std::fprintf(stderr, "baton soak: %s\n", message.c_str());
  return 2;
}

std::string self_path() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "baton";
  return std::string(buf, static_cast<size_t>(n));
}

// Opens (creating or truncating) an output file now, so a bad path fails before the run.
Status check_writable(const std::string& path, const char* flag) {
  if (path.empty()) return {};
  std::ofstream f(path, std::ios::trunc);
  if (!f) return Error(errno, fmt::format("{} {}: cannot write", flag, path));
  return {};
}

Status write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc | std::ios::binary);
  f << text;
  f.close();
  if (!f) return Error(errno, "writing " + path);
  return {};
}

int run_soak(const SoakFlags& f) {
  // --- Validate everything before touching the network.
  auto url = parse_url(f.url);
  if (!url) return bad(url.error().what());
  if (f.connections < 1) return bad("--connections must be at least 1");
  if (f.threads < 1) return bad("--threads must be at least 1");
  if (f.threads > f.connections) {
    return bad(
        fmt::format("--threads {} is more than --connections {}: every thread needs a "
                    "connection",
                    f.threads, f.connections));
  }
  if (f.rate < 0) return bad("--rate must be positive");
  if (f.reloads < 0) return bad("--reloads must be 0 or more");
  if (!f.duration.empty() && f.requests > 0) return bad("give --duration or --requests, not both");
  std::chrono::nanoseconds duration{0};
  // --reloads N alone: the run is sized to the reloads (see plan_sized_run), not to a default
  // duration they may not fit in.
  const bool sized = f.reloads > 0 && f.requests == 0 && f.duration.empty();
  if (f.requests == 0 && !sized) {
    auto d = parse_duration(f.duration.empty() ? "10s" : f.duration);
    if (!d) return bad("--duration: " + d.error().what());
    duration = *d;
  }
  if (f.requests > 0 && f.reloads > 0 && f.requests < static_cast<uint64_t>(f.reloads)) {
    return bad(fmt::format("--requests {} cannot hold --reloads {}", f.requests, f.reloads));
  }
  auto timeout = parse_duration(f.timeout);
  if (!timeout) return bad("--timeout: " + timeout.error().what());
  auto connect_timeout = parse_duration(f.connect_timeout);
  if (!connect_timeout) return bad("--connect-timeout: " + connect_timeout.error().what());
  auto reload_timeout = parse_duration(f.reload_timeout);
  if (!reload_timeout) return bad("--reload-timeout: " + reload_timeout.error().what());
  auto window = parse_duration(f.window, /*allow_zero=*/true);
  if (!window) return bad("--window: " + window.error().what());
  if (!f.verify_header.empty() && f.reload_cmd.empty()) {
    return bad("--verify-header checks a --reload-cmd; baton reloads are verified by baton status");
  }
  if (!f.control.empty() && !f.reload_cmd.empty()) {
    return bad(
        "--control is for the default reload (baton reload); it has no effect with "
        "--reload-cmd");
  }
  if ((!f.reload_cmd.empty() || !f.control.empty()) && f.reloads == 0) {
    return bad("a reload command or --control without --reloads N does nothing");
  }
  for (const auto& h : f.headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0 || h.find_first_of("\r\n") != std::string::npos) {
      return bad("--header '" + h + "': expected 'Name: value'");
    }
  }
  if (auto s = check_writable(f.json_path, "--json"); !s) return bad(s.error().what());
  if (auto s = check_writable(f.svg_path, "--svg"); !s) return bad(s.error().what());

  auto address = parse_address(url->authority());
  if (!address) return bad(fmt::format("cannot resolve {}: {}", url->host, address.error().what()));

  ReloadOptions ro;
  ro.count = f.reloads;
  ro.command = f.reload_cmd;
  ro.control = f.control;
  ro.baton_path = self_path();
  ro.verify_header = f.verify_header;
  ro.address = *address;
  ro.url = *url;
  ro.timeout = *reload_timeout;
  ro.window_after = *window;
  ro.size_to_reloads = sized;

  LoadOptions lo;
  lo.address = *address;
  lo.request = build_request(*url, f.close, f.headers);
  lo.connections = f.connections;
  lo.threads = f.threads;
  lo.close = f.close;
  lo.rate = f.rate;
  lo.max_requests = f.requests;
  // With reloads, the controller below ends a timed run: it lasts until the last reload is done.
  lo.duration = f.reloads > 0 ? std::chrono::nanoseconds(0) : duration;
  lo.timeout = *timeout;
  lo.connect_timeout = *connect_timeout;
  lo.retry = !f.no_retry;
  double duration_s = std::chrono::duration<double>(duration).count();
  lo.slice_ns =
      duration_s > 0
          ? std::max<int64_t>(100'000'000, duration.count() / 600 / 100'000'000 * 100'000'000)
          : 100'000'000;

  // SIGINT/SIGTERM end the run gracefully; only this thread takes them (threads inherit the mask).
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  std::atomic<int64_t> window_until{INT64_MIN};
  int64_t start = now_ns();
  LoadGenerator load(lo, &window_until);
  // How far a run by request count is (a timed run's reloads are due at times, see Reloader).
  auto fraction = [&]() -> double {
    return static_cast<double>(load.progress().completed) / static_cast<double>(f.requests);
  };
  Reloader reloader(ro, fraction, f.requests > 0 ? 0 : duration_s, &window_until);
  Reloader* rel = &reloader;
  // Local checks first (a missing command, an unreachable supervisor), then the server.
  if (f.reloads > 0 && !f.reload_cmd.empty()) {
    if (auto s = check_command_exists(f.reload_cmd); !s) return bad(s.error().what());
  }
  if (f.reload_cmd.empty()) {
    if (auto s = reloader.preflight(); !s) return bad(s.error().what());
  }
  // --- The server must at least accept connections, or the run means nothing. A server that
  // accepts but answers badly is loaded anyway: its failures are what the report is for.
  std::string spot_request = build_request(*url, true, f.headers);
  auto first = spot_check(*address, spot_request, "",
                          std::min<std::chrono::nanoseconds>(*timeout, std::chrono::seconds(10)));
  if (!first && first.error().context().starts_with("connect ")) {
    return bad(fmt::format("{} is not answering: {}", f.url, first.error().what()));
  }
  if (!first) {
    std::fprintf(stderr, "baton soak: warning: %s accepts connections but %s\n", f.url.c_str(),
                 first.error().what().c_str());
  } else if (first->status < 200 || first->status >= 300) {
    std::fprintf(stderr,
                 "baton soak: warning: %s answers %d before the run; those count as "
                 "failures\n",
                 f.url.c_str(), first->status);
  }
  if (!f.reload_cmd.empty()) {
    if (auto s = reloader.preflight(); !s) return bad(s.error().what());
  }

  if (sized && !f.quiet) {
    std::fprintf(stderr,
                 "baton soak: no --duration: the run is sized to its %d reloads; the first starts "
                 "after %.0f s of load, and its time sets the spacing of the rest\n",
                 f.reloads, std::chrono::duration<double>(ro.lead_in).count());
  }
  start = now_ns();
  if (auto s = load.start(start); !s) return bad(s.error().what());
  if (f.reloads > 0) rel->start(start);
  bool plan_told = false;

  bool tty = ::isatty(STDERR_FILENO) && !f.quiet;
  bool interrupted = false;
  int64_t last_progress = start;
  for (;;) {
    timespec wait{0, 100'000'000};
    int sig = sigtimedwait(&sigs, nullptr, &wait);
    int64_t now = now_ns();
    if (sig == SIGINT || sig == SIGTERM) {
      if (interrupted) break;  // second signal: stop waiting for in-flight requests
      interrupted = true;
      load.stop();
      rel->stop();
      if (!f.quiet)
        std::fprintf(stderr, "\nbaton soak: interrupted; finishing requests in flight\n");
    }
    Progress p = load.progress();
    if (!p.running) break;
    double planned_s = rel->planned_duration_s();
    if (sized && planned_s > 0 && !plan_told && !f.quiet) {
      plan_told = true;
      std::fprintf(stderr,
                   "%sbaton soak: from the first reload's time: a reload every %.1f s, %.0f s in "
                   "all (--duration sets it)\n",
                   tty ? "\r\033[K" : "", planned_s / f.reloads, planned_s);
    }
    // A timed run with reloads lasts until its planned end, its last reload and that reload's
    // window, whichever comes last.
    if (f.reloads > 0 && f.requests == 0 && planned_s > 0 &&
        now - start >= static_cast<int64_t>(planned_s * 1e9) && rel->finished() &&
        now >= window_until.load()) {
      load.stop();
    }
    if (tty && now - last_progress >= 1'000'000'000) {
      last_progress = now;
      double elapsed = static_cast<double>(now - start) / 1e9;
      std::string line =
          fmt::format("  {:6.1f}s  {:>10} requests  {:>8.0f}/s  failed {}", elapsed, p.completed,
                      static_cast<double>(p.completed) / elapsed, p.failed);
      if (p.first_try_failed != p.failed)
        line += fmt::format(" (first try {})", p.first_try_failed);
      if (f.reloads > 0) {
        line += fmt::format("  reloads {}/{}", rel->done_count(), f.reloads);
        if (rel->failed_count() > 0) line += fmt::format(" ({} failed)", rel->failed_count());
      }
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
    }
  }
  load.join();
  rel->stop();
  rel->join();
  if (tty) std::fprintf(stderr, "\r\033[K");

  RunResult result;
  result.config.url = f.url;
  result.config.connections = f.connections;
  result.config.threads = f.threads;
  result.config.keep_alive = !f.close;
  result.config.rate = f.rate;
  result.config.duration_s = f.requests > 0 ? 0 : rel->planned_duration_s();
  result.config.sized_to_reloads = sized;
  result.config.requests = f.requests;
  result.config.reloads = f.reloads;
  if (f.reloads > 0) {
    result.config.reload_command =
        f.reload_cmd.empty()
            ? "baton reload --wait" + (f.control.empty() ? "" : " --control " + f.control)
            : f.reload_cmd;
  }
  result.config.max_failures = f.max_failures;
  result.config.retry = !f.no_retry;
  result.elapsed_s = static_cast<double>(load.end_ns() - start) / 1e9;
  result.stats = &load.stats();
  result.reloads = &rel->records();
  result.interrupted = interrupted;

  Verdict verdict = judge(result);
  int code = verdict.exit_code;
  if (interrupted) code = 1;
  if (!f.quiet) std::fputs(render_text(result).c_str(), stdout);
  std::fflush(stdout);
  if (!f.json_path.empty()) {
    if (auto s = write_file(f.json_path, render_json(result).dump(2) + "\n"); !s) {
      std::fprintf(stderr, "baton soak: %s\n", s.error().what().c_str());
      code = std::max(code, 1);
    }
  }
  if (!f.svg_path.empty()) {
    if (auto s = write_file(f.svg_path, render_svg(result)); !s) {
      std::fprintf(stderr, "baton soak: %s\n", s.error().what().c_str());
      code = std::max(code, 1);
    }
  }
  return code;
}

}  // namespace

void add_soak_command(CLI::App& app, Action& action) {
  auto flags = std::make_shared<SoakFlags>();
  CLI::App* cmd = app.add_subcommand(
      "soak",
      "Load an HTTP server while restarting it; count every failed request.\n"
      "Exit status: 0 pass, 1 failed requests over --max-failures or a failed reload, 2 bad input "
      "or the server is not answering.");
  cmd->add_option("--url", flags->url, "http://HOST[:PORT]/PATH to GET")->required();
  cmd->add_option("-c,--connections", flags->connections, "concurrent connections")
      ->capture_default_str();
  cmd->add_option("-t,--threads", flags->threads, "load threads (one epoll loop each)")
      ->capture_default_str();
  auto* dur = cmd->add_option("-d,--duration", flags->duration,
                              "how long to run, e.g. 30s, 2m (default 10s; with --reloads, sized "
                              "to them: a reload every 2 x (the first reload's time + --window)); "
                              "with --reloads the run lasts until the last reload is done");
  auto* req = cmd->add_option("-n,--requests", flags->requests, "stop after this many requests");
  dur->excludes(req);
  cmd->add_flag("--close", flags->close, "a new connection per request (default: keep-alive)");
  cmd->add_option("--rate", flags->rate,
                  "open loop: this many requests per second in total, latency measured from "
                  "the intended send time (default: as fast as possible)");
  cmd->add_option("--timeout", flags->timeout, "response timeout")->capture_default_str();
  cmd->add_option("--connect-timeout", flags->connect_timeout, "connect timeout")
      ->capture_default_str();
  cmd->add_option("--reloads", flags->reloads, "restarts spread evenly over the run");
  cmd->add_option("--reload-cmd", flags->reload_cmd,
                  "shell command that restarts the server (default: baton reload --wait)");
  cmd->add_option("--control", flags->control,
                  "control socket of `baton run` for the default reload");
  cmd->add_option("--verify-header", flags->verify_header,
                  "with --reload-cmd: a response header (e.g. X-Pid) whose value must change");
  cmd->add_option("--reload-timeout", flags->reload_timeout, "kill a reload command after this")
      ->capture_default_str();
  cmd->add_option("--window", flags->window, "how long after a reload its latency window lasts")
      ->capture_default_str();
  cmd->add_flag("--no-retry", flags->no_retry,
                "do not retry a request whose reused keep-alive connection the server closed");
  cmd->add_option("--max-failures", flags->max_failures, "failed requests allowed")
      ->capture_default_str();
  cmd->add_option("--json", flags->json_path, "write the full results as JSON to FILE");
  cmd->add_option("--svg", flags->svg_path, "write a timeline chart (SVG) to FILE");
  cmd->add_option("-H,--header", flags->headers, "extra request header 'Name: value' (repeatable)");
  cmd->add_flag("-q,--quiet", flags->quiet, "no report on stdout, no progress line");
  cmd->callback([flags, &action] { action = [flags] { return run_soak(*flags); }; });
}

}  // namespace baton::cli

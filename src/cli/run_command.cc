// `baton run`: the command line of the supervisor.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "adopt/check.h"
#include "cli/commands.h"
#include "supervisor/control_protocol.h"
#include "supervisor/spawner.h"
#include "supervisor/supervisor.h"

namespace baton::cli {
namespace {

constexpr size_t kMaxListeners = 64;

struct RunFlags {
  std::vector<std::string> listen;
  std::string ready = "notify";
  double ready_timeout = 60;
  double drain_timeout = 30;
  std::string drain_signal = "TERM";
  std::string drain = "watch";
  int max_draining = 4;
  int backlog = SOMAXCONN;
  bool ipv6_only = false;
  std::string unix_mode = "0666";
  std::string control;
  bool adopt = false;
  std::vector<std::string> command;
};

Result<int> parse_signal(std::string name) {
  if (name.starts_with("SIG")) name = name.substr(3);
  for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = sigabbrev_np(sig);
    if (abbrev != nullptr && name == abbrev) return sig;
  }
  char* end = nullptr;
  long n = std::strtol(name.c_str(), &end, 10);
  if (!name.empty() && *end == '\0' && n > 0 && n < NSIG) return static_cast<int>(n);
  return Error(fmt::format("bad --drain-signal '{}': use a name such as TERM, QUIT, USR2", name));
}

// The preload library of `--adopt`: $BATON_ADOPT_LIBRARY, else next to this binary as installed
// (bin/../lib/<multiarch>/baton/) or as built (build/bin/../lib/...).
Result<std::string> find_adopt_library() {
  if (const char* env = std::getenv("BATON_ADOPT_LIBRARY"); env != nullptr && *env != '\0') {
    if (::access(env, R_OK) != 0) return Error::from_errno(fmt::format("BATON_ADOPT_LIBRARY={}", env));
    return std::string(env);
  }
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto candidate = exe.parent_path().parent_path() / BATON_ADOPT_RELATIVE_PATH;
    if (std::filesystem::exists(candidate, ec)) return candidate.lexically_normal().string();
  }
  return Error(fmt::format("--adopt: libbaton_adopt.so not found next to baton ({}); set "
                           "BATON_ADOPT_LIBRARY",
                           BATON_ADOPT_RELATIVE_PATH));
}

int run(const RunFlags& f) {
  auto fail = [](const std::string& message) {
    std::fprintf(stderr, "baton run: %s\n", message.c_str());
    return 2;
  };
  SupervisorConfig config;
  if (f.listen.empty()) return fail("give at least one --listen address, e.g. --listen 8080");
  if (f.listen.size() > kMaxListeners) return fail(fmt::format("at most {} --listen", kMaxListeners));
  for (const auto& text : f.listen) {
    auto spec = parse_listen_spec(text);
    if (!spec) return fail(spec.error().what());
    for (const auto& other : config.listens) {
      if (!spec->name.empty() && other.name == spec->name) {
        return fail(fmt::format("listener name '{}' given twice", spec->name));
      }
    }
    config.listens.push_back(std::move(spec).value());
  }
  if (f.command.empty()) return fail("missing the command to run: baton run [options] -- COMMAND");
  auto resolved = resolve_command(f.command[0]);
  if (!resolved) return fail(resolved.error().what());
  config.command = f.command;
  config.command[0] = *resolved;

  auto readiness = parse_readiness(f.ready);
  if (!readiness) return fail(readiness.error().what());
  config.readiness = *readiness;
  auto signal = parse_signal(f.drain_signal);
  if (!signal) return fail(signal.error().what());

  char* end = nullptr;
  long mode = std::strtol(f.unix_mode.c_str(), &end, 8);
  if (f.unix_mode.empty() || *end != '\0' || mode < 0 || mode > 0777) {
    return fail(fmt::format("bad --unix-mode '{}': an octal mode such as 0660", f.unix_mode));
  }
  config.bind.backlog = f.backlog;
  config.bind.ipv6_only = f.ipv6_only;
  config.bind.unix_mode = static_cast<mode_t>(mode);

  config.core.ready_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.ready_timeout * 1000));
  config.core.drain_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.drain_timeout * 1000));
  config.core.drain_signal = *signal;
  if (f.drain != "watch" && f.drain != "signal") {
    return fail(fmt::format("bad --drain '{}': use watch or signal", f.drain));
  }
  config.core.drain_mode = f.drain == "watch" ? DrainMode::kWatch : DrainMode::kSignal;
  config.core.max_draining = f.max_draining;
  config.core.readiness = config.readiness.to_string();
  config.control_path = f.control.empty() ? default_control_path() : f.control;
  if (f.adopt) {
    auto lib = find_adopt_library();
    if (!lib) return fail(lib.error().what());
    if (auto s = adopt::check_adopt_library(*lib); !s) return fail(s.error().what());
    if (auto s = adopt::check_adoptable(config.command[0]); !s) return fail(s.error().what());
    config.adopt_library = *lib;
  }
  return run_supervisor(config);
}

}  // namespace

void add_run_command(CLI::App& app, Action& action) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* run_app = app.add_subcommand(
      "run", "Supervise a server: own its listening sockets, run generation after generation");
  run_app->footer(
      "Every generation gets the sockets from fd 3 (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID, as\n"
      "systemd passes them; SERVER_STARTER_PORT as Server::Starter does) and BATON_GENERATION.\n"
      "On reload ('baton reload' or SIGHUP) a new generation starts; only once it is proven\n"
      "ready is the old one drained (see --drain). If it fails, the old one keeps serving.\n"
      "SIGTERM or SIGINT (or 'baton stop') drains every generation, then exits.\n"
      "\n"
      "Examples:\n"
      "  baton run --listen 8080 -- ./server --config prod.toml\n"
      "  baton run --listen http=127.0.0.1:8080 --listen admin=unix:/run/app.sock \\\n"
      "            --ready http:/healthz -- java -jar app.jar\n"
      "  baton run --adopt --listen 8000 -- python3 -m http.server 8000\n"
      "\n"
      "Exit status: 0 after a stop, 1 when the first generation fails or setting up fails (port in\n"
      "use, another supervisor on the control socket), 2 for bad options.");
  run_app->add_option("--listen", flags->listen,
                      "[NAME=]ADDRESS to listen on, repeatable: 8080, 127.0.0.1:8080, [::1]:8080, "
                      "unix:/path, udp:HOST:PORT")
      ->type_name("[NAME=]ADDR");
  run_app->add_option("--ready", flags->ready,
                      "how a new generation proves it is ready: notify (READY=1 on "
                      "NOTIFY_SOCKET), http:PATH (2xx from that generation), exec:CMD (exits "
                      "0), delay:SECONDS (alive that long; weakest)")
      ->capture_default_str();
  run_app->add_option("--ready-timeout", flags->ready_timeout,
                      "seconds a new generation has to prove it is ready, else the reload "
                      "fails and it is drained and stopped")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  run_app->add_option("--drain-timeout", flags->drain_timeout,
                      "seconds an old generation has to finish, counted from the switch (watch "
                      "and drain signal together), then its process group is killed")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  run_app->add_option("--drain-signal", flags->drain_signal,
                      "signal that tells an old generation to drain")
      ->capture_default_str();
  run_app->add_option("--drain", flags->drain,
                      "how an old generation drains after the switch. watch: baton watches it "
                      "from outside (accept queue, connections from /proc and sock_diag), closes "
                      "its idle keep-alive connections, and sends the drain signal only once it "
                      "holds nothing, for apps that die on SIGTERM; a generation whose listeners "
                      "are shared with the new one cannot be watched and is signalled at once. "
                      "signal: the drain signal at once, for apps that drain well themselves. "
                      "--drain-timeout bounds both")
      ->capture_default_str();
  run_app->add_option("--max-draining", flags->max_draining,
                      "reloads are refused while this many old generations still drain")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  run_app->add_option("--backlog", flags->backlog, "listen(2) backlog of stream listeners")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  run_app->add_flag("--ipv6-only", flags->ipv6_only,
                    "set IPV6_V6ONLY: [::] listeners take IPv6 only (default: IPv4 too)");
  run_app->add_option("--unix-mode", flags->unix_mode, "permissions of unix socket listeners")
      ->capture_default_str();
  run_app->add_option("--control", flags->control,
                      "control socket path (default: $BATON_CONTROL, else "
                      "$XDG_RUNTIME_DIR/baton/control.sock, else /tmp/baton-UID/control.sock)");
  run_app->add_flag("--adopt", flags->adopt,
                    "for apps that bind their port themselves: preload libbaton_adopt.so so "
                    "their bind() of a --listen address takes baton's socket instead");
  run_app->add_option("command", flags->command, "the server to run, after --")
      ->type_name("-- COMMAND [ARGS...]");
  run_app->positionals_at_end();
  run_app->callback([&action, flags] { action = [flags] { return run(*flags); }; });
}

}  // namespace baton::cli

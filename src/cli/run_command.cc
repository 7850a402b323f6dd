// `baton run`: the command line of the supervisor.
#include <cstdio>

#include "cli/commands.h"
#include "cli/run_flags.h"
#include "supervisor/supervisor.h"

namespace baton::cli {
namespace {

int run(const RunSource& source) {
  SupervisorConfig config;
  if (upgrade_check_mode() || resuming_after_upgrade()) {
    // An in-place upgrade of a running supervisor: its settings travel in the state, and the
    // config file is not read (docs/upgrade.md). A reload reads it again, as before the upgrade.
    config.reload_config = settings_reader(source);
  } else {
    auto problems = load_run_config(source, config);
    for (const auto& p : problems) std::fprintf(stderr, "baton run: %s\n", p.c_str());
    if (!problems.empty()) return 2;
  }
  config.self_argv = original_argv();
  config.self_version = BATON_VERSION;
  if (upgrade_check_mode()) return upgrade_check(config, 3);
  return run_supervisor(config);
}

}  // namespace

void add_run_command(CLI::App& app, Action& action) {
  auto source = std::make_shared<RunSource>();
  CLI::App* run_app = app.add_subcommand(
      "run", "Supervise a server: own its listening sockets, run generation after generation");
  run_app->footer(
      "Every generation gets the sockets from fd 3 (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID, as\n"
      "systemd passes them; SERVER_STARTER_PORT as Server::Starter does) and BATON_GENERATION.\n"
      "On reload ('baton reload' or SIGHUP) a new generation starts; only once it is proven\n"
      "ready is the old one drained (see --drain). If it fails, the old one keeps serving.\n"
      "TCP and UDP listeners are steered: each generation has its own socket, and baton sends\n"
      "new connections only to the serving generation (a starting one gets none).\n"
      "Readiness by default (--ready auto): an app that sends READY=1 or STATUS= on\n"
      "NOTIFY_SOCKET, or whose earlier generation did, is ready when it sends READY=1; an app\n"
      "that sends none is ready when it accepts baton's probe connection on its own socket of\n"
      "the first TCP listener. So an app that never heard of sd_notify needs no --ready flag.\n"
      "With --config or --env-file, each reload reads them again first (command, environment,\n"
      "directory, readiness, timeouts); if they no longer check, the reload fails.\n"
      "SIGTERM or SIGINT (or 'baton stop') drains every generation, then exits.\n"
      "SIGUSR1 and SIGUSR2 are passed to the serving generation; no signal upgrades baton\n"
      "itself: 'baton upgrade' does (see docs/upgrade.md).\n"
      "\n"
      "Examples:\n"
      "  baton run --listen 8080 -- ./server --config prod.toml\n"
      "  baton run --listen http=127.0.0.1:8080 --listen admin=unix:/run/app.sock \\\n"
      "            --ready http:/healthz -- java -jar app.jar\n"
      "  baton run --adopt --listen 8000 -- python3 -m http.server 8000\n"
      "  baton run --config /etc/baton/app.toml      (check it first: baton check --config ...)\n"
      "\n"
      "Exit status: 0 after a stop, 1 when the first generation fails or setting up fails (port "
      "in\n"
      "use, another supervisor on the control socket), 2 for bad options.");
  add_run_flags(run_app, *source);
  run_app->callback([&action, source, run_app] {
    collect_given(run_app, *source, words_after_dashes());
    action = [source] { return run(*source); };
  });
}

}  // namespace baton::cli

// baton: restart or upgrade any network server with zero failed requests.
#include <cstdio>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "baton: restart or upgrade a network server with zero failed requests.\n"
      "\n"
      "  baton run --listen 8080 -- ./server     supervise ./server, owning port 8080\n"
      "  baton reload --wait                     start a new generation, drain the old one\n"
      "  baton status                            what runs, what is draining, last reload\n"
      "  baton soak --url http://127.0.0.1:8080/ --reloads 100   prove it under load\n",
      "baton"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(BATON_VERSION));
  baton::cli::Action action;
  baton::cli::add_run_command(app, action);
  baton::cli::add_control_commands(app, action);
  baton::cli::add_soak_command(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "baton: %s\nRun 'baton %s--help' for usage.\n", e.what(),
                 argc > 1 && argv[1][0] != '-' ? (std::string(argv[1]) + " ").c_str() : "");
    return 2;
  }
  return action ? action() : 2;
}

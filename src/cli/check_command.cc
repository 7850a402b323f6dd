// `baton check`: everything `baton run` would check, without starting anything (like nginx -t).
#include <cstdio>

#include "cli/commands.h"
#include "cli/run_flags.h"

namespace baton::cli {
namespace {

int check(const RunSource& source) {
  SupervisorConfig config;
  auto problems = load_run_config(source, config);
  for (const auto& p : problems) std::fprintf(stderr, "baton check: %s\n", p.c_str());
  if (!problems.empty()) return 2;
  for (const auto& line : describe_config(config)) std::printf("%s\n", line.c_str());
  std::printf("ok\n");
  return 0;
}

}  // namespace

void add_check_command(CLI::App& app, Action& action) {
  auto source = std::make_shared<RunSource>();
  CLI::App* cmd = app.add_subcommand(
      "check", "Check a config file (and the flags of run) the way run would, start nothing");
  cmd->footer(
      "Takes --config FILE and every flag of 'baton run'. Checks addresses, the command (found\n"
      "and executable), readiness, durations, the working directory, the env file, the user.\n"
      "Binds nothing and starts nothing.\n"
      "\n"
      "Exit status: 0 with a summary when all is well; 2 with one line per problem.");
  add_run_flags(cmd, *source);
  cmd->callback([&action, source, cmd] {
    collect_given(cmd, *source, words_after_dashes());
    action = [source] { return check(*source); };
  });
}

}  // namespace baton::cli

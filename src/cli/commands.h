// commands.h: every `baton` subcommand registers itself on the CLI11 app through one function.
//
// Each add_*_command defines its subcommand, its flags and its help text; when the subcommand
// is chosen, its parse callback stores in `action` the function main() runs, whose return value
// is the exit status. Each is defined beside this header, in src/cli: the command line calls the
// supervisor and soak libraries, never the reverse.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace baton::cli {

using Action = std::function<int()>;

// The words after the first "--", which main() keeps from CLI11 (it would read "[a,b]" as a list):
// the command of `run` and `check`, given exactly as typed.
std::vector<std::string>& words_after_dashes();

// baton's own command line as it was started (`baton upgrade` executes it again), and whether
// this is the hidden `baton upgrade-check` of a supervisor about to execute this binary: the
// rest of the line is the supervisor's own, its state at fd 3 (run_command.cc).
std::vector<std::string>& original_argv();
bool& upgrade_check_mode();

void add_run_command(CLI::App& app, Action& action);    // run_command.cc
void add_check_command(CLI::App& app, Action& action);  // check_command.cc
void add_control_commands(CLI::App& app,
                          Action& action);             // reload, status, stop: control_commands.cc
void add_soak_command(CLI::App& app, Action& action);  // soak_command.cc

}  // namespace baton::cli

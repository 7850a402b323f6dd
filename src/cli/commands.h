// commands.h: every `baton` subcommand registers itself on the CLI11 app through one function.
//
// Each add_*_command defines its subcommand, its flags and its help text; when the subcommand
// is chosen, its parse callback stores in `action` the function main() runs, whose return value
// is the exit status.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace baton::cli {

using Action = std::function<int()>;

void add_run_command(CLI::App& app, Action& action);      // src/supervisor/run_command.cc
void add_control_commands(CLI::App& app, Action& action); // reload, status, stop: src/supervisor
void add_soak_command(CLI::App& app, Action& action);     // src/soak/soak_command.cc

}  // namespace baton::cli

#include "cli/commands.h"
namespace baton::cli {
void add_run_command(CLI::App&, Action&) {}
void add_control_commands(CLI::App&, Action&) {}
}

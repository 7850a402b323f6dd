#include "cli/commands.h"
namespace baton::cli {
void add_soak_command(CLI::App&, Action&) {}
}

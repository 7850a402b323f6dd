// run_flags.h: the flags of `baton run`, shared by `baton check`, which takes the same ones.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/config.h"

namespace baton::cli {

// Registers --config and every setting of `run` (the table of common/run_settings.h) on `cmd`,
// bound to `source`.
void add_run_flags(CLI::App* cmd, RunSource& source);

// After parsing: records in `source.given` which settings the command line set; `after_dashes`
// (the words after "--", which main takes off before CLI11 parses) is the command.
void collect_given(CLI::App* cmd, RunSource& source, const std::vector<std::string>& after_dashes);

}  // namespace baton::cli

// help_format.h: --help that fits its reader's terminal.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

namespace baton::cli {

// Columns for --help: the terminal's when stdout is one (at least 60), else 100.
size_t help_width();

// `text` broken at spaces into lines of at most `width` columns (a longer word keeps a line of
// its own); the newlines it has stay.
std::string wrap_text(std::string_view text, size_t width);

// CLI11's formatter, with each option's description wrapped so that its lines end by column
// `width` (continuation lines are indented under the descriptions' column).
std::shared_ptr<CLI::Formatter> wrapping_formatter(size_t width);

}  // namespace baton::cli

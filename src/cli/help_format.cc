#include "cli/help_format.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

namespace baton::cli {
namespace {

constexpr size_t kWidthWhenNotATerminal = 100;
constexpr size_t kNarrowest = 60;

class WrappingFormatter : public CLI::Formatter {
 public:
  explicit WrappingFormatter(size_t width) : width_(width) {}
  std::string make_option_desc(const CLI::Option* opt) const override {
    // The description starts after the name column (format_help pads the name to it).
    const size_t room = width_ > get_column_width() + 20 ? width_ - get_column_width() : 20;
    return wrap_text(CLI::Formatter::make_option_desc(opt), room);
  }

 private:
  size_t width_;
};

}  // namespace

size_t help_width() {
  winsize ws{};
  if (::isatty(STDOUT_FILENO) == 1 && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
      ws.ws_col > 0) {
    return std::max<size_t>(ws.ws_col, kNarrowest);
  }
  return kWidthWhenNotATerminal;
}

std::string wrap_text(std::string_view text, size_t width) {
  std::string out;
  size_t column = 0;
  while (!text.empty()) {
    if (text.front() == '\n') {
      out += '\n';
      column = 0;
      text.remove_prefix(1);
      continue;
    }
    if (text.front() == ' ') {
      text.remove_prefix(1);
      continue;
    }
    const size_t end = std::min(text.find_first_of(" \n"), text.size());
    const std::string_view word = text.substr(0, end);
    if (column > 0 && column + 1 + word.size() > width) {
      out += '\n';
      column = 0;
    } else if (column > 0) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    text.remove_prefix(end);
  }
  return out;
}

std::shared_ptr<CLI::Formatter> wrapping_formatter(size_t width) {
  return std::make_shared<WrappingFormatter>(width);
}

}  // namespace baton::cli

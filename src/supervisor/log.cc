#include "supervisor/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <ctime>

#include <fmt/format.h>

namespace baton {
namespace {

// Parses all of `text` as a decimal unsigned number.
bool parse_number(std::string_view text, std::uint64_t& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// At a line start: the length of a syslog priority "<N>" (1 to 3 digits, as journald reads it)
// that `s` begins with; 0 when it does not begin with one; -1 when `s` ends before that is known.
int priority_length(std::string_view s) {
  if (s.empty() || s[0] != '<') return 0;
  size_t i = 1;
  while (i < s.size() && i <= 3 && is_digit(s[i])) ++i;
  if (i == s.size()) return -1;  // "<", "<4", "<12", "<123": a '>' may follow
  if (i == 1 || s[i] != '>') return 0;
  return static_cast<int>(i + 1);
}

}  // namespace

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kNotice:
      return "notice";
    case LogLevel::kInfo:
      return "info";
  }
  return "info";
}

bool journal_stream_names(std::string_view journal_stream, dev_t dev, ino_t ino) {
  const size_t colon = journal_stream.find(':');
  if (colon == std::string_view::npos) return false;
  std::uint64_t want_dev = 0, want_ino = 0;
  if (!parse_number(journal_stream.substr(0, colon), want_dev) ||
      !parse_number(journal_stream.substr(colon + 1), want_ino)) {
    return false;
  }
  return want_dev == static_cast<std::uint64_t>(dev) && want_ino == static_cast<std::uint64_t>(ino);
}

bool is_journal(int fd) {
  const char* value = std::getenv("JOURNAL_STREAM");
  if (value == nullptr) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  return journal_stream_names(value, st.st_dev, st.st_ino);
}

std::string utc_timestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  const long millis = static_cast<long>(((ms % 1000) + 1000) % 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

LogFormat LogFormat::for_fd(int fd) { return LogFormat(::getpid(), is_journal(fd)); }

std::string LogFormat::line(LogLevel level, std::string_view message,
                            std::chrono::system_clock::time_point now) const {
  if (journal_) {
    return fmt::format("<{}>baton[{}]: {}: {}\n", static_cast<int>(level), pid_, level_name(level),
                       escape_controls(message));
  }
  return fmt::format("{} baton[{}]: {}: {}\n", utc_timestamp(now), pid_, level_name(level),
                     escape_controls(message));
}

std::string LogFormat::fatal_line(std::string_view message) const {
  return fmt::format("{}baton: {}\n", journal_ ? "<3>" : "", escape_controls(message));
}

std::string escape_controls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

std::string generation_label(int id) { return fmt::format("[gen {}] ", id); }

std::string LinePrefixer::add(std::string_view piece) {
  std::string joined;
  std::string_view data = piece;
  if (!held_.empty()) {
    joined = std::move(held_);
    held_.clear();
    joined.append(piece);
    data = joined;
  }
  std::string out;
  out.reserve(data.size() + label_.size());
  size_t i = 0;
  while (i < data.size()) {
    if (at_line_start_) {
      if (priority_first_) {
        const int n = priority_length(data.substr(i));
        if (n < 0) {  // too short to tell: the next piece will
          held_ = std::string(data.substr(i));
          return out;
        }
        out.append(data.substr(i, static_cast<size_t>(n)));
        i += static_cast<size_t>(n);
      }
      out += label_;
      at_line_start_ = false;
      if (i == data.size()) break;
    }
    const size_t nl = data.find('\n', i);
    if (nl == std::string_view::npos) {
      out.append(data.substr(i));
      break;
    }
    out.append(data.substr(i, nl + 1 - i));
    i = nl + 1;
    at_line_start_ = true;
  }
  return out;
}

std::string LinePrefixer::finish() {
  if (held_.empty()) return {};
  std::string out = label_ + held_;  // the stream ended before a priority did: it is text
  held_.clear();
  at_line_start_ = false;
  return out;
}

}  // namespace baton

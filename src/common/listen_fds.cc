#include "common/listen_fds.h"

#include <charconv>

#include <fmt/format.h>

namespace baton {

bool parse_decimal(std::string_view text, long long min, long long max, long long* out) {
  if (text.empty() || text.size() > 19) return false;
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text[0] == '-' || text[0] == '+') {
    return false;
  }
  if (v < min || v > max) return false;
  *out = v;
  return true;
}

bool valid_fd_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    if (c < 0x21 || c > 0x7e || c == ':') return false;
  }
  return true;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

Result<std::vector<ListenFdEntry>> parse_listen_fds_env(const char* listen_pid,
                                                        const char* listen_fds,
                                                        const char* listen_fdnames, pid_t self) {
  std::vector<ListenFdEntry> out;
  if (listen_fds == nullptr) return out;
  if (listen_pid != nullptr) {
    long long pid = 0;
    if (!parse_decimal(listen_pid, 1, 0x7fffffff, &pid)) {
      return Error(fmt::format("LISTEN_PID='{}': not a process id", listen_pid));
    }
    if (pid != self) return out;  // meant for another process (an ancestor)
  }
  long long count = 0;
  if (!parse_decimal(listen_fds, 0, 1LL << 30, &count)) {
    return Error(fmt::format("LISTEN_FDS='{}': not a count of descriptors", listen_fds));
  }
  if (count > kMaxListeners) {
    return Error(fmt::format("LISTEN_FDS={}: more than {} descriptors", count, kMaxListeners));
  }
  std::vector<std::string_view> names;
  if (listen_fdnames != nullptr) {
    names = split(listen_fdnames, ':');
    if (count == 0 && names.size() == 1 && names[0].empty()) names.clear();
    if (static_cast<long long>(names.size()) != count) {
      return Error(
          fmt::format("LISTEN_FDNAMES has {} names but LISTEN_FDS={}", names.size(), count));
    }
    for (auto n : names) {
      if (!valid_fd_name(n)) {
        return Error(
            fmt::format("LISTEN_FDNAMES: invalid name '{}' (1-255 printable characters, "
                        "no ':')",
                        std::string(n)));
      }
    }
  }
  for (int i = 0; i < count; ++i) {
    out.push_back(
        {names.empty() ? std::string("unknown") : std::string(names[i]), kListenFdsStart + i});
  }
  return out;
}

}  // namespace baton

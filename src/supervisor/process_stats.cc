#include "supervisor/process_stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <string>
#include <vector>

#include "baton/fd.h"
#include "common/syscall.h"

namespace baton {
namespace {

// /proc/self/stat is one line of a few hundred bytes; /proc/stat's btime comes after one line per
// CPU, so its read is bounded by a size that holds a few thousand CPUs.
constexpr size_t kMaxStat = 4096;
constexpr size_t kMaxProcStat = 1 << 20;
// Open fds are counted up to this many, so a leak cannot make a scrape walk forever.
constexpr std::uint64_t kMaxCountedFds = 1 << 20;

std::optional<std::uint64_t> number(std::string_view s) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string read_bounded(const char* path, size_t limit) {
  std::string out;
  Fd fd(retry_eintr([&] { return ::open(path, O_RDONLY | O_CLOEXEC); }));
  if (!fd) return out;
  char buf[4096];
  while (out.size() < limit) {
    ssize_t n = retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf); });
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::optional<std::int64_t> boot_time() {
  std::string text = read_bounded("/proc/stat", kMaxProcStat);
  size_t at = text.find("\nbtime ");
  if (at == std::string::npos) return std::nullopt;
  at += 7;
  size_t end = text.find('\n', at);
  if (end == std::string::npos) return std::nullopt;
  auto v = number(std::string_view(text).substr(at, end - at));
  if (!v) return std::nullopt;
  return static_cast<std::int64_t>(*v);
}

std::optional<std::uint64_t> open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  std::uint64_t n = 0;
  while (n < kMaxCountedFds) {
    const dirent* e = ::readdir(dir);
    if (e == nullptr) break;
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n > 0 ? n - 1 : 0;  // the directory's own fd, open while it is read
}

}  // namespace

ProcessStats parse_proc_stat(std::string_view stat, std::optional<std::int64_t> boot_time,
                             long ticks_per_second, long page_size) {
  ProcessStats s;
  // The command name (field 2) is in parentheses and may hold spaces and ')': the fields that
  // follow start after the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) return s;
  std::vector<std::string_view> fields;  // fields[0] is field 3, the state
  std::string_view rest = stat.substr(close + 1);
  while (!rest.empty() && fields.size() < 22) {
    size_t start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    size_t end = rest.find_first_of(" \n");
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  auto field = [&](size_t n) -> std::optional<std::uint64_t> {  // proc(5)'s 1-based numbering
    if (n < 3 || n - 3 >= fields.size()) return std::nullopt;
    return number(fields[n - 3]);
  };
  const double ticks = static_cast<double>(ticks_per_second);
  auto utime = field(14);
  auto stime = field(15);
  if (utime && stime) s.cpu_seconds = static_cast<double>(*utime + *stime) / ticks;
  if (auto start = field(22); start && boot_time) {
    s.start_time_seconds = static_cast<double>(*boot_time) + static_cast<double>(*start) / ticks;
  }
  if (auto rss = field(24); rss && page_size > 0) {
    s.resident_bytes = *rss * static_cast<std::uint64_t>(page_size);
  }
  return s;
}

ProcessStats read_process_stats() {
  ProcessStats s = parse_proc_stat(read_bounded("/proc/self/stat", kMaxStat), boot_time(),
                                   ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE));
  s.open_fds = open_fds();
  return s;
}

}  // namespace baton

#include "common/proc_stat.h"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

namespace baton {

std::optional<pid_t> process_group_of(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  // The file is one short line; a bound keeps a hostile name from costing more than a page.
  std::string content;
  content.reserve(1024);
  std::istreambuf_iterator<char> it(stat), end;
  for (size_t n = 0; it != end && n < 4096; ++it, ++n) content.push_back(*it);
  auto close = content.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  int ppid = 0, pgid = 0;
  char state = 0;
  if (std::sscanf(content.c_str() + close + 1, " %c %d %d", &state, &ppid, &pgid) != 3) {
    return std::nullopt;
  }
  return static_cast<pid_t>(pgid);
}

}  // namespace baton

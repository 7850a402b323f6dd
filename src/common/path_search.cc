#include "common/path_search.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

namespace baton {

std::optional<std::string> search_path(const std::string& name) {
  if (name.empty()) return std::nullopt;
  const char* env = std::getenv("PATH");
  const std::string dirs = env != nullptr ? env : kDefaultPath;
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace baton

// Fuzzes the readers of /proc text that the app controls (src/supervisor/drain_watch.h): the
// process name in /proc/PID/stat is the app's own choice (any bytes, ')' included), and so are
// its children's pids' lines and its descriptors' links. Whatever they return must be in range.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "supervisor/drain_watch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const pid_t pgid = baton::pgid_of_stat(text);
  if (pgid < -1) std::abort();
  const size_t limit = size % 17;
  const auto children = baton::parse_children(text, limit);
  if (children.size() > limit) std::abort();
  for (pid_t pid : children) {
    if (pid <= 0) std::abort();
  }
  (void)baton::socket_inode_of_link(text);
  return 0;
}

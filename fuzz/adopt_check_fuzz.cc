// Fuzzes the check `baton run --adopt` makes of the program it will start (ELF header and
// program headers, `#!` lines). The input is the program file's content, held in a memfd and
// checked through its /proc/self/fd path. `#!` lines may name real programs on this machine:
// they are only stat()ed and read.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "adopt/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int fd = memfd_create("adopt-check-fuzz", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0) std::abort();
  if (ftruncate(fd, 0) != 0) std::abort();
  if (size > 0 && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  (void)baton::adopt::check_adoptable(path);
  return 0;
}

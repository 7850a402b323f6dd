// Fuzzes the reading of $JOURNAL_STREAM (src/supervisor/log.h), set by whoever starts baton:
// "DEV:INODE" in decimal. A value names the device and inode it spells and nothing else: any
// value accepted for one pair must be rejected for another.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "supervisor/log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The pair the input spells, if it spells one, is tried against itself and its neighbours.
  const auto colon = text.find(':');
  unsigned long long dev = 0, ino = 0;
  if (colon != std::string_view::npos) {
    for (char c : text.substr(0, colon)) dev = dev * 10 + static_cast<unsigned>(c - '0');
    for (char c : text.substr(colon + 1)) ino = ino * 10 + static_cast<unsigned>(c - '0');
  }
  const bool exact =
      baton::journal_stream_names(text, static_cast<dev_t>(dev), static_cast<ino_t>(ino));
  if (exact &&
      (baton::journal_stream_names(text, static_cast<dev_t>(dev + 1), static_cast<ino_t>(ino)) ||
       baton::journal_stream_names(text, static_cast<dev_t>(dev), static_cast<ino_t>(ino + 1)))) {
    std::abort();
  }
  (void)baton::journal_stream_names(text, 0, 0);
  return 0;
}

// Fuzzes soak's URL parser (`--url`) and the request built from it, and the duration parser.
// A parsed URL must give a request with exactly one blank line, at its end (no header injection).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "soak/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)baton::soak::parse_duration(text, size % 2 == 0);
  auto url = baton::soak::parse_url(text);
  if (!url) return 0;
  (void)url->authority();
  std::string request = baton::soak::build_request(*url, true, {});
  if (request.find("\r\n\r\n") != request.size() - 4) std::abort();
  if (request.find('\0') != std::string::npos) std::abort();
  return 0;
}

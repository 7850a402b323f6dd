// Fuzzes what baton reads of a starting app's answers and of the operator's readiness spelling
// (src/supervisor/readiness): http_status_of on the head of the app's response to the http
// probe (the app writes it), and parse_readiness on a --ready value. A status is 0 or a 3-digit
// code; an accepted spec spells itself in a form that parses back to the same spelling.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "supervisor/readiness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const int code = baton::http_status_of(text);
  if (code != 0 && (code < 100 || code > 999)) std::abort();
  auto spec = baton::parse_readiness(text);
  if (spec) {
    const std::string spelled = spec->to_string();
    auto again = baton::parse_readiness(spelled);
    if (!again || again->to_string() != spelled) std::abort();
  }
  return 0;
}

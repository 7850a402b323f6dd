// Fuzzes soak's incremental HTTP/1.1 response parser with bytes a server sends, cut into pieces
// of random sizes (as the network delivers them). Responses may follow one another on the
// connection; after a complete one the parser is reset and fed what is left.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "soak/http_parser.h"

using baton::soak::ResponseParser;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  ResponseParser parser;
  if (in.ConsumeBool()) parser.capture_header("X-Generation");
  // Up to 64 piece sizes first, then the stream itself.
  std::vector<size_t> pieces;
  size_t npieces = in.ConsumeIntegralInRange<size_t>(1, 64);
  for (size_t i = 0; i < npieces; ++i) pieces.push_back(in.ConsumeIntegralInRange<size_t>(1, 4096));
  std::string stream = in.ConsumeRemainingBytesAsString();

  size_t at = 0, piece = 0;
  ResponseParser::State state = ResponseParser::State::kNeedMore;
  while (at < stream.size()) {
    size_t len = std::min(pieces[piece++ % pieces.size()], stream.size() - at);
    while (len > 0) {
      size_t used = 0;
      state = parser.feed(stream.data() + at, len, &used);
      if (state == ResponseParser::State::kError) return 0;
      if (state == ResponseParser::State::kNeedMore) {
        at += len;
        break;
      }
      if (used > len) std::abort();
      if (parser.status() < 100 || parser.status() > 999) std::abort();
      at += used;
      len -= used;
      parser.reset();
    }
  }
  (void)parser.finish_eof();
  return 0;
}

// Fuzzes the control request parser: one line from any local client of the control socket.
// Whatever the parser answers must be sendable as a reply, so the error path is serialised the
// way the supervisor sends it, and a parsed request must format back to a line that parses again
// to the same request.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "supervisor/control_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > baton::kMaxControlLine) return 0;  // the server never hands it more
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto request = baton::parse_control_request(line);
  if (!request) {
    (void)baton::control_error(request.error().what()).dump();
    return 0;
  }
  std::string again = baton::format_control_request(*request);
  again.pop_back();  // the newline
  auto reparsed = baton::parse_control_request(again);
  if (!reparsed || reparsed->command != request->command ||
      (request->command == baton::ControlRequest::Command::kReload &&
       reparsed->wait != request->wait)) {
    std::abort();
  }
  return 0;
}

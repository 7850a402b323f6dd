// Fuzzes the sd_notify datagram parser: any process that can reach NOTIFY_SOCKET sends these.
// The STATUS= text ends up in `baton status` JSON, so it is serialised the way the supervisor
// does (invalid UTF-8 replaced, never thrown).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "supervisor/notify_socket.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > baton::kMaxNotifyDatagram) return 0;  // larger datagrams are dropped unread
  auto m = baton::parse_notify(std::string_view(reinterpret_cast<const char*>(data), size));
  if (m.status) {
    nlohmann::json j = {{"status_text", *m.status}};
    (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return 0;
}

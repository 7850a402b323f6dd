// Fuzzes the handover protocol: the packet decoder, the field parsers, and the old instance's
// ParentSession fed a conversation of packets (any same-uid process can connect and speak).
// Input: a sequence of packets, each a 2-byte little-endian length and that many bytes; the
// first byte chooses the session's situation (draining or not, listeners offered, fds attached).
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "lib/handover_protocol.h"

namespace h = baton::handover;

namespace {

void parse_all(std::string_view packet, size_t fds) {
  auto m = h::decode(packet);
  if (!m) return;
  // Whatever decodes must encode back to the same packet (the framing is canonical).
  if (h::encode(*m) != packet) std::abort();
  (void)h::parse_hello(*m);
  (void)h::parse_offer(*m, fds);
  (void)h::parse_refuse(*m);
  (void)h::parse_draining(*m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t mode = data[0];
  ++data;
  --size;
  std::vector<h::OfferedListener> listeners;
  for (int i = 0; i < (mode & 3); ++i) {
    listeners.push_back({"l" + std::to_string(i), i == 2 ? SOCK_DGRAM : SOCK_STREAM,
                         "127.0.0.1:" + std::to_string(8000 + i)});
  }
  h::ParentSession session(4242, listeners, (mode & 4) != 0);
  size_t fds = (mode >> 3) & 3;
  while (size >= 2) {
    size_t len = data[0] | (size_t{data[1]} << 8);
    data += 2;
    size -= 2;
    if (len > size) len = size;
    std::string_view packet(reinterpret_cast<const char*>(data), len);
    data += len;
    size -= len;
    parse_all(packet, fds);
    bool was_done = session.done();
    h::ParentAction a = session.on_packet(packet, fds);
    // The session's promises: nothing but a close after the end; descriptors only with an
    // OFFER; a drain only on the transition out of awaiting READY.
    if (was_done && (!a.close || !a.reply.empty() || a.start_drain)) std::abort();
    if (a.attach_fds && !session.offered()) std::abort();
    if (a.start_drain && !session.done()) std::abort();
    if (!a.reply.empty() && !h::decode(a.reply)) std::abort();
  }
  return 0;
}

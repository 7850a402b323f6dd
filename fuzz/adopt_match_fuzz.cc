// Fuzzes the preload library's matching of an app's bind() to the sockets baton handed over
// (src/adopt/match.h): the address and its length are the app's (any bytes), the held sockets
// come from LISTEN_FDS. The input is cut into two held sockets' addresses and the app's address;
// a match must name a held socket of the app's type that is not the probe listener, and every
// printed address must be NUL-terminated within its buffer.
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "adopt/match.h"

namespace {

// Takes up to sizeof(sockaddr_storage) bytes for an address; its length is the first byte.
socklen_t take_address(const uint8_t*& data, size_t& size, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof(out));
  if (size == 0) return 0;
  const auto len = static_cast<socklen_t>(data[0] % (sizeof(out) + 1));
  ++data, --size;
  const size_t n = len < size ? len : size;
  std::memcpy(&out, data, n);
  data += n, size -= n;
  return len;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const int app_family = data[0] % 2 == 0 ? AF_INET : AF_INET6;
  const int type = data[1] % 2 == 0 ? SOCK_STREAM : SOCK_DGRAM;
  const uint8_t flags = data[2];
  data += 3, size -= 3;
  baton::adopt::HeldSocket held[2];
  for (int i = 0; i < 2; ++i) {
    held[i].fd = 3 + i;
    held[i].type = (flags >> i) & 1 ? SOCK_DGRAM : SOCK_STREAM;
    held[i].v6only = (flags >> (2 + i)) & 1;
    held[i].probe = (flags >> (4 + i)) & 1;
    held[i].addr_len = take_address(data, size, held[i].addr);
  }
  sockaddr_storage app{};
  const socklen_t app_len = take_address(data, size, app);
  auto m = baton::adopt::find_match(held, 2, app_family, type,
                                    reinterpret_cast<const sockaddr*>(&app), app_len);
  if (m.index != -1) {
    if (m.index < 0 || m.index > 1 || held[m.index].probe || held[m.index].type != type ||
        m.quality == baton::adopt::MatchQuality::kNone) {
      std::abort();
    }
  }
  for (const size_t buffer : std::initializer_list<size_t>{1, 8, 64}) {
    char out[64];
    std::memset(out, 'x', sizeof(out));
    baton::adopt::format_address(reinterpret_cast<const sockaddr*>(&app), app_len, out, buffer);
    if (std::memchr(out, '\0', buffer) == nullptr) std::abort();
  }
  const int port = baton::adopt::address_port(reinterpret_cast<const sockaddr*>(&app), app_len);
  if (port < 0 || port > 65535) std::abort();
  return 0;
}

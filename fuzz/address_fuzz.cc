// Fuzzes the address parser (`--listen`, the client library's addresses, handover OFFERs).
// A parsed address must print to a spelling that parses back to the same socket address.
//
// getaddrinfo is replaced here (the fuzzer must not send DNS queries): "localhost" resolves to
// 127.0.0.1, every other name fails as an unknown one would.
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "common/address.h"

extern "C" int getaddrinfo(const char* node, const char*, const addrinfo* hints, addrinfo** res) {
  if (node == nullptr || std::strcmp(node, "localhost") != 0) return EAI_NONAME;
  // One block, as glibc allocates it: freeaddrinfo frees the addrinfo and its address at once.
  auto* block = static_cast<char*>(std::calloc(1, sizeof(addrinfo) + sizeof(sockaddr_in)));
  auto* ai = reinterpret_cast<addrinfo*>(block);
  auto* sin = reinterpret_cast<sockaddr_in*>(block + sizeof(addrinfo));
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ai->ai_family = AF_INET;
  ai->ai_socktype = hints != nullptr ? hints->ai_socktype : SOCK_STREAM;
  ai->ai_addr = reinterpret_cast<sockaddr*>(sin);
  ai->ai_addrlen = sizeof(sockaddr_in);
  *res = ai;
  return 0;
}

extern "C" void freeaddrinfo(addrinfo* ai) { std::free(ai); }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = baton::parse_listen_spec(text);
  if (!spec) return 0;
  const baton::Address& a = spec->address;
  if (a.length == 0 || a.length > sizeof(a.storage)) std::abort();
  std::string printed = a.to_string();
  (void)a.unix_path();
  auto again = baton::parse_address(printed);
  if (!again) std::abort();
  if (again->transport != a.transport || again->length != a.length ||
      std::memcmp(&again->storage, &a.storage, a.length) != 0) {
    std::abort();
  }
  return 0;
}

// Fuzzes how the client library reads the listeners it was given (src/lib/listen_env,
// src/common/listen_fds): SERVER_STARTER_PORT, and LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES,
// whoever started the process set them. The input is split at the first two NUL bytes into the
// three systemd variables (fewer parts: the rest unset). Every entry must name a descriptor from
// 3 on and a name systemd would allow (or none).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/listen_fds.h"
#include "lib/listen_env.h"

namespace {

void check(const std::vector<baton::ListenFdEntry>& entries) {
  for (const auto& e : entries) {
    if (e.fd < 3) std::abort();
    if (!e.name.empty() && !baton::valid_fd_name(e.name)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto starter = baton::parse_server_starter_port(text)) {
    for (const auto& e : *starter) {
      if (e.fd < 0) std::abort();
    }
  }
  std::vector<std::string> parts;
  size_t at = 0;
  while (parts.size() < 2) {
    const size_t nul = text.find('\0', at);
    if (nul == std::string_view::npos) break;
    parts.emplace_back(text.substr(at, nul - at));
    at = nul + 1;
  }
  parts.emplace_back(text.substr(at));
  const char* pid = parts.size() > 1 ? parts[0].c_str() : "4242";
  const char* fds = parts.size() > 1 ? parts[1].c_str() : parts[0].c_str();
  const char* names = parts.size() > 2 ? parts[2].c_str() : nullptr;
  if (auto entries = baton::parse_listen_fds_env(pid, fds, names, 4242)) check(*entries);
  return 0;
}

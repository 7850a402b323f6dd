#include "supervisor/generation_env.h"

#include <fmt/format.h>

#include "supervisor/readiness_probe.h"

namespace baton {

std::map<std::string, std::string> listen_env(const std::vector<OwnedListener>& listeners,
                                              bool with_probe_listener) {
  std::string names, starter;
  int fd = 3;
  for (const auto& l : listeners) {
    names += (names.empty() ? "" : ":") + l.name;
    if (l.address.transport != Transport::kUdp) {
      starter += fmt::format("{}{}={}", starter.empty() ? "" : ";", l.address.host_port(), fd);
    }
    ++fd;
  }
  if (with_probe_listener) names += std::string(names.empty() ? "" : ":") + kProbeListenerName;
  const size_t count = listeners.size() + (with_probe_listener ? 1 : 0);
  return {{"LISTEN_FDS", std::to_string(count)},
          {"LISTEN_FDNAMES", names},
          {"SERVER_STARTER_PORT", starter}};
}

}  // namespace baton

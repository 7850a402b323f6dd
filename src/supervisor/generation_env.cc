#include "supervisor/generation_env.h"

#include <pwd.h>

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

std::map<std::string, std::string> user_env(const std::string& name, const passwd* pw) {
  auto text = [](const char* s, const char* otherwise) {
    return s != nullptr && *s != '\0' ? std::string(s) : std::string(otherwise);
  };
  const std::string user = pw != nullptr ? text(pw->pw_name, name.c_str()) : name;
  return {{"HOME", pw != nullptr ? text(pw->pw_dir, "/") : "/"},
          {"USER", user},
          {"LOGNAME", user},
          {"SHELL", pw != nullptr ? text(pw->pw_shell, "/bin/sh") : "/bin/sh"}};
}

}  // namespace baton

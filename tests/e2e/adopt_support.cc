#include "adopt_support.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "common/listener.h"

namespace baton::test::adopt {

std::string launch_binary() { return BATON_ADOPT_LAUNCH_BIN; }
std::string testapp_binary() { return BATON_ADOPT_TESTAPP_BIN; }
std::string static_binary() { return BATON_ADOPT_STATIC_BIN; }

std::string app_path(const std::string& file) {
  return std::string(BATON_ADOPT_APPS_DIR) + "/" + file;
}

Runtime python_runtime() {
  Runtime r{"python", "", [](int port, const std::string& host) {
              return std::vector<std::string>{BATON_ADOPT_PYTHON3, app_path("server.py"),
                                              std::to_string(port), host};
            }};
  if (std::string(BATON_ADOPT_PYTHON3).empty()) r.missing = "python3 not found at configure time";
  return r;
}

Runtime node_runtime() {
  Runtime r{"node", "", [](int port, const std::string& host) {
              return std::vector<std::string>{BATON_ADOPT_NODE, app_path("server.js"),
                                              std::to_string(port), host};
            }};
  if (std::string(BATON_ADOPT_NODE).empty()) r.missing = "node not found at configure time";
  return r;
}

Runtime java_runtime() {
  // Ordinary start-up flags for a small service; nothing baton-specific.
  Runtime r{"java", "", [](int port, const std::string& host) {
              return std::vector<std::string>{BATON_ADOPT_JAVA,
                                              "-XX:TieredStopAtLevel=1",
                                              "-XX:+UseSerialGC",
                                              "-Xshare:auto",
                                              "-cp",
                                              BATON_ADOPT_JAVA_CLASSES,
                                              "AdoptServer",
                                              std::to_string(port),
                                              host};
            }};
  if (std::string(BATON_ADOPT_JAVA).empty()) r.missing = "java/javac not found at configure time";
  return r;
}

HeldListener hold_listener(const std::string& spec) {
  auto addr = parse_address(spec);
  if (!addr) throw std::runtime_error(addr.error().what());
  auto fd = bind_listener(*addr, BindOptions{});
  if (!fd) throw std::runtime_error(fd.error().what());
  auto bound = bound_address(fd->get(), addr->transport);
  if (!bound) throw std::runtime_error(bound.error().what());
  if (!set_cloexec(fd->get(), false)) throw std::runtime_error("clear CLOEXEC");
  return HeldListener{std::move(fd.value()), bound.value()};
}

ReservedPort::ReservedPort() {
  fd_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (!fd_ || ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    throw std::runtime_error(std::string("reserving a port: ") + std::strerror(errno));
  }
  port_ = ntohs(sa.sin_port);
}

Process start_generation(const std::vector<std::pair<const HeldListener*, std::string>>& held,
                         const std::vector<std::string>& argv, const std::string& notify_path,
                         int generation, const SpawnOptions& extra) {
  std::vector<std::string> full{launch_binary()};
  for (const auto& [listener, name] : held) {
    full.push_back("--fd");
    full.push_back(std::to_string(listener->fd.get()) + (name.empty() ? "" : "=" + name));
  }
  full.push_back("--preload");
  full.push_back(adopt_library());
  full.push_back("--");
  full.insert(full.end(), argv.begin(), argv.end());
  SpawnOptions options = extra;
  if (!notify_path.empty()) options.env["NOTIFY_SOCKET"] = notify_path;
  options.env["BATON_GENERATION"] = std::to_string(generation);
  return Process::spawn(full, options);
}

int listen_backlog(int port) {
  if (::access("/usr/bin/ss", X_OK) != 0 && ::access("/bin/ss", X_OK) != 0) return -1;
  auto r = run({::access("/usr/bin/ss", X_OK) == 0 ? "/usr/bin/ss" : "/bin/ss", "-Hltn",
                "sport = :" + std::to_string(port)});
  std::istringstream in(r.output);
  std::string state, recvq, sendq;
  if (!(in >> state >> recvq >> sendq)) return -1;
  return std::atoi(sendq.c_str());
}

}  // namespace baton::test::adopt

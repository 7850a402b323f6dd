#include "adopt_support.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>

#include "common/listener.h"
#include "common/syscall.h"

namespace baton::test::adopt {

std::string launch_binary() { return BATON_ADOPT_LAUNCH_BIN; }
std::string testapp_binary() { return BATON_ADOPT_TESTAPP_BIN; }
std::string static_binary() { return BATON_ADOPT_STATIC_BIN; }

namespace {
std::string app_path(const std::string& file) {
  return std::string(BATON_ADOPT_APPS_DIR) + "/" + file;
}
}  // namespace

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

namespace {

baton::NotifySocket bind_notify(const std::string& path) {
  auto s = baton::NotifySocket::bind(path);
  if (!s) throw std::runtime_error(s.error().what());
  return std::move(s.value());
}

// Whether `m` says `line`, read through the supervisor's parser: a line it does not read is a
// mistake in the test.
bool says(const baton::NotifyMessage& m, std::string_view line) {
  if (line == "READY=1") return m.ready;
  if (line == "STOPPING=1") return m.stopping;
  if (line == "BATON_ADOPT_LOADED=1") return m.adopt_loaded;
  for (auto [key, value] : {std::pair{std::string_view("STATUS="), &m.status},
                            std::pair{std::string_view("BATON_ADOPTED="), &m.adopted},
                            std::pair{std::string_view("BATON_ADOPT_PASSTHROUGH="),
                                      &m.adopt_passthrough},
                            std::pair{std::string_view("BATON_ADOPT_ERROR="), &m.adopt_error}}) {
    if (line.starts_with(key)) return value->has_value() && **value == line.substr(key.size());
  }
  ADD_FAILURE() << "the supervisor does not read the notify line '" << line << "'";
  return false;
}

}  // namespace

NotifyListener::NotifyListener(const std::string& path) : socket_(bind_notify(path)) {}

bool NotifyListener::receive(std::chrono::milliseconds timeout) {
  pollfd p{socket_.fd(), POLLIN, 0};
  if (retry_eintr(::poll, &p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  bool any = false;
  while (auto m = socket_.receive()) {
    history_.push_back(std::move(*m));
    any = true;
  }
  return any;
}

bool NotifyListener::received(pid_t pid, const std::string& line) const {
  for (const auto& m : history_) {
    if (m.pid == pid && says(m.message, line)) return true;
  }
  return false;
}

bool NotifyListener::wait_for(pid_t pid, const std::string& line,
                              std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (received(pid, line)) return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= std::chrono::milliseconds(0)) return false;
    receive(left);
  }
}

void NotifyListener::drain(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    receive(left);
  }
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

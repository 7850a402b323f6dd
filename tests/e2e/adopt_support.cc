#include "adopt_support.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>

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

int free_port() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return -1;
  socklen_t len = sizeof(sa);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

NotifySocket::NotifySocket(const std::string& path) : path_(path) {
  fd_ = Fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
  if (!fd_ || ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    throw std::runtime_error("bind notify socket " + path);
  }
  int one = 1;
  ::setsockopt(fd_.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
}

std::optional<NotifyMessage> NotifySocket::receive(std::chrono::milliseconds timeout) {
  pollfd p{fd_.get(), POLLIN, 0};
  if (retry_eintr(::poll, &p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  char buf[4096];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
  iovec iov{buf, sizeof(buf)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = retry_eintr(::recvmsg, fd_.get(), &msg, 0);
  if (n < 0) return std::nullopt;
  NotifyMessage m;
  m.text.assign(buf, static_cast<size_t>(n));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
      ucred cred;
      std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
      m.pid = cred.pid;
    }
  }
  return m;
}

namespace {
bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    if (l == line) return true;
  }
  return false;
}
}  // namespace

bool NotifySocket::received(pid_t pid, const std::string& line) const {
  for (const auto& m : history_) {
    if (m.pid == pid && has_line(m.text, line)) return true;
  }
  return false;
}

bool NotifySocket::wait_for(pid_t pid, const std::string& line, std::chrono::milliseconds timeout) {
  if (received(pid, line)) return true;
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto m = receive(left);
    if (!m) continue;
    history_.push_back(*m);
    if (m->pid == pid && has_line(m->text, line)) return true;
  }
  return false;
}

void NotifySocket::drain(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto m = receive(left);
    if (m) history_.push_back(*m);
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

LoadGenerator::LoadGenerator(Address target, std::string expect_prefix, int threads)
    : target_(std::move(target)), expect_(std::move(expect_prefix)) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

LoadGenerator::~LoadGenerator() { stop(); }

void LoadGenerator::stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void LoadGenerator::run() {
  while (!stop_) {
    auto r = http_get(target_, "/", std::chrono::seconds(10));
    std::string problem;
    if (!r) {
      problem = r.error().what();
    } else if (r->status != 200 || !r->body.starts_with(expect_)) {
      problem = "status " + std::to_string(r->status) + " body '" + r->body.substr(0, 40) + "'";
    }
    {
      std::lock_guard lock(mu_);
      if (problem.empty()) {
        ++ok_;
        std::string body = r->body;
        while (!body.empty() && body.back() == '\n') body.pop_back();
        bodies_.insert(body);
      } else {
        ++failed_;
        if (failures_.size() < 10) failures_.push_back(problem);
      }
    }
    // Pace a failing loop (a refused connect returns at once) so it does not starve the server.
    if (!problem.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::set<std::string> LoadGenerator::bodies() const {
  std::lock_guard lock(mu_);
  return bodies_;
}

std::vector<std::string> LoadGenerator::failures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

bool LoadGenerator::wait_for_successes(long n, std::chrono::milliseconds timeout) {
  long target = ok_ + n;
  return wait_until([&] { return ok_ >= target; }, timeout, std::chrono::milliseconds(2));
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

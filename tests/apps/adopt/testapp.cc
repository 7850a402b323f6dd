// baton-adopt-testapp: a small server that binds its own address, with every knob a real runtime
// turns around bind(), so tests can check each one under the adoption library.
//
//   baton-adopt-testapp --bind ADDR [--family inet|inet6] [--reuseaddr] [--reuseport]
//       [--v6only 0|1] [--nonblock] [--no-cloexec] [--backlog N] [--wait epoll|poll|blocking]
//       [--also-bind ADDR] [--shutdown-listener] [--hold] [--unlink-on-exit]
//
// ADDR is baton's address syntax (127.0.0.1:P, [::]:P, [::ffff:127.0.0.1]:P, unix:/path). After
// bind and listen it prints one line:
//   bound fd=N addr=A acceptconn=0|1 cloexec=0|1 nonblock=0|1 held_cloexec=0|1|-
// (held_cloexec: FD_CLOEXEC of fd 3, "-" when fd 3 is not open), then `also=A` for --also-bind.
// Before anything else it prints
//   start start_held_cloexec=0|1|- start_listen_env=N
// (fd 3's FD_CLOEXEC as main() found it; N: how many of LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES,
// BATON_ADOPT, BATON_ADOPT_READY its environment has).
// It answers every HTTP request with 200 "pid=PID". --hold waits for SIGUSR1 before its first
// wait/accept (a server still starting up). On SIGTERM it close()s its listener, prints "closed",
// and exits (--unlink-on-exit: also unlinks its unix socket path); --shutdown-listener calls
// shutdown(SHUT_RDWR) on the listener first, as some runtimes do to wake their accept threads.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/address.h"

namespace {

volatile sig_atomic_t g_term = 0;
volatile sig_atomic_t g_go = 0;

void on_term(int) { g_term = 1; }
void on_usr1(int) { g_go = 1; }

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "testapp: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

std::string local_address(int fd, baton::Transport transport) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return baton::address_from_sockaddr(transport, reinterpret_cast<sockaddr*>(&ss), len).to_string();
}

void serve(int conn) {
  timeval tv{2, 0};
  setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string request;
  char buf[2048];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
    ssize_t n = recv(conn, buf, sizeof(buf), 0);
    if (n <= 0) break;
    request.append(buf, static_cast<size_t>(n));
  }
  std::string body = "pid=" + std::to_string(getpid()) + "\n";
  std::string response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  (void)!send(conn, response.data(), response.size(), MSG_NOSIGNAL);
  close(conn);
}

}  // namespace

int main(int argc, char** argv) {
  {
    int held = fcntl(3, F_GETFD);
    int vars = 0;
    for (const char* v :
         {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "BATON_ADOPT", "BATON_ADOPT_READY"}) {
      vars += std::getenv(v) != nullptr ? 1 : 0;
    }
    std::printf("start start_held_cloexec=%s start_listen_env=%d\n",
                held < 0 ? "-" : ((held & FD_CLOEXEC) ? "1" : "0"), vars);
    std::fflush(stdout);
  }
  std::string bind_text, also_text, family_text, wait_mode = "poll";
  bool reuseaddr = false, reuseport = false, nonblock = false, cloexec = true, hold = false;
  bool shutdown_listener = false, unlink_on_exit = false;
  int v6only = -1, backlog = 16;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "testapp: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--bind")
      bind_text = next();
    else if (a == "--also-bind")
      also_text = next();
    else if (a == "--family")
      family_text = next();
    else if (a == "--reuseaddr")
      reuseaddr = true;
    else if (a == "--reuseport")
      reuseport = true;
    else if (a == "--v6only")
      v6only = std::atoi(next().c_str());
    else if (a == "--nonblock")
      nonblock = true;
    else if (a == "--no-cloexec")
      cloexec = false;
    else if (a == "--backlog")
      backlog = std::atoi(next().c_str());
    else if (a == "--wait")
      wait_mode = next();
    else if (a == "--hold")
      hold = true;
    else if (a == "--shutdown-listener")
      shutdown_listener = true;
    else if (a == "--unlink-on-exit")
      unlink_on_exit = true;
    else {
      std::fprintf(stderr, "testapp: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  auto addr = baton::parse_address(bind_text);
  if (!addr) {
    std::fprintf(stderr, "testapp: %s\n", addr.error().what().c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = on_term;  // no SA_RESTART: a blocked accept/poll returns EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, nullptr);

  int family = addr->family();
  if (family_text == "inet6") family = AF_INET6;
  if (family_text == "inet") family = AF_INET;
  int type = SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0) | (cloexec ? SOCK_CLOEXEC : 0);
  int fd = socket(family, type, 0);
  if (fd < 0) die("socket");
  int one = 1;
  if (reuseaddr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    die("SO_REUSEADDR");
  }
  if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    die("SO_REUSEPORT");
  }
  if (v6only >= 0 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) != 0) {
    die("IPV6_V6ONLY");
  }
  // A v4 address on an AF_INET6 socket is spelt v4-mapped, as the JDK does.
  sockaddr_storage want = addr->storage;
  socklen_t want_len = addr->length;
  if (family == AF_INET6 && addr->family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr->storage);
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = in->sin_port;
    in6.sin6_addr.s6_addr[10] = 0xff;
    in6.sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&in6.sin6_addr.s6_addr[12], &in->sin_addr, 4);
    std::memcpy(&want, &in6, sizeof(in6));
    want_len = sizeof(in6);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&want), want_len) != 0) die("bind " + bind_text);
  if (listen(fd, backlog) != 0) die("listen");

  int acceptconn = 0;
  socklen_t optlen = sizeof(acceptconn);
  getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acceptconn, &optlen);
  int fdflags = fcntl(fd, F_GETFD);
  int flflags = fcntl(fd, F_GETFL);
  int held = fcntl(3, F_GETFD);
  std::printf("bound fd=%d addr=%s acceptconn=%d cloexec=%d nonblock=%d held_cloexec=%s\n", fd,
              local_address(fd, addr->transport).c_str(), acceptconn,
              (fdflags & FD_CLOEXEC) ? 1 : 0, (flflags & O_NONBLOCK) ? 1 : 0,
              held < 0 ? "-" : ((held & FD_CLOEXEC) ? "1" : "0"));
  if (!also_text.empty()) {
    auto also = baton::parse_address(also_text);
    if (!also) return 2;
    // SO_REUSEADDR, as servers set it (and so the port a test reserves can be bound).
    int afd = socket(also->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (afd < 0 || setsockopt(afd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(afd, also->sockaddr_ptr(), also->length) != 0 || listen(afd, 4) != 0) {
      die("also-bind " + also_text);
    }
    std::printf("also=%s\n", local_address(afd, also->transport).c_str());
  }
  std::fflush(stdout);

  while (hold && !g_go && !g_term) pause();

  int ep = -1;
  if (wait_mode == "epoll") {
    ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  }
  while (!g_term) {
    if (wait_mode == "epoll") {
      epoll_event ev{};
      int n = epoll_wait(ep, &ev, 1, -1);
      if (n <= 0 || ev.data.fd != fd) continue;
    } else if (wait_mode == "poll") {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, -1) <= 0) continue;
    }
    int conn = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;  // EAGAIN: the other generation took it; EINTR: look at g_term
    serve(conn);
  }
  if (shutdown_listener && shutdown(fd, SHUT_RDWR) != 0) die("shutdown");
  close(fd);
  // As libuv does on close: remove the socket file (the adoption library keeps baton's).
  if (unlink_on_exit && !addr->unix_path().empty()) unlink(addr->unix_path().c_str());
  std::printf("closed\n");
  std::fflush(stdout);
  return 0;
}

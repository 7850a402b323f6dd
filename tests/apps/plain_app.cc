// baton-plainapp: a server written with no thought of graceful shutdown, as most are.
//
// It takes its listeners from LISTEN_FDS (fd 3 onward, checked against LISTEN_PID), speaks
// HTTP/1.1 with keep-alive (one thread per connection, blocking reads), never speaks sd_notify and
// installs no signal handler: SIGTERM kills it on the spot, with whatever it holds. baton has to
// drain it from outside.
//
//   --init-ms N   sleep N ms before serving (a slow start)
//   --graceful    the opposite, as a well-written server is: on SIGTERM it stops accepting,
//                 closes its idle keep-alive connections, finishes the requests in flight and
//                 exits 0
//
// Routes: /            200 "generation G pid P"
//         /slow?ms=N   the same after N ms (logged as "plainapp: pid P serving /slow?ms=N")
//         /healthz     200
// A request body (Content-Length) is read and ignored, so POSTs work.
// A request with "Connection: close" gets its answer and the connection is closed; otherwise the
// connection stays open for the next request until the client leaves (read returns 0).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "app_support.h"

namespace {

using namespace baton::testapps;

std::atomic<bool> g_graceful{false};
std::atomic<bool> g_term{false};
std::atomic<int> g_connections{0};

std::string lower(const std::string& text) {
  std::string out;
  for (char c : text) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

bool has_close_header(const std::string& head) {
  return lower(head).find("\r\nconnection: close") != std::string::npos;
}

// Reads and drops the request's body, if it has one; false when the client left first.
bool skip_body(int conn, const std::string& head, std::string& pending) {
  const std::string l = lower(head);
  const auto at = l.find("\r\ncontent-length:");
  if (at == std::string::npos) return true;
  size_t left = std::strtoul(l.c_str() + at + 17, nullptr, 10);
  const size_t from_pending = std::min(left, pending.size());
  pending.erase(0, from_pending);
  left -= from_pending;
  char chunk[4096];
  while (left > 0) {
    const ssize_t n = ::recv(conn, chunk, std::min(sizeof(chunk), left), 0);
    if (n <= 0) return false;
    left -= static_cast<size_t>(n);
  }
  return true;
}

// Waits for the next request on an idle connection. A graceful server closes its idle
// connections once told to stop: false then.
bool await_request(int conn) {
  for (;;) {
    pollfd p{conn, POLLIN, 0};
    const int r = ::poll(&p, 1, g_graceful ? 20 : -1);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
    if (g_term) return false;
  }
}

void serve(int conn) {
  std::string pending;  // what follows a request is the next request
  for (;;) {
    if (pending.empty() && !await_request(conn)) {
      ::close(conn);
      --g_connections;
      return;
    }
    const auto read = read_request_head(conn, pending);
    if (!read || !skip_body(conn, *read, pending)) {  // the client left (or sent garbage)
      ::close(conn);
      --g_connections;
      return;
    }
    const std::string& head = *read;
    const std::string path = request_path(head);
    if (path.starts_with("/slow?ms=")) {
      std::fprintf(stderr, "plainapp: pid %d serving %s\n", ::getpid(), path.c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(path.c_str() + 9)));
    }
    const bool close_after = has_close_header(head);
    const std::string body =
        "generation " + generation("0") + " pid " + std::to_string(::getpid()) + "\n";
    const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                             (close_after ? "\r\nConnection: close" : "") +
                             "\r\nX-Pid: " + std::to_string(::getpid()) + "\r\n\r\n" + body;
    if (::send(conn, resp.data(), resp.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(resp.size()) ||
        close_after) {
      ::close(conn);
      --g_connections;
      return;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int init_ms = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--init-ms" && i + 1 < argc) {
      init_ms = std::atoi(argv[++i]);
    } else if (a == "--graceful") {
      g_graceful = true;
    } else {
      std::fprintf(stderr, "plainapp: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  const auto listeners = inherited_listeners();
  if (!listeners) {
    std::fprintf(stderr, "plainapp: no listeners for me (LISTEN_PID=%s)\n",
                 std::getenv("LISTEN_PID") ?: "unset");
    return 3;
  }
  if (!make_nonblocking(*listeners)) {
    std::fprintf(stderr, "plainapp: O_NONBLOCK on a listener: %s\n", std::strerror(errno));
    return 3;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(init_ms));
  std::vector<pollfd> fds;
  for (const auto& l : *listeners) fds.push_back({l.fd, POLLIN, 0});
  std::fprintf(stderr, "plainapp: pid %d serving %zu listeners\n", ::getpid(), fds.size());
  if (g_graceful) {
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_term = true; };
    ::sigaction(SIGTERM, &sa, nullptr);
  }
  while (!g_term) {
    if (::poll(fds.data(), fds.size(), g_graceful ? 50 : -1) <= 0) continue;
    for (auto& p : fds) {
      if ((p.revents & POLLIN) == 0) continue;
      // The listener is non-blocking (make_nonblocking): EAGAIN means another process sharing
      // the socket took the connection first. The accepted connection is blocking (Linux does
      // not pass O_NONBLOCK on), as serve() wants.
      int conn = ::accept4(p.fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      ++g_connections;
      std::thread(serve, conn).detach();
    }
  }
  // Graceful: no more accepting; the idle connections close themselves, the busy ones finish.
  while (g_connections > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::fprintf(stderr, "plainapp: pid %d drained, exiting\n", ::getpid());
  return 0;
}

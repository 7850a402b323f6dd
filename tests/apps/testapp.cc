// baton-testapp: a small HTTP server for supervisor tests that misbehaves on demand.
//
// It speaks the socket-activation protocol by hand, on purpose independently of libbaton, so the
// supervisor is tested against a second implementation of LISTEN_FDS and sd_notify.
//
//   --init-ms N          sleep N ms before serving (a slow start)
//   --exit-at-start N    exit with status N after the init sleep, before serving
//   --never-ready        serve, but never send READY=1 (and answer /healthz 503)
//   --ignore-sigterm     keep serving after SIGTERM (to be killed at the drain deadline)
//   --fd-report FILE     write the numbers of every open fd, one per line, at start
//   --no-notify          serve and answer /healthz 200, but never send READY=1
//
// Routes: /            200 "generation G pid P"
//         /slow?ms=N   the same after N ms (the connection is served on its own thread)
//         /healthz     200 once initialised (503 with --never-ready)
// On SIGTERM: stops accepting, finishes in-flight requests, exits 0.
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "app_support.h"

namespace {

using namespace baton::testapps;

std::atomic<bool> g_stop{false};
std::atomic<int> g_inflight{0};

void on_term(int) { g_stop = true; }

void serve(int conn, bool healthy) {
  std::string pending;
  const auto head = read_request_head(conn, pending);
  if (!head) {
    ::close(conn);
    --g_inflight;
    return;
  }
  const std::string path = request_path(*head);
  int code = 200;
  std::string body = "generation " + generation("0") + " pid " + std::to_string(::getpid()) + "\n";
  if (path.starts_with("/slow?ms=")) {
    std::fprintf(stderr, "testapp: pid %d serving %s\n", ::getpid(), path.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(path.c_str() + 9)));
  } else if (path.starts_with("/until?file=")) {
    // Held until the test creates the file: a request as long as the test needs, whatever the
    // machine's speed (bounded: 120 s).
    std::fprintf(stderr, "testapp: pid %d serving %s\n", ::getpid(), path.c_str());
    const std::string file = path.substr(12);
    for (int i = 0; i < 12000 && ::access(file.c_str(), F_OK) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } else if (path == "/healthz") {
    code = healthy ? 200 : 503;
  }
  std::string resp = "HTTP/1.1 " + std::to_string(code) + (code == 200 ? " OK" : " Unavailable") +
                     "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\nX-Pid: " + std::to_string(::getpid()) + "\r\n\r\n" +
                     body;
  ::send(conn, resp.data(), resp.size(), MSG_NOSIGNAL);
  ::close(conn);
  --g_inflight;
}

}  // namespace

int main(int argc, char** argv) {
  int init_ms = 0, exit_at_start = -1;
  bool never_ready = false, ignore_term = false, no_notify = false;
  const char* fd_report = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--init-ms" && i + 1 < argc)
      init_ms = std::atoi(argv[++i]);
    else if (a == "--exit-at-start" && i + 1 < argc)
      exit_at_start = std::atoi(argv[++i]);
    else if (a == "--never-ready")
      never_ready = true;
    else if (a == "--ignore-sigterm")
      ignore_term = true;
    else if (a == "--no-notify")
      no_notify = true;
    else if (a == "--fd-report" && i + 1 < argc)
      fd_report = argv[++i];
    else {
      std::fprintf(stderr, "testapp: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (fd_report != nullptr) {
    FILE* f = std::fopen(fd_report, "w");
    DIR* d = ::opendir("/proc/self/fd");
    const int own = ::dirfd(d);
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.' || std::atoi(e->d_name) == own) continue;
      if (f != nullptr && std::atoi(e->d_name) != ::fileno(f)) std::fprintf(f, "%s\n", e->d_name);
    }
    ::closedir(d);
    std::fclose(f);
  }
  std::fprintf(stderr, "testapp: pid %d generation %s starting\n", ::getpid(),
               std::getenv("BATON_GENERATION") ?: "?");
  struct sigaction sa {};
  sa.sa_handler = ignore_term ? SIG_IGN : on_term;
  // SA_RESTART: SIGTERM may land on a thread blocked in recv() of a request; without it the recv
  // fails with EINTR and the request is closed unanswered, a failure the test did not ask for.
  // (poll() in the accept loop still returns EINTR, which is what ends that loop.)
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(init_ms));
  if (exit_at_start >= 0) {
    std::fprintf(stderr, "testapp: failing at start with status %d\n", exit_at_start);
    return exit_at_start;
  }
  const auto listeners = inherited_listeners();
  if (!listeners) {
    std::fprintf(stderr, "testapp: no listeners for me (LISTEN_PID=%s)\n",
                 std::getenv("LISTEN_PID") ?: "unset");
    return 3;
  }
  if (!make_nonblocking(*listeners)) {
    std::fprintf(stderr, "testapp: O_NONBLOCK on a listener: %s\n", std::strerror(errno));
    return 3;
  }
  std::vector<pollfd> fds;
  for (const auto& l : *listeners) fds.push_back({l.fd, POLLIN, 0});
  if (!never_ready && !no_notify) notify("READY=1\nSTATUS=serving");
  std::fprintf(stderr, "testapp: pid %d serving %zu listeners\n", ::getpid(), fds.size());
  while (!g_stop) {
    if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
    for (auto& p : fds) {
      if ((p.revents & POLLIN) == 0) continue;
      // The listener is non-blocking (make_nonblocking): EAGAIN means another generation took
      // the connection first. The accepted connection is blocking (Linux does not pass
      // O_NONBLOCK on), as serve() wants.
      int conn = ::accept4(p.fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      ++g_inflight;
      std::thread(serve, conn, !never_ready).detach();
    }
  }
  for (auto& p : fds) ::close(p.fd);  // only our copies: the supervisor keeps the sockets
  notify("STOPPING=1");
  while (g_inflight > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::fprintf(stderr, "testapp: pid %d drained\n", ::getpid());
  return 0;
}

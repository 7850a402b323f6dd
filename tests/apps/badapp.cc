// baton-badapp: the badly behaved servers of issue 9, given their sockets through LISTEN_FDS.
//
//   --accept-then-crash MS  accept every connection at once and answer none of them; exit 1 after
//                           MS (a broken new version that accepts before it is ready)
//   --die-on-sigterm        serve, with SIGTERM left at its default action (killed mid-request)
//   --status-at-start       send STATUS=starting at once: an app that speaks sd_notify
//   --ready-after MS        send READY=1 MS after start (default: never); it accepts from the start
//
// Routes (when serving): any path -> 200 "generation G pid P"; /slow?ms=N answers after N ms.
// The listener named "baton-probe" (the http readiness probe) is served but not counted. Every
// accept on another listener is counted; the count is printed at each accept and at exit:
//   badapp: generation G accepted N public connections
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<int> g_public{0};
const char* g_generation = "?";

void notify(const char* text) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr) return;
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
  ::sendto(fd, text, std::strlen(text), 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::close(fd);
}

void report() {
  std::fprintf(stderr, "badapp: generation %s accepted %d public connections\n", g_generation,
               g_public.load());
}

void serve(int conn) {
  char buf[4096];
  std::string req;
  while (req.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = ::recv(conn, buf, sizeof(buf), 0);
    if (n <= 0) {
      ::close(conn);
      return;
    }
    req.append(buf, static_cast<size_t>(n));
  }
  if (auto at = req.find("/slow?ms="); at != std::string::npos && at < req.find("\r\n")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(req.c_str() + at + 9)));
  }
  std::string body =
      std::string("generation ") + g_generation + " pid " + std::to_string(::getpid()) + "\n";
  std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n" + body;
  ::send(conn, resp.data(), resp.size(), MSG_NOSIGNAL);
  ::close(conn);
}

}  // namespace

int main(int argc, char** argv) {
  int crash_ms = -1, ready_ms = -1;
  bool die_on_term = false, status_at_start = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--accept-then-crash" && i + 1 < argc)
      crash_ms = std::atoi(argv[++i]);
    else if (a == "--die-on-sigterm")
      die_on_term = true;
    else if (a == "--status-at-start")
      status_at_start = true;
    else if (a == "--ready-after" && i + 1 < argc)
      ready_ms = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "badapp: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  g_generation = std::getenv("BATON_GENERATION") ?: "?";
  const char* fds_env = std::getenv("LISTEN_FDS");
  const char* pid_env = std::getenv("LISTEN_PID");
  if (fds_env == nullptr || pid_env == nullptr || std::atoi(pid_env) != ::getpid()) {
    std::fprintf(stderr, "badapp: no listeners for me\n");
    return 3;
  }
  std::vector<bool> is_probe;
  std::string names = std::getenv("LISTEN_FDNAMES") ?: "";
  for (int i = 0; i < std::atoi(fds_env); ++i) {
    std::string name = names.substr(0, names.find(':'));
    names = names.find(':') == std::string::npos ? "" : names.substr(names.find(':') + 1);
    is_probe.push_back(name == "baton-probe");
  }
  if (!die_on_term) {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;  // only --die-on-sigterm dies of it; the others are killed
    ::sigaction(SIGTERM, &ign, nullptr);
  }
  if (status_at_start) notify("STATUS=starting");
  const auto start = std::chrono::steady_clock::now();
  auto elapsed_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start)
        .count();
  };
  bool ready_sent = false;
  std::vector<int> held;  // --accept-then-crash: accepted and never answered
  std::vector<pollfd> fds;
  for (size_t i = 0; i < is_probe.size(); ++i) fds.push_back({static_cast<int>(3 + i), POLLIN, 0});
  std::fprintf(stderr, "badapp: pid %d generation %s accepting\n", ::getpid(), g_generation);
  for (;;) {
    if (crash_ms >= 0 && elapsed_ms() >= crash_ms) {
      std::fprintf(stderr, "badapp: crashing\n");
      report();
      return 1;
    }
    if (ready_ms >= 0 && !ready_sent && elapsed_ms() >= ready_ms) {
      notify("READY=1\nSTATUS=serving");
      ready_sent = true;
    }
    if (::poll(fds.data(), fds.size(), 5) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      int conn = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      if (!is_probe[i]) {
        ++g_public;
        report();
      }
      if (crash_ms >= 0) {
        held.push_back(conn);
      } else {
        std::thread(serve, conn).detach();
      }
    }
  }
}

// baton-badapp: the badly behaved servers of issue 9, given their sockets through LISTEN_FDS.
//
//   --accept-then-crash MS  accept every connection at once and answer none of them; exit 1 after
//                           MS (a broken new version that accepts before it is ready)
//   --die-on-sigterm        serve, with SIGTERM left at its default action (killed mid-request)
//   --status-at-start       send STATUS=starting at once: an app that speaks sd_notify
//   --ready-after MS        send READY=1 MS after start (default: never); it accepts from the start
//   --stop-accepting-after MS  stop accepting (the sockets stay open) MS after start
//   --exit-after MS         exit 0 MS after start (with the above: a version that goes bad later)
//   --accept-and-close      accept every connection and close it at once, answering nothing
//   --close-listeners-after MS  close every listener it was given MS after start, and live on
//
// Routes (when serving): any path -> 200 "generation G pid P"; /slow?ms=N answers after N ms.
// The listener named "baton-probe" (the http readiness probe) is served but not counted. Every
// accept on another listener is counted; the count is printed at each accept and at exit:
//   badapp: generation G accepted N public connections
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
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

std::atomic<int> g_public{0};
std::string g_generation = "?";

void report() {
  std::fprintf(stderr, "badapp: generation %s accepted %d public connections\n",
               g_generation.c_str(), g_public.load());
}

void serve(int conn) {
  std::string pending;
  const auto head = read_request_head(conn, pending);
  if (!head) {
    ::close(conn);
    return;
  }
  if (const std::string path = request_path(*head); path.starts_with("/slow?ms=")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(path.c_str() + 9)));
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
  int crash_ms = -1, ready_ms = -1, stop_accepting_ms = -1, exit_ms = -1, close_ms = -1;
  bool die_on_term = false, status_at_start = false, accept_and_close = false;
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
    else if (a == "--stop-accepting-after" && i + 1 < argc)
      stop_accepting_ms = std::atoi(argv[++i]);
    else if (a == "--exit-after" && i + 1 < argc)
      exit_ms = std::atoi(argv[++i]);
    else if (a == "--accept-and-close")
      accept_and_close = true;
    else if (a == "--close-listeners-after" && i + 1 < argc)
      close_ms = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "badapp: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  g_generation = generation("?");
  const auto listeners = inherited_listeners();
  if (!listeners) {
    std::fprintf(stderr, "badapp: no listeners for me\n");
    return 3;
  }
  // Its misbehaviours are timed (crash, exit, stop accepting, READY=1), checked between two
  // polls: a blocking accept() that lost its connection to another generation sharing the socket
  // would wait for the next one and put them off, a hang nobody asked for (make_nonblocking).
  if (!make_nonblocking(*listeners)) {
    std::fprintf(stderr, "badapp: O_NONBLOCK on a listener: %s\n", std::strerror(errno));
    return 3;
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
  for (const auto& l : *listeners) fds.push_back({l.fd, POLLIN, 0});
  std::fprintf(stderr, "badapp: pid %d generation %s accepting\n", ::getpid(),
               g_generation.c_str());
  for (;;) {
    if (crash_ms >= 0 && elapsed_ms() >= crash_ms) {
      std::fprintf(stderr, "badapp: crashing\n");
      report();
      return 1;
    }
    if (exit_ms >= 0 && elapsed_ms() >= exit_ms) {
      std::fprintf(stderr, "badapp: generation %s exiting\n", g_generation.c_str());
      report();
      return 0;
    }
    if (close_ms >= 0 && elapsed_ms() >= close_ms) {
      if (!fds.empty()) {
        for (const auto& l : *listeners) ::close(l.fd);
        std::fprintf(stderr, "badapp: generation %s closed its listeners\n", g_generation.c_str());
      }
      fds.clear();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (stop_accepting_ms >= 0 && elapsed_ms() >= stop_accepting_ms) {
      if (!fds.empty())
        std::fprintf(stderr, "badapp: generation %s stops accepting\n", g_generation.c_str());
      fds.clear();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (ready_ms >= 0 && !ready_sent && elapsed_ms() >= ready_ms) {
      notify("READY=1\nSTATUS=serving");
      ready_sent = true;
    }
    if (::poll(fds.data(), fds.size(), 5) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      int conn = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;  // EAGAIN: another generation took it
      if ((*listeners)[i].name != "baton-probe") {
        ++g_public;
        report();
      }
      if (accept_and_close) {
        ::close(conn);
      } else if (crash_ms >= 0) {
        held.push_back(conn);
      } else {
        std::thread(serve, conn).detach();
      }
    }
  }
}

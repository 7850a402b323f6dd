// handover_app: a second, different build of a server on libbaton, for the handover e2e tests.
//
//   handover_app MODE HANDOVER_PATH LISTEN_ADDRESS
// MODE:
//   serve        take over (or bind), ready, serve HTTP with the example's worker, drain on
//                SIGTERM or handover: a different binary speaking the same protocol.
//   die          take the listeners, then exit 3 before ready (a new build that fails to start).
//   crash        take the listeners, then SIGKILL itself before ready.
//   legacy       an "older build" without the protocol: binds LISTEN_ADDRESS itself and puts a
//                stream socket (not seqpacket) at HANDOVER_PATH; serves HTTP; SIGTERM drains.
//   legacy-reuse as legacy, with SO_REUSEPORT on its TCP socket.
//   squatter     an unrelated process: a stream socket at HANDOVER_PATH and no port at all
//                (LISTEN_ADDRESS is ignored); prints "squatter: got SIGTERM" and exits 9 on
//                SIGTERM.
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "baton/baton.h"
#include "common/address.h"
#include "common/listener.h"
#include "common/unix_socket.h"
#include "http_worker.h"

namespace {

int g_legacy_drain_fd = -1;

void legacy_on_term(int) {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(g_legacy_drain_fd, &one, sizeof(one));
}

// A unix stream socket listening at `path`; invalid on failure.
baton::Fd listen_unix(const std::string& path) {
  sockaddr_un sun{};
  auto length = baton::fill_unix_address(path, sun);
  if (!length) return baton::Fd();
  baton::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), *length) != 0 ||
      ::listen(fd.get(), 4) != 0) {
    return baton::Fd();
  }
  return fd;
}

int serve(const std::vector<int>& fds, int drain_fd) {
  example::WorkerConfig config{fds, drain_fd, "77"};
  return example::run_worker(config, {});
}

int legacy(const std::string& path, const std::string& address, bool reuse_port) {
  auto addr = baton::parse_address(address);
  if (!addr) return 20;
  baton::BindOptions o;
  o.reuse_port = reuse_port;
  auto l = baton::bind_listener(*addr, o);
  if (!l) {
    std::fprintf(stderr, "legacy: %s\n", l.error().what().c_str());
    return 21;
  }
  (void)baton::set_nonblocking(l->get(), true);
  ::unlink(path.c_str());
  baton::Fd unix_sock = listen_unix(path);
  if (!unix_sock) return 22;
  baton::Fd drain(::eventfd(0, EFD_CLOEXEC));
  g_legacy_drain_fd = drain.get();
  struct sigaction sa {};
  sa.sa_handler = legacy_on_term;
  ::sigaction(SIGTERM, &sa, nullptr);
  auto bound = baton::bound_address(l->get(), addr->transport);
  std::fprintf(stderr, "legacy: pid %d ready on %s\n", ::getpid(), bound->to_string().c_str());
  int rc = serve({l->get()}, drain.get());
  ::unlink(path.c_str());
  std::fprintf(stderr, "legacy: drained\n");
  return rc;
}

volatile sig_atomic_t g_squatter_term = 0;

void squatter_on_term(int) { g_squatter_term = 1; }

int squatter(const std::string& path) {
  baton::Fd unix_sock = listen_unix(path);
  if (!unix_sock) return 22;
  struct sigaction sa {};
  sa.sa_handler = squatter_on_term;
  ::sigaction(SIGTERM, &sa, nullptr);
  std::fprintf(stderr, "squatter: pid %d listening at %s\n", ::getpid(), path.c_str());
  while (g_squatter_term == 0) ::pause();
  std::fprintf(stderr, "squatter: got SIGTERM\n");
  return 9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: handover_app MODE HANDOVER_PATH LISTEN_ADDRESS\n");
    return 2;
  }
  const std::string mode = argv[1], path = argv[2], address = argv[3];
  if (mode == "legacy" || mode == "legacy-reuse") return legacy(path, address, mode != "legacy");
  if (mode == "squatter") return squatter(path);

  baton::InstanceOptions options;
  options.handover_path = path;
  auto inst = baton::Instance::create(options);
  if (!inst) {
    std::fprintf(stderr, "handover_app: %s\n", inst.error().what().c_str());
    return 1;
  }
  auto all = (*inst)->listeners();
  if (!all) {
    std::fprintf(stderr, "handover_app: %s\n", all.error().what().c_str());
    return 1;
  }
  std::vector<int> fds;
  for (const auto& l : *all) fds.push_back(l.fd);
  if (fds.empty()) {
    auto l = (*inst)->listen("http", address);
    if (!l) {
      std::fprintf(stderr, "handover_app: %s\n", l.error().what().c_str());
      return 1;
    }
    fds.push_back(l->fd);
  }
  if (mode == "die") {
    std::fprintf(stderr, "handover_app: dying before ready\n");
    return 3;
  }
  if (mode == "crash") ::raise(SIGKILL);
  if (mode != "serve") return 2;

  std::thread worker([&] { serve(fds, (*inst)->drain_fd()); });
  if (auto s = (*inst)->ready(); !s) {
    std::fprintf(stderr, "handover_app: %s\n", s.error().what().c_str());
    (*inst)->request_drain();
  } else {
    std::fprintf(stderr, "handover_app: pid %d ready\n", ::getpid());
  }
  worker.join();  // returns once drained; the worker left the listeners first
  (void)(*inst)->close_listeners();
  std::fprintf(stderr, "handover_app: drained\n");
  return 0;
}

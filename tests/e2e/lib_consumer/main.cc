// A tiny server on the installed libbaton: bind or inherit, ready, wait for drain.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include <baton/baton.h>

int main() {
  auto inst = baton::Instance::create();
  if (!inst) {
    std::fprintf(stderr, "%s\n", inst.error().what().c_str());
    return 1;
  }
  auto l = (*inst)->listen("http", "127.0.0.1:0");
  if (!l) {
    std::fprintf(stderr, "%s\n", l.error().what().c_str());
    return 1;
  }
  if (auto s = (*inst)->ready(); !s) return 1;
  std::printf("consumer ready on %s\n", l->address.c_str());
  std::fflush(stdout);
  (*inst)->request_drain();
  pollfd p{(*inst)->drain_fd(), POLLIN, 0};
  if (::poll(&p, 1, 1000) != 1) return 2;
  (void)(*inst)->close_listeners();
  std::printf("consumer drained\n");
  return 0;
}

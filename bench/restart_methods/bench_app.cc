// baton-bench-app: "the app" of the restart-method benchmark, for the methods that are not baton's.
//
// It serves HTTP with exactly the request loop of baton-example-http (examples/http_worker.cc:
// same routes, keep-alive, drain with grace), so every method in the benchmark restarts the same
// server logic; only the way the listening socket is obtained differs. It does not use libbaton:
// it is also the "unmodified app" that `baton run --adopt` runs, binding its own port.
//
//   --mode plain      bind --listen (SO_REUSEADDR), fail if in use. Method 1 (kill, then start)
//                     and baton adoption.
//   --mode retry      after initialising, SIGTERM --replace-pid, then bind, retrying every
//                     --bind-retry-ms while the address is in use (the hand-made method 2).
//   --mode reuseport  after initialising, bind beside the running instance with SO_REUSEPORT,
//                     start accepting, then SIGTERM --replace-pid if given (method 3; the first
//                     instance has nobody to replace but must set SO_REUSEPORT too).
//
// Lifecycle as the example: --init-seconds of simulated start-up (SIGTERM meanwhile exits 0),
// bind, workers accepting, then the line "example: generation 0 pid P ready on ADDR" on stderr;
// SIGTERM starts the drain ("... draining"), exit 0 when every connection is done ("... drained"),
// 1 at --drain-timeout. The bench driver watches those lines.
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/address.h"
#include "common/listener.h"
#include "http_worker.h"

namespace {

using Clock = std::chrono::steady_clock;

int g_drain_fd = -1;  // eventfd; written by the SIGTERM handler

void on_term(int) {
  const uint64_t one = 1;
  int saved = errno;
  (void)!::write(g_drain_fd, &one, sizeof one);
  errno = saved;
}

// True if `fd` became readable within `ms` milliseconds.
bool wait_readable(int fd, long ms) {
  const auto end = Clock::now() + std::chrono::milliseconds(ms);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) > 0) return true;
  }
}

struct Progress {
  std::mutex mu;
  std::condition_variable cv;
  int accepting = 0, detached = 0, finished = 0;
};

void bump(Progress* p, int Progress::*counter) {
  std::lock_guard lock(p->mu);
  ++(p->*counter);
  p->cv.notify_all();
}
void on_accepting(void* arg) { bump(static_cast<Progress*>(arg), &Progress::accepting); }
void on_detached(void* arg) { bump(static_cast<Progress*>(arg), &Progress::detached); }

int fail(const std::string& message) {
  std::fprintf(stderr, "baton-bench-app: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:8080", mode = "plain";
  double init_seconds = 1, drain_timeout = 30, bind_timeout = 10;
  int threads = 2, bind_retry_ms = 150;
  long replace_pid = 0;
  CLI::App app{"HTTP app for the restart-method benchmark (bench/restart_methods)"};
  app.add_option("--listen", listen, "address to bind");
  app.add_option("--mode", mode, "how to get the socket")
      ->check(CLI::IsMember({"plain", "retry", "reuseport"}));
  app.add_option("--init-seconds", init_seconds, "simulated start-up")
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--threads", threads, "worker threads")->check(CLI::Range(1, 64));
  app.add_option("--replace-pid", replace_pid, "running instance to stop (retry, reuseport)")
      ->check(CLI::Range(1L, 1L << 22));
  app.add_option("--bind-retry-ms", bind_retry_ms, "retry interval while in use (retry)")
      ->check(CLI::Range(1, 10000));
  app.add_option("--bind-timeout", bind_timeout, "give up binding after S seconds")
      ->check(CLI::Range(0.1, 600.0));
  app.add_option("--drain-timeout", drain_timeout, "seconds a drain may take")
      ->check(CLI::Range(0.001, 3600.0));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "baton-bench-app: %s\n", e.what());
    return 2;
  }
  auto address = baton::parse_address(listen);
  if (!address) return fail(address.error().what());
  if (mode == "retry" && replace_pid == 0) return fail("--mode retry needs --replace-pid");

  const long pid = static_cast<long>(::getpid());
  g_drain_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g_drain_fd < 0) return fail(std::string("eventfd: ") + std::strerror(errno));
  struct sigaction sa {};
  sa.sa_handler = on_term;
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  if (wait_readable(g_drain_fd, static_cast<long>(init_seconds * 1000))) {
    std::fprintf(stderr, "example: generation 0 pid %ld drained before ready\n", pid);
    return 0;
  }

  baton::BindOptions bind_options;
  bind_options.reuse_port = mode == "reuseport";
  if (mode == "retry") ::kill(static_cast<pid_t>(replace_pid), SIGTERM);
  baton::Result<baton::Fd> bound = baton::bind_listener(*address, bind_options);
  int attempts = 1;
  const auto bind_deadline = Clock::now() + std::chrono::milliseconds(long(bind_timeout * 1000));
  while (mode == "retry" && !bound && bound.error().code() == EADDRINUSE &&
         Clock::now() < bind_deadline) {
    if (wait_readable(g_drain_fd, bind_retry_ms)) return 0;
    bound = baton::bind_listener(*address, bind_options);
    ++attempts;
  }
  if (!bound) return fail(bound.error().what());
  baton::Fd listener = std::move(*bound);
  if (auto s = baton::set_nonblocking(listener.get(), true); !s) return fail(s.error().what());

  Progress progress;
  example::WorkerConfig config{{listener.get()}, g_drain_fd, "0"};
  example::WorkerHooks hooks{on_accepting, on_detached, &progress};
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&] {
      if (int err = example::run_worker(config, hooks); err != 0) {
        std::fprintf(stderr, "baton-bench-app: worker: %s\n", std::strerror(err));
        on_accepting(&progress);
        on_detached(&progress);
      }
      bump(&progress, &Progress::finished);
    });
  }
  {
    std::unique_lock lock(progress.mu);
    progress.cv.wait(lock, [&] { return progress.accepting == threads; });
  }
  if (mode == "reuseport" && replace_pid != 0) ::kill(static_cast<pid_t>(replace_pid), SIGTERM);
  std::fprintf(stderr, "example: generation 0 pid %ld ready on %s (bind attempts %d)\n", pid,
               listen.c_str(), attempts);

  while (!wait_readable(g_drain_fd, 3600 * 1000)) {
  }
  std::fprintf(stderr, "example: generation 0 pid %ld draining\n", pid);
  const auto deadline = Clock::now() + std::chrono::milliseconds(long(drain_timeout * 1000));
  bool in_time;
  {
    std::unique_lock lock(progress.mu);
    in_time = progress.cv.wait_until(lock, deadline, [&] { return progress.detached == threads; });
  }
  listener.reset();
  if (in_time) {
    std::unique_lock lock(progress.mu);
    in_time = progress.cv.wait_until(lock, deadline, [&] { return progress.finished == threads; });
  }
  if (!in_time) {
    std::fprintf(stderr, "example: generation 0 pid %ld drain deadline passed\n", pid);
    std::fflush(stderr);
    std::_Exit(1);
  }
  for (auto& w : workers) w.join();
  std::fprintf(stderr, "example: generation 0 pid %ld drained\n", pid);
  return 0;
}

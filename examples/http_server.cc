// baton-example-http: a small, fast HTTP/1.1 server built on the baton client library.
//
// It runs alone (binding --listen), under the baton supervisor or systemd (serving every inherited
// stream listener, the `baton-probe` one included), or in direct handover mode (--handover PATH:
// takes the listeners of the instance serving PATH, then serves PATH for its own successor).
// Lifecycle: simulated initialisation (--init-seconds), then listeners, workers, ready; on SIGTERM
// or a successor's handover it drains: exit 0 when every connection is finished, 1 when the
// --drain-timeout deadline passes first. One line on stderr for each of: ready, draining, drained.
//
// Routes: GET / (hello, with X-Baton-Generation and X-Pid), GET /slow?ms=N (same, after N ms,
// without blocking other connections), GET /healthz ("ok"); anything else 404.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
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

#include "baton/baton.h"
#include "http_worker.h"

namespace {

struct Flags {
  std::string listen = "127.0.0.1:8080";
  double init_seconds = 2;
  int threads = 2;
  std::string handover;
  double drain_timeout = 30;
};

// Counts workers that are accepting, that detached their listeners, and that finished.
struct Progress {
  std::mutex mu;
  std::condition_variable cv;
  int accepting = 0;
  int detached = 0;
  int finished = 0;
};

void count(Progress* p, int Progress::*counter) {
  std::lock_guard lock(p->mu);
  ++(p->*counter);
  p->cv.notify_all();
}

void on_accepting(void* arg) { count(static_cast<Progress*>(arg), &Progress::accepting); }
void on_detached(void* arg) { count(static_cast<Progress*>(arg), &Progress::detached); }

std::string generation_from_env() {
  const char* g = std::getenv("BATON_GENERATION");
  std::string out = g != nullptr ? g : "";
  for (char c : out) {
    if (c < '0' || c > '9') return "0";
  }
  return out.empty() ? "0" : out;
}

// Waits for `fd` to become readable for at most `ms` milliseconds; true if it did.
bool wait_readable(int fd, long ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc > 0) return true;
  }
}

int fail(const std::string& message) {
  std::fprintf(stderr, "baton-example-http: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"Example HTTP server built on the baton client library"};
  app.add_option("--listen", flags.listen, "address to bind when no listener is inherited");
  app.add_option("--init-seconds", flags.init_seconds, "simulated start-up work")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--threads", flags.threads, "worker threads")->check(CLI::Range(1, 256));
  app.add_option("--handover", flags.handover, "direct handover socket path");
  app.add_option("--drain-timeout", flags.drain_timeout, "seconds a drain may take")
      ->check(CLI::Range(0.001, 86400.0));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "baton-example-http: %s\n", e.what());
    return 2;
  }

  const std::string gen = generation_from_env();
  const long pid = static_cast<long>(::getpid());
  baton::InstanceOptions options;
  options.handover_path = flags.handover;
  options.drain_timeout = std::chrono::milliseconds(static_cast<long>(flags.drain_timeout * 1000));
  auto created = baton::Instance::create(options);
  if (!created) return fail(created.error().what());
  baton::Instance& inst = **created;

  // Simulated initialisation; a drain asked meanwhile ends the process cleanly.
  if (wait_readable(inst.drain_fd(), static_cast<long>(flags.init_seconds * 1000))) {
    std::fprintf(stderr, "example: generation %s pid %ld drained before ready\n", gen.c_str(), pid);
    return 0;
  }

  auto all = inst.listeners();
  if (!all) return fail(all.error().what());
  std::vector<int> fds;
  std::string addrs;
  for (const auto& l : *all) {
    if (l.type != SOCK_STREAM) continue;
    fds.push_back(l.fd);
    addrs += (addrs.empty() ? "" : ",") + l.address;
  }
  if (fds.empty()) {
    auto l = inst.listen("http", flags.listen);
    if (!l) return fail(l.error().what());
    fds.push_back(l->fd);
    addrs = l->address;
  }

  Progress progress;
  example::WorkerConfig config{fds, inst.drain_fd(), gen};
  example::WorkerHooks hooks{on_accepting, on_detached, &progress};
  std::vector<std::thread> workers;
  for (int i = 0; i < flags.threads; ++i) {
    workers.emplace_back([&] {
      int err = example::run_worker(config, hooks);
      if (err != 0) {
        std::fprintf(stderr, "baton-example-http: worker: %s\n", std::strerror(err));
        on_accepting(&progress);  // counted, so neither ready nor the drain waits for it
        on_detached(&progress);
      }
      count(&progress, &Progress::finished);
    });
  }
  {
    // Ready means accepting: every worker has the listeners in its epoll set.
    std::unique_lock lock(progress.mu);
    progress.cv.wait(lock, [&] { return progress.accepting == flags.threads; });
  }

  bool ready_failed = false;
  if (auto s = inst.ready(); !s) {
    std::fprintf(stderr, "baton-example-http: %s\n", s.error().what().c_str());
    ready_failed = true;
    inst.request_drain();
  } else {
    std::fprintf(stderr, "example: generation %s pid %ld ready on %s\n", gen.c_str(), pid,
                 addrs.c_str());
  }

  while (!wait_readable(inst.drain_fd(), 3600 * 1000)) {
  }
  std::fprintf(stderr, "example: generation %s pid %ld draining\n", gen.c_str(), pid);
  const auto deadline = inst.drain_deadline();
  bool in_time;
  {
    std::unique_lock lock(progress.mu);
    // Our copies of the listeners close once no worker can accept from them any more.
    in_time =
        progress.cv.wait_until(lock, deadline, [&] { return progress.detached == flags.threads; });
  }
  (void)inst.close_listeners();
  if (in_time) {
    std::unique_lock lock(progress.mu);
    in_time =
        progress.cv.wait_until(lock, deadline, [&] { return progress.finished == flags.threads; });
  }
  if (!in_time) {
    std::fprintf(stderr, "example: generation %s pid %ld drain deadline passed\n", gen.c_str(),
                 pid);
    std::fflush(stderr);
    std::_Exit(1);  // workers still hold connections; the kernel closes them
  }
  for (auto& w : workers) w.join();
  std::fprintf(stderr, "example: generation %s pid %ld drained\n", gen.c_str(), pid);
  return ready_failed ? 1 : 0;
}

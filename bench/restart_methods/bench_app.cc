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
//   --mode inherit    serve the listeners it is given: LISTEN_FDS from fd 3 when LISTEN_PID is
//                     its pid (baton run), else SERVER_STARTER_PORT's fds (start_server).
//
// Misbehaviour and readiness, for the steering cells and ratios (driver.py, steering.py):
//   --on-term die         SIGTERM ends it at once, in-flight requests and all (most apps never
//                         written for graceful shutdown do this).
//   --broken-marker PATH  if PATH can be unlinked at start, this instance is the broken new
//                         version: it accepts connections at once, answers none, and crashes
//                         (exit 1) --crash-after seconds later, before it would be ready. Each
//                         marker breaks exactly one instance.
//   --notify              send READY=1 to NOTIFY_SOCKET when ready.
//   --ready-file DIR      create DIR/ready.PID when ready (for `--ready exec:` checks).
// The ready line carries the app's own clock readings, "start_us=S ready_us=R" (CLOCK_REALTIME,
// microseconds; start is main's entry, ready the earliest moment a supervisor could see it ready:
// just before READY=1 or the ready file, else when its first worker accepts), so the driver can
// tell the app's start-up from a supervisor's overhead and readiness delay.
//
// Lifecycle as the example: --init-seconds of simulated start-up (SIGTERM meanwhile exits 0),
// bind, workers accepting, then the line "example: generation 0 pid P ready on ADDR" on stderr;
// SIGTERM starts the drain ("... draining"), exit 0 when every connection is done ("... drained"),
// 1 at --drain-timeout. The bench driver watches those lines.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
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
char g_die_line[96];  // --on-term die: the line written before exiting
size_t g_die_len = 0;

long long realtime_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

void on_term_die(int) {
  (void)!::write(2, g_die_line, g_die_len);
  ::_exit(0);
}

// Listeners handed over by a supervisor: LISTEN_FDS (systemd's protocol, as baton run passes
// them) when LISTEN_PID is this process, else SERVER_STARTER_PORT ("addr=fd;addr=fd").
std::vector<int> inherited_listeners() {
  std::vector<int> fds;
  const char* pid = std::getenv("LISTEN_PID");
  const char* n = std::getenv("LISTEN_FDS");
  if (pid != nullptr && n != nullptr && std::atol(pid) == static_cast<long>(::getpid())) {
    const int count = std::atoi(n);
    for (int i = 0; i < count && i < 64; ++i) fds.push_back(3 + i);
    return fds;
  }
  if (const char* ss = std::getenv("SERVER_STARTER_PORT")) {
    std::string spec = ss;
    size_t pos = 0;
    while (pos < spec.size() && fds.size() < 64) {
      size_t end = spec.find(';', pos);
      if (end == std::string::npos) end = spec.size();
      const std::string item = spec.substr(pos, end - pos);
      const size_t eq = item.rfind('=');
      if (eq != std::string::npos) fds.push_back(std::atoi(item.c_str() + eq + 1));
      pos = end + 1;
    }
  }
  return fds;
}

// sd_notify's READY=1, by hand: this app stands for one that does not link libbaton.
void notify_ready() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  const size_t len = std::strlen(path);
  if (len >= sizeof sa.sun_path) return;
  std::memcpy(sa.sun_path, path, len);
  if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  static const char kReady[] = "READY=1";
  (void)::sendto(fd, kReady, sizeof kReady - 1, 0, reinterpret_cast<sockaddr*>(&sa),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  ::close(fd);
}

// The broken new version: accept everything at once, answer nothing, crash after `seconds`.
[[noreturn]] void run_broken(const std::vector<int>& listeners, double seconds, long pid) {
  std::fprintf(stderr, "example: generation 0 pid %ld broken: accepting, crashing in %.2fs\n", pid,
               seconds);
  std::vector<pollfd> polls;
  for (int fd : listeners) polls.push_back({fd, POLLIN, 0});
  std::vector<int> held;
  const auto end = Clock::now() + std::chrono::milliseconds(long(seconds * 1000));
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
    if (left <= 0) break;
    if (::poll(polls.data(), polls.size(), static_cast<int>(left)) <= 0) continue;
    for (auto& p : polls) {
      if ((p.revents & POLLIN) == 0) continue;
      int c = ::accept4(p.fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0 && held.size() < 100000)
        held.push_back(c);
      else if (c >= 0)
        ::close(c);
    }
  }
  std::fprintf(stderr, "example: generation 0 pid %ld crashed, holding %zu connections\n", pid,
               held.size());
  std::fflush(stderr);
  ::_exit(1);
}

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
  long long first_accepting_us = 0;  // when the first worker could take a connection
};

void bump(Progress* p, int Progress::*counter) {
  std::lock_guard lock(p->mu);
  ++(p->*counter);
  p->cv.notify_all();
}
void on_accepting(void* arg) {
  auto* p = static_cast<Progress*>(arg);
  {
    std::lock_guard lock(p->mu);
    if (p->first_accepting_us == 0) p->first_accepting_us = realtime_us();
  }
  bump(p, &Progress::accepting);
}
void on_detached(void* arg) { bump(static_cast<Progress*>(arg), &Progress::detached); }

int fail(const std::string& message) {
  std::fprintf(stderr, "baton-bench-app: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const long long start_us = realtime_us();
  std::string listen = "127.0.0.1:8080", mode = "plain", on_term_mode = "drain";
  std::string broken_marker, ready_dir;
  bool notify = false;
  double init_seconds = 1, drain_timeout = 30, bind_timeout = 10, crash_after = 0.5;
  int threads = 2, bind_retry_ms = 150;
  long replace_pid = 0;
  CLI::App app{"HTTP app for the restart-method benchmark (bench/restart_methods)"};
  app.add_option("--listen", listen, "address to bind");
  app.add_option("--mode", mode, "how to get the socket")
      ->check(CLI::IsMember({"plain", "retry", "reuseport", "inherit"}));
  app.add_option("--on-term", on_term_mode, "drain, or die at once")
      ->check(CLI::IsMember({"drain", "die"}));
  app.add_option("--broken-marker", broken_marker, "be the broken version if this file exists");
  app.add_option("--crash-after", crash_after, "seconds the broken version lives")
      ->check(CLI::Range(0.0, 600.0));
  app.add_flag("--notify", notify, "send READY=1 to NOTIFY_SOCKET when ready");
  app.add_option("--ready-file", ready_dir, "create DIR/ready.PID when ready");
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
  if (on_term_mode == "die") {
    const int n = std::snprintf(g_die_line, sizeof g_die_line,
                                "example: generation 0 pid %ld dies on SIGTERM\n", pid);
    g_die_len = n > 0 ? static_cast<size_t>(n) : 0;
    sa.sa_handler = on_term_die;
    ::sigaction(SIGTERM, &sa, nullptr);
  }
  std::vector<int> inherited;
  if (mode == "inherit") {
    inherited = inherited_listeners();
    if (inherited.empty()) return fail("--mode inherit: no LISTEN_FDS or SERVER_STARTER_PORT");
  }
  if (!broken_marker.empty() && ::unlink(broken_marker.c_str()) == 0) {
    if (inherited.empty()) return fail("--broken-marker needs --mode inherit");
    run_broken(inherited, crash_after, pid);
  }

  if (wait_readable(g_drain_fd, static_cast<long>(init_seconds * 1000))) {
    std::fprintf(stderr, "example: generation 0 pid %ld drained before ready\n", pid);
    return 0;
  }

  baton::Fd listener;
  int attempts = 0;
  if (mode != "inherit") {
    baton::BindOptions bind_options;
    bind_options.reuse_port = mode == "reuseport";
    if (mode == "retry") ::kill(static_cast<pid_t>(replace_pid), SIGTERM);
    baton::Result<baton::Fd> bound = baton::bind_listener(*address, bind_options);
    attempts = 1;
    const auto bind_deadline = Clock::now() + std::chrono::milliseconds(long(bind_timeout * 1000));
    while (mode == "retry" && !bound && bound.error().code() == EADDRINUSE &&
           Clock::now() < bind_deadline) {
      if (wait_readable(g_drain_fd, bind_retry_ms)) return 0;
      bound = baton::bind_listener(*address, bind_options);
      ++attempts;
    }
    if (!bound) return fail(bound.error().what());
    listener = std::move(*bound);
    inherited = {listener.get()};
  }
  for (int fd : inherited) {
    if (auto s = baton::set_nonblocking(fd, true); !s) return fail(s.error().what());
  }

  Progress progress;
  example::WorkerConfig config{inherited, g_drain_fd, "0"};
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
  long long first_accepting_us = 0;
  {
    std::unique_lock lock(progress.mu);
    progress.cv.wait(lock, [&] { return progress.accepting == threads; });
    first_accepting_us = progress.first_accepting_us;
  }
  if (mode == "reuseport" && replace_pid != 0) ::kill(static_cast<pid_t>(replace_pid), SIGTERM);
  // The earliest moment a supervisor could see this instance ready: just before its explicit
  // signal (ready file, READY=1), else when its first worker could accept (accept, http:).
  const long long ready_us = !ready_dir.empty() || notify ? realtime_us() : first_accepting_us;
  if (!ready_dir.empty()) {
    const std::string path = ready_dir + "/ready." + std::to_string(pid);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return fail(path + ": " + std::strerror(errno));
    ::close(fd);
  }
  if (notify) notify_ready();
  std::fprintf(stderr,
               "example: generation 0 pid %ld ready on %s (bind attempts %d) start_us=%lld "
               "ready_us=%lld\n",
               pid, mode == "inherit" ? "inherited listeners" : listen.c_str(), attempts, start_us,
               ready_us);

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

#include "supervisor/readiness_probe.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cerrno>
#include <string>
#include <utility>

#include "common/listener.h"
#include "common/syscall.h"
#include "supervisor/spawner.h"

namespace baton {

namespace {

// Bytes of an http probe's answer read before judging it: the status line is all it needs.
constexpr size_t kMaxProbeResponse = 1024;

}  // namespace

ReadinessProbe::ReadinessProbe(EventLoop& loop, ReadinessSpec spec, int generation, Hooks hooks)
    : loop_(loop), spec_(std::move(spec)), generation_(generation), hooks_(std::move(hooks)) {}

Result<int> ReadinessProbe::open_listener() {
  if (spec_.kind != ReadinessSpec::Kind::kHttp) return -1;
  auto where = parse_address("127.0.0.1:0");
  if (!where) return where.error();
  auto fd = bind_listener(*where, BindOptions{});
  if (!fd) return fd.error();
  auto bound = bound_address(fd->get(), Transport::kTcp);
  if (!bound) return bound.error();
  address_ = *bound;
  listener_ = std::move(fd).value();
  return listener_.get();
}

void ReadinessProbe::start(pid_t pid) {
  main_pid_ = pid;
  started_ = EventLoop::Clock::now();
  switch (spec_.kind) {
    case ReadinessSpec::Kind::kAuto:
    case ReadinessSpec::Kind::kNotify:
    case ReadinessSpec::Kind::kAccept:
      break;  // the supervisor hears READY=1 and runs the accept probe (accept_probe.h)
    case ReadinessSpec::Kind::kHttp:
      http_attempt();
      break;
    case ReadinessSpec::Kind::kExec:
      exec_attempt();
      break;
    case ReadinessSpec::Kind::kDelay:
      timer_ = loop_.add_timer(EventLoop::Clock::now() + spec_.delay, [this] {
        timer_ = 0;
        hooks_.ready();  // last: it may destroy this probe
      });
      break;
  }
}

void ReadinessProbe::stop() {
  if (timer_ != 0) loop_.cancel_timer(timer_);
  timer_ = 0;
  if (conn_) {
    loop_.remove(conn_.get());
    conn_.reset();
  }
  listener_.reset();                               // the app keeps its own copy
  if (exec_pid_ > 0) ::kill(-exec_pid_, SIGKILL);  // reaped by the supervisor
  exec_pid_ = -1;
}

bool ReadinessProbe::on_reaped(pid_t pid, int wait_status, std::chrono::nanoseconds cpu_time) {
  if (exec_pid_ <= 0 || pid != exec_pid_) return false;
  exec_pid_ = -1;
  if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) {
    hooks_.ready();
  } else {
    retry(&ReadinessProbe::exec_attempt, not_yet_delay(exec_spawn_took_ + cpu_time));
  }
  return true;
}

std::chrono::nanoseconds ReadinessProbe::not_yet_delay(std::chrono::nanoseconds cost) const {
  return probe_retry_delay(EventLoop::Clock::now() - started_, cost);
}

void ReadinessProbe::retry(void (ReadinessProbe::*attempt)(), std::chrono::nanoseconds delay) {
  if (!hooks_.still_starting()) return;
  timer_ = loop_.add_timer(EventLoop::Clock::now() + delay, [this, attempt] {
    timer_ = 0;
    (this->*attempt)();
  });
}

// The probe's connection lands in the backlog of the generation's private listener at once; the
// answer comes when the generation accepts and serves it, which is the proof sought. No polling
// while the app starts: one request waits for it.
void ReadinessProbe::http_attempt() {
  response_.clear();
  attempt_started_ = EventLoop::Clock::now();
  Fd conn(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!conn || (::connect(conn.get(), address_.sockaddr_ptr(), address_.length) != 0 &&
                errno != EINPROGRESS)) {
    return retry(&ReadinessProbe::http_attempt);
  }
  std::string req = http_probe_request(spec_.argument);
  // Small and sent into a fresh socket buffer: it fits at once.
  if (::send(conn.get(), req.data(), req.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(req.size())) {
    return retry(&ReadinessProbe::http_attempt);
  }
  const int fd = conn.get();
  if (!loop_.add(fd, EPOLLIN | EPOLLRDHUP, [this](uint32_t) { on_http_event(); })) {
    return retry(&ReadinessProbe::http_attempt);
  }
  conn_ = std::move(conn);
}

void ReadinessProbe::on_http_event() {
  if (!conn_) return;
  char buf[4096];
  ssize_t n = retry_eintr(::recv, conn_.get(), buf, sizeof(buf), 0);
  if (n < 0 && errno == EAGAIN) return;
  if (n > 0) response_.append(buf, static_cast<size_t>(n));
  const bool done =
      n <= 0 || response_.find("\r\n") != std::string::npos || response_.size() > kMaxProbeResponse;
  if (!done) return;
  loop_.remove(conn_.get());
  conn_.reset();
  const int code = http_status_of(response_);
  if (code >= 200 && code < 300) return hooks_.ready();  // last: it may destroy this probe
  // Its cost is the app's, unknown here: the attempt's wall time stands for it.
  retry(&ReadinessProbe::http_attempt, not_yet_delay(EventLoop::Clock::now() - attempt_started_));
}

void ReadinessProbe::exec_attempt() {
  SpawnRequest req;
  req.argv = {"/bin/sh", "-c", spec_.argument};
  req.env["BATON_GENERATION"] = std::to_string(generation_);
  req.env["BATON_PID"] = std::to_string(main_pid_);
  req.output = SpawnRequest::Output::kSupervisorStderr;
  req.listen_pid = false;
  // What starting it costs the supervisor: its own CPU time, not the wall time, which a loaded
  // machine stretches (the command's own CPU time comes from wait4 when it is reaped).
  const auto began = thread_cpu_time();
  auto spawned = spawn_process(req);
  if (!spawned) return retry(&ReadinessProbe::exec_attempt);
  exec_spawn_took_ = thread_cpu_time() - began;
  exec_pid_ = spawned->pid;
}

}  // namespace baton

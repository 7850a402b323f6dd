// readiness_probe.h: proving one starting generation ready, the way `--ready` asks (the kinds
// and their parsing are in readiness.h).
//
//   notify  nothing to do here: the supervisor's notify socket hears READY=1 and says so
//   http    one GET at a time over the generation's private listener, which this probe binds
//           before the spawn and the generation receives last, named kProbeListenerName
//   exec    `/bin/sh -c CMD`, started through the spawner in a process group of its own, with
//           BATON_GENERATION and BATON_PID; its output goes to the supervisor's stderr
//   delay   a timer
// An attempt that answers "not yet" (non-2xx, closed, exec exit != 0) is retried while the
// generation is still starting, probe_retry_delay() later (readiness.h: soon, bounded by the
// attempt's own cost); one that could not be made (spawn or connect failed), kProbeRetry later.
// The ready timeout is the core's, not the probe's.
//
// Used from the supervisor's one thread; the event loop must outlive the probe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"
#include "supervisor/event_loop.h"
#include "supervisor/readiness.h"

namespace baton {

// The name of the private listener of an http readiness probe in LISTEN_FDNAMES.
constexpr const char* kProbeListenerName = "baton-probe";

class ReadinessProbe {
 public:
  struct Hooks {
    std::function<void()> ready;           // the proof arrived; may destroy the probe
    std::function<bool()> still_starting;  // false: the generation is past starting; no retry
  };

  ReadinessProbe(EventLoop& loop, ReadinessSpec spec, int generation, Hooks hooks);
  ~ReadinessProbe() { stop(); }
  ReadinessProbe(const ReadinessProbe&) = delete;
  ReadinessProbe& operator=(const ReadinessProbe&) = delete;

  // http: binds the private listener (127.0.0.1, a kernel-chosen port) and returns its fd, which
  // the probe keeps owning, for the spawn to pass on. Other kinds: -1.
  Result<int> open_listener();

  // Starts the first attempt; `pid` is the generation's main process (BATON_PID for exec).
  void start(pid_t pid);

  // Ends every attempt: cancels the retry timer, closes the connection and the private listener
  // (the generation keeps its own copy), SIGKILLs a running command's group (the supervisor still
  // reaps it, and hands it to on_reaped). Safe to call more than once.
  void stop();

  // A child the supervisor reaped, with the CPU time it used (wait4's rusage, its own children
  // included): true if it was this probe's command, whose exit status is then taken as the answer
  // (0: ready) and whose CPU time paces the next attempt.
  bool on_reaped(pid_t pid, int wait_status, std::chrono::nanoseconds cpu_time);

 private:
  void http_attempt();
  void on_http_event();
  void exec_attempt();
  // Starts `attempt` after `delay` (default: after a failure to make one), if still starting.
  void retry(void (ReadinessProbe::*attempt)(), std::chrono::nanoseconds delay = kProbeRetry);
  // The wait after an attempt that answered "not yet" and cost `cost`, which ends now.
  std::chrono::nanoseconds not_yet_delay(std::chrono::nanoseconds cost) const;

  EventLoop& loop_;
  const ReadinessSpec spec_;
  const int generation_;
  Hooks hooks_;
  pid_t main_pid_ = -1;
  EventLoop::Clock::time_point started_{};  // start()
  // http
  EventLoop::Clock::time_point attempt_started_{};  // the current (or last) request
  EventLoop::TimerId timer_ = 0;
  // http
  Fd listener_;
  Address address_;
  Fd conn_;
  std::string response_;
  // exec
  pid_t exec_pid_ = -1;
  std::chrono::nanoseconds exec_spawn_took_{0};  // starting the current command
};

}  // namespace baton

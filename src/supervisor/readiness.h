// readiness.h: how a new generation proves it is ready, and the HTTP probe.
//
//   auto          the default: for an app that speaks sd_notify, READY=1 and accepting baton's
//                 probe connection on its own socket, both (a master process that says READY=1
//                 before its workers can serve, as gunicorn's does, is not ready until one of
//                 them accepts); for one that does not, accepting the probe connection (as
//                 accept). An app speaks sd_notify once it, or an earlier generation under this
//                 supervisor, has sent READY=1 or STATUS=. Without a steered TCP listener there
//                 is nothing to probe, and READY=1 alone proves it
//   notify        READY=1 on NOTIFY_SOCKET from a process of that generation
//   accept        that generation accepted baton's probe connection on its own socket of the
//                 first TCP listener (steered there by its source port, see steering.h): it
//                 has proven it takes connections. Needs a steered TCP listener.
//   http:PATH     GET PATH answered 2xx by that generation: the request goes to a private
//                 listener (127.0.0.1, a kernel-chosen port) that only that generation receives,
//                 passed last in LISTEN_FDS under the name "baton-probe"
//   exec:CMD      `/bin/sh -c CMD` exits 0 (retried until the ready timeout); CMD sees
//                 BATON_GENERATION and BATON_PID
//   delay:DURATION still running that long after start (2s, 500ms, or plain seconds): the
//                 weakest proof, it proves only that the process did not die; use it only for
//                 apps that offer nothing better
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"

namespace baton {

struct ReadinessSpec {
  enum class Kind { kAuto, kNotify, kAccept, kHttp, kExec, kDelay };
  Kind kind = Kind::kAuto;
  std::string argument;  // PATH for http, CMD for exec
  std::chrono::milliseconds delay{0};
  // "auto", "notify", "accept", "http", "exec" or "delay": the word before any ':' of --ready.
  static const char* kind_name(Kind kind);
  std::string to_string() const;
  // Whether an accepted probe connection can prove readiness (auto, accept).
  bool uses_accept_probe() const { return kind == Kind::kAuto || kind == Kind::kAccept; }
};

// What a starting generation has shown so far, for the notify, accept and auto rules.
struct ReadinessSeen {
  bool spoke_notify = false;  // it or an earlier generation sent READY=1 or STATUS=
  bool said_ready = false;    // it sent READY=1
  bool probing = false;       // baton probes its own socket (there is a steered TCP listener)
  bool accepted = false;      // it accepted baton's probe connection there
};
// Whether what was seen proves the generation ready under `spec`. The other kinds (http, exec,
// delay) are proven by their own probe, never by this.
bool proven_ready(const ReadinessSpec& spec, const ReadinessSeen& seen);

Result<ReadinessSpec> parse_readiness(std::string_view text);

// How soon a probe that answered "not yet" (an exec check that exited non-zero, an http answer
// that is not 2xx, a probe connection not accepted yet) looks again. Not a fixed interval: that
// notices a ready app up to an interval late (an exec check every 200 ms noticed a 1 s start-up
// 15-55 ms late). The wait is the longest of:
//   kProbeRetryMin                 the floor: no busy loop, whatever the rest says;
//   kProbeCostFactor x what the attempt cost: for an exec check the CPU time of the command (and
//                                  of its children) plus that of starting it; for the accept
//                                  probe the CPU time of its look. So checks take at most a
//                                  quarter of one CPU while a generation starts (one runs at a
//                                  time); CPU time, not wall time, so that a check merely slowed
//                                  down by a loaded machine does not back off;
//   since_start / kProbeAgeDivisor a generation that has been starting for a while is looked at
//                                  less often: its readiness is noticed within about 0.2% of its
//                                  start-up time (2 ms after 1 s, 20 ms after 10 s);
// and never more than kProbeRetry. A probe whose look costs only microseconds (the accept
// probe: two queries to the kernel) passes a lower floor, kAcceptProbeRetryMin: with the 1 ms
// floor an app ready at once was noticed 0.5 ms late on average; the other terms still bound
// its CPU time.
constexpr std::chrono::milliseconds kProbeRetryMin{1};
constexpr std::chrono::microseconds kAcceptProbeRetryMin{200};
constexpr std::chrono::milliseconds kProbeRetry{200};
constexpr int kProbeCostFactor = 3;
constexpr int kProbeAgeDivisor = 512;
std::chrono::nanoseconds probe_retry_delay(std::chrono::nanoseconds since_start,
                                           std::chrono::nanoseconds attempt_cost,
                                           std::chrono::nanoseconds floor = kProbeRetryMin);
// The calling thread's CPU time: what a probe's look costs the supervisor, which a loaded machine
// does not stretch as it does wall time (a look preempted for 5 ms is not a 5 ms look).
std::chrono::nanoseconds thread_cpu_time();

// The request a probe sends, and the verdict on what came back.
std::string http_probe_request(const std::string& path);
// 2xx -> ready; otherwise the status code (0 when the bytes are not an HTTP status line yet).
int http_status_of(std::string_view response_head);

}  // namespace baton

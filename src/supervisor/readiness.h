// readiness.h: how a new generation proves it is ready, and the HTTP probe.
//
//   auto          the default: READY=1 (as notify); or, for an app that speaks no sd_notify,
//                 accepting baton's probe connection on its own socket (as accept). An app speaks
//                 sd_notify once it, or an earlier generation under this supervisor, has sent
//                 READY=1 or STATUS=: from then on only READY=1 counts
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
  std::string to_string() const;
  // Whether an accepted probe connection can prove readiness (auto, accept).
  bool uses_accept_probe() const { return kind == Kind::kAuto || kind == Kind::kAccept; }
};

// The auto rule: does an accepted probe connection prove this generation ready, given whether
// this or an earlier generation has sent any notify message?
bool accept_proves_ready(const ReadinessSpec& spec, bool spoke_notify);
// And READY=1?
bool notify_proves_ready(const ReadinessSpec& spec);

Result<ReadinessSpec> parse_readiness(std::string_view text);

// Interval between attempts of a probe that answered "not yet" (non-2xx, closed, exec exit != 0).
constexpr std::chrono::milliseconds kProbeRetry{200};

// The request a probe sends, and the verdict on what came back.
std::string http_probe_request(const std::string& path);
// 2xx -> ready; otherwise the status code (0 when the bytes are not an HTTP status line yet).
int http_status_of(std::string_view response_head);

}  // namespace baton

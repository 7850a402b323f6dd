// readiness.h: how a new generation proves it is ready, and the HTTP probe.
//
//   notify        READY=1 on NOTIFY_SOCKET from a process of that generation (the default)
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
  enum class Kind { kNotify, kHttp, kExec, kDelay };
  Kind kind = Kind::kNotify;
  std::string argument;  // PATH for http, CMD for exec
  std::chrono::milliseconds delay{0};
  std::string to_string() const;
};

Result<ReadinessSpec> parse_readiness(std::string_view text);

// Interval between attempts of a probe that answered "not yet" (non-2xx, closed, exec exit != 0).
constexpr std::chrono::milliseconds kProbeRetry{200};

// The request a probe sends, and the verdict on what came back.
std::string http_probe_request(const std::string& path);
// 2xx -> ready; otherwise the status code (0 when the bytes are not an HTTP status line yet).
int http_status_of(std::string_view response_head);

}  // namespace baton

// spot_check.h: one blocking HTTP request on a fresh connection, outside the load: the check that
// the server answers before a run starts, and the before/after look of --verify-header. (Not a
// probe: baton's probes are the supervisor's readiness and accept probes.)
#pragma once

#include <chrono>
#include <string>

#include "baton/result.h"
#include "common/address.h"

namespace baton::soak {

struct SpotCheckResponse {
  int status = 0;
  std::string header_value;  // of the captured header ("" when absent)
};

// Sends `request` (which should say Connection: close) and reads one response. The whole
// exchange is bounded by `timeout`. Errors say what failed, e.g. "connect 127.0.0.1:8080:
// Connection refused".
Result<SpotCheckResponse> spot_check(const Address& address, const std::string& request,
                                     const std::string& capture_header,
                                     std::chrono::nanoseconds timeout);

}  // namespace baton::soak

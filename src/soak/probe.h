// probe.h: one blocking HTTP request on a fresh connection, outside the load: the check that the
// server answers before a run starts, and the before/after look of --verify-header.
#pragma once

#include <chrono>
#include <string>

#include "baton/result.h"
#include "common/address.h"

namespace baton::soak {

struct ProbeResponse {
  int status = 0;
  std::string header_value;  // of the captured header ("" when absent)
};

// Sends `request` (which should say Connection: close) and reads one response. The whole
// exchange is bounded by `timeout`. Errors say what failed, e.g. "connect 127.0.0.1:8080:
// Connection refused".
Result<ProbeResponse> probe_get(const Address& address, const std::string& request,
                                const std::string& capture_header,
                                std::chrono::nanoseconds timeout);

}  // namespace baton::soak

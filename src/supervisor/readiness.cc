#include "supervisor/readiness.h"

#include <algorithm>
#include <charconv>
#include <ctime>

#include <fmt/format.h>

#include "common/duration.h"

namespace baton {

const char* ReadinessSpec::kind_name(Kind kind) {
  switch (kind) {
    case Kind::kAuto:
      return "auto";
    case Kind::kNotify:
      return "notify";
    case Kind::kAccept:
      return "accept";
    case Kind::kHttp:
      return "http";
    case Kind::kExec:
      return "exec";
    case Kind::kDelay:
      return "delay";
  }
  return "?";
}

std::string ReadinessSpec::to_string() const {
  switch (kind) {
    case Kind::kHttp:
    case Kind::kExec:
      return std::string(kind_name(kind)) + ":" + argument;
    case Kind::kDelay:
      return fmt::format("delay:{:g}", static_cast<double>(delay.count()) / 1000.0);
    default:
      return kind_name(kind);
  }
}

std::chrono::nanoseconds thread_cpu_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);  // cannot fail for the calling thread
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

std::chrono::nanoseconds probe_retry_delay(std::chrono::nanoseconds since_start,
                                           std::chrono::nanoseconds attempt_cost,
                                           std::chrono::nanoseconds floor) {
  std::chrono::nanoseconds wait = floor;
  wait = std::max(wait, attempt_cost * kProbeCostFactor);
  wait = std::max(wait, since_start / kProbeAgeDivisor);
  return std::min<std::chrono::nanoseconds>(wait, kProbeRetry);
}

Result<ReadinessSpec> parse_readiness(std::string_view text) {
  ReadinessSpec spec;
  if (text == "auto") return spec;
  if (text == "notify" || text == "accept") {
    spec.kind = text == "notify" ? ReadinessSpec::Kind::kNotify : ReadinessSpec::Kind::kAccept;
    return spec;
  }
  if (text.starts_with("http:")) {
    spec.kind = ReadinessSpec::Kind::kHttp;
    spec.argument = std::string(text.substr(5));
    if (spec.argument.empty() || spec.argument[0] != '/' ||
        spec.argument.find_first_of(" \r\n\t") != std::string::npos) {
      return Error(
          fmt::format("bad --ready '{}': http:PATH needs a path such as http:/healthz", text));
    }
    return spec;
  }
  if (text.starts_with("exec:")) {
    spec.kind = ReadinessSpec::Kind::kExec;
    spec.argument = std::string(text.substr(5));
    if (spec.argument.empty()) return Error("bad --ready 'exec:': give a command, exec:CMD");
    return spec;
  }
  if (text.starts_with("delay:")) {
    spec.kind = ReadinessSpec::Kind::kDelay;
    auto d = parse_duration_ms(text.substr(6), /*allow_zero=*/true);
    if (!d || *d > std::chrono::hours(24)) {
      return Error(
          fmt::format("bad --ready '{}': delay:DURATION takes 0 to 24h (e.g. delay:2s)", text));
    }
    spec.delay = *d;
    return spec;
  }
  return Error(fmt::format(
      "bad --ready '{}': use auto, notify, accept, http:PATH, exec:CMD or delay:DURATION", text));
}

bool proven_ready(const ReadinessSpec& spec, const ReadinessSeen& seen) {
  switch (spec.kind) {
    case ReadinessSpec::Kind::kNotify:
      return seen.said_ready;
    case ReadinessSpec::Kind::kAccept:
      return seen.accepted;
    case ReadinessSpec::Kind::kAuto:
      if (!seen.spoke_notify) return seen.accepted;
      return seen.said_ready && (seen.accepted || !seen.probing);
    case ReadinessSpec::Kind::kHttp:
    case ReadinessSpec::Kind::kExec:
    case ReadinessSpec::Kind::kDelay:
      return false;
  }
  return false;
}

std::string http_probe_request(const std::string& path) {
  return fmt::format(
      "GET {} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: baton-ready-probe\r\n"
      "Connection: close\r\n\r\n",
      path);
}

int http_status_of(std::string_view head) {
  // "HTTP/1.1 200 OK"
  if (head.size() < 12 || !head.starts_with("HTTP/1.") || head[8] != ' ') return 0;
  // Three digits, the first not 0: from_chars alone would take "-12" or "002" (the app writes
  // this line; the fuzz target http_status found the second).
  if (head[9] < '1' || head[9] > '9') return 0;
  for (size_t i = 10; i < 12; ++i) {
    if (head[i] < '0' || head[i] > '9') return 0;
  }
  int code = 0;
  auto [end, ec] = std::from_chars(head.data() + 9, head.data() + 12, code);
  if (ec != std::errc() || end != head.data() + 12) return 0;
  return code;
}

}  // namespace baton

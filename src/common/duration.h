// duration.h: the one spelling of a length of time, for every flag and config key that takes one.
//
//   30s  2m  500ms  1.5s  1h  250us  and a plain number, which is seconds ("30" = "30s").
//
// `run` (--ready-timeout, --drain-timeout, --ready delay:D), `soak` (--duration, --timeout...),
// the control commands (--timeout) and the config file all parse through here, so a value that
// one accepts every other accepts too.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "baton/result.h"

namespace baton {

// Parses a duration. Must be > 0 unless `allow_zero`; at most about 31 years. The error says
// what was expected: "bad duration '10x': expected e.g. 30s, 500ms, 2m, 1h or plain seconds".
Result<std::chrono::nanoseconds> parse_duration(std::string_view text, bool allow_zero = false);

// The same, rounded to milliseconds (what the supervisor's timers use); a non-zero duration
// shorter than 1ms becomes 1ms rather than 0.
Result<std::chrono::milliseconds> parse_duration_ms(std::string_view text, bool allow_zero = false);

// A duration for people, in its two largest units: "45s", "4m 12s", "3h 05m", "2d 04h".
// Below a minute it keeps tenths under 10s ("2.5s"). Negative values print as "0s".
std::string format_duration(std::chrono::milliseconds d);

// A duration in the spelling parse_duration reads back, as short as exact: "30s", "500ms", "2m".
std::string duration_to_string(std::chrono::milliseconds d);

}  // namespace baton

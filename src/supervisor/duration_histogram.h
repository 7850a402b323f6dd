// duration_histogram.h: a fixed-bucket histogram of durations, as Prometheus exposes them.
//
// Bounds suit what the supervisor times (a generation's readiness, a whole reload): 10ms to 5min.
// Counts are cumulative only when printed; here each bucket counts its own observations.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace baton {

struct DurationHistogram {
  static constexpr std::array<double, 12> kBoundsSeconds = {0.01, 0.05, 0.1, 0.25, 0.5, 1,
                                                            2.5,  5,    10,  30,   60,  300};
  std::array<std::uint64_t, kBoundsSeconds.size() + 1> buckets{};  // the last one: above all bounds
  std::uint64_t count = 0;
  double sum_seconds = 0;

  void observe(std::chrono::milliseconds d) {
    const double s = static_cast<double>(d.count()) / 1000.0;
    size_t i = 0;
    while (i < kBoundsSeconds.size() && s > kBoundsSeconds[i]) ++i;
    ++buckets[i];
    ++count;
    sum_seconds += s;
  }
};

}  // namespace baton

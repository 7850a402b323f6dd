// stats.h: what a soak run counts, per worker thread, merged into one at the end.
//
// Every request ends with exactly one final outcome; the first attempt's outcome is kept apart so
// the report can show first-try and after-retry figures (see outcome.h, keepalive_closed).
// Latency is recorded in microseconds for requests that got a complete response, measured from the
// request's intended send time (open loop, --rate) or its actual send time (closed loop).
//
// Timeline: the run cut into equal time slices (by completion time) for throughput and p99 over
// time. The slice width starts at the caller's choice and doubles whenever there would be more
// than kMaxSlices, so memory stays bounded however long a run lasts.
//
// Thread safety: none; one Stats per worker thread, merged after the workers have stopped.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <vector>

#include "soak/histogram.h"
#include "soak/outcome.h"

namespace baton::soak {

struct Slice {
  uint64_t completed = 0;  // requests finished in this slice (any final outcome)
  uint64_t ok = 0;
  uint64_t failed = 0;            // final outcome not ok
  uint64_t first_try_failed = 0;  // first attempt not ok (includes retried ones)
  Histogram latency{5};           // coarse (6%): enough for a p99 curve
};

class Timeline {
 public:
  static constexpr size_t kMaxSlices = 1024;
  explicit Timeline(int64_t slice_ns = 100'000'000);

  // A request finished `at_ns` after the start of the run.
  void record(int64_t at_ns, bool ok, bool first_try_ok, bool has_latency, uint64_t latency_us);
  // Adds `other`, coarsening whichever is finer so the widths match.
  void merge(Timeline& other);
  // Doubles the slice width, merging neighbours.
  void coarsen();

  int64_t slice_ns() const { return slice_ns_; }
  const std::vector<Slice>& slices() const { return slices_; }

 private:
  int64_t slice_ns_;
  std::vector<Slice> slices_;
};

struct Stats {
  std::array<uint64_t, kKindCount> final_kinds{};
  std::array<uint64_t, kKindCount> first_kinds{};
  std::map<int, uint64_t> final_statuses;  // non-2xx final responses by status code
  std::map<int, uint64_t> other_errnos;    // kOther final outcomes by errno
  uint64_t retries = 0;                    // requests retried after keepalive_closed
  uint64_t connections = 0;                // connections opened (connect() calls)
  uint64_t bytes_received = 0;
  Histogram latency{7};
  Histogram window_latency{7};  // requests completed during a reload window
  uint64_t window_requests = 0;
  uint64_t window_failed = 0;
  Timeline timeline;

  uint64_t requests() const;
  uint64_t failed() const { return requests() - final_kinds[static_cast<size_t>(Kind::kOk)]; }
  uint64_t first_try_failed() const {
    return requests() - first_kinds[static_cast<size_t>(Kind::kOk)];
  }
  void merge(Stats& other);
};

}  // namespace baton::soak

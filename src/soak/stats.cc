#include "soak/stats.h"

namespace baton::soak {

Timeline::Timeline(int64_t slice_ns) : slice_ns_(slice_ns > 0 ? slice_ns : 100'000'000) {}

void Timeline::record(int64_t at_ns, bool ok, bool first_try_ok, bool has_latency,
                      uint64_t latency_us) {
  if (at_ns < 0) at_ns = 0;
  size_t index = static_cast<size_t>(at_ns / slice_ns_);
  while (index >= kMaxSlices) {
    coarsen();
    index = static_cast<size_t>(at_ns / slice_ns_);
  }
  if (index >= slices_.size()) slices_.resize(index + 1);
  Slice& s = slices_[index];
  ++s.completed;
  if (ok)
    ++s.ok;
  else
    ++s.failed;
  if (!first_try_ok) ++s.first_try_failed;
  if (has_latency) s.latency.record(latency_us);
}

void Timeline::coarsen() {
  std::vector<Slice> merged((slices_.size() + 1) / 2);
  for (size_t i = 0; i < slices_.size(); ++i) {
    Slice& to = merged[i / 2];
    Slice& from = slices_[i];
    to.completed += from.completed;
    to.ok += from.ok;
    to.failed += from.failed;
    to.first_try_failed += from.first_try_failed;
    to.latency.merge(from.latency);
  }
  slices_ = std::move(merged);
  slice_ns_ *= 2;
}

void Timeline::merge(Timeline& other) {
  while (slice_ns_ < other.slice_ns_) coarsen();
  while (other.slice_ns_ < slice_ns_) other.coarsen();
  if (other.slices_.size() > slices_.size()) slices_.resize(other.slices_.size());
  for (size_t i = 0; i < other.slices_.size(); ++i) {
    Slice& to = slices_[i];
    const Slice& from = other.slices_[i];
    to.completed += from.completed;
    to.ok += from.ok;
    to.failed += from.failed;
    to.first_try_failed += from.first_try_failed;
    to.latency.merge(from.latency);
  }
}

uint64_t Stats::requests() const {
  uint64_t n = 0;
  for (uint64_t c : final_kinds) n += c;
  return n;
}

void Stats::merge(Stats& other) {
  for (size_t i = 0; i < kKindCount; ++i) {
    final_kinds[i] += other.final_kinds[i];
    first_kinds[i] += other.first_kinds[i];
  }
  for (auto [k, v] : other.final_statuses) final_statuses[k] += v;
  for (auto [k, v] : other.other_errnos) other_errnos[k] += v;
  retries += other.retries;
  connections += other.connections;
  bytes_received += other.bytes_received;
  latency.merge(other.latency);
  window_latency.merge(other.window_latency);
  window_requests += other.window_requests;
  window_failed += other.window_failed;
  timeline.merge(other.timeline);
}

}  // namespace baton::soak

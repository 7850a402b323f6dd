// histogram.h: a log-linear latency histogram with bounded relative error.
//
// Written here rather than taken from a library: HdrHistogram has no C++ package in Debian, and
// the part soak needs (record, merge, percentile) is small. Values are non-negative integers
// (soak records microseconds). Values below 2^S are counted exactly; above, each power of two is
// split into 2^(S-1) equal buckets, so a reported percentile is within 1/2^(S-1) of the true
// value (S=7: 1.6%). Values above 2^40 are clamped. record() is a shift, a clz and an increment.
//
// Thread safety: none; soak keeps one per thread and merges them at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace baton::soak {

class Histogram {
 public:
  explicit Histogram(int sub_bits = 7);

  void record(uint64_t value) {
    if (value > kMaxValue) value = kMaxValue;
    ++counts_[index_of(value)];
    ++total_;
    if (value > max_) max_ = value;
    if (value < min_) min_ = value;
    sum_ += value;
  }
  // Adds every count of `other`, which must have the same sub_bits.
  void merge(const Histogram& other);
  void clear();

  uint64_t count() const { return total_; }
  uint64_t max() const { return total_ ? max_ : 0; }
  uint64_t min() const { return total_ ? min_ : 0; }
  double mean() const {
    return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0;
  }
  // The value at quantile q in [0, 1]: the highest value of the bucket holding the q-th
  // recorded value, capped at max(). 0 when empty.
  uint64_t percentile(double q) const;
  int sub_bits() const { return sub_bits_; }

  // Bucket arithmetic, exposed for tests.
  size_t index_of(uint64_t value) const;
  uint64_t highest_in_bucket(size_t index) const;
  uint64_t lowest_in_bucket(size_t index) const;

  static constexpr uint64_t kMaxValue = uint64_t{1} << 40;

 private:
  int sub_bits_;
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t sum_ = 0;
};

}  // namespace baton::soak

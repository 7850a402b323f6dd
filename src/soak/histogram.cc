#include "soak/histogram.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace baton::soak {

Histogram::Histogram(int sub_bits) : sub_bits_(sub_bits) {
  assert(sub_bits >= 2 && sub_bits <= 16);
  counts_.resize(index_of(kMaxValue) + 1);
}

size_t Histogram::index_of(uint64_t value) const {
  const uint64_t linear = uint64_t{1} << sub_bits_;
  if (value < linear) return static_cast<size_t>(value);
  int msb = 63 - __builtin_clzll(value);
  int shift = msb - sub_bits_ + 1;  // >= 1
  uint64_t top = value >> shift;    // in [2^(S-1), 2^S)
  uint64_t half = linear >> 1;
  return static_cast<size_t>(linear + static_cast<uint64_t>(shift - 1) * half + (top - half));
}

uint64_t Histogram::lowest_in_bucket(size_t index) const {
  const uint64_t linear = uint64_t{1} << sub_bits_;
  if (index < linear) return index;
  uint64_t half = linear >> 1;
  uint64_t shift = (index - linear) / half + 1;
  uint64_t top = (index - linear) % half + half;
  return top << shift;
}

uint64_t Histogram::highest_in_bucket(size_t index) const {
  const uint64_t linear = uint64_t{1} << sub_bits_;
  if (index < linear) return index;
  uint64_t shift = (index - linear) / (linear >> 1) + 1;
  return lowest_in_bucket(index) + (uint64_t{1} << shift) - 1;
}

void Histogram::merge(const Histogram& other) {
  assert(other.sub_bits_ == sub_bits_);
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  sum_ += other.sum_;
  if (other.total_) {
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
  }
}

void Histogram::clear() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = sum_ = max_ = 0;
  min_ = UINT64_MAX;
}

uint64_t Histogram::percentile(double q) const {
  if (total_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the wanted value, 1-based: at least 1, at most total.
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_)));
  rank = std::clamp<uint64_t>(rank, 1, total_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(highest_in_bucket(i), max_);
  }
  return max_;
}

}  // namespace baton::soak

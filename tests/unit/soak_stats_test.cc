// Unit tests of soak's accounting: the histogram, the timeline, the verdict and the renderings.
#include <random>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "soak/histogram.h"
#include "soak/report.h"
#include "soak/stats.h"

namespace baton::soak {
namespace {

TEST(SoakHistogram, BucketsAreContiguousAndBounded) {
  Histogram h(7);
  size_t prev = 0;
  for (uint64_t v = 0; v < 1'000'000; v += (v < 1000 ? 1 : v / 300)) {
    size_t i = h.index_of(v);
    EXPECT_GE(i, prev);
    EXPECT_LE(i, prev + 1) << v;
    EXPECT_LE(h.lowest_in_bucket(i), v);
    EXPECT_GE(h.highest_in_bucket(i), v);
    // Relative width of a bucket is at most 2^-(S-1).
    EXPECT_LE(static_cast<double>(h.highest_in_bucket(i) - h.lowest_in_bucket(i)),
              static_cast<double>(v) / 64.0 + 1.0);
    prev = i;
  }
  EXPECT_EQ(h.index_of(127), 127u);
  EXPECT_EQ(h.index_of(128), 128u);
  EXPECT_EQ(h.lowest_in_bucket(h.index_of(Histogram::kMaxValue)), Histogram::kMaxValue);
}

TEST(SoakHistogram, PercentilesWithinPrecision) {
  Histogram h(7);
  std::mt19937_64 rng(7);
  std::vector<uint64_t> values;
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = rng() % 1'000'000;
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    double truth = static_cast<double>(values[static_cast<size_t>(q * values.size()) - 1]);
    EXPECT_NEAR(static_cast<double>(h.percentile(q)), truth, truth * 0.02 + 1) << q;
  }
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.percentile(1.0), values.back());
  EXPECT_EQ(h.count(), 100000u);
}

TEST(SoakHistogram, SmallValuesExactAndMerge) {
  Histogram a(7), b(7);
  for (int i = 1; i <= 100; ++i) a.record(static_cast<uint64_t>(i));
  EXPECT_EQ(a.percentile(0.5), 50u);
  EXPECT_EQ(a.percentile(0.99), 99u);
  b.record(5000);
  a.merge(b);
  EXPECT_EQ(a.count(), 101u);
  EXPECT_EQ(a.max(), 5000u);
  EXPECT_EQ(Histogram().percentile(0.5), 0u);
  Histogram c;
  c.record(Histogram::kMaxValue * 4);  // clamped, not out of range
  EXPECT_EQ(c.max(), Histogram::kMaxValue);
}

TEST(SoakTimeline, SlicesCoarsenAndMerge) {
  Timeline t(100'000'000);
  t.record(50'000'000, true, true, true, 100);
  t.record(150'000'000, false, false, false, 0);
  t.record(160'000'000, true, false, true, 300);
  ASSERT_EQ(t.slices().size(), 2u);
  EXPECT_EQ(t.slices()[1].completed, 2u);
  EXPECT_EQ(t.slices()[1].failed, 1u);
  EXPECT_EQ(t.slices()[1].first_try_failed, 2u);
  // Far beyond kMaxSlices: the width doubles instead of the memory growing.
  t.record(2000 * 100'000'000LL + 5, true, true, true, 1);
  EXPECT_LE(t.slices().size(), Timeline::kMaxSlices);
  EXPECT_EQ(t.slice_ns(), 200'000'000);
  EXPECT_EQ(t.slices()[0].completed, 3u);  // 0..200ms merged
  Timeline u(100'000'000);
  u.record(10, true, true, true, 1);
  u.merge(t);
  EXPECT_EQ(u.slice_ns(), 200'000'000);
  EXPECT_EQ(u.slices()[0].completed, 4u);
  uint64_t total = 0;
  for (const auto& s : u.slices()) total += s.completed;
  EXPECT_EQ(total, 5u);
}

Stats sample_stats() {
  Stats s;
  s.timeline = Timeline(100'000'000);
  for (int i = 0; i < 1000; ++i) {
    s.final_kinds[static_cast<size_t>(Kind::kOk)]++;
    s.first_kinds[static_cast<size_t>(Kind::kOk)]++;
    s.latency.record(200 + i);
    s.timeline.record(i * 1'000'000LL, true, true, true, 200 + i);
  }
  return s;
}

TEST(SoakReport, PassWhenNothingFailed) {
  Stats s = sample_stats();
  std::vector<ReloadRecord> reloads(2);
  for (int i = 0; i < 2; ++i) {
    reloads[i].index = i;
    reloads[i].ran = reloads[i].ok = reloads[i].verified = true;
    reloads[i].duration_s = 0.5;
  }
  RunResult run;
  run.config.url = "http://127.0.0.1:1/";
  run.config.reloads = 2;
  run.elapsed_s = 1.0;
  run.stats = &s;
  run.reloads = &reloads;
  EXPECT_EQ(judge(run).exit_code, 0);
  std::string text = render_text(run);
  EXPECT_NE(text.find("PASS: 0 failed requests of 1,000, 2 of 2 reloads ok"), std::string::npos)
      << text;
  auto j = render_json(run);
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["verdict"], "pass");
  EXPECT_EQ(j["requests"]["total"], 1000);
  EXPECT_EQ(j["reloads"]["ok"], 2);
  EXPECT_EQ(j["timeline"]["slices"].size(), 10u);
  std::string svg = render_svg(run);
  EXPECT_TRUE(svg.starts_with("<svg"));
  EXPECT_NE(svg.find("class=\"reload\""), std::string::npos);
  EXPECT_EQ(svg.find("class=\"failure\""), std::string::npos);
}

TEST(SoakReport, FailuresByKindStatusAndRetry) {
  Stats s = sample_stats();
  s.final_kinds[static_cast<size_t>(Kind::kRefused)] = 7;
  s.first_kinds[static_cast<size_t>(Kind::kRefused)] = 7;
  s.final_kinds[static_cast<size_t>(Kind::kHttpStatus)] = 3;
  s.first_kinds[static_cast<size_t>(Kind::kHttpStatus)] = 3;
  s.final_statuses[503] = 3;
  // Two requests failed first as keepalive_closed and succeeded on retry.
  s.first_kinds[static_cast<size_t>(Kind::kOk)] -= 2;
  s.first_kinds[static_cast<size_t>(Kind::kKeepaliveClosed)] = 2;
  s.timeline.record(500'000'000, false, false, false, 0);
  std::vector<ReloadRecord> reloads(1);
  reloads[0].ran = true;
  reloads[0].error = "exit status 1: boom";
  RunResult run;
  run.config.url = "http://h/<&>";
  run.config.reloads = 1;
  run.config.max_failures = 5;
  run.elapsed_s = 1.0;
  run.stats = &s;
  run.reloads = &reloads;
  Verdict v = judge(run);
  EXPECT_EQ(v.exit_code, 1);
  ASSERT_EQ(v.reasons.size(), 2u);
  std::string text = render_text(run);
  EXPECT_NE(text.find("connection refused"), std::string::npos) << text;
  EXPECT_NE(text.find("status 503 Service Unavailable"), std::string::npos) << text;
  EXPECT_NE(text.find("first try: 12 failed (2 on a reused keep-alive"), std::string::npos) << text;
  EXPECT_NE(text.find("#1 at 0.0 s: exit status 1: boom"), std::string::npos) << text;
  EXPECT_NE(text.find("FAIL: 10 failed requests (allowed: 5); 1 of 1 reloads failed"),
            std::string::npos) << text;
  auto j = render_json(run);
  EXPECT_EQ(j["failures"]["refused"], 7);
  EXPECT_EQ(j["first_try"]["keepalive_closed"], 2);
  EXPECT_EQ(j["statuses"]["503"], 3);
  EXPECT_EQ(j["requests"]["first_try_failed"], 12);
  EXPECT_EQ(j["exit_code"], 1);
  std::string svg = render_svg(run);
  EXPECT_NE(svg.find("class=\"failure\""), std::string::npos);
  EXPECT_NE(svg.find("http://h/&lt;&amp;&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<&>"), std::string::npos);
  // Under the threshold: pass.
  run.config.max_failures = 10;
  reloads[0].ok = true;
  EXPECT_EQ(judge(run).exit_code, 0);
}

TEST(SoakReport, FormatsLatency) {
  EXPECT_EQ(format_us(850), "850us");
  EXPECT_EQ(format_us(1234), "1.23ms");
  EXPECT_EQ(format_us(12345), "12.3ms");
  EXPECT_EQ(format_us(123456), "123ms");
  EXPECT_EQ(format_us(2'410'000), "2.41s");
}

}  // namespace
}  // namespace baton::soak

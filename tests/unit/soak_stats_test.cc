// Unit tests of soak's accounting: the histogram, the timeline, the verdict and the renderings.
#include <random>
#include <regex>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "soak/histogram.h"
#include "soak/reload.h"
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

TEST(SoakHistogram, PercentilesAreWithinTheBucketPrecision) {
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

TEST(SoakHistogram, SmallValuesAreExactAndMergeAddsCounts) {
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

TEST(SoakTimeline, SliceWidthDoublesPastTheCapAndMergeMatchesWidths) {
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

TEST(SoakReport, NothingFailedIsAPassWithExitZero) {
  Stats s = sample_stats();
  std::vector<ReloadTrial> reloads(2);
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

TEST(SoakReport, FailuresAreListedByKindStatusAndFirstTry) {
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
  std::vector<ReloadTrial> reloads(1);
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
            std::string::npos)
      << text;
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

TEST(SoakReport, LatencyIsShownWithThreeSignificantDigits) {
  EXPECT_EQ(format_us(850), "850us");
  EXPECT_EQ(format_us(1234), "1.23ms");
  EXPECT_EQ(format_us(12345), "12.3ms");
  EXPECT_EQ(format_us(123456), "123ms");
  EXPECT_EQ(format_us(2'410'000), "2.41s");
}

// Stats of a run whose `full` slices of 0.1 s each hold `per_slice` ok requests, followed by a
// partial last slice with `tail` requests (the in-flight ones finishing after the load stopped).
Stats run_with_partial_tail(int full, int per_slice, int tail) {
  Stats s;
  s.timeline = Timeline(100'000'000);
  auto ok = [&](int64_t at_ns) {
    s.final_kinds[static_cast<size_t>(Kind::kOk)]++;
    s.first_kinds[static_cast<size_t>(Kind::kOk)]++;
    s.latency.record(500);
    s.timeline.record(at_ns, true, true, true, 500);
  };
  for (int slice = 0; slice < full; ++slice) {
    for (int k = 0; k < per_slice; ++k) ok(slice * 100'000'000LL + k * 100'000'000LL / per_slice);
  }
  for (int k = 0; k < tail; ++k) ok(full * 100'000'000LL + 1'000'000);
  return s;
}

RunResult result_of(Stats& s, double elapsed_s) {
  RunResult run;
  run.config.url = "http://127.0.0.1:1/";
  run.elapsed_s = elapsed_s;
  run.stats = &s;
  return run;
}

// The points of the SVG polyline of class `cls`, as (x, y) pairs.
std::vector<std::pair<double, double>> polyline(const std::string& svg, const std::string& cls) {
  std::smatch m;
  std::vector<std::pair<double, double>> points;
  if (!std::regex_search(svg, m, std::regex("class=\"" + cls + "\" points=\"([^\"]*)\""))) {
    return points;
  }
  std::string list = m[1];
  std::regex pair("([0-9.]+),([0-9.]+)");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), pair); it != std::sregex_iterator();
       ++it) {
    points.emplace_back(std::stod((*it)[1]), std::stod((*it)[2]));
  }
  return points;
}

TEST(SoakReport, ThroughputMeanComesFromTheSameFullSlicesAsMinAndMax) {
  // 10 full slices at 1000/s, then 5 requests in the 0.03 s of the last, partial slice. Counting
  // all requests over the elapsed time gave "mean 976/s, min 1000/s".
  Stats s = run_with_partial_tail(10, 100, 5);
  Throughput tp = throughput(s, 1.03);
  EXPECT_EQ(tp.full_slices, 10u);
  EXPECT_DOUBLE_EQ(tp.min, 1000);
  EXPECT_DOUBLE_EQ(tp.max, 1000);
  EXPECT_DOUBLE_EQ(tp.mean, 1000);
  RunResult run = result_of(s, 1.03);
  std::string text = render_text(run);
  EXPECT_NE(text.find("throughput mean 1000/s, min 1000/s, max 1000/s"), std::string::npos) << text;
  auto j = render_json(run);
  EXPECT_EQ(j["throughput"]["mean_rps"], 1000);
  EXPECT_EQ(j["throughput"]["min_rps"], 1000);
}

TEST(SoakReport, ThroughputCountsAFullSliceWithNoCompletionsAsZero) {
  // The server stalled for the last 0.3 s: those slices have no entry in the timeline, but they
  // are full slices of the run, and the minimum is 0/s.
  Stats s = run_with_partial_tail(7, 100, 0);
  Throughput tp = throughput(s, 1.0);
  EXPECT_EQ(tp.full_slices, 10u);
  EXPECT_DOUBLE_EQ(tp.min, 0);
  EXPECT_DOUBLE_EQ(tp.max, 1000);
  EXPECT_DOUBLE_EQ(tp.mean, 700);
  EXPECT_LE(tp.min, tp.mean);
  EXPECT_LE(tp.mean, tp.max);
}

TEST(SoakReport, RunShorterThanOneSliceIsOneFigure) {
  Stats s = run_with_partial_tail(0, 0, 20);
  Throughput tp = throughput(s, 0.05);
  EXPECT_EQ(tp.full_slices, 0u);
  EXPECT_DOUBLE_EQ(tp.mean, 400);
  EXPECT_DOUBLE_EQ(tp.min, 400);
  EXPECT_DOUBLE_EQ(tp.max, 400);
  EXPECT_EQ(polyline(render_svg(result_of(s, 0.05)), "throughput").size(), 1u);
}

TEST(SoakReport, SvgThroughputLineLeavesThePartialLastSliceOut) {
  Stats s = run_with_partial_tail(10, 100, 5);
  std::string svg = render_svg(result_of(s, 1.03));
  auto points = polyline(svg, "throughput");
  ASSERT_EQ(points.size(), 10u) << "one point per full slice, none for the partial tail";
  for (const auto& [x, y] : points) EXPECT_DOUBLE_EQ(y, points.front().second) << "no drop";
  EXPECT_EQ(s.timeline.slices().size(), 11u) << "the tail is still in the timeline (JSON)";
}

TEST(SoakReport, SvgMarksThePlannedEndOnlyWhenThereIsOne) {
  Stats s = run_with_partial_tail(10, 100, 0);
  RunResult run = result_of(s, 3.0);  // a timed run that overran its 2 s plan
  run.config.duration_s = 2.0;
  std::string svg = render_svg(run);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, std::regex("class=\"planned-end\" x1=\"([0-9.]+)\"")))
      << svg;
  // The plot spans 0..3 s from x=90 to x=980: 2 s is two thirds of the way.
  EXPECT_NEAR(std::stod(m[1]), 90 + 890.0 * 2 / 3, 0.1);
  EXPECT_NE(svg.find("planned end"), std::string::npos);

  run.config.duration_s = 0;  // by request count: no planned time
  EXPECT_EQ(render_svg(run).find("planned-end"), std::string::npos);
}

TEST(SoakReport, SvgTitlesBothYAxes) {
  Stats s = run_with_partial_tail(10, 100, 0);
  std::string svg = render_svg(result_of(s, 1.0));
  std::regex label("<text class=\"y-label\"[^>]*>([^<]*)</text>");
  std::vector<std::string> labels;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), label); it != std::sregex_iterator();
       ++it) {
    labels.push_back((*it)[1]);
  }
  EXPECT_EQ(labels, (std::vector<std::string>{"throughput (requests/s)", "p99 latency"}));
}

TEST(SoakReloadPlan, SizedRunSpacesReloadsSoEachFitsBeforeTheNext) {
  // The demo's case: a reload takes 2.1 s and its window lasts 1 s after it.
  SizedPlan p = plan_sized_run(100, 1.0, 2.1, 1.0);
  EXPECT_DOUBLE_EQ(p.spacing_s, 6.2);
  EXPECT_DOUBLE_EQ(p.duration_s, 620);
  // The first reload (at the 1 s lead-in) ends before the second is due at 1.5 spacings, and each
  // reload as long as the first ends by the middle of its slot, so none waits for another.
  EXPECT_LT(1.0 + 2.1, 1.5 * p.spacing_s);
  EXPECT_LE(2.1 + 1.0, p.spacing_s / 2);
  // A quick reload: the lead-in bounds the spacing from below.
  SizedPlan quick = plan_sized_run(6, 1.0, 0.05, 0);
  EXPECT_DOUBLE_EQ(quick.spacing_s, 2.0);
  EXPECT_DOUBLE_EQ(quick.duration_s, 12.0);
}

TEST(SoakReport, SizedRunSaysSoInTextAndJson) {
  Stats s = run_with_partial_tail(10, 100, 0);
  RunResult run = result_of(s, 1.0);
  run.config.duration_s = 12;
  run.config.sized_to_reloads = true;
  EXPECT_NE(render_text(run).find("12.0 s planned (sized to the reloads)"), std::string::npos);
  EXPECT_EQ(render_json(run)["config"]["sized_to_reloads"], true);
}

}  // namespace
}  // namespace baton::soak

// render_svg: the run's timeline as an SVG image (throughput and p99 latency per time slice,
// reload windows and failures marked), for `baton soak --svg`. Text and JSON are in report.cc.
#include <algorithm>

#include <fmt/format.h>

#include "soak/report.h"

namespace baton::soak {
namespace {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

std::string render_svg(const RunResult& run) {
  const Stats& s = *run.stats;
  const auto& sl = s.timeline.slices();
  double slice_s = static_cast<double>(s.timeline.slice_ns()) / 1e9;
  const double planned_end = run.config.duration_s;  // 0 when the run was by request count
  double span =
      std::max({run.elapsed_s, static_cast<double>(sl.size()) * slice_s, planned_end, 0.001});
  const double width = 1000, left = 90, right = 20, plot_w = width - left - right;
  const double top1 = 60, h1 = 170, top2 = top1 + h1 + 40, h2 = 150, height = top2 + h2 + 70;
  auto x_of = [&](double t) { return left + plot_w * t / span; };

  // Throughput is drawn for the full slices only (see Throughput): the partial last one would
  // read as a drop. A run shorter than one slice is one point at its mean.
  const Throughput tp = throughput(s, run.elapsed_s);
  double max_rps = std::max(1.0, tp.max);
  uint64_t max_p99 = 1;
  for (const auto& slice : sl) max_p99 = std::max(max_p99, slice.latency.percentile(0.99));
  std::string o;
  o += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" font-family=\"sans-serif\" font-size=\"12\">\n",
      width, height);
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  Verdict v = judge(run);
  o += fmt::format(
      "<text x=\"{}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">baton soak {}: {} requests, "
      "{} failed, {} reloads</text>\n",
      left, xml_escape(run.config.url), grouped(s.requests()), grouped(s.failed()),
      run.reloads ? run.reloads->size() : 0);
  o += fmt::format("<text x=\"{}\" y=\"42\" fill=\"{}\">{}</text>\n", left,
                   v.exit_code == 0 ? "#1a7f37" : "#cf222e",
                   v.exit_code == 0 ? "PASS" : xml_escape("FAIL: " + v.reasons.front()));

  // Reload bands across both panels, drawn first so the data stays on top.
  if (run.reloads != nullptr) {
    for (const auto& rec : *run.reloads) {
      if (!rec.ran) continue;
      double x = x_of(rec.start_s);
      double w = std::max(1.5, x_of(rec.start_s + rec.duration_s) - x);
      o += fmt::format(
          "<rect class=\"reload\" x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" "
          "fill=\"{}\" fill-opacity=\"0.25\"><title>reload #{} at {:.2f} s, {:.2f} s: "
          "{}</title></rect>\n",
          x, top1, w, top2 + h2 - top1, rec.ok ? "#f0a500" : "#cf222e", rec.index + 1, rec.start_s,
          rec.duration_s, rec.ok ? "ok" : xml_escape(rec.error));
    }
  }
  // Panels: frames, and each y-axis titled with what it shows and its unit.
  for (auto [top, h, label] :
       {std::tuple{top1, h1, "throughput (requests/s)"}, std::tuple{top2, h2, "p99 latency"}}) {
    o += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n",
        left, top, plot_w, h);
    double cx = 16, cy = top + h / 2;
    o += fmt::format(
        "<text class=\"y-label\" x=\"{0}\" y=\"{1}\" transform=\"rotate(-90 {0} {1})\" "
        "text-anchor=\"middle\" fill=\"#444\">{2}</text>\n",
        cx, cy, label);
  }
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.0f}</text>\n", left - 4,
                   top1 + 10, max_rps);
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>\n", left - 4, top1 + h1);
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", left - 4, top2 + 10,
                   format_us(max_p99));
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>\n", left - 4, top2 + h2);
  o += fmt::format(
      "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">time since the "
      "start (s)</text>\n",
      left + plot_w / 2, top2 + h2 + 34);
  // The planned end: a run with reloads goes on until the last reload and its window are over,
  // and a run by request count has no planned time, so the line shows how far a run overran.
  if (planned_end > 0) {
    double x = x_of(planned_end);
    o += fmt::format(
        "<line class=\"planned-end\" x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" "
        "stroke=\"#444\" stroke-dasharray=\"4 3\"><title>planned end, {3:.1f} s</title></line>\n"
        "<text x=\"{0:.1f}\" y=\"{4}\" text-anchor=\"end\" fill=\"#444\">planned end </text>\n",
        x, top1, top2 + h2, planned_end, top1 + 12);
  }
  // Time axis.
  double step = 1;
  for (double candidate :
       {1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0}) {
    step = candidate;
    if (span / candidate <= 12) break;
  }
  for (double t = 0; t <= span + 1e-9; t += step) {
    o += fmt::format(
        "<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">{:g}s</text>\n", x_of(t),
        top2 + h2 + 16, t);
  }
  // Throughput polyline and p99 polyline, one point per slice (at its middle).
  std::string rps_points, p99_points;
  auto rps_point = [&](double t, double rps) {
    rps_points += fmt::format("{:.1f},{:.1f} ", x_of(t), top1 + h1 - h1 * rps / max_rps);
  };
  if (tp.full_slices == 0) rps_point(run.elapsed_s / 2, tp.mean);
  for (size_t i = 0; i < tp.full_slices; ++i) {
    uint64_t n = i < sl.size() ? sl[i].completed : 0;
    rps_point((static_cast<double>(i) + 0.5) * slice_s, static_cast<double>(n) / slice_s);
  }
  for (size_t i = 0; i < sl.size(); ++i) {
    double x = x_of((static_cast<double>(i) + 0.5) * slice_s);
    if (sl[i].latency.count() > 0) {
      double p99 = static_cast<double>(sl[i].latency.percentile(0.99));
      p99_points +=
          fmt::format("{:.1f},{:.1f} ", x, top2 + h2 - h2 * p99 / static_cast<double>(max_p99));
    }
  }
  o += fmt::format(
      "<polyline class=\"throughput\" points=\"{}\" fill=\"none\" stroke=\"#0969da\" "
      "stroke-width=\"1.5\"/>\n",
      rps_points);
  o += fmt::format(
      "<polyline class=\"p99\" points=\"{}\" fill=\"none\" stroke=\"#8250df\" "
      "stroke-width=\"1.5\"/>\n",
      p99_points);
  // Failures: a red mark at the top of the throughput panel for every slice with any.
  for (size_t i = 0; i < sl.size(); ++i) {
    if (sl[i].failed == 0 && sl[i].first_try_failed == 0) continue;
    double x0 = x_of(static_cast<double>(i) * slice_s);
    double w = std::max(2.0, x_of(static_cast<double>(i + 1) * slice_s) - x0);
    bool final_fail = sl[i].failed > 0;
    o += fmt::format(
        "<rect class=\"failure\" x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"10\" fill=\"{}\">"
        "<title>{:.1f}-{:.1f} s: {} failed, {} failed on first try</title></rect>\n",
        x0, top1 - 12, w, final_fail ? "#cf222e" : "#d4a72c", static_cast<double>(i) * slice_s,
        static_cast<double>(i + 1) * slice_s, sl[i].failed, sl[i].first_try_failed);
  }
  // Legend.
  double ly = height - 20;
  o += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"10\" fill=\"#f0a500\" "
      "fill-opacity=\"0.4\"/><text x=\"{}\" y=\"{}\">reload</text>\n",
      left, ly - 9, left + 16, ly);
  o += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"10\" fill=\"#cf222e\"/>"
      "<text x=\"{}\" y=\"{}\">failed requests (yellow: failed first try, retried)"
      "</text>\n",
      left + 80, ly - 9, left + 96, ly);
  o += fmt::format(
      "<text x=\"{}\" y=\"{}\" fill=\"#0969da\">throughput</text>"
      "<text x=\"{}\" y=\"{}\" fill=\"#8250df\">p99 latency (slice {:g} s)</text>\n",
      left + 420, ly, left + 510, ly, slice_s);
  o += "</svg>\n";
  return o;
}

}  // namespace baton::soak

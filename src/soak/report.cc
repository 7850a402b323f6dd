#include "soak/report.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace baton::soak {
namespace {

std::string errno_name(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : fmt::format("errno {}", err);
}

struct FailureLine {
  std::string label;
  uint64_t count;
};

// Final failures by kind, non-2xx split by status, "other" split by errno.
std::vector<FailureLine> failure_lines(const Stats& s) {
  std::vector<FailureLine> lines;
  for (size_t k = 0; k < kKindCount; ++k) {
    Kind kind = static_cast<Kind>(k);
    if (kind == Kind::kOk || s.final_kinds[k] == 0) continue;
    if (kind == Kind::kHttpStatus) {
      for (auto [status, n] : s.final_statuses) {
        std::string_view reason = status_reason(status);
        lines.push_back(
            {fmt::format("status {}{}{}", status, reason.empty() ? "" : " ", reason), n});
      }
    } else if (kind == Kind::kOther) {
      for (auto [err, n] : s.other_errnos) {
        lines.push_back({fmt::format("error {} ({})", errno_name(err), std::strerror(err)), n});
      }
    } else if (kind == Kind::kKeepaliveClosed) {
      lines.push_back(
          {"reused connection closed before the response (not retried)", s.final_kinds[k]});
    } else {
      lines.push_back({std::string(kind_label(kind)), s.final_kinds[k]});
    }
  }
  return lines;
}

nlohmann::json latency_json(const Histogram& h) {
  return {{"count", h.count()},          {"p50", h.percentile(0.5)},    {"p90", h.percentile(0.9)},
          {"p99", h.percentile(0.99)},   {"p999", h.percentile(0.999)}, {"max", h.max()},
          {"mean", std::round(h.mean())}};
}

std::string latency_row(const char* name, uint64_t requests, const Histogram& h) {
  if (h.count() == 0)
    return fmt::format("  {:<16}{:>10}   (no responses)\n", name, grouped(requests));
  return fmt::format("  {:<16}{:>10} {:>8} {:>8} {:>8} {:>8} {:>8}\n", name, grouped(requests),
                     format_us(h.percentile(0.5)), format_us(h.percentile(0.9)),
                     format_us(h.percentile(0.99)), format_us(h.percentile(0.999)),
                     format_us(h.max()));
}

struct ReloadSummary {
  int planned = 0, ran = 0, ok = 0, failed = 0, verified = 0;
  double p50 = 0, max = 0, max_late = 0;
};

ReloadSummary summarize_reloads(const RunResult& run) {
  ReloadSummary r;
  if (run.reloads == nullptr) return r;
  std::vector<double> durations;
  r.planned = static_cast<int>(run.reloads->size());
  for (const auto& rec : *run.reloads) {
    if (rec.ran) {
      ++r.ran;
      durations.push_back(rec.duration_s);
      r.max_late = std::max(r.max_late, rec.late_s);
    }
    if (rec.ok)
      ++r.ok;
    else
      ++r.failed;
    if (rec.verified) ++r.verified;
  }
  if (!durations.empty()) {
    std::sort(durations.begin(), durations.end());
    r.p50 = durations[(durations.size() - 1) / 2];
    r.max = durations.back();
  }
  return r;
}

}  // namespace

std::string grouped(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string format_us(uint64_t us) {
  if (us < 1000) return fmt::format("{}us", us);
  double v = static_cast<double>(us) / 1000.0;
  const char* unit = "ms";
  if (us >= 1'000'000) {
    v /= 1000.0;
    unit = "s";
  }
  if (v < 10) return fmt::format("{:.2f}{}", v, unit);
  if (v < 100) return fmt::format("{:.1f}{}", v, unit);
  return fmt::format("{:.0f}{}", v, unit);
}

size_t full_slices(const Stats& stats, double elapsed_s) {
  double width = static_cast<double>(stats.timeline.slice_ns()) / 1e9;
  if (elapsed_s <= 0 || width <= 0) return 0;
  // A hair of tolerance: a run of exactly 2.0 s has two full 1 s slices, whatever the rounding.
  return static_cast<size_t>(std::floor(elapsed_s / width + 1e-9));
}

Throughput throughput(const Stats& stats, double elapsed_s) {
  Throughput t;
  const auto& slices = stats.timeline.slices();
  double width = static_cast<double>(stats.timeline.slice_ns()) / 1e9;
  t.full_slices = full_slices(stats, elapsed_s);
  if (t.full_slices == 0) {
    // Shorter than one slice: one partial slice is all there is.
    double rps = elapsed_s > 0 ? static_cast<double>(stats.requests()) / elapsed_s : 0;
    t.mean = t.min = t.max = rps;
    return t;
  }
  // Slices past the last full one hold the tail of the run (in-flight requests finishing after
  // the load stopped starting new ones): left out of all three figures alike. A full slice with
  // no entry had no completions: 0/s.
  uint64_t sum = 0;
  for (size_t i = 0; i < t.full_slices; ++i) {
    uint64_t n = i < slices.size() ? slices[i].completed : 0;
    double rps = static_cast<double>(n) / width;
    t.min = i == 0 ? rps : std::min(t.min, rps);
    t.max = i == 0 ? rps : std::max(t.max, rps);
    sum += n;
  }
  t.mean = static_cast<double>(sum) / (width * static_cast<double>(t.full_slices));
  return t;
}

Verdict judge(const RunResult& run) {
  Verdict v;
  const Stats& s = *run.stats;
  if (s.failed() > run.config.max_failures) {
    v.reasons.push_back(fmt::format("{} failed requests (allowed: {})", grouped(s.failed()),
                                    grouped(run.config.max_failures)));
  }
  ReloadSummary r = summarize_reloads(run);
  if (r.failed > 0)
    v.reasons.push_back(fmt::format("{} of {} reloads failed", r.failed, r.planned));
  if (s.requests() == 0) v.reasons.emplace_back("no request completed");
  v.exit_code = v.reasons.empty() ? 0 : 1;
  return v;
}

std::string render_text(const RunResult& run) {
  const Stats& s = *run.stats;
  const RunConfig& c = run.config;
  std::string out;
  std::string mode =
      c.rate > 0 ? fmt::format("open loop at {:g} req/s", c.rate) : "as fast as possible";
  out += fmt::format("baton soak  {}\n  {} connections, {} threads, {}, {}\n", c.url, c.connections,
                     c.threads, c.keep_alive ? "keep-alive" : "new connection per request", mode);
  std::string planned = c.duration_s > 0 ? fmt::format("{:.1f} s planned", c.duration_s)
                                         : fmt::format("{} requests planned", grouped(c.requests));
  if (c.sized_to_reloads) {
    planned = c.duration_s > 0 ? planned + " (sized to the reloads)"
                               : "sized to the reloads, ended before the first";
  }
  out += fmt::format("  {}, {:.1f} s elapsed{}\n\n", planned, run.elapsed_s,
                     run.interrupted ? " (interrupted)" : "");

  uint64_t total = s.requests();
  uint64_t ok = s.final_kinds[static_cast<size_t>(Kind::kOk)];
  Throughput tp = throughput(*run.stats, run.elapsed_s);
  out += fmt::format("requests   {:>12}   {:.0f}/s\n", grouped(total), tp.mean);
  out += fmt::format("  ok       {:>12}   {:.3f}%\n", grouped(ok),
                     total ? 100.0 * static_cast<double>(ok) / static_cast<double>(total) : 0.0);
  out += fmt::format("  failed   {:>12}\n", grouped(s.failed()));
  for (const auto& line : failure_lines(s)) {
    out += fmt::format("    {:>10}  {}\n", grouped(line.count), line.label);
  }
  uint64_t ka_first = s.first_kinds[static_cast<size_t>(Kind::kKeepaliveClosed)];
  // With keep-alive and retries, the first try is what a client that never retries (a load
  // balancer, a POST) would have seen: always shown, 0 included.
  if ((c.keep_alive && c.retry) || ka_first > 0 || s.first_try_failed() != s.failed()) {
    out += fmt::format(
        "  first try: {} failed ({} on a reused keep-alive connection the server "
        "closed); after one retry: {} failed\n",
        grouped(s.first_try_failed()), grouped(ka_first), grouped(s.failed()));
  }
  ReloadSummary r = summarize_reloads(run);
  if (r.planned > 0) {
    out += fmt::format("\nreloads    {} of {} ok", r.ok, r.planned);
    if (r.verified > 0) out += fmt::format(", {} verified", r.verified);
    if (r.ran > 0) out += fmt::format("   duration p50 {:.2f} s, max {:.2f} s", r.p50, r.max);
    if (r.max_late > 0.05) out += fmt::format(", started up to {:.1f} s late", r.max_late);
    out += "\n";
    int shown = 0;
    for (const auto& rec : *run.reloads) {
      if (rec.ok) continue;
      if (++shown > 10) {
        out += fmt::format("    ... and {} more failed reloads (see --json)\n", r.failed - 10);
        break;
      }
      if (rec.ran) {
        out += fmt::format("    #{} at {:.1f} s: {}\n", rec.index + 1, rec.start_s, rec.error);
      } else {
        out += fmt::format("    #{}: {}\n", rec.index + 1, rec.error);
      }
    }
  }
  out += fmt::format("\nlatency    {:>16} {:>8} {:>8} {:>8} {:>8} {:>8}\n", "requests", "p50",
                     "p90", "p99", "p99.9", "max");
  out += latency_row("overall", total, s.latency);
  if (r.planned > 0) {
    out += latency_row("reload windows", s.window_requests, s.window_latency);
    if (s.window_failed > 0) {
      out += fmt::format("    {} of the failed requests ended during a reload window\n",
                         grouped(s.window_failed));
    }
  }
  double slice_s = static_cast<double>(s.timeline.slice_ns()) / 1e9;
  out += fmt::format(
      "\nthroughput mean {:.0f}/s, min {:.0f}/s, max {:.0f}/s (per {:g} s slice, {} "
      "full slices)\n",
      tp.mean, tp.min, tp.max, slice_s, tp.full_slices);
  Verdict v = judge(run);
  if (v.exit_code == 0) {
    out += fmt::format("\nPASS: {} failed requests of {}", grouped(s.failed()), grouped(total));
    if (r.planned > 0) out += fmt::format(", {} of {} reloads ok", r.ok, r.planned);
    out += "\n";
  } else {
    out += "\nFAIL:";
    for (size_t i = 0; i < v.reasons.size(); ++i) out += (i ? "; " : " ") + v.reasons[i];
    out += "\n";
  }
  return out;
}

nlohmann::json render_json(const RunResult& run) {
  const Stats& s = *run.stats;
  const RunConfig& c = run.config;
  Verdict v = judge(run);
  nlohmann::json j;
  j["version"] = 1;
  j["verdict"] = v.exit_code == 0 ? "pass" : "fail";
  j["exit_code"] = v.exit_code;
  j["reasons"] = v.reasons;
  j["config"] = {{"url", c.url},
                 {"connections", c.connections},
                 {"threads", c.threads},
                 {"keep_alive", c.keep_alive},
                 {"rate", c.rate},
                 {"duration_s", c.duration_s},
                 {"requests", c.requests},
                 {"reloads", c.reloads},
                 {"reload_command", c.reload_command},
                 {"max_failures", c.max_failures},
                 {"retry", c.retry},
                 {"sized_to_reloads", c.sized_to_reloads}};
  j["elapsed_s"] = run.elapsed_s;
  j["interrupted"] = run.interrupted;
  j["requests"] = {{"total", s.requests()}, {"ok", s.final_kinds[static_cast<size_t>(Kind::kOk)]},
                   {"failed", s.failed()},  {"first_try_failed", s.first_try_failed()},
                   {"retried", s.retries},  {"connections", s.connections}};
  nlohmann::json failures = nlohmann::json::object(), first = nlohmann::json::object();
  for (size_t k = 0; k < kKindCount; ++k) {
    Kind kind = static_cast<Kind>(k);
    if (kind == Kind::kOk) continue;
    failures[std::string(kind_name(kind))] = s.final_kinds[k];
    first[std::string(kind_name(kind))] = s.first_kinds[k];
  }
  j["failures"] = failures;
  j["first_try"] = first;
  nlohmann::json statuses = nlohmann::json::object(), errnos = nlohmann::json::object();
  for (auto [st, n] : s.final_statuses) statuses[std::to_string(st)] = n;
  for (auto [e, n] : s.other_errnos) errnos[errno_name(e)] = n;
  j["statuses"] = statuses;
  j["errnos"] = errnos;
  nlohmann::json windows = latency_json(s.window_latency);
  windows["requests"] = s.window_requests;
  windows["failed"] = s.window_failed;
  j["latency_us"] = {{"overall", latency_json(s.latency)}, {"reload_windows", windows}};
  Throughput tp = throughput(*run.stats, run.elapsed_s);
  j["throughput"] = {{"mean_rps", std::round(tp.mean)},
                     {"min_rps", std::round(tp.min)},
                     {"max_rps", std::round(tp.max)}};
  ReloadSummary r = summarize_reloads(run);
  nlohmann::json list = nlohmann::json::array();
  if (run.reloads != nullptr) {
    for (const auto& rec : *run.reloads) {
      list.push_back({{"index", rec.index + 1},
                      {"due_s", rec.due_s},
                      {"start_s", rec.start_s},
                      {"duration_s", rec.duration_s},
                      {"late_s", rec.late_s},
                      {"ran", rec.ran},
                      {"ok", rec.ok},
                      {"verified", rec.verified},
                      {"before", rec.before},
                      {"after", rec.after},
                      {"error", rec.error}});
    }
  }
  j["reloads"] = {{"planned", r.planned},
                  {"ok", r.ok},
                  {"failed", r.failed},
                  {"duration_s", {{"p50", r.p50}, {"max", r.max}}},
                  {"list", list}};
  nlohmann::json slices = nlohmann::json::array();
  double slice_s = static_cast<double>(s.timeline.slice_ns()) / 1e9;
  const auto& sl = s.timeline.slices();
  for (size_t i = 0; i < sl.size(); ++i) {
    slices.push_back({{"t", static_cast<double>(i) * slice_s},
                      {"requests", sl[i].completed},
                      {"ok", sl[i].ok},
                      {"failed", sl[i].failed},
                      {"first_try_failed", sl[i].first_try_failed},
                      {"p99_us", sl[i].latency.percentile(0.99)}});
  }
  j["timeline"] = {{"slice_s", slice_s}, {"slices", slices}};
  return j;
}

}  // namespace baton::soak

// report.h: the results of a soak run, for a person (text), a program (JSON) and a browser (SVG).
//
// JSON schema, version 1 (stable keys; added keys do not bump the version):
//   {"version":1, "verdict":"pass"|"fail", "exit_code":0|1, "reasons":[...],
//    "config":{"url","connections","threads","keep_alive","rate","duration_s","requests",
//              "reloads","reload_command","max_failures","retry","sized_to_reloads"},
//    "elapsed_s", "requests":{"total","ok","failed","first_try_failed","retried","connections"},
//    "failures":{kind name: count...} (final outcomes, kind names from outcome.h),
//    "first_try":{kind name: count...}, "statuses":{"503": count...}, "errnos":{"EADDRNOTAVAIL":n},
//    "latency_us":{"overall":{"count","p50","p90","p99","p999","max","mean"},
//                  "reload_windows":{... same, plus "requests","failed"}},
//    "throughput":{"mean_rps","min_rps","max_rps"},
//    "reloads":{"planned","ok","failed","duration_s":{"p50","max"},
//               "list":[{"index","due_s","start_s","duration_s","late_s","ok","verified",
//                        "before","after","error"}]},
//    "timeline":{"slice_s", "slices":[{"t","requests","ok","failed","first_try_failed",
//                                      "p99_us"}]}}
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "soak/reload.h"
#include "soak/stats.h"

namespace baton::soak {

struct RunConfig {
  std::string url;
  int connections = 0;
  int threads = 0;
  bool keep_alive = true;
  double rate = 0;
  double duration_s = 0;          // planned; 0 when --requests
  bool sized_to_reloads = false;  // duration_s came from the first reload (plan_sized_run)
  uint64_t requests = 0;          // planned; 0 when --duration
  int reloads = 0;
  std::string reload_command;
  uint64_t max_failures = 0;
  bool retry = true;
};

struct RunResult {
  RunConfig config;
  double elapsed_s = 0;
  Stats* stats = nullptr;
  const std::vector<ReloadTrial>* reloads = nullptr;
  bool interrupted = false;
};

struct Verdict {
  int exit_code = 0;  // 0 pass, 1 fail
  std::vector<std::string> reasons;
};
Verdict judge(const RunResult& run);

std::string render_text(const RunResult& run);
nlohmann::json render_json(const RunResult& run);
std::string render_svg(const RunResult& run);

// Requests per second per time slice of the timeline. Only full slices count, for all three
// figures alike (so min <= mean <= max): the last, partial slice holds the tail of the run,
// in-flight requests finishing after the load stopped, and would read as a drop. A run shorter than
// one slice gives total / elapsed for all three.
struct Throughput {
  double mean = 0, min = 0, max = 0;
  size_t full_slices = 0;
};
Throughput throughput(const Stats& stats, double elapsed_s);
// How many slices of the timeline lie wholly within `elapsed_s`.
size_t full_slices(const Stats& stats, double elapsed_s);

// "1.2ms", "850us", "2.41s": latency in microseconds, 3 significant digits.
std::string format_us(uint64_t us);
// 1234567 -> "1,234,567": counts are read at a glance.
std::string grouped(uint64_t n);

}  // namespace baton::soak

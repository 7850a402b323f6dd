// reload.h: the restarts of a soak run: when they happen, how they run, how they are verified.
//
// Reload i (0-based, of N) is due when the run is (i + 0.5) / N done, by time (--duration) or by
// requests started (--requests); a reload that is late because the previous one ran long starts
// as soon as that one ends, and its lateness is recorded. With neither (size_to_reloads), the run
// is sized to its reloads: the first starts after `lead_in` of load, and its duration sets the
// plan of the rest (plan_sized_run). Each runs in a child process in its own
// process group (killed whole on --reload-timeout):
//   default: `<this baton> reload --wait [--control PATH]`, verified by `baton status --json`:
//     serving_generation must change (the supervisor's status schema, version 1);
//   --reload-cmd CMD: `/bin/sh -c CMD`, exit status 0 is success; with --verify-header NAME the
//     reloader GETs the URL on a fresh connection before and after, and the header's value must
//     change (e.g. X-Pid: a new process answers) within verify_timeout of the command's end (a
//     command may return while the old process still answers); without it, "unverified".
// While a reload runs, and for `window_after` past its end, completed requests count in the
// reload windows (see LoadGenerator).
//
// Thread safety: a Reloader runs its own thread; records() after join().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "baton/result.h"
#include "common/address.h"
#include "soak/url.h"

namespace baton::soak {

// One reload soak asks for under load, as planned and as it went: a trial of the supervisor's
// reload (whose own record of it is supervisor_core.h's ReloadRecord).
struct ReloadTrial {
  int index = 0;
  double due_s = -1;      // planned start (seconds since the run began); -1: by request count
  double start_s = 0;     // actual start
  double duration_s = 0;  // of the reload command
  double late_s = 0;      // start - due, when due_s is known
  bool ran = false;
  bool ok = false;
  bool verified = false;
  std::string before;  // generation or header value before, "" when not checked
  std::string after;
  std::string error;  // why it failed, one line
};

struct ReloadOptions {
  int count = 0;
  std::string command;        // custom shell command; empty: baton reload
  std::string control;        // --control for the default command ("" = baton's default)
  std::string baton_path;     // the baton executable for the default command
  std::string verify_header;  // custom commands: header whose value must change
  Address address;            // where the --verify-header spot checks go
  Url url;
  std::chrono::nanoseconds timeout = std::chrono::seconds(120);
  std::chrono::nanoseconds verify_timeout = std::chrono::seconds(10);
  std::chrono::nanoseconds window_after = std::chrono::seconds(1);
  bool size_to_reloads = false;  // no planned duration: plan_sized_run after the first reload
  std::chrono::nanoseconds lead_in = std::chrono::seconds(1);
};

// The plan of a run sized to its reloads, from how long the first one took: a reload every
// 2 × (first reload + window), at least 2 × lead-in. So about half of the run lies outside the
// reload windows (the overall-versus-window comparison means something), and a reload that takes
// as long as the first never waits for the one before it. Reload i is due at (i + 0.5) × spacing
// (the first, already done, came at the lead-in, within its half slot); the run is planned to
// last count × spacing.
struct SizedPlan {
  double spacing_s = 0;
  double duration_s = 0;
};
SizedPlan plan_sized_run(int count, double lead_in_s, double first_reload_s, double window_s);

// Result of one child command.
struct CommandOutcome {
  int exit_code = -1;  // 128+signal when killed by one; -1 when it could not start
  bool timed_out = false;
  std::string output;  // stdout+stderr, the last `keep_output` bytes
  std::string error;   // when it could not start
};

// Runs argv (argv[0] a path or a name looked up in PATH) in its own process group, with
// stdin from /dev/null, capturing the last `keep_output` bytes of its output; the group is killed
// on timeout.
CommandOutcome run_command(const std::vector<std::string>& argv, std::chrono::nanoseconds timeout,
                           size_t keep_output = 4096);

// The value of serving_generation in `baton status --json` output, or an error naming the problem.
Result<long long> parse_serving_generation(const std::string& status_json);

// For a simple command ("prog args", no shell syntax): an error when prog cannot be found or run.
// Commands using shell syntax are not checked (the shell reports them at run time).
Status check_command_exists(const std::string& command);

class Reloader {
 public:
  // `fraction_done`: how far the run is, 0..1 (time or requests); `planned_duration_s`: 0 when the
  // run is by request count; `window_until_ns`: moved as reloads start and end.
  Reloader(ReloadOptions options, std::function<double()> fraction_done, double planned_duration_s,
           std::atomic<int64_t>* window_until_ns);
  ~Reloader();

  // Checks, before the run, that reloads can be verified: for the default command, that
  // `baton status` answers with a serving generation; with --verify-header, that the server's
  // response carries the header. Errors are for the user, one line.
  Status preflight();
  // Starts the reload thread; `start_ns` is time 0 of the run.
  void start(int64_t start_ns);
  // Stops after the current reload; reloads not yet started are recorded as not run.
  void stop();
  void join();
  bool finished() const { return finished_.load(); }
  // The planned duration of the run in seconds: as given, or, for a run sized to its reloads, 0
  // until the first reload is done.
  double planned_duration_s() const { return planned_duration_s_.load(); }
  int done_count() const { return done_.load(); }
  int failed_count() const { return failed_.load(); }
  std::vector<ReloadTrial>& records() { return records_; }

 private:
  void run();
  void plan_evenly(double duration_s);
  void reload_once(ReloadTrial& r);
  Result<std::string> observe(bool wait_for_answer);  // generation or header value

  ReloadOptions options_;
  std::function<double()> fraction_done_;
  int64_t start_ns_ = 0;
  std::atomic<double> planned_duration_s_;
  std::atomic<int64_t>* window_until_ns_;
  std::vector<ReloadTrial> records_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<bool> finished_{false};
  std::atomic<int> done_{0};
  std::atomic<int> failed_{0};
};

}  // namespace baton::soak

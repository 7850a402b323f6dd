// supervisor_core.h: the supervisor's state machine, free of I/O.
//
// The invariant, kept by every event handler below:
//   at most one generation is starting (not yet proven ready); at most one is serving; the
//   serving one is replaced only by a generation that has been proven ready; a generation that
//   fails before it is ready is killed and the serving one is left untouched.
//   A generation replaced at a switch first quiesces (--drain=watch): it gets the drain signal
//   only once it is seen quiet from outside (accept queues empty, no connection held), or at once
//   when it cannot be watched; the drain deadline, counted from the switch, ends it either way.
//   It is looked at only while it quiesces, every drain_poll.
//   With --hold-old, the replaced generation is first held: it gets no new connection and no
//   signal for hold_old; if its replacement exits meanwhile it serves again at once (new
//   connections switched back) and the reload fails; else it then drains as above.
//   A generation ends when its main process exits, and what is left of its process group is
//   killed then; with --drain-signal-group, a draining one whose group was signalled ends when
//   its group is empty (each orphan reaped is the event), or is killed at the drain deadline
//   (the part about groups lives in supervisor_core_groups.cc).
//   A canary reload (reload --canary P --canary-for D) holds the replaced generation the same way
//   for D, but it keeps receiving (100-P)% of new connections and the new one P%; at the end of
//   the window every new connection goes to the new one and the old one drains. A failure of the
//   new one in the window rolls back as above; an exit of the old one ends the window at once.
//
// The core is driven by events (reload asked, generation ready, process exited, stop asked, time
// passed) and acts through the SupervisorOs interface (spawn, signal, reply, log). The I/O shell
// (supervisor.cc) feeds it real events; the unit tests feed it scripted ones.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "baton/result.h"
#include "supervisor/duration_histogram.h"
#include "supervisor/log.h"

namespace baton {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = std::chrono::milliseconds;

enum class GenerationState { kStarting, kServing, kHeld, kDraining, kExited };
const char* to_string(GenerationState state);
double seconds(std::chrono::milliseconds d);  // for messages: 1500 ms is 1.5

struct Generation {
  int id = 0;  // 1, 2, 3...: BATON_GENERATION
  int pid = -1;
  GenerationState state = GenerationState::kStarting;
  TimePoint started_at{};
  std::optional<TimePoint> ready_at;
  std::optional<TimePoint> drain_started_at;
  std::optional<TimePoint> exited_at;
  std::optional<int> wait_status;  // raw waitpid status once exited
  bool killed = false;             // SIGKILLed by baton (failed start, drain deadline, stop)
  bool quiescing = false;          // draining, watched until quiet; not signalled yet
  bool group_lingers = false;      // draining: its main process exited, the rest of its group has
                                   // the drain signal too and is waited for (--drain-signal-group)
  std::string status_text;         // last STATUS= from the app
  bool canary_window = false;      // held while its successor is a canary (the window is the hold)
  TimePoint deadline{};  // ready deadline while starting, end of the hold while held, drain
                         // deadline while draining
};

// What a reload came to; sent to every client waiting on it.
struct ReloadOutcome {
  bool ok = false;
  std::string message;      // one line: what happened
  std::string output_tail;  // on failure: the last output of the generation that failed
  int generation = 0;       // the generation that serves afterwards (0: none)
};

using WaiterId = std::uint64_t;
struct CoreOptions;

// How an old generation is drained after the switch.
enum class DrainMode {
  kWatch,   // watched from outside until quiet, then signalled (apps that die on the signal)
  kSignal,  // signalled at once (apps that drain well themselves)
};

// What a look at a quiescing generation found.
enum class QuietCheck {
  kQuiet,        // accept queues empty, no connection held: signal it now
  kBusy,         // still has work: look again later
  kUnwatchable,  // it shares its listeners (or cannot be looked at): signal it now
};

// The OS boundary of the core.
class SupervisorOs {
 public:
  virtual ~SupervisorOs() = default;
  virtual TimePoint now() = 0;
  // Starts generation `id`; returns its main pid. Readiness detection for it starts too, and
  // ends in SupervisorCore::on_ready(id).
  virtual Result<int> spawn(int id) = 0;
  // New connections go to `g` from now on (it has just become serving). Called before the
  // generation it replaces is told anything, so the old one stops receiving new connections
  // while it still accepts (see docs/steering.md).
  virtual void switch_to(const Generation& /*g*/) {}
  // `percent` of new connections (by flow) to generation `g`, the rest to generation `old`.
  virtual void canary_to(const Generation& g, const Generation& /*old*/, int /*percent*/) {
    switch_to(g);
  }
  // Sends `sig` to the generation's main process.
  virtual void signal(const Generation& g, int sig) = 0;
  // Sends `sig` to the generation's whole process group (--drain-signal-group).
  virtual void signal_group(const Generation& g, int sig) = 0;
  // Some process of the generation's group is left, its main process being gone (the shell
  // reaps the group's orphans itself, so a lingering group keeps its id until then).
  virtual bool group_has_members(const Generation& /*g*/) { return false; }
  // A warning about how the ready generation `g` runs its server ("" when none): a main process
  // that is a shell with children gets the drain signal in the server's stead.
  virtual std::string wrapper_warning(const Generation& /*g*/) { return {}; }
  // SIGKILLs the generation's whole process group.
  virtual void kill_group(const Generation& g) = 0;
  // The last output of a generation, for failure reports.
  virtual std::string output_tail(int id) = 0;
  // Called before a reload's generation is spawned: the shell takes in what may have changed
  // since the last one (config file, env file) and may update `options` (the timeouts). An error
  // fails the reload with that reason: nothing is spawned and the serving generation stays.
  virtual Status prepare_reload(CoreOptions& /*options*/) { return {}; }
  // What the shell knows of why generation `id` did not become ready ("" when nothing).
  virtual std::string failure_hint(int /*id*/) { return {}; }
  // And why generation `id` exited before it was ready, when its output or what it did says
  // more than its exit status ("" when nothing).
  virtual std::string exit_hint(int /*id*/) { return {}; }
  // Looks at a quiescing generation from outside (drain_watch.h), closing its idle keep-alive
  // connections. A generation whose listeners are shared with its successor keeps taking
  // connections, so it is kUnwatchable, as is everything when the shell cannot look at all.
  virtual QuietCheck check_quiet(const Generation& /*g*/) { return QuietCheck::kUnwatchable; }
  virtual void reply(WaiterId waiter, const ReloadOutcome& outcome) = 0;
  // One line for the operator (stderr in the real shell, formatted by log.h), at a level.
  virtual void log(LogLevel level, const std::string& line) = 0;
  void log(const std::string& line) { log(LogLevel::kInfo, line); }
  // Every generation is gone after a stop (code 0) or the first start failed (code 1).
  virtual void finished(int exit_code) = 0;
};

// A canary reload: the new generation gets `percent` of new connections for `window`.
struct Canary {
  int percent = 0;  // 1-99
  Duration window{0};
};

struct CoreOptions {
  Duration ready_timeout{60'000};
  Duration drain_timeout{30'000};
  int drain_signal = 15;            // SIGTERM
  bool drain_signal_group = false;  // the drain signal to the whole process group
  int max_draining = 4;             // reloads are refused while this many generations still drain
  DrainMode drain_mode = DrainMode::kWatch;
  Duration drain_poll{25};  // how often a quiescing generation is looked at
  Duration hold_old{0};     // --hold-old: how long a replaced generation is held (0: not held)
  Duration restart_backoff_min{100};
  Duration restart_backoff_max{30'000};
  std::string readiness;  // how readiness is proven, for log lines ("notify", "http:/healthz")
};

struct Counters {
  std::uint64_t reloads_ok = 0;
  std::uint64_t reloads_failed = 0;
  std::uint64_t reloads_coalesced = 0;
  std::uint64_t crashes = 0;      // serving generation exited on its own
  std::uint64_t drain_kills = 0;  // draining generation killed at the deadline
  std::uint64_t generations_started = 0;
  DurationHistogram ready_time;   // start to proven ready, of every generation that got there
  DurationHistogram reload_time;  // request to end, of every reload that ran (ok or failed)
};

struct ReloadRecord {
  int id = 0;
  bool in_progress = false;
  bool ok = false;
  std::string message;
  TimePoint requested_at{};
  std::optional<TimePoint> finished_at;
};

// What the core carries across an in-place upgrade of baton (upgrade_state.h): everything but the
// OS it acts through and the timers that restore() derives again. Taken only when
// upgrade_refusal() is empty: then no generation is starting or held, no reload is queued and no
// restart is scheduled, so what is left to carry is the generations (draining ones with their
// deadlines), the reloads waiting for an old generation's exit, the counters and the records.
struct CoreSnapshot {
  std::deque<Generation> generations;
  int next_id = 1;
  int next_reload_id = 1;
  struct Completing {  // a reload whose generation serves, completed by the exit of `replaced`
    int generation = 0;
    int purpose = 1;  // 0 initial, 1 reload, 2 restart
    int replaced = 0;
    int reload_id = 0;
    std::vector<WaiterId> waiters;
  };
  std::vector<Completing> completing;
  Counters counters;
  std::optional<ReloadRecord> last_reload;
  std::optional<ReloadRecord> last_failed_reload;
  Duration backoff{0};
  bool warned_wrapper = false;
};

class SupervisorCore {
 public:
  SupervisorCore(SupervisorOs& os, CoreOptions options);

  // Events.
  void start();                                   // the first generation
  void on_reload(std::optional<WaiterId> waiter,  // control socket or SIGHUP
                 std::optional<Canary> canary = std::nullopt);
  void on_ready(int id);                          // proof of readiness arrived
  void on_exit(int pid, int wait_status);         // a generation's main process was reaped
  void on_status_text(int id, std::string text);  // STATUS= from the app
  void on_stop();                                 // baton stop, SIGTERM, SIGINT
  void on_tick();                                 // time passed; handles deadlines
  void on_waiter_gone(WaiterId waiter);           // a waiting client hung up

  // When on_tick() next has work, if ever.
  std::optional<TimePoint> next_deadline() const;

  // Observers, for status.
  const std::deque<Generation>& generations() const { return generations_; }
  const Generation* serving() const;
  const Generation* starting() const;
  const Generation* find(int id) const;
  const Generation* find_pid(int pid) const;
  const Counters& counters() const { return counters_; }
  const std::optional<ReloadRecord>& last_reload() const { return last_reload_; }
  // The last reload that failed, kept however many reloads succeeded since.
  const std::optional<ReloadRecord>& last_failed_reload() const { return last_failed_reload_; }
  bool stopping() const { return stopping_; }
  const CoreOptions& options() const { return options_; }

  // Upgrade (supervisor_core_upgrade.cc). Why the state cannot be carried across an upgrade now,
  // in one line for the operator; nullopt when it can.
  std::optional<std::string> upgrade_refusal() const;
  CoreSnapshot snapshot() const;
  // Takes over `s` instead of start(): the upgraded supervisor's core, before any event. The
  // drain deadlines are kept as they were; a quiescing generation is looked at after drain_poll.
  void restore(CoreSnapshot s);

 private:
  enum class Purpose { kInitial, kReload, kRestart };
  // A generation being started, and who waits for its outcome.
  struct Attempt {
    int generation = 0;
    Purpose purpose = Purpose::kReload;
    std::vector<WaiterId> waiters;
    int replaced = 0;  // the generation it put into drain, whose exit completes the reload
    int reload_id = 0;
    std::optional<Canary> canary;
  };

  Generation* find_mutable(int id);
  void start_generation(Purpose purpose, std::vector<WaiterId> waiters);
  void fail_attempt(const std::string& reason);
  void finish_attempt(const Attempt& attempt, const std::string& message);
  void end_reload(int reload_id, bool ok, const std::string& message);
  // Puts `g` into drain. After a switch, in watch mode, it quiesces first; otherwise (a failed
  // start, a stop) it is signalled at once, since nothing else would take its traffic.
  void drain(Generation& g, bool after_switch);
  void send_drain_signal(Generation& g, const std::string& why);
  // The main process of `g` exited (`wait_status`); `kill_rest`: SIGKILL what is left of its group.
  void ended(Generation& g, int wait_status, bool kill_rest);
  // supervisor_core_groups.cc: whether `g`, whose main process has just exited, is a draining
  // generation whose signalled group lives on (then it stays draining, group_lingers); and,
  // after any other process was reaped, ends the lingering generations whose group is empty.
  bool keep_group_draining(Generation& g, int wait_status);
  void settle_lingering_groups();
  void warn_about_wrapper(const Generation& g);
  void check_quiescing();
  void hold(Generation& g, Duration how_long, const std::optional<Canary>& canary);
  void roll_back(Generation& held, int failed_id, const std::string& how);
  void end_canary_window(Generation& g, const std::string& why);
  void schedule_restart();
  void on_reload_pending();
  void maybe_finish();
  int draining_count() const;
  void prune();
  std::string seconds_since(TimePoint t);

  SupervisorOs& os_;
  CoreOptions options_;
  std::deque<Generation> generations_;
  int next_id_ = 1;
  int next_reload_id_ = 1;
  std::optional<Attempt> attempt_;   // the starting generation, if any
  std::vector<Attempt> completing_;  // ready, waiting for the generation they replaced to exit
  std::vector<WaiterId> pending_waiters_;  // reloads asked while one was in progress
  bool reload_pending_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  int exit_code_ = 0;
  std::optional<TimePoint> restart_at_;
  std::optional<TimePoint> quiet_check_at_;  // next look at the quiescing generations
  bool warned_wrapper_ = false;              // the shell-wrapper warning is given once
  Duration backoff_;
  Counters counters_;
  std::optional<ReloadRecord> last_reload_;
  std::optional<ReloadRecord> last_failed_reload_;
};

}  // namespace baton

#include "supervisor/supervisor_core.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>

#include <fmt/format.h>

namespace baton {
namespace {

// Exited generations kept for `baton status`.
constexpr size_t kKeptExited = 16;
// A generation that served this long before crashing restarts after the shortest backoff.
constexpr Duration kStableRun{60'000};

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return fmt::format("was killed by SIG{}", name != nullptr ? name : "?");
  }
  return fmt::format("ended with wait status {}", status);
}

}  // namespace

double seconds(Duration d) { return static_cast<double>(d.count()) / 1000.0; }

const char* to_string(GenerationState state) {
  switch (state) {
    case GenerationState::kStarting:
      return "starting";
    case GenerationState::kServing:
      return "serving";
    case GenerationState::kHeld:
      return "held";
    case GenerationState::kDraining:
      return "draining";
    case GenerationState::kExited:
      return "exited";
  }
  return "?";
}

SupervisorCore::SupervisorCore(SupervisorOs& os, CoreOptions options)
    : os_(os), options_(std::move(options)), backoff_(options_.restart_backoff_min) {}

std::string SupervisorCore::seconds_since(TimePoint t) {
  return fmt::format("{:.2f}s", seconds(std::chrono::duration_cast<Duration>(os_.now() - t)));
}

Generation* SupervisorCore::find_mutable(int id) {
  for (auto& g : generations_) {
    if (g.id == id) return &g;
  }
  return nullptr;
}

const Generation* SupervisorCore::find(int id) const {
  return const_cast<SupervisorCore*>(this)->find_mutable(id);
}

const Generation* SupervisorCore::find_pid(int pid) const {
  for (const auto& g : generations_) {
    if (g.pid == pid && g.state != GenerationState::kExited) return &g;
  }
  return nullptr;
}

const Generation* SupervisorCore::serving() const {
  for (const auto& g : generations_) {
    if (g.state == GenerationState::kServing) return &g;
  }
  return nullptr;
}

const Generation* SupervisorCore::starting() const {
  return attempt_ ? find(attempt_->generation) : nullptr;
}

int SupervisorCore::draining_count() const {
  return static_cast<int>(std::count_if(generations_.begin(), generations_.end(), [](auto& g) {
    return g.state == GenerationState::kDraining || g.state == GenerationState::kHeld;
  }));
}

void SupervisorCore::start() { start_generation(Purpose::kInitial, {}); }

void SupervisorCore::start_generation(Purpose purpose, std::vector<WaiterId> waiters) {
  if (purpose == Purpose::kReload) {
    if (auto prepared = os_.prepare_reload(options_); !prepared) {
      const int reload_id = next_reload_id_++;
      last_reload_ = ReloadRecord{reload_id, true, false, "", os_.now(), std::nullopt};
      const Generation* keeps = serving();
      std::string text = prepared.error().what();
      if (keeps != nullptr) text += fmt::format("; generation {} keeps serving", keeps->id);
      end_reload(reload_id, false, text);
      for (auto w : waiters) os_.reply(w, ReloadOutcome{false, text, "", keeps ? keeps->id : 0});
      return;
    }
  }
  Generation g;
  g.id = next_id_++;
  g.started_at = os_.now();
  g.deadline = g.started_at + options_.ready_timeout;
  Attempt attempt{g.id, purpose, std::move(waiters), 0, 0};
  if (purpose == Purpose::kReload) {
    attempt.reload_id = next_reload_id_++;
    last_reload_ = ReloadRecord{attempt.reload_id, true, false, "", g.started_at, std::nullopt};
  }
  ++counters_.generations_started;
  auto pid = os_.spawn(g.id);
  if (!pid) {
    g.state = GenerationState::kExited;
    g.exited_at = g.started_at;
    generations_.push_back(g);
    attempt_ = std::move(attempt);
    fail_attempt(fmt::format("generation {} could not be started: {}", g.id, pid.error().what()));
    return;
  }
  g.pid = *pid;
  generations_.push_back(g);
  attempt_ = std::move(attempt);
  os_.log(fmt::format("generation {} (pid {}) started; waiting up to {:g}s for readiness ({})",
                      g.id, g.pid, seconds(options_.ready_timeout), options_.readiness));
}

void SupervisorCore::on_reload(std::optional<WaiterId> waiter, std::optional<Canary> canary) {
  auto refuse = [&](const std::string& why) {
    os_.log(LogLevel::kWarning, "reload refused: " + why);
    if (waiter) os_.reply(*waiter, ReloadOutcome{false, why, "", serving() ? serving()->id : 0});
  };
  if (stopping_) return refuse("the supervisor is stopping");
  if (canary) {
    // A canary is compared with what serves now: queued behind another reload, it would be
    // compared with a generation nobody has seen serve yet.
    if (attempt_ || !completing_.empty()) {
      ++counters_.reloads_failed;
      return refuse(
          "another reload is in progress; a canary reload is not queued, try again "
          "once it is over");
    }
    if (serving() == nullptr) {
      ++counters_.reloads_failed;
      return refuse("no generation serves: there is nothing to try a canary beside");
    }
  }
  if (attempt_) {
    // Never two new generations at once: this request is served by one more reload after the
    // current one, since the current one may have started before the new code was in place.
    reload_pending_ = true;
    ++counters_.reloads_coalesced;
    if (waiter) pending_waiters_.push_back(*waiter);
    os_.log(fmt::format("reload queued: generation {} is still starting", attempt_->generation));
    return;
  }
  if (draining_count() >= options_.max_draining) {
    ++counters_.reloads_failed;
    return refuse(fmt::format("{} generations are still draining (limit --max-draining {})",
                              draining_count(), options_.max_draining));
  }
  restart_at_.reset();
  std::vector<WaiterId> waiters;
  if (waiter) waiters.push_back(*waiter);
  start_generation(Purpose::kReload, std::move(waiters));
  if (attempt_ && canary) attempt_->canary = canary;
}

void SupervisorCore::on_ready(int id) {
  if (!attempt_ || attempt_->generation != id) return;  // late or repeated proof: nothing to do
  Generation* g = find_mutable(id);
  if (g == nullptr || g->state != GenerationState::kStarting) return;
  Attempt attempt = std::move(*attempt_);
  attempt_.reset();

  Generation* old = nullptr;
  for (auto& other : generations_) {
    if (other.state == GenerationState::kServing) old = &other;
  }
  g->state = GenerationState::kServing;
  g->ready_at = os_.now();
  counters_.ready_time.observe(std::chrono::duration_cast<Duration>(*g->ready_at - g->started_at));
  os_.log(fmt::format("generation {} (pid {}) ready after {}", g->id, g->pid,
                      seconds_since(g->started_at)));
  warn_about_wrapper(*g);
  const bool canary = attempt.canary.has_value() && old != nullptr;
  if (canary) {
    os_.canary_to(*g, *old, attempt.canary->percent);
  } else {
    os_.switch_to(*g);
  }
  if (old != nullptr) {
    // A generation still held from an earlier reload is not the one to fall back to any more.
    for (auto& other : generations_) {
      if (other.state == GenerationState::kHeld) {
        other.canary_window = false;
        drain(other, /*after_switch=*/true);
      }
    }
    attempt.replaced = old->id;
    if (canary) {
      hold(*old, attempt.canary->window, attempt.canary);
    } else if (options_.hold_old > Duration{0}) {
      hold(*old, options_.hold_old, std::nullopt);
    } else {
      drain(*old, /*after_switch=*/true);
    }
    completing_.push_back(std::move(attempt));
  } else {
    finish_attempt(attempt, fmt::format("generation {} serving", g->id));
  }
  if (reload_pending_ && !stopping_) {
    reload_pending_ = false;
    on_reload_pending();
  }
}

void SupervisorCore::on_reload_pending() {
  auto waiters = std::move(pending_waiters_);
  pending_waiters_.clear();
  if (draining_count() >= options_.max_draining) {
    ++counters_.reloads_failed;
    std::string why = fmt::format("{} generations are still draining (limit --max-draining {})",
                                  draining_count(), options_.max_draining);
    os_.log(LogLevel::kWarning, "queued reload refused: " + why);
    for (auto w : waiters)
      os_.reply(w, ReloadOutcome{false, why, "", serving() ? serving()->id : 0});
    return;
  }
  start_generation(Purpose::kReload, std::move(waiters));
}

// Completes attempt `a`, which succeeded: its generation serves, and the one it replaced (if any)
// has exited. The caller has taken it out of `completing_`.
void SupervisorCore::finish_attempt(const Attempt& a, const std::string& message) {
  const Generation* g = find(a.generation);
  ReloadOutcome outcome{true, message, "", g != nullptr ? g->id : 0};
  if (a.purpose == Purpose::kReload) {
    end_reload(a.reload_id, true, message);
  } else if (a.purpose == Purpose::kRestart) {
    os_.log(LogLevel::kNotice, fmt::format("restart ok: {}", message));
  }
  for (auto w : a.waiters) os_.reply(w, outcome);
}

// Counts, records and logs the end of reload `reload_id`.
void SupervisorCore::end_reload(int reload_id, bool ok, const std::string& message) {
  ++(ok ? counters_.reloads_ok : counters_.reloads_failed);
  if (last_reload_ && last_reload_->id == reload_id) {
    last_reload_->in_progress = false;
    last_reload_->ok = ok;
    last_reload_->message = message;
    last_reload_->finished_at = os_.now();
    counters_.reload_time.observe(std::chrono::duration_cast<Duration>(*last_reload_->finished_at -
                                                                       last_reload_->requested_at));
    if (!ok) last_failed_reload_ = last_reload_;
  }
  os_.log(ok ? LogLevel::kNotice : LogLevel::kError,
          fmt::format("reload {} {}: {}", reload_id, ok ? "ok" : "failed", message));
}

void SupervisorCore::fail_attempt(const std::string& reason) {
  Attempt a = std::move(*attempt_);
  attempt_.reset();
  Generation* g = find_mutable(a.generation);
  std::string tail = os_.output_tail(a.generation);
  if (g != nullptr && g->state == GenerationState::kStarting && !g->killed) {
    // Not proven ready, yet it shares the listeners and may have accepted connections: it gets
    // the drain signal and the drain deadline like any old generation, so they are not reset.
    drain(*g, /*after_switch=*/false);
  }
  const Generation* keeps = serving();
  std::string outcome_text =
      keeps != nullptr ? fmt::format("{}; generation {} keeps serving", reason, keeps->id) : reason;
  switch (a.purpose) {
    case Purpose::kInitial:
      os_.log(LogLevel::kError, fmt::format("start failed: {}", reason));
      if (!stopping_) {
        stopping_ = true;
        exit_code_ = 1;
      }
      // Reloads asked for while the first generation started are answered, not left to find
      // their connection closed when the supervisor exits.
      reload_pending_ = false;
      for (auto w : pending_waiters_) {
        os_.reply(
            w, ReloadOutcome{false, "the first start failed (" + reason + "); the supervisor exits",
                             tail, 0});
      }
      pending_waiters_.clear();
      break;
    case Purpose::kReload:
      end_reload(a.reload_id, false, outcome_text);
      break;
    case Purpose::kRestart:
      os_.log(LogLevel::kError, fmt::format("restart failed: {}", reason));
      if (!stopping_ && serving() == nullptr) schedule_restart();
      break;
  }
  for (auto w : a.waiters) {
    os_.reply(w, ReloadOutcome{false, outcome_text, tail, keeps != nullptr ? keeps->id : 0});
  }
  if (reload_pending_ && !stopping_) {
    reload_pending_ = false;
    on_reload_pending();
  }
  maybe_finish();
}

void SupervisorCore::schedule_restart() {
  restart_at_ = os_.now() + backoff_;
  os_.log(LogLevel::kWarning, fmt::format("restarting in {:g}s", seconds(backoff_)));
  backoff_ = std::min(backoff_ * 2, options_.restart_backoff_max);
}

void SupervisorCore::on_exit(int pid, int wait_status) {
  Generation* g = nullptr;
  for (auto& candidate : generations_) {
    if (candidate.pid == pid && candidate.state != GenerationState::kExited &&
        !candidate.group_lingers)
      g = &candidate;
  }
  // Not a generation: an orphan, reaped as PID 1 or as the reaper of a lingering group.
  if (g == nullptr) return settle_lingering_groups();
  if (keep_group_draining(*g, wait_status)) return;
  ended(*g, wait_status, /*kill_rest=*/true);
}

void SupervisorCore::ended(Generation& generation, int wait_status, bool kill_rest) {
  Generation* g = &generation;
  const int pid = g->pid;
  const GenerationState was = g->state;
  const int id = g->id;
  g->state = GenerationState::kExited;
  g->quiescing = false;
  g->group_lingers = false;
  g->exited_at = os_.now();
  g->wait_status = wait_status;
  if (kill_rest) os_.kill_group(*g);  // what the main process left behind in its group
  const std::string how = describe_wait_status(wait_status);

  switch (was) {
    case GenerationState::kStarting:
      if (attempt_ && attempt_->generation == id) {
        const std::string hint = os_.exit_hint(id);
        fail_attempt(fmt::format("generation {} {} before it was ready{}", id, how,
                                 hint.empty() ? "" : ": " + hint));
      } else {
        os_.log(fmt::format("generation {} (pid {}) {}", id, pid, how));
      }
      break;
    case GenerationState::kServing:
      if (stopping_) {
        os_.log(fmt::format("generation {} (pid {}) {}", id, pid, how));
        break;
      }
      if (auto held = std::find_if(
              generations_.begin(), generations_.end(),
              [](const Generation& x) { return x.state == GenerationState::kHeld && !x.killed; });
          held != generations_.end()) {
        roll_back(*held, id, how);
        break;
      }
      ++counters_.crashes;
      os_.log(LogLevel::kError,
              fmt::format("generation {} (pid {}) {} while serving; the listeners stay open", id,
                          pid, how));
      if (g->ready_at && *g->exited_at - *g->ready_at >= kStableRun) {
        backoff_ = options_.restart_backoff_min;
      }
      if (!attempt_) schedule_restart();
      break;
    case GenerationState::kHeld:
    case GenerationState::kDraining: {
      if (was == GenerationState::kHeld) {
        os_.log(fmt::format("generation {} (pid {}) {} while held", id, pid, how));
        if (g->canary_window) end_canary_window(*g, "the generation beside the canary is gone");
      } else {
        os_.log(fmt::format("generation {} (pid {}) {} after draining {}", id, pid, how,
                            seconds_since(*g->drain_started_at)));
      }
      auto it = std::find_if(completing_.begin(), completing_.end(),
                             [&](const Attempt& a) { return a.replaced == id; });
      if (it != completing_.end()) {
        Attempt done = std::move(*it);
        completing_.erase(it);
        const Generation* now_serving = find(done.generation);
        const std::string message = fmt::format("generation {} serving, generation {} drained{}",
                                                now_serving != nullptr ? now_serving->id : 0, id,
                                                g->killed ? " (killed at the drain deadline)" : "");
        finish_attempt(done, message);
      }
      break;
    }
    case GenerationState::kExited:
      break;
  }
  prune();
  maybe_finish();
}

void SupervisorCore::on_status_text(int id, std::string text) {
  if (Generation* g = find_mutable(id)) g->status_text = std::move(text);
}

void SupervisorCore::on_stop() {
  if (stopping_ && exit_code_ == 0) {
    // Asked twice: do not wait for the drain any longer.
    os_.log(LogLevel::kWarning, "stop asked again: killing every generation now");
    for (auto& g : generations_) {
      if (g.state != GenerationState::kExited && !g.killed) {
        g.killed = true;
        os_.kill_group(g);
      }
    }
    return;
  }
  stopping_ = true;
  restart_at_.reset();
  os_.log(LogLevel::kNotice, "stopping: draining every generation");
  reload_pending_ = false;
  for (auto w : pending_waiters_) {
    os_.reply(w, ReloadOutcome{false, "the supervisor is stopping", "", 0});
  }
  pending_waiters_.clear();
  if (attempt_) fail_attempt("the supervisor is stopping");
  for (auto& g : generations_) {
    if (g.state == GenerationState::kServing || g.state == GenerationState::kHeld) {
      drain(g, /*after_switch=*/false);
    }
    // Nothing will take over its traffic, so there is nothing to wait for.
    if (g.quiescing && !g.killed) send_drain_signal(g, "the supervisor is stopping");
  }
  maybe_finish();
}

void SupervisorCore::on_tick() {
  const TimePoint now = os_.now();
  if (attempt_) {
    Generation* g = find_mutable(attempt_->generation);
    if (g != nullptr && g->state == GenerationState::kStarting && now >= g->deadline) {
      std::string hint = os_.failure_hint(g->id);
      fail_attempt(fmt::format("generation {} was not ready within {:g}s ({}){}", g->id,
                               seconds(options_.ready_timeout), options_.readiness,
                               hint.empty() ? "" : ": " + hint));
    }
  }
  for (auto& g : generations_) {
    if (g.state == GenerationState::kHeld && now >= g.deadline) {
      if (g.canary_window) end_canary_window(g, "the canary window is over");
      os_.log(fmt::format("generation {} (pid {}): the hold is over", g.id, g.pid));
      drain(g, /*after_switch=*/true);
    }
    if (g.state == GenerationState::kDraining && !g.killed && now >= g.deadline) {
      g.killed = true;
      ++counters_.drain_kills;
      os_.log(LogLevel::kWarning,
              fmt::format("generation {} (pid {}) did not {} within the drain timeout of {:g}s; "
                          "killing its process group",
                          g.id, g.pid, g.quiescing ? "become quiet" : "exit",
                          seconds(options_.drain_timeout)));
      g.quiescing = false;
      os_.kill_group(g);
    }
  }
  if (quiet_check_at_ && now >= *quiet_check_at_) {
    quiet_check_at_.reset();
    check_quiescing();
  }
  if (restart_at_ && now >= *restart_at_ && !attempt_ && !stopping_) {
    restart_at_.reset();
    start_generation(serving() == nullptr ? Purpose::kRestart : Purpose::kReload, {});
  }
}

void SupervisorCore::on_waiter_gone(WaiterId waiter) {
  auto drop = [&](std::vector<WaiterId>& v) { std::erase(v, waiter); };
  drop(pending_waiters_);
  if (attempt_) drop(attempt_->waiters);
  for (auto& a : completing_) drop(a.waiters);
}

std::optional<TimePoint> SupervisorCore::next_deadline() const {
  std::optional<TimePoint> next;
  auto consider = [&](TimePoint t) {
    if (!next || t < *next) next = t;
  };
  if (attempt_) {
    if (const Generation* g = find(attempt_->generation);
        g != nullptr && g->state == GenerationState::kStarting && !g->killed) {
      consider(g->deadline);
    }
  }
  for (const auto& g : generations_) {
    if ((g.state == GenerationState::kDraining || g.state == GenerationState::kHeld) && !g.killed) {
      consider(g.deadline);
    }
  }
  if (restart_at_ && !stopping_) consider(*restart_at_);
  if (quiet_check_at_) consider(*quiet_check_at_);
  return next;
}

void SupervisorCore::maybe_finish() {
  if (!stopping_ || finished_) return;
  for (const auto& g : generations_) {
    if (g.state != GenerationState::kExited) return;
  }
  finished_ = true;
  os_.finished(exit_code_);
}

void SupervisorCore::prune() {
  size_t exited = 0;
  for (const auto& g : generations_) exited += g.state == GenerationState::kExited ? 1 : 0;
  while (exited > kKeptExited) {
    auto it = std::find_if(generations_.begin(), generations_.end(),
                           [](const Generation& g) { return g.state == GenerationState::kExited; });
    generations_.erase(it);
    --exited;
  }
}

}  // namespace baton

// The part of SupervisorCore (supervisor_core.h) about an in-place upgrade of baton: whether the
// state can be carried now, and the snapshot taken and restored across the exec.
#include <algorithm>

#include <fmt/format.h>

#include "supervisor/supervisor_core.h"

namespace baton {

std::optional<std::string> SupervisorCore::upgrade_refusal() const {
  if (stopping_) return "the supervisor is stopping";
  if (attempt_) {
    return fmt::format(
        "generation {} is starting (a reload is in progress); upgrade once it "
        "serves or has failed",
        attempt_->generation);
  }
  if (reload_pending_) return "a reload is queued; upgrade once it is over";
  for (const auto& g : generations_) {
    // Its timer ends in a switch or a rollback, which a carried state would have to replay.
    if (g.state == GenerationState::kHeld) {
      return fmt::format(
          "generation {} is held ({}) for {:g}s more; upgrade once the hold is "
          "over",
          g.id, g.canary_window ? "a canary window" : "--hold-old",
          seconds(
              std::max(Duration{0}, std::chrono::duration_cast<Duration>(g.deadline - os_.now()))));
    }
  }
  if (restart_at_) return "a restart is scheduled: no generation serves";
  if (serving() == nullptr) return "no generation serves";
  return std::nullopt;
}

CoreSnapshot SupervisorCore::snapshot() const {
  CoreSnapshot s;
  s.generations = generations_;
  s.next_id = next_id_;
  s.next_reload_id = next_reload_id_;
  for (const auto& a : completing_) {
    s.completing.push_back(
        {a.generation, static_cast<int>(a.purpose), a.replaced, a.reload_id, a.waiters});
  }
  s.counters = counters_;
  s.last_reload = last_reload_;
  s.last_failed_reload = last_failed_reload_;
  s.backoff = backoff_;
  s.warned_wrapper = warned_wrapper_;
  return s;
}

void SupervisorCore::restore(CoreSnapshot s) {
  generations_ = std::move(s.generations);
  next_id_ = s.next_id;
  next_reload_id_ = s.next_reload_id;
  completing_.clear();
  for (auto& c : s.completing) {
    Attempt a;
    a.generation = c.generation;
    a.purpose = static_cast<Purpose>(std::clamp(c.purpose, 0, 2));
    a.replaced = c.replaced;
    a.reload_id = c.reload_id;
    a.waiters = std::move(c.waiters);
    completing_.push_back(std::move(a));
  }
  counters_ = s.counters;
  last_reload_ = std::move(s.last_reload);
  last_failed_reload_ = std::move(s.last_failed_reload);
  backoff_ = s.backoff;
  warned_wrapper_ = s.warned_wrapper;
  attempt_.reset();
  pending_waiters_.clear();
  reload_pending_ = false;
  stopping_ = false;
  finished_ = false;
  restart_at_.reset();
  quiet_check_at_.reset();
  const bool quiescing = std::any_of(generations_.begin(), generations_.end(),
                                     [](const Generation& g) { return g.quiescing; });
  if (quiescing) quiet_check_at_ = os_.now() + options_.drain_poll;
}

}  // namespace baton

// The way out of an old generation (supervisor_core.h): held after the switch (--hold-old, a
// canary window), rolled back to, or drained: quiescing while watched, then signalled.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "supervisor/supervisor_core.h"

namespace baton {

void SupervisorCore::drain(Generation& g, bool after_switch) {
  g.state = GenerationState::kDraining;
  g.drain_started_at = os_.now();
  g.deadline = *g.drain_started_at + options_.drain_timeout;
  if (!after_switch || options_.drain_mode == DrainMode::kSignal) return send_drain_signal(g, "");
  switch (os_.check_quiet(g)) {
    case QuietCheck::kQuiet:
      return send_drain_signal(g, "nothing in flight");
    case QuietCheck::kUnwatchable:
      return send_drain_signal(g, "its listeners are shared, so it cannot be watched");
    case QuietCheck::kBusy:
      break;
  }
  g.quiescing = true;
  if (!quiet_check_at_) quiet_check_at_ = os_.now() + options_.drain_poll;
  os_.log(
      fmt::format("generation {} (pid {}) quiescing: it gets no new connection; the drain "
                  "signal follows once its accept queue is empty and its connections are "
                  "finished, within {:g}s",
                  g.id, g.pid, seconds(options_.drain_timeout)));
}

void SupervisorCore::hold(Generation& g, Duration how_long, const std::optional<Canary>& canary) {
  g.state = GenerationState::kHeld;
  g.deadline = os_.now() + how_long;
  g.canary_window = canary.has_value();
  if (canary) {
    os_.log(LogLevel::kNotice,
            fmt::format("canary: the new generation gets {}% of new connections for {:g}s; "
                        "generation {} (pid {}) the rest, and serves again if the new one fails",
                        canary->percent, seconds(how_long), g.id, g.pid));
    return;
  }
  os_.log(
      fmt::format("generation {} (pid {}) held for {:g}s: no new connection and no signal; it "
                  "serves again if its successor fails meanwhile",
                  g.id, g.pid, seconds(how_long)));
}

// The canary window beside held generation `g` ends: every new connection goes to the serving one.
void SupervisorCore::end_canary_window(Generation& g, const std::string& why) {
  g.canary_window = false;
  if (const Generation* s = serving()) {
    os_.switch_to(*s);
    os_.log(LogLevel::kNotice,
            fmt::format("{}: every new connection goes to generation {}", why, s->id));
  }
}

// The generation that replaced `held` exited during the hold: `held` serves again at once.
void SupervisorCore::roll_back(Generation& held, int failed_id, const std::string& how) {
  held.state = GenerationState::kServing;
  held.canary_window = false;
  os_.switch_to(held);
  const std::string message =
      fmt::format("generation {} {} during the hold; rolled back: generation {} serves again",
                  failed_id, how, held.id);
  os_.log(message);
  auto it = std::find_if(completing_.begin(), completing_.end(),
                         [&](const Attempt& a) { return a.generation == failed_id; });
  if (it == completing_.end()) return;
  Attempt a = std::move(*it);
  completing_.erase(it);
  std::string tail = os_.output_tail(failed_id);
  if (a.purpose == Purpose::kReload) end_reload(a.reload_id, false, message);
  for (auto w : a.waiters) os_.reply(w, ReloadOutcome{false, message, tail, held.id});
}

void SupervisorCore::send_drain_signal(Generation& g, const std::string& why) {
  const char* name = sigabbrev_np(options_.drain_signal);
  const auto left = std::chrono::duration_cast<Duration>(g.deadline - os_.now());
  std::string after =
      g.quiescing ? fmt::format(" after quiescing {}", seconds_since(*g.drain_started_at)) : "";
  g.quiescing = false;
  os_.log(fmt::format("generation {} (pid {}) draining{}: SIG{} sent{}{}, up to {:g}s", g.id, g.pid,
                      after, name != nullptr ? name : "?",
                      options_.drain_signal_group ? " to its process group" : "",
                      why.empty() ? "" : " (" + why + ")",
                      // To a tenth: the deadline was set a moment before this line ("29.999s").
                      std::round(seconds(std::max(left, Duration{0})) * 10) / 10));
  if (options_.drain_signal_group) {
    os_.signal_group(g, options_.drain_signal);
  } else {
    os_.signal(g, options_.drain_signal);
  }
}

// Looks at every quiescing generation; signals the ones found quiet.
void SupervisorCore::check_quiescing() {
  bool any = false;
  for (auto& g : generations_) {
    if (!g.quiescing || g.killed || g.state != GenerationState::kDraining) continue;
    switch (os_.check_quiet(g)) {
      case QuietCheck::kQuiet:
        send_drain_signal(g, "quiet");
        break;
      case QuietCheck::kUnwatchable:
        send_drain_signal(g, "it can no longer be watched");
        break;
      case QuietCheck::kBusy:
        any = true;
        break;
    }
  }
  if (any) quiet_check_at_ = os_.now() + options_.drain_poll;
}

}  // namespace baton

// accept_readiness.h: drives one starting generation's AcceptProbe (accept_probe.h) from the
// event loop: steer the probe's source port to the generation's slot, connect, look again and
// again until accepted (the kernel has no event for "accepted"), probe_retry_delay() apart
// (readiness.h: every 200 us at first, less often as the start-up goes on), retry
// kProbeRetry later after a refused or reset connection. The probe of the first steered TCP
// listener; without one there is nothing to probe (probing() is false).
//
// Used from the supervisor's one thread; the loop and the listener set must outlive it.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "supervisor/accept_probe.h"
#include "supervisor/event_loop.h"
#include "supervisor/listener_set.h"

namespace baton {

class AcceptReadiness {
 public:
  struct Hooks {
    std::function<bool()> still_starting;  // false: stop probing
    std::function<void()> accepted;        // the app accepted; the probe has stopped already
    std::function<void(const std::string&)> log;
  };
  AcceptReadiness(EventLoop& loop, ListenerSet& listeners, int generation, Hooks hooks)
      : loop_(loop), listeners_(listeners), generation_(generation), hooks_(std::move(hooks)) {}
  ~AcceptReadiness() { stop(); }
  AcceptReadiness(const AcceptReadiness&) = delete;
  AcceptReadiness& operator=(const AcceptReadiness&) = delete;

  // Opens the probe; the first look comes from the loop (the core may not know the generation
  // yet when this is called from a spawn).
  void start();
  void stop();
  bool probing() const { return probing_; }
  bool accepted() const { return accepted_; }

 private:
  void check();
  void look_in(std::chrono::nanoseconds delay);  // the next check()
  void retry_later();
  EventLoop& loop_;
  ListenerSet& listeners_;
  const int generation_;
  Hooks hooks_;
  std::optional<AcceptProbe> probe_;
  EventLoop::TimerId timer_ = 0;
  EventLoop::Clock::time_point started_{};  // the first start()
  bool probing_ = false;
  bool accepted_ = false;
};

}  // namespace baton

// event_loop.h: one thread, one epoll: descriptors become callbacks, deadlines become timers.
//
// Callbacks may add and remove descriptors and timers, including their own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

#include "baton/fd.h"
#include "baton/result.h"

struct epoll_event;

namespace baton {

class EventLoop {
 public:
  using Callback = std::function<void(uint32_t events)>;
  using TimerId = uint64_t;
  using Clock = std::chrono::steady_clock;

  static Result<EventLoop> create();

  // Calls `cb` with the epoll event mask whenever `fd` has one of `events`. The caller keeps
  // ownership of `fd` and must remove() it before closing it.
  Status add(int fd, uint32_t events, Callback cb);
  Status modify(int fd, uint32_t events);
  void remove(int fd);

  TimerId add_timer(Clock::time_point when, std::function<void()> cb);
  void cancel_timer(TimerId id);

  // Runs until stop(). `next_deadline` is asked before every wait for the latest time the loop
  // may sleep until (e.g. the supervisor core's next deadline), and `on_wake` runs after it.
  void run(const std::function<std::optional<Clock::time_point>()>& next_deadline,
           const std::function<void()>& on_wake);
  void stop() { running_ = false; }

 private:
  explicit EventLoop(Fd epoll) : epoll_(std::move(epoll)) {}
  // One epoll wait, up to `timeout` (none: until an event); returns epoll_wait's result.
  int wait(epoll_event* events, int max, std::optional<Clock::duration> timeout);
  Fd epoll_;
  bool no_pwait2_ = false;  // the kernel (or a seccomp filter) refused epoll_pwait2
  std::unordered_map<int, std::shared_ptr<Callback>> callbacks_;
  std::multimap<Clock::time_point, std::pair<TimerId, std::function<void()>>> timers_;
  TimerId next_timer_ = 1;
  bool running_ = true;
};

}  // namespace baton

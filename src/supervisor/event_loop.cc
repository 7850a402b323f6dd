#include "supervisor/event_loop.h"

#include <sys/epoll.h>

#include <cerrno>
#include <ctime>
#include <memory>
#include <optional>

#include "common/syscall.h"

namespace baton {

Result<EventLoop> EventLoop::create() {
  Fd fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!fd) return Error::from_errno("epoll_create1");
  return EventLoop(std::move(fd));
}

Status EventLoop::add(int fd, uint32_t events, Callback cb) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return Error::from_errno("epoll_ctl add");
  }
  callbacks_[fd] = std::make_shared<Callback>(std::move(cb));
  return {};
}

Status EventLoop::modify(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
    return Error::from_errno("epoll_ctl mod");
  }
  return {};
}

void EventLoop::remove(int fd) {
  if (callbacks_.erase(fd) != 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::add_timer(Clock::time_point when, std::function<void()> cb) {
  TimerId id = next_timer_++;
  timers_.emplace(when, std::make_pair(id, std::move(cb)));
  return id;
}

void EventLoop::cancel_timer(TimerId id) {
  for (auto it = timers_.begin(); it != timers_.end(); ++it) {
    if (it->second.first == id) {
      timers_.erase(it);
      return;
    }
  }
}

// epoll_pwait2 takes the timeout in nanoseconds: a timer fires when it is due, not up to a
// millisecond later, which a poll every millisecond or two (an accept probe) would feel. Where the
// kernel or a seccomp filter lacks it, epoll_wait with the timeout rounded up to a millisecond.
int EventLoop::wait(epoll_event* events, int max, std::optional<Clock::duration> timeout) {
  if (!no_pwait2_) {
    timespec ts{};
    if (timeout) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout).count();
      ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    }
    int n = ::epoll_pwait2(epoll_.get(), events, max, timeout ? &ts : nullptr, nullptr);
    if (n >= 0 || errno != ENOSYS) return n;
    no_pwait2_ = true;
  }
  int ms = -1;
  if (timeout) {
    ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(*timeout).count());
  }
  return ::epoll_wait(epoll_.get(), events, max, ms);
}

void EventLoop::run(const std::function<std::optional<Clock::time_point>()>& next_deadline,
                    const std::function<void()>& on_wake) {
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  while (running_) {
    std::optional<Clock::time_point> wake = next_deadline();
    if (!timers_.empty() && (!wake || timers_.begin()->first < *wake)) {
      wake = timers_.begin()->first;
    }
    std::optional<Clock::duration> timeout;
    if (wake) timeout = std::max(Clock::duration::zero(), *wake - Clock::now());
    int n = wait(events, kMaxEvents, timeout);
    for (int i = 0; i < n && running_; ++i) {
      auto it = callbacks_.find(events[i].data.fd);
      if (it == callbacks_.end()) continue;  // removed by an earlier callback of this batch
      auto cb = it->second;                  // keeps the callback alive while it runs
      (*cb)(events[i].events);
    }
    const auto now = Clock::now();
    while (running_ && !timers_.empty() && timers_.begin()->first <= now) {
      auto cb = std::move(timers_.begin()->second.second);
      timers_.erase(timers_.begin());
      cb();
    }
    if (running_) on_wake();
  }
}

}  // namespace baton

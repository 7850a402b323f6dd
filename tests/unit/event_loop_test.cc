// Unit tests of the supervisor's EventLoop: real descriptors (pipes), real epoll, no processes.
// Every run() here ends by stop() from a callback; a loop that never wakes fails by the test
// timeout, not by a timed assertion.
#include "supervisor/event_loop.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace baton {
namespace {

using namespace std::chrono_literals;
using Clock = EventLoop::Clock;

struct Pipe {
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) std::abort();
    read_end = Fd(fds[0]);
    write_end = Fd(fds[1]);
  }
  void put(char c = 'x') { ASSERT_EQ(::write(write_end.get(), &c, 1), 1); }
  Fd read_end, write_end;
};

// The loop's clock without deadlines of its own: only timers and descriptors wake it.
std::optional<Clock::time_point> no_deadline() { return std::nullopt; }

EventLoop make_loop() {
  auto loop = EventLoop::create();
  if (!loop) std::abort();
  return std::move(loop.value());
}

TEST(EventLoop, ReadableDescriptorCallsItsCallbackWithTheEventMask) {
  EventLoop loop = make_loop();
  Pipe p;
  std::vector<uint32_t> seen;
  ASSERT_TRUE(loop.add(p.read_end.get(), EPOLLIN, [&](uint32_t events) {
    seen.push_back(events);
    char c;
    EXPECT_EQ(::read(p.read_end.get(), &c, 1), 1);
    loop.stop();
  }));
  p.put();
  loop.run(no_deadline, [] {});
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0] & EPOLLIN);
}

TEST(EventLoop, OnWakeRunsAfterTheCallbacksOfEachWake) {
  EventLoop loop = make_loop();
  Pipe p;
  std::vector<std::string> order;
  ASSERT_TRUE(loop.add(p.read_end.get(), EPOLLIN, [&](uint32_t) {
    char c;
    EXPECT_EQ(::read(p.read_end.get(), &c, 1), 1);
    order.push_back("callback");
  }));
  p.put();
  loop.run(no_deadline, [&] {
    order.push_back("wake");
    loop.stop();
  });
  EXPECT_EQ(order, (std::vector<std::string>{"callback", "wake"}));
}

TEST(EventLoop, TimersFireInDeadlineOrderAndCancelledOnesNever) {
  EventLoop loop = make_loop();
  std::vector<int> fired;
  auto now = Clock::now();
  loop.add_timer(now + 30ms, [&] { fired.push_back(3); });
  auto cancelled = loop.add_timer(now + 10ms, [&] { fired.push_back(99); });
  loop.add_timer(now + 20ms, [&] { fired.push_back(2); });
  loop.add_timer(now, [&] { fired.push_back(1); });
  loop.add_timer(now + 40ms, [&] { loop.stop(); });
  loop.cancel_timer(cancelled);
  loop.run(no_deadline, [] {});
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
}

TEST(EventLoop, TimerNotYetDueDoesNotFireEarly) {
  EventLoop loop = make_loop();
  bool late_fired = false;
  auto start = Clock::now();
  Clock::time_point fired_at{};
  loop.add_timer(start + 50ms, [&] {
    fired_at = Clock::now();
    loop.stop();
  });
  loop.add_timer(start + 1h, [&] { late_fired = true; });
  loop.run(no_deadline, [] {});
  EXPECT_GE(fired_at, start + 50ms) << "a timer runs at or after its time, never before";
  EXPECT_FALSE(late_fired);
}

TEST(EventLoop, NextDeadlineWakesTheLoopWithoutAnyEvent) {
  // The supervisor core's deadlines are not timers: the loop asks for them before each wait.
  EventLoop loop = make_loop();
  Pipe idle;  // never written: only the deadline can end the wait
  ASSERT_TRUE(loop.add(idle.read_end.get(), EPOLLIN, [](uint32_t) { FAIL() << "no event"; }));
  auto deadline = Clock::now() + 20ms;
  int asked = 0;
  Clock::time_point woke{};
  loop.run(
      [&]() -> std::optional<Clock::time_point> {
        ++asked;
        return deadline;
      },
      [&] {
        if (Clock::now() >= deadline) {
          woke = Clock::now();
          loop.stop();
        }
      });
  EXPECT_GE(asked, 1);
  EXPECT_GE(woke, deadline);
}

TEST(EventLoop, CallbackMayRemoveAnotherDescriptorOfTheSameBatch) {
  EventLoop loop = make_loop();
  Pipe a, b;
  int calls = 0;
  // Both are readable before the loop waits, so both come in one epoll batch; whichever runs
  // first removes the other, whose callback must then not run.
  ASSERT_TRUE(loop.add(a.read_end.get(), EPOLLIN, [&](uint32_t) {
    ++calls;
    loop.remove(b.read_end.get());
  }));
  ASSERT_TRUE(loop.add(b.read_end.get(), EPOLLIN, [&](uint32_t) {
    ++calls;
    loop.remove(a.read_end.get());
  }));
  a.put();
  b.put();
  loop.run(no_deadline, [&] { loop.stop(); });
  EXPECT_EQ(calls, 1);
}

TEST(EventLoop, CallbackMayRemoveItselfAndTheDescriptorBeClosed) {
  EventLoop loop = make_loop();
  auto p = std::make_unique<Pipe>();
  int calls = 0;
  ASSERT_TRUE(loop.add(p->read_end.get(), EPOLLIN, [&](uint32_t) {
    ++calls;
    loop.remove(p->read_end.get());
    p.reset();  // closes both ends while the callback (a copy kept by the loop) still runs
  }));
  p->put();
  int wakes = 0;
  Pipe second;
  ASSERT_TRUE(loop.add(second.read_end.get(), EPOLLIN, [&](uint32_t) { loop.stop(); }));
  loop.run(no_deadline, [&] {
    if (++wakes == 1) second.put();
  });
  EXPECT_EQ(calls, 1);
}

TEST(EventLoop, ModifyChangesWhichEventsAreReported) {
  EventLoop loop = make_loop();
  Pipe p;  // the write end of an empty pipe is always writable
  int writable = 0;
  ASSERT_TRUE(loop.add(p.write_end.get(), 0, [&](uint32_t events) {
    if (events & EPOLLOUT) ++writable;
    loop.stop();
  }));
  loop.add_timer(Clock::now() + 20ms, [&] {
    EXPECT_EQ(writable, 0) << "no events asked for, none reported";
    EXPECT_TRUE(loop.modify(p.write_end.get(), EPOLLOUT));
  });
  loop.run(no_deadline, [] {});
  EXPECT_EQ(writable, 1);
}

TEST(EventLoop, AddRefusesABadOrDuplicateDescriptor) {
  EventLoop loop = make_loop();
  auto bad = loop.add(-1, EPOLLIN, [](uint32_t) {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), EBADF);
  Pipe p;
  ASSERT_TRUE(loop.add(p.read_end.get(), EPOLLIN, [](uint32_t) {}));
  auto twice = loop.add(p.read_end.get(), EPOLLIN, [](uint32_t) {});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), EEXIST);
  EXPECT_FALSE(loop.modify(Pipe().read_end.get(), EPOLLIN)) << "not in the loop";
  loop.remove(p.read_end.get());
  loop.remove(p.read_end.get());  // removing twice is harmless
}

}  // namespace
}  // namespace baton

// What baton tells its own service manager, decided from snapshots of the supervisor's state.
#include "supervisor/manager_notify.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace baton {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

ManagerView serving(int generation, int pid) {
  ManagerView v;
  v.serving_generation = generation;
  v.serving_pid = pid;
  return v;
}

TEST(ManagerNotifier, ReadyWithMainPidOnlyOnceTheFirstGenerationServes) {
  ManagerNotifier n(42);
  ManagerView starting;
  starting.starting_generation = 1;
  EXPECT_THAT(n.update(starting, 1), ElementsAre("STATUS=starting generation 1"));
  EXPECT_THAT(n.update(starting, 2), IsEmpty());
  EXPECT_THAT(n.update(serving(1, 100), 3),
              ElementsAre("READY=1\nMAINPID=42\nSTATUS=serving generation 1 (pid 100)"));
  EXPECT_THAT(n.update(serving(1, 100), 4), IsEmpty()) << "READY=1 is sent once";
}

TEST(ManagerNotifier, ReloadIsBracketedByReloadingAndReady) {
  ManagerNotifier n(42);
  n.update(serving(1, 100), 1);
  ManagerView reloading = serving(1, 100);
  reloading.starting_generation = 2;
  reloading.reload_id = 1;
  reloading.reload_in_progress = true;
  EXPECT_THAT(n.update(reloading, 5000),
              ElementsAre("RELOADING=1\nMONOTONIC_USEC=5000\n"
                          "STATUS=serving generation 1 (pid 100); generation 2 starting"));
  ManagerView done = serving(2, 200);
  done.reload_id = 1;
  done.reloads_ended = 1;
  EXPECT_THAT(n.update(done, 6000), ElementsAre("READY=1\nSTATUS=serving generation 2 (pid 200)"));
}

TEST(ManagerNotifier, RolledBackReloadEndsWithReadyToo) {
  ManagerNotifier n(42);
  n.update(serving(1, 100), 1);
  ManagerView reloading = serving(1, 100);
  reloading.starting_generation = 2;
  reloading.reload_id = 1;
  reloading.reload_in_progress = true;
  n.update(reloading, 2);
  ManagerView failed = serving(1, 100);
  failed.reload_id = 1;
  failed.reloads_ended = 1;
  EXPECT_THAT(n.update(failed, 3), ElementsAre("READY=1\nSTATUS=serving generation 1 (pid 100)"));
}

TEST(ManagerNotifier, ReloadRefusedAtOnceIsStillAWholeReload) {
  ManagerNotifier n(42);
  n.update(serving(1, 100), 1);
  ManagerView refused = serving(1, 100);
  refused.reloads_ended = 1;  // no reload record: refused before it started
  EXPECT_THAT(n.update(refused, 7), ElementsAre("RELOADING=1\nMONOTONIC_USEC=7", "READY=1"));
}

TEST(ManagerNotifier, QueuedReloadStartingAsTheLastEndsGetsItsOwnBracket) {
  ManagerNotifier n(42);
  n.update(serving(1, 100), 1);
  ManagerView first = serving(1, 100);
  first.starting_generation = 2;
  first.reload_id = 1;
  first.reload_in_progress = true;
  n.update(first, 2);
  ManagerView second = serving(2, 200);
  second.starting_generation = 3;
  second.reload_id = 2;
  second.reload_in_progress = true;
  second.reloads_ended = 1;
  EXPECT_THAT(n.update(second, 9),
              ElementsAre("READY=1",
                          "RELOADING=1\nMONOTONIC_USEC=9\n"
                          "STATUS=serving generation 2 (pid 200); generation 3 starting"));
}

TEST(ManagerNotifier, StoppingOnceAndNoReloadNewsAfterIt) {
  ManagerNotifier n(42);
  n.update(serving(1, 100), 1);
  ManagerView stopping = serving(1, 100);
  stopping.stopping = true;
  EXPECT_THAT(n.update(stopping, 2),
              ElementsAre("STOPPING=1\nSTATUS=stopping: draining every generation"));
  stopping.reloads_ended = 1;  // refused: the supervisor is stopping (not counted today; no news)
  EXPECT_THAT(n.update(stopping, 3), IsEmpty());
}

TEST(ManagerNotifier, NoReadyWhenTheFirstGenerationFails) {
  ManagerNotifier n(42);
  ManagerView failed;
  failed.stopping = true;
  EXPECT_THAT(n.update(failed, 1),
              ElementsAre("STOPPING=1\nSTATUS=stopping: draining every generation"));
}

TEST(ManagerNotifier, StatusFollowsACrashAndRestart) {
  ManagerNotifier n(42);
  n.update(serving(1, 100), 1);
  EXPECT_THAT(n.update(ManagerView{}, 2), ElementsAre("STATUS=no generation serving"));
  EXPECT_THAT(n.update(serving(2, 200), 3), ElementsAre("STATUS=serving generation 2 (pid 200)"))
      << "a restart is no reload: no READY=1 again";
}

TEST(Watchdog, TimeoutFromTheManagersVariables) {
  using std::chrono::microseconds;
  auto none = parse_watchdog(nullptr, nullptr, 42);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto empty = parse_watchdog("", "42", 42);
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());

  auto mine = parse_watchdog("30000000", "42", 42);
  ASSERT_TRUE(mine.ok());
  ASSERT_TRUE(mine->has_value());
  EXPECT_EQ(**mine, microseconds(30'000'000));
  auto no_pid = parse_watchdog("200000", nullptr, 42);  // WATCHDOG_PID is optional
  ASSERT_TRUE(no_pid.ok());
  ASSERT_TRUE(no_pid->has_value());
  EXPECT_EQ(**no_pid, microseconds(200'000));

  // For another process (baton's parent's variables, leaked): not ours to answer.
  auto other = parse_watchdog("30000000", "41", 42);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());

  auto huge = parse_watchdog("18446744073709551615", nullptr, 42);
  ASSERT_TRUE(huge.ok());
  ASSERT_TRUE(huge->has_value());
  EXPECT_EQ(**huge, kMaxWatchdog);

  for (const char* bad : {"0", "-5", "+5", " 5", "5s", "1e6", "18446744073709551616"}) {
    auto r = parse_watchdog(bad, nullptr, 42);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().what(),
              std::string("WATCHDOG_USEC=") + bad + ": not a positive number of microseconds");
  }
  EXPECT_FALSE(parse_watchdog("1000", "pid", 42).ok());
  EXPECT_FALSE(parse_watchdog("1000", "0", 42).ok());
}

TEST(Watchdog, PingsAtHalfTheTimeoutAndNeverMoreOftenThanAMillisecond) {
  using std::chrono::microseconds;
  EXPECT_EQ(watchdog_interval(microseconds(30'000'000)), microseconds(15'000'000));
  EXPECT_EQ(watchdog_interval(microseconds(3)), microseconds(1000));
}

}  // namespace
}  // namespace baton

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

}  // namespace
}  // namespace baton

// Unit tests of the supervisor's state machine: scripted events, a fake OS, no processes.
#include "supervisor/supervisor_core.h"

#include <signal.h>
#include <sys/wait.h>

#include <map>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace baton {
namespace {

using namespace std::chrono_literals;

int exited_with(int code) { return code << 8; }  // a raw wait status, as waitpid reports it
int killed_by(int sig) { return sig; }

class FakeOs : public SupervisorOs {
 public:
  TimePoint now() override { return clock; }
  Result<int> spawn(int id) override {
    if (fail_spawn) return Error(ENOENT, "exec ./app");
    spawned.push_back(id);
    return 1000 + id;
  }
  void signal(const Generation& g, int sig) override {
    signals.push_back({g.id, sig});
    order.push_back("signal " + std::to_string(g.id));
  }
  void signal_group(const Generation& g, int sig) override {
    signals.push_back({g.id, sig});
    order.push_back("signal group " + std::to_string(g.id));
  }
  void switch_to(const Generation& g) override {
    switches.push_back(g.id);
    order.push_back("switch " + std::to_string(g.id));
  }
  void canary_to(const Generation& g, const Generation& old, int percent) override {
    order.push_back(fmt::format("canary {} {}% beside {}", g.id, percent, old.id));
  }
  void kill_group(const Generation& g) override { kills.push_back(g.id); }
  std::string output_tail(int id) override { return "tail of " + std::to_string(id); }
  // Read replies with count() then at(): operator[] would create the entry it checks.
  void reply(WaiterId w, const ReloadOutcome& o) override {
    if (!replies.emplace(w, o).second) answered_twice.push_back(w);
  }
  void log(LogLevel level, const std::string& line) override {
    logs.push_back(line);
    levels.push_back(level);
  }
  void finished(int code) override { exit_code = code; }
  Status prepare_reload(CoreOptions& options) override {
    ++prepared;
    if (!prepare_error.empty()) return Error(prepare_error);
    if (new_ready_timeout) options.ready_timeout = *new_ready_timeout;
    return {};
  }

  TimePoint clock{};
  bool fail_spawn = false;
  int prepared = 0;
  std::string prepare_error;                  // non-empty: prepare_reload fails with it
  std::optional<Duration> new_ready_timeout;  // what prepare_reload sets
  std::vector<int> spawned;
  std::vector<std::pair<int, int>> signals;
  std::vector<int> switches;       // switch_to, in order
  std::vector<std::string> order;  // switches and signals, interleaved as they happened
  std::vector<int> kills;
  std::map<WaiterId, ReloadOutcome> replies;
  std::vector<WaiterId> answered_twice;  // a waiter is answered exactly once
  std::vector<std::string> logs;
  std::vector<LogLevel> levels;  // of each line in `logs`
  std::optional<int> exit_code;
};

class SupervisorCoreTest : public ::testing::Test {
 protected:
  SupervisorCoreTest() : core(os, options()) {}
  void TearDown() override {
    EXPECT_TRUE(os.answered_twice.empty()) << "a reload waiter was answered more than once";
  }
  static CoreOptions options() {
    CoreOptions o;
    o.ready_timeout = 10s;
    o.drain_timeout = 5s;
    o.max_draining = 2;
    o.readiness = "notify";
    return o;
  }
  void advance(Duration d) {
    os.clock += d;
    core.on_tick();
  }
  int pid(int generation) { return 1000 + generation; }
  GenerationState state(int generation) { return core.find(generation)->state; }
  // Generation 1 started and ready.
  void serve_first() {
    core.start();
    core.on_ready(1);
    ASSERT_EQ(state(1), GenerationState::kServing);
  }

  FakeOs os;
  SupervisorCore core;
};

TEST_F(SupervisorCoreTest, ReloadDrainsOldOnlyAfterNewIsReady) {
  serve_first();
  core.on_reload(7);
  EXPECT_EQ(state(2), GenerationState::kStarting);
  EXPECT_EQ(state(1), GenerationState::kServing);
  EXPECT_TRUE(os.signals.empty());

  core.on_ready(2);
  EXPECT_EQ(state(2), GenerationState::kServing);
  EXPECT_EQ(state(1), GenerationState::kDraining);
  ASSERT_EQ(os.signals.size(), 1u);
  EXPECT_EQ(os.signals[0], std::make_pair(1, SIGTERM));
  EXPECT_EQ(os.replies.count(7), 0u) << "--wait answers only once the old one has drained";

  core.on_exit(pid(1), exited_with(0));
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_TRUE(os.replies.at(7).ok);
  EXPECT_EQ(os.replies.at(7).generation, 2);
  EXPECT_EQ(core.counters().reloads_ok, 1u);
}

TEST_F(SupervisorCoreTest, SwitchToNewGenerationComesBeforeTheOldIsSignalled) {
  serve_first();
  EXPECT_EQ(os.switches, std::vector<int>{1});
  core.on_reload(7);
  EXPECT_EQ(os.switches, std::vector<int>{1});  // a starting generation gets no connection
  core.on_ready(2);
  EXPECT_EQ(os.order, (std::vector<std::string>{"switch 1", "switch 2", "signal 1"}));
}

// --hold-old: a core whose replaced generations are held for 2 s.
class HoldOldTest : public SupervisorCoreTest {
 protected:
  HoldOldTest()
      : held(os, [] {
          CoreOptions o = options();
          o.hold_old = 2s;
          return o;
        }()) {}
  void reload_to_2() {
    held.start();
    held.on_ready(1);
    held.on_reload(7);
    held.on_ready(2);
  }
  SupervisorCore held;
};

TEST_F(HoldOldTest, ReplacedGenerationIsHeldUnsignalledThenDrained) {
  reload_to_2();
  EXPECT_EQ(held.find(1)->state, GenerationState::kHeld);
  EXPECT_EQ(held.find(2)->state, GenerationState::kServing);
  EXPECT_EQ(os.switches, (std::vector<int>{1, 2}));
  EXPECT_TRUE(os.signals.empty()) << "a held generation is not signalled";
  EXPECT_EQ(os.replies.count(7), 0u) << "the reload is not over while the old one is held";
  os.clock += 1999ms;
  held.on_tick();
  EXPECT_TRUE(os.signals.empty());
  os.clock += 1ms;
  held.on_tick();
  EXPECT_EQ(held.find(1)->state, GenerationState::kDraining);
  ASSERT_EQ(os.signals.size(), 1u);
  EXPECT_EQ(os.signals[0], (std::pair<int, int>{1, SIGTERM}));
  held.on_exit(pid(1), exited_with(0));
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_TRUE(os.replies[7].ok);
}

TEST_F(HoldOldTest, SuccessorExitingDuringTheHoldRollsBackAtOnce) {
  reload_to_2();
  os.clock += 500ms;
  held.on_exit(pid(2), exited_with(1));
  EXPECT_EQ(held.find(1)->state, GenerationState::kServing);
  EXPECT_EQ(held.serving()->id, 1);
  EXPECT_EQ(os.switches, (std::vector<int>{1, 2, 1}));
  EXPECT_TRUE(os.signals.empty()) << "the generation rolled back to must not be touched";
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_FALSE(os.replies[7].ok);
  EXPECT_NE(os.replies[7].message.find("rolled back"), std::string::npos) << os.replies[7].message;
  EXPECT_EQ(os.replies[7].generation, 1);
  EXPECT_EQ(held.counters().reloads_failed, 1u);
  EXPECT_EQ(held.counters().crashes, 0u);
  EXPECT_FALSE(held.next_deadline().has_value()) << "no restart: generation 1 serves";
}

TEST_F(HoldOldTest, ANewReloadEndsAnEarlierHold) {
  reload_to_2();
  held.on_reload(8);
  held.on_ready(3);
  EXPECT_EQ(held.find(1)->state, GenerationState::kDraining);
  EXPECT_EQ(held.find(2)->state, GenerationState::kHeld);
  EXPECT_EQ(held.serving()->id, 3);
}

// reload --canary 20 --canary-for 5s
TEST_F(SupervisorCoreTest, CanaryHoldsTheOldOneBesideItThenSwitchesFully) {
  serve_first();
  core.on_reload(7, Canary{20, 5000ms});
  core.on_ready(2);
  EXPECT_EQ(os.order, (std::vector<std::string>{"switch 1", "canary 2 20% beside 1"}));
  EXPECT_EQ(state(1), GenerationState::kHeld);
  EXPECT_TRUE(os.signals.empty());
  advance(4999ms);
  EXPECT_TRUE(os.signals.empty());
  advance(1ms);
  EXPECT_EQ(os.order, (std::vector<std::string>{"switch 1", "canary 2 20% beside 1", "switch 2",
                                                "signal 1"}));
  core.on_exit(pid(1), exited_with(0));
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_TRUE(os.replies.at(7).ok);
}

TEST_F(SupervisorCoreTest, CanaryThatExitsInItsWindowRollsBack) {
  serve_first();
  core.on_reload(7, Canary{20, 5000ms});
  core.on_ready(2);
  advance(1000ms);
  core.on_exit(pid(2), exited_with(1));
  EXPECT_EQ(state(1), GenerationState::kServing);
  EXPECT_EQ(os.switches.back(), 1);
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_FALSE(os.replies.at(7).ok);
  EXPECT_TRUE(os.signals.empty());
}

TEST_F(SupervisorCoreTest, OldGenerationGoneInTheWindowSendsEveryConnectionToTheCanary) {
  serve_first();
  core.on_reload(7, Canary{20, 5000ms});
  core.on_ready(2);
  core.on_exit(pid(1), exited_with(1));
  EXPECT_EQ(os.switches.back(), 2);
  EXPECT_EQ(core.serving()->id, 2);
}

TEST_F(SupervisorCoreTest, CanaryIsRefusedWhileAnotherReloadRunsOrNothingServes) {
  core.start();
  core.on_reload(6, Canary{20, 5000ms});  // generation 1 is still starting: nothing serves
  ASSERT_EQ(os.replies.count(6), 1u);
  EXPECT_FALSE(os.replies.at(6).ok);
  core.on_ready(1);
  core.on_reload(7);
  core.on_reload(8, Canary{20, 5000ms});
  ASSERT_EQ(os.replies.count(8), 1u);
  EXPECT_FALSE(os.replies.at(8).ok);
  EXPECT_NE(os.replies.at(8).message.find("another reload is in progress"), std::string::npos);
  EXPECT_EQ(os.spawned, (std::vector<int>{1, 2}));
}

TEST_F(SupervisorCoreTest, FailedReloadNeverSwitches) {
  serve_first();
  core.on_reload(7);
  core.on_exit(pid(2), exited_with(1));
  advance(11s);
  EXPECT_EQ(os.switches, std::vector<int>{1});
  EXPECT_EQ(state(1), GenerationState::kServing);
}

TEST_F(SupervisorCoreTest, ReloadKeepsOldGenerationWhenNewExitsEarly) {
  serve_first();
  core.on_reload(7);
  core.on_exit(pid(2), exited_with(3));
  EXPECT_EQ(state(1), GenerationState::kServing);
  EXPECT_TRUE(os.signals.empty()) << "the old generation must not be touched";
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_FALSE(os.replies.at(7).ok);
  EXPECT_NE(os.replies.at(7).message.find("exited with status 3 before it was ready"),
            std::string::npos)
      << os.replies.at(7).message;
  EXPECT_NE(os.replies.at(7).message.find("generation 1 keeps serving"), std::string::npos);
  EXPECT_EQ(os.replies.at(7).output_tail, "tail of 2");
  EXPECT_EQ(core.counters().reloads_failed, 1u);
  EXPECT_FALSE(core.last_reload()->ok);
}

TEST_F(SupervisorCoreTest, ReloadWhosePreparationFailsSpawnsNothingAndKeepsServing) {
  serve_first();
  os.prepare_error = "config prod.toml: listen: bad port 99999";
  core.on_reload(7);
  EXPECT_EQ(os.prepared, 1);
  EXPECT_EQ(os.spawned, std::vector<int>{1}) << "no generation may start";
  EXPECT_EQ(core.starting(), nullptr);
  EXPECT_EQ(state(1), GenerationState::kServing);
  EXPECT_TRUE(os.signals.empty());
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_FALSE(os.replies[7].ok);
  EXPECT_EQ(os.replies[7].message,
            "config prod.toml: listen: bad port 99999; generation 1 keeps serving");
  EXPECT_EQ(core.counters().reloads_failed, 1u);
  ASSERT_TRUE(core.last_reload().has_value());
  EXPECT_FALSE(core.last_reload()->in_progress);

  os.prepare_error.clear();  // the file is mended: the next reload goes ahead
  core.on_reload(8);
  EXPECT_EQ(os.prepared, 2);
  EXPECT_EQ(state(2), GenerationState::kStarting);
}

TEST_F(SupervisorCoreTest, PreparedTimeoutsApplyToTheReloadsGeneration) {
  serve_first();
  os.new_ready_timeout = 2s;
  core.on_reload(7);
  advance(2s);
  ASSERT_EQ(os.replies.count(7), 1u) << "the new 2s ready timeout, not the old 10s";
  EXPECT_FALSE(os.replies[7].ok);
  EXPECT_EQ(state(1), GenerationState::kServing);
}

TEST_F(SupervisorCoreTest, LastFailedReloadIsKeptAfterLaterSuccesses) {
  serve_first();
  core.on_reload(7);
  core.on_exit(pid(2), exited_with(3));
  for (int i = 0; i < 20; ++i) {
    const int next = 3 + i;
    core.on_reload(std::nullopt);
    core.on_ready(next);
    core.on_exit(pid(next - 1 == 2 ? 1 : next - 1), exited_with(0));
  }
  ASSERT_TRUE(core.last_reload().has_value());
  EXPECT_TRUE(core.last_reload()->ok);
  ASSERT_TRUE(core.last_failed_reload().has_value());
  EXPECT_FALSE(core.last_failed_reload()->ok);
  EXPECT_EQ(core.last_failed_reload()->id, 1);
  EXPECT_NE(core.last_failed_reload()->message.find("exited with status 3"), std::string::npos);
}

TEST_F(SupervisorCoreTest, ReloadKillsNewGenerationNotReadyInTime) {
  serve_first();
  core.on_reload(7);
  advance(9s);
  EXPECT_EQ(os.replies.count(7), 0u);
  advance(2s);
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_FALSE(os.replies.at(7).ok);
  EXPECT_NE(os.replies.at(7).message.find("not ready within 10s"), std::string::npos);
  // It may have accepted connections on the shared listeners: drained first, killed at the
  // drain deadline.
  ASSERT_EQ(os.signals.size(), 1u);
  EXPECT_EQ(os.signals[0], std::make_pair(2, SIGTERM));
  EXPECT_EQ(state(2), GenerationState::kDraining);
  EXPECT_EQ(state(1), GenerationState::kServing);
  advance(6s);
  EXPECT_EQ(os.kills, std::vector<int>{2});
  // A late proof from the killed generation changes nothing.
  core.on_ready(2);
  EXPECT_EQ(state(1), GenerationState::kServing);
  core.on_exit(pid(2), killed_by(SIGKILL));
  EXPECT_EQ(state(2), GenerationState::kExited);
}

TEST_F(SupervisorCoreTest, ReloadsDuringAReloadAreCoalescedIntoOne) {
  serve_first();
  core.on_reload(1);
  core.on_reload(2);
  core.on_reload(3);
  EXPECT_EQ(os.spawned, (std::vector<int>{1, 2})) << "never two new generations at once";
  core.on_ready(2);
  EXPECT_EQ(os.spawned, (std::vector<int>{1, 2, 3})) << "one more reload for the queued ones";
  core.on_ready(3);
  core.on_exit(pid(1), exited_with(0));
  core.on_exit(pid(2), exited_with(0));
  for (WaiterId w : {1, 2, 3}) {
    ASSERT_EQ(os.replies.count(w), 1u) << "waiter " << w << " got no reply";
    EXPECT_TRUE(os.replies.at(w).ok) << "waiter " << w;
  }
  EXPECT_EQ(os.replies.at(2).generation, 3);
  EXPECT_EQ(core.counters().reloads_coalesced, 2u);
}

TEST_F(SupervisorCoreTest, DrainingGenerationsAreCapped) {
  serve_first();
  core.on_reload(std::nullopt);
  core.on_ready(2);
  core.on_reload(std::nullopt);
  core.on_ready(3);  // generations 1 and 2 drain: the cap of 2 is reached
  core.on_reload(9);
  ASSERT_EQ(os.replies.count(9), 1u);
  EXPECT_FALSE(os.replies.at(9).ok);
  EXPECT_NE(os.replies.at(9).message.find("still draining"), std::string::npos);
  EXPECT_EQ(os.spawned.size(), 3u);
}

TEST_F(SupervisorCoreTest, DrainDeadlineKillsTheProcessGroup) {
  serve_first();
  core.on_reload(7);
  core.on_ready(2);
  advance(4s);
  EXPECT_TRUE(os.kills.empty());
  advance(2s);
  EXPECT_EQ(os.kills, std::vector<int>{1});
  EXPECT_EQ(core.counters().drain_kills, 1u);
  EXPECT_EQ(os.replies.count(7), 0u) << "--wait answers once the old generation is gone";
  core.on_exit(pid(1), killed_by(SIGKILL));
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_TRUE(os.replies.at(7).ok);
  EXPECT_NE(os.replies.at(7).message.find("killed at the drain deadline"), std::string::npos);
}

TEST_F(SupervisorCoreTest, CrashRestartsWithExponentialBackoff) {
  serve_first();
  core.on_exit(pid(1), killed_by(SIGSEGV));
  EXPECT_EQ(core.counters().crashes, 1u);
  EXPECT_EQ(core.serving(), nullptr);
  advance(50ms);
  EXPECT_EQ(os.spawned.size(), 1u);
  advance(60ms);
  ASSERT_EQ(os.spawned.size(), 2u) << "first restart after 100ms";
  core.on_exit(pid(2), exited_with(1));  // fails before ready
  advance(150ms);
  EXPECT_EQ(os.spawned.size(), 2u);
  advance(100ms);
  ASSERT_EQ(os.spawned.size(), 3u) << "second restart after 200ms";
  core.on_ready(3);
  EXPECT_EQ(state(3), GenerationState::kServing);
  EXPECT_FALSE(os.exit_code.has_value());
}

// The level of the one line of `os` that contains `text` (nullopt: none, or more than one).
std::optional<LogLevel> level_of(const FakeOs& os, const std::string& text) {
  std::optional<LogLevel> found;
  for (size_t i = 0; i < os.logs.size(); ++i) {
    if (os.logs[i].find(text) == std::string::npos) continue;
    if (found) return std::nullopt;
    found = os.levels.at(i);
  }
  return found;
}

TEST_F(SupervisorCoreTest, LinesThatNeedTheOperatorAreWarningsOrErrorsTheRestInfo) {
  serve_first();
  core.on_reload(7);
  core.on_exit(pid(2), exited_with(3));  // the reload fails
  core.on_reload(8);
  core.on_ready(3);
  core.on_exit(pid(1), exited_with(0));      // that one succeeds
  core.on_exit(pid(3), killed_by(SIGSEGV));  // then crashes while serving
  ASSERT_EQ(os.logs.size(), os.levels.size());
  EXPECT_EQ(level_of(os, "reload 1 failed"), LogLevel::kError);
  EXPECT_EQ(level_of(os, "reload 2 ok"), LogLevel::kNotice);
  EXPECT_EQ(level_of(os, "while serving"), LogLevel::kError);
  EXPECT_EQ(level_of(os, "restarting in"), LogLevel::kWarning);
  EXPECT_EQ(level_of(os, "generation 3 (pid 1003) ready"), LogLevel::kInfo);
  EXPECT_EQ(level_of(os, "generation 2 (pid 1002) started"), LogLevel::kInfo);
}

TEST_F(SupervisorCoreTest, FirstGenerationFailingEndsTheSupervisor) {
  core.start();
  core.on_exit(pid(1), exited_with(2));
  ASSERT_TRUE(os.exit_code.has_value());
  EXPECT_EQ(*os.exit_code, 1);
}

TEST_F(SupervisorCoreTest, SpawnFailureIsAFailedReload) {
  serve_first();
  os.fail_spawn = true;
  core.on_reload(7);
  ASSERT_EQ(os.replies.count(7), 1u) << "a reload that cannot spawn is answered at once";
  EXPECT_FALSE(os.replies.at(7).ok);
  EXPECT_NE(os.replies.at(7).message.find("could not be started"), std::string::npos);
  EXPECT_EQ(state(1), GenerationState::kServing);
}

TEST_F(SupervisorCoreTest, StopDrainsEveryGenerationThenFinishes) {
  serve_first();
  core.on_reload(7);
  core.on_stop();
  ASSERT_EQ(os.replies.count(7), 1u) << "the pending reload is answered when the stop begins";
  EXPECT_FALSE(os.replies.at(7).ok);
  EXPECT_EQ(state(1), GenerationState::kDraining);
  EXPECT_EQ(state(2), GenerationState::kDraining) << "the unproven generation drains too";
  EXPECT_FALSE(os.exit_code.has_value());
  core.on_exit(pid(2), killed_by(SIGKILL));
  core.on_exit(pid(1), exited_with(0));
  ASSERT_TRUE(os.exit_code.has_value());
  EXPECT_EQ(*os.exit_code, 0);
}

TEST_F(SupervisorCoreTest, ReloadWhileStoppingIsRefused) {
  serve_first();
  core.on_stop();
  core.on_reload(7);
  ASSERT_EQ(os.replies.count(7), 1u) << "a reload while stopping is refused at once";
  EXPECT_FALSE(os.replies.at(7).ok);
  EXPECT_EQ(os.spawned.size(), 1u);
}

TEST_F(SupervisorCoreTest, SecondStopKillsAtOnce) {
  serve_first();
  core.on_stop();
  EXPECT_TRUE(os.kills.empty());
  core.on_stop();
  EXPECT_EQ(os.kills, std::vector<int>{1});
}

TEST_F(SupervisorCoreTest, NextDeadlineFollowsTheEarliestWork) {
  EXPECT_FALSE(core.next_deadline().has_value());
  core.start();
  EXPECT_EQ(core.next_deadline(), os.clock + 10s);
  core.on_ready(1);
  EXPECT_FALSE(core.next_deadline().has_value());
}

TEST_F(SupervisorCoreTest, ReadyFromAnotherGenerationIsIgnored) {
  serve_first();
  core.on_reload(7);
  core.on_ready(1);  // the old one repeating itself proves nothing about generation 2
  EXPECT_EQ(state(2), GenerationState::kStarting);
  core.on_ready(99);
  EXPECT_EQ(state(2), GenerationState::kStarting);
}

// A reload whose new generation crashed while the old one still drained, followed by a restart
// that replaces nothing: the restart's completion must not answer the reload's waiter, which is
// answered when the generation it replaced has exited.
TEST_F(SupervisorCoreTest, RestartCompletingDoesNotAnswerAReloadStillDraining) {
  serve_first();
  core.on_reload(7);
  core.on_ready(2);
  ASSERT_EQ(state(1), GenerationState::kDraining);
  core.on_exit(pid(2), killed_by(SIGSEGV));  // the new generation crashes while 1 drains
  advance(110ms);
  ASSERT_EQ(os.spawned.size(), 3u) << "a restart after the backoff";
  core.on_ready(3);
  EXPECT_EQ(os.replies.count(7), 0u) << "generation 1 has not exited yet";
  core.on_exit(pid(1), exited_with(0));
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_TRUE(os.replies.at(7).ok);
  EXPECT_NE(os.replies.at(7).message.find("generation 1 drained"), std::string::npos)
      << os.replies.at(7).message;
  EXPECT_TRUE(os.answered_twice.empty());
}

}  // namespace
}  // namespace baton

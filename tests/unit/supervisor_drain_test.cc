// Unit tests of the drain sequence in the supervisor core: an old generation quiesces, watched
// from outside, and gets the drain signal only once it is quiet (--drain=watch), or at once
// (--drain=signal, or when it cannot be watched). Scripted events, a fake OS, no processes.
#include <signal.h>

#include <map>
#include <set>

#include <gtest/gtest.h>

#include "supervisor/status_json.h"
#include "supervisor/supervisor_core.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

class FakeOs : public SupervisorOs {
 public:
  TimePoint now() override { return clock; }
  Result<int> spawn(int id) override { return 1000 + id; }
  void signal(const Generation& g, int sig) override { signals.push_back({g.id, sig}); }
  void signal_group(const Generation& g, int sig) override { group_signals.push_back({g.id, sig}); }
  void kill_group(const Generation& g) override { kills.push_back(g.id); }
  std::string output_tail(int) override { return {}; }
  void reply(WaiterId w, const ReloadOutcome& o) override { replies.emplace(w, o); }
  void log(LogLevel, const std::string& line) override { logs.push_back(line); }
  void finished(int code) override { exit_code = code; }
  bool group_has_members(const Generation& g) override { return groups_alive.count(g.id) > 0; }
  std::string wrapper_warning(const Generation&) override { return wrapper; }
  QuietCheck check_quiet(const Generation& g) override {
    checks.push_back(g.id);
    return quiet;
  }
  bool logged(const std::string& needle) const { return times_logged(needle) > 0; }
  size_t times_logged(const std::string& needle) const {
    size_t n = 0;
    for (const auto& l : logs) n += l.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }

  TimePoint clock{};
  QuietCheck quiet = QuietCheck::kBusy;
  std::vector<int> checks;  // generation looked at, one entry per look
  std::vector<std::pair<int, int>> signals;
  std::vector<std::pair<int, int>> group_signals;  // signal_group
  std::set<int> groups_alive;                      // generations whose group has members
  std::string wrapper;                             // what wrapper_warning says
  std::vector<int> kills;
  std::map<WaiterId, ReloadOutcome> replies;
  std::vector<std::string> logs;
  std::optional<int> exit_code;
};

CoreOptions options(DrainMode mode) {
  CoreOptions o;
  o.ready_timeout = 10s;
  o.drain_timeout = 5s;
  o.drain_mode = mode;
  o.drain_poll = 25ms;
  o.readiness = "notify";
  return o;
}

class DrainTest : public ::testing::Test {
 protected:
  explicit DrainTest(DrainMode mode = DrainMode::kWatch) : core(os, options(mode)) {}
  explicit DrainTest(const CoreOptions& o) : core(os, o) {}
  void advance(Duration d) {
    os.clock += d;
    core.on_tick();
  }
  // Generation 1 serving, generation 2 proven ready by reload `waiter`: the switch.
  void switch_to_second(WaiterId waiter = 7) {
    core.start();
    core.on_ready(1);
    core.on_reload(waiter);
    core.on_ready(2);
    ASSERT_EQ(core.find(2)->state, GenerationState::kServing);
    ASSERT_EQ(core.find(1)->state, GenerationState::kDraining);
  }

  FakeOs os;
  SupervisorCore core;
};

TEST_F(DrainTest, OldGenerationIsSignalledOnlyOnceSeenQuiet) {
  switch_to_second();
  EXPECT_TRUE(core.find(1)->quiescing);
  EXPECT_TRUE(os.signals.empty()) << "busy: not signalled at the switch";
  EXPECT_TRUE(os.logged("generation 1 (pid 1001) quiescing"));
  advance(25ms);
  advance(25ms);
  EXPECT_TRUE(os.signals.empty());
  EXPECT_EQ(os.checks, (std::vector<int>{1, 1, 1})) << "at the switch, then every drain_poll";

  os.quiet = QuietCheck::kQuiet;
  advance(25ms);
  ASSERT_EQ(os.signals.size(), 1u);
  EXPECT_EQ(os.signals[0], std::make_pair(1, SIGTERM));
  EXPECT_FALSE(core.find(1)->quiescing);
  EXPECT_TRUE(os.logged("generation 1 (pid 1001) draining after quiescing"));
  EXPECT_TRUE(os.logged("SIGTERM sent (quiet)"));

  // Signalled: never looked at again, and the loop is not woken for it.
  const size_t looks = os.checks.size();
  ASSERT_TRUE(core.next_deadline().has_value());
  EXPECT_EQ(*core.next_deadline(), core.find(1)->deadline);
  advance(1s);
  EXPECT_EQ(os.checks.size(), looks);
  EXPECT_EQ(os.replies.count(7), 0u) << "--wait answers once the old generation has exited";
  core.on_exit(1001, 0);
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_TRUE(os.replies.at(7).ok);
}

TEST_F(DrainTest, StatusShowsAQuiescingGenerationUntilItIsSignalled) {
  switch_to_second();
  auto quiescing_of = [&](int generation) {
    auto s = status_json(SupervisorFacts{}, core, os.clock, std::chrono::system_clock::now());
    for (const auto& g : s["generations"]) {
      if (g["generation"] == generation) return g.value("quiescing", false);
    }
    ADD_FAILURE() << "generation " << generation << " not in " << s.dump();
    return false;
  };
  EXPECT_TRUE(quiescing_of(1));
  EXPECT_FALSE(quiescing_of(2));
  os.quiet = QuietCheck::kQuiet;
  advance(25ms);
  EXPECT_FALSE(quiescing_of(1));
}

TEST_F(DrainTest, QuietAtTheSwitchIsSignalledAtOnce) {
  os.quiet = QuietCheck::kQuiet;
  switch_to_second();
  EXPECT_FALSE(core.find(1)->quiescing);
  EXPECT_EQ(os.signals, (std::vector<std::pair<int, int>>{{1, SIGTERM}}));
  EXPECT_TRUE(os.logged("(nothing in flight)"));
}

TEST_F(DrainTest, GenerationThatCannotBeWatchedIsSignalledAtOnce) {
  os.quiet = QuietCheck::kUnwatchable;  // its listeners are shared with the new generation
  switch_to_second();
  EXPECT_EQ(os.signals, (std::vector<std::pair<int, int>>{{1, SIGTERM}}));
  EXPECT_TRUE(os.logged("cannot be watched"));
  advance(100ms);
  EXPECT_EQ(os.checks.size(), 1u);
}

TEST_F(DrainTest, GenerationNeverQuietIsKilledAtTheDrainDeadline) {
  switch_to_second();
  advance(4900ms);
  EXPECT_TRUE(os.signals.empty());
  EXPECT_TRUE(os.kills.empty());
  advance(100ms);  // 5 s after the switch: the deadline counts from the switch, not the signal
  EXPECT_EQ(os.kills, std::vector<int>{1});
  EXPECT_TRUE(os.signals.empty()) << "killed, not signalled";
  EXPECT_TRUE(os.logged("did not become quiet within the drain timeout of 5s"));
  EXPECT_EQ(core.counters().drain_kills, 1u);
  const size_t looks = os.checks.size();
  advance(1s);
  EXPECT_EQ(os.checks.size(), looks) << "a killed generation is not looked at";
  core.on_exit(1001, SIGKILL);
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_TRUE(os.replies.at(7).ok);
  EXPECT_NE(os.replies.at(7).message.find("killed at the drain deadline"), std::string::npos);
}

TEST_F(DrainTest, LooksOnlyWhileSomeGenerationQuiesces) {
  core.start();
  core.on_ready(1);
  EXPECT_FALSE(core.next_deadline().has_value()) << "serving alone: nothing to wake for";
  core.on_reload(7);
  core.on_ready(2);
  ASSERT_TRUE(core.next_deadline().has_value());
  EXPECT_EQ(*core.next_deadline(), os.clock + 25ms);
  core.on_exit(1001, 0);  // it left on its own while quiescing
  EXPECT_FALSE(core.find(1)->quiescing);
  advance(25ms);
  EXPECT_EQ(os.checks, std::vector<int>{1}) << "only the look at the switch";
  EXPECT_FALSE(core.next_deadline().has_value());
}

TEST_F(DrainTest, QuiescingGenerationThatExitsCompletesTheReload) {
  switch_to_second();
  core.on_exit(1001, 0);
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_TRUE(os.replies.at(7).ok);
  EXPECT_TRUE(os.signals.empty());
}

TEST_F(DrainTest, StopSignalsAQuiescingGenerationAtOnce) {
  switch_to_second();
  core.on_stop();
  EXPECT_EQ(os.signals, (std::vector<std::pair<int, int>>{{1, SIGTERM}, {2, SIGTERM}}));
  EXPECT_FALSE(core.find(1)->quiescing);
  const size_t looks = os.checks.size();
  advance(100ms);
  EXPECT_EQ(os.checks.size(), looks);
}

TEST_F(DrainTest, GenerationFailingItsStartIsSignalledWithoutWatching) {
  core.start();
  core.on_ready(1);
  core.on_reload(7);
  advance(10s);  // generation 2 never proves ready
  EXPECT_EQ(os.signals, (std::vector<std::pair<int, int>>{{2, SIGTERM}}));
  EXPECT_TRUE(os.checks.empty()) << "it never served, so there is nothing to wait for";
  EXPECT_EQ(core.find(1)->state, GenerationState::kServing);
}

TEST_F(DrainTest, SeveralGenerationsQuiesceIndependently) {
  switch_to_second();
  core.on_reload(8);
  core.on_ready(3);
  EXPECT_TRUE(core.find(1)->quiescing);
  EXPECT_TRUE(core.find(2)->quiescing);
  os.checks.clear();
  advance(25ms);
  EXPECT_EQ(os.checks, (std::vector<int>{1, 2}));
}

class SignalModeTest : public DrainTest {
 protected:
  SignalModeTest() : DrainTest(DrainMode::kSignal) {}
};

TEST_F(SignalModeTest, OldGenerationIsSignalledAtTheSwitchWithoutLooking) {
  switch_to_second();
  EXPECT_EQ(os.signals, (std::vector<std::pair<int, int>>{{1, SIGTERM}}));
  EXPECT_TRUE(os.checks.empty());
  EXPECT_FALSE(core.find(1)->quiescing);
  EXPECT_TRUE(os.logged("generation 1 (pid 1001) draining: SIGTERM sent, up to 5s"));
}

// --drain-signal-group: the drain signal goes to the whole group, and a group that outlives its
// main process keeps the generation draining until the group is empty or the deadline passes.
CoreOptions group_options() {
  CoreOptions o = options(DrainMode::kSignal);
  o.drain_signal_group = true;
  return o;
}

class GroupDrainTest : public DrainTest {
 protected:
  GroupDrainTest() : DrainTest(group_options()) {}
};

TEST_F(GroupDrainTest, DrainSignalGoesToTheWholeGroupNotTheMainProcessAlone) {
  switch_to_second();
  EXPECT_TRUE(os.signals.empty());
  ASSERT_EQ(os.group_signals.size(), 1u);
  EXPECT_EQ(os.group_signals[0], std::make_pair(1, SIGTERM));
  EXPECT_TRUE(os.logged("SIGTERM sent to its process group"));
}

TEST_F(GroupDrainTest, GroupOutlivingItsMainProcessKeepsTheGenerationDrainingUntilItEmpties) {
  switch_to_second();
  os.groups_alive = {1};
  core.on_exit(1001, 0);  // the shell took SIGTERM and died; its child still drains
  EXPECT_EQ(core.find(1)->state, GenerationState::kDraining);
  EXPECT_TRUE(core.find(1)->group_lingers);
  EXPECT_TRUE(os.kills.empty()) << "the rest of a signalled group is not killed";
  EXPECT_EQ(os.replies.count(7), 0u) << "the reload is not done while the group drains";

  core.on_exit(5001, 0);  // some other orphan reaped: the group is still there
  EXPECT_EQ(core.find(1)->state, GenerationState::kDraining);

  os.groups_alive.clear();
  core.on_exit(5002, 0);  // the last member reaped
  EXPECT_EQ(core.find(1)->state, GenerationState::kExited);
  EXPECT_FALSE(core.find(1)->group_lingers);
  EXPECT_TRUE(os.kills.empty()) << "an empty group is never signalled (its id may be reused)";
  EXPECT_TRUE(os.logged("generation 1 (pid 1001): its process group has ended"));
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_TRUE(os.replies.at(7).ok) << os.replies.at(7).message;
}

TEST_F(GroupDrainTest, LingeringGroupIsKilledAtTheDrainDeadline) {
  switch_to_second();
  os.groups_alive = {1};
  core.on_exit(1001, 0);
  ASSERT_TRUE(core.next_deadline().has_value());
  EXPECT_EQ(*core.next_deadline(), core.find(1)->deadline);
  advance(5s);
  EXPECT_EQ(os.kills, (std::vector<int>{1}));
  EXPECT_EQ(core.counters().drain_kills, 1u);
  os.groups_alive.clear();
  core.on_exit(5003, SIGKILL);  // a wait status: killed by SIGKILL
  EXPECT_EQ(core.find(1)->state, GenerationState::kExited);
  ASSERT_EQ(os.replies.count(7), 1u);
  EXPECT_NE(os.replies.at(7).message.find("killed at the drain deadline"), std::string::npos)
      << os.replies.at(7).message;
}

TEST_F(GroupDrainTest, GroupOfAGenerationNotYetSignalledIsKilledWhenItsMainProcessExits) {
  core.start();
  core.on_ready(1);
  os.groups_alive = {1};
  core.on_exit(1001, 0);  // serving, not draining: a crash, and what it left is killed
  EXPECT_EQ(core.find(1)->state, GenerationState::kExited);
  EXPECT_EQ(os.kills, (std::vector<int>{1}));
}

TEST_F(SignalModeTest, WithoutGroupSignalTheRestOfTheGroupIsKilledWithItsMainProcess) {
  switch_to_second();
  EXPECT_TRUE(os.group_signals.empty());
  ASSERT_EQ(os.signals.size(), 1u);
  os.groups_alive = {1};
  core.on_exit(1001, 0);
  EXPECT_EQ(core.find(1)->state, GenerationState::kExited);
  EXPECT_EQ(os.kills, (std::vector<int>{1}));
}

TEST_F(SignalModeTest, ShellWrapperWarningIsLoggedOnceAtTheFirstReadyGeneration) {
  os.wrapper = "warning: generation 1 (pid 1001) is a shell";
  switch_to_second();
  EXPECT_EQ(os.times_logged("is a shell"), 1u);
}

TEST_F(GroupDrainTest, NoShellWrapperWarningWhenTheGroupIsSignalled) {
  os.wrapper = "warning: generation 1 (pid 1001) is a shell";
  switch_to_second();
  EXPECT_FALSE(os.logged("is a shell"));
}

}  // namespace
}  // namespace baton

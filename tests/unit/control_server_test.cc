// Unit tests of the control server's decisions and of the status reply: no sockets, no processes.
#include <sys/wait.h>

#include <map>

#include <gtest/gtest.h>

#include "supervisor/control_protocol.h"
#include "supervisor/control_server.h"
#include "supervisor/status_json.h"
#include "supervisor/supervisor_core.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

TEST(ReloadAck, NamesTheStartingGenerationWhenTheClientDoesNotWait) {
  auto ack = reload_ack(/*wait=*/false, /*answered=*/false, 3);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ((*ack)["ok"], true);
  EXPECT_EQ((*ack)["message"], "reload started: generation 3 starting");
}

TEST(ReloadAck, SaysQueuedWhenNoGenerationIsStarting) {
  auto ack = reload_ack(false, false, std::nullopt);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ((*ack)["ok"], true);
  EXPECT_EQ((*ack)["message"], "reload queued");
}

TEST(ReloadAck, LeavesAWaitingClientForTheOutcome) {
  EXPECT_FALSE(reload_ack(/*wait=*/true, false, 3).has_value());
  EXPECT_FALSE(reload_ack(true, false, std::nullopt).has_value());
}

TEST(ReloadAck, SendsNothingMoreWhenTheCoreAnsweredAlready) {
  EXPECT_FALSE(reload_ack(false, /*answered=*/true, std::nullopt).has_value());
  EXPECT_FALSE(reload_ack(true, true, 2).has_value());
}

// A core driven by scripted events, as the shell drives the real one.
class ScriptedOs : public SupervisorOs {
 public:
  TimePoint now() override { return clock; }
  Result<int> spawn(int id) override { return 1000 + id; }
  void signal(const Generation&, int) override {}
  void signal_group(const Generation&, int) override {}
  void kill_group(const Generation&) override {}
  std::string output_tail(int) override { return {}; }
  void reply(WaiterId w, const ReloadOutcome& o) override { replies.emplace(w, o); }
  void log(LogLevel, const std::string&) override {}
  void finished(int) override {}

  TimePoint clock = TimePoint{} + 1000s;
  std::map<WaiterId, ReloadOutcome> replies;
};

TEST(ReloadAck, FollowsTheCoreFromStartedToRefused) {
  ScriptedOs os;
  CoreOptions options;
  options.max_draining = 1;
  SupervisorCore core(os, options);
  core.start();
  core.on_ready(1);
  auto starting = [&]() -> std::optional<int> {
    const Generation* g = core.starting();
    return g != nullptr ? std::optional<int>(g->id) : std::nullopt;
  };

  core.on_reload(1);
  auto ack = reload_ack(false, os.replies.count(1) != 0, starting());
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ((*ack)["message"], "reload started: generation 2 starting");

  core.on_ready(2);  // generation 1 now drains: the drain limit (1) is reached
  core.on_reload(2);
  ASSERT_EQ(os.replies.count(2), 1u) << "the core refuses at once";
  EXPECT_FALSE(os.replies.at(2).ok);
  EXPECT_FALSE(reload_ack(false, true, starting()).has_value()) << "no second reply";
}

TEST(StatusJson, CarriesEveryDocumentedField) {
  ScriptedOs os;
  SupervisorCore core(os, CoreOptions{});
  const TimePoint t0 = os.clock;
  core.start();
  os.clock += 2s;
  core.on_ready(1);
  core.on_status_text(1, "serving 3 clients");
  core.on_reload(std::nullopt);
  os.clock += 1s;
  core.on_ready(2);
  core.on_exit(1001, 0);  // generation 1 drained and exited 0

  SupervisorFacts facts;
  facts.pid = 42;
  facts.started_at = t0;
  facts.command = {"/bin/app", "--port"};
  facts.readiness = "notify";
  facts.control_path = "/run/baton.sock";
  facts.listeners = {{"http", "127.0.0.1:8080", 3}};
  const auto wall_now = std::chrono::system_clock::time_point{} + 5000s;
  nlohmann::json s = status_json(facts, core, os.clock, wall_now);

  EXPECT_EQ(s["version"], kControlProtocolVersion);
  EXPECT_EQ(s["supervisor"]["pid"], 42);
  EXPECT_DOUBLE_EQ(s["supervisor"]["uptime_s"].get<double>(), 3.0);
  EXPECT_EQ(s["supervisor"]["command"][1], "--port");
  EXPECT_EQ(s["supervisor"]["readiness"], "notify");
  EXPECT_EQ(s["supervisor"]["control"], "/run/baton.sock");
  EXPECT_EQ(s["supervisor"]["stopping"], false);
  ASSERT_EQ(s["listeners"].size(), 1u);
  EXPECT_EQ(s["listeners"][0]["name"], "http");
  EXPECT_EQ(s["listeners"][0]["address"], "127.0.0.1:8080");
  EXPECT_EQ(s["listeners"][0]["fd"], 3);
  EXPECT_EQ(s["serving_generation"], 2);

  ASSERT_EQ(s["generations"].size(), 2u);
  const auto& g1 = s["generations"][0];
  EXPECT_EQ(g1["generation"], 1);
  EXPECT_EQ(g1["pid"], 1001);
  EXPECT_EQ(g1["state"], "exited");
  EXPECT_DOUBLE_EQ(g1["started_at"].get<double>(), 4997.0);  // 3 s before "now"
  EXPECT_DOUBLE_EQ(g1["ready_after_s"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(g1["drain_started_at"].get<double>(), 5000.0);
  EXPECT_DOUBLE_EQ(g1["exited_at"].get<double>(), 5000.0);
  EXPECT_EQ(g1["exit_status"], 0);
  EXPECT_FALSE(g1.contains("exit_signal"));
  EXPECT_FALSE(g1.contains("killed"));
  EXPECT_EQ(g1["status_text"], "serving 3 clients");
  EXPECT_EQ(s["generations"][1]["state"], "serving");

  ASSERT_TRUE(s["last_reload"].is_object());
  EXPECT_EQ(s["last_reload"]["id"], 1);
  EXPECT_EQ(s["last_reload"]["result"], "ok");
  EXPECT_DOUBLE_EQ(s["last_reload"]["requested_at"].get<double>(), 4999.0);
  EXPECT_DOUBLE_EQ(s["last_reload"]["duration_s"].get<double>(), 1.0);
  EXPECT_EQ(s["counters"]["reloads_ok"], 1);
  EXPECT_EQ(s["counters"]["generations_started"], 2);
  for (const char* k : {"reloads_failed", "reloads_coalesced", "crashes", "drain_kills"}) {
    EXPECT_EQ(s["counters"][k], 0) << k;
  }
}

TEST(StatusJson, LastReloadIsNullBeforeAnyReload) {
  ScriptedOs os;
  SupervisorCore core(os, CoreOptions{});
  core.start();
  nlohmann::json s =
      status_json(SupervisorFacts{}, core, os.clock, std::chrono::system_clock::now());
  EXPECT_TRUE(s["last_reload"].is_null());
  EXPECT_EQ(s["serving_generation"], 0);
  EXPECT_EQ(s["generations"][0]["state"], "starting");
  EXPECT_TRUE(s["listeners"].is_array());
}

}  // namespace
}  // namespace baton

// Unit tests of what crosses an in-place upgrade: the core's refusal, snapshot and restore, and
// the state's encoding (upgrade_state.h). No processes, no descriptors.
#include "supervisor/upgrade_state.h"

#include <signal.h>

#include <functional>
#include <map>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/run_settings.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

class QuietOs : public SupervisorOs {
 public:
  TimePoint now() override { return clock; }
  Result<int> spawn(int id) override { return 1000 + id; }
  void signal(const Generation& g, int sig) override { signals.push_back({g.id, sig}); }
  void signal_group(const Generation& g, int sig) override { signals.push_back({g.id, sig}); }
  void kill_group(const Generation& g) override { kills.push_back(g.id); }
  std::string output_tail(int) override { return {}; }
  void reply(WaiterId w, const ReloadOutcome& o) override { replies.emplace(w, o); }
  void log(LogLevel, const std::string&) override {}
  void finished(int) override {}
  QuietCheck check_quiet(const Generation&) override { return busy; }

  TimePoint clock{std::chrono::seconds(1000)};
  QuietCheck busy = QuietCheck::kBusy;
  std::vector<std::pair<int, int>> signals;
  std::vector<int> kills;
  std::map<WaiterId, ReloadOutcome> replies;
};

CoreOptions options() {
  CoreOptions o;
  o.ready_timeout = 10s;
  o.drain_timeout = 30s;
  o.readiness = "notify";
  return o;
}

TEST(UpgradeCoreTest, RefusedWhileAGenerationStartsOrIsHeldOrNoneServes) {
  QuietOs os;
  SupervisorCore core(os, options());
  core.start();
  ASSERT_TRUE(core.upgrade_refusal().has_value());
  EXPECT_NE(core.upgrade_refusal()->find("starting"), std::string::npos);
  core.on_ready(1);
  EXPECT_FALSE(core.upgrade_refusal().has_value());
  core.on_reload(std::nullopt);
  ASSERT_TRUE(core.upgrade_refusal().has_value());
  core.on_exit(1002, 1 << 8);  // the new one failed: generation 1 serves on
  EXPECT_FALSE(core.upgrade_refusal().has_value());

  CoreOptions held = options();
  held.hold_old = 60s;
  QuietOs os2;
  SupervisorCore core2(os2, held);
  core2.start();
  core2.on_ready(1);
  core2.on_reload(std::nullopt);
  core2.on_ready(2);
  ASSERT_EQ(core2.find(1)->state, GenerationState::kHeld);
  ASSERT_TRUE(core2.upgrade_refusal().has_value());
  EXPECT_NE(core2.upgrade_refusal()->find("--hold-old"), std::string::npos);
  core2.on_stop();
  ASSERT_TRUE(core2.upgrade_refusal().has_value());
}

TEST(UpgradeCoreTest, RestoredCoreFinishesTheReloadAndKeepsTheDrainDeadline) {
  QuietOs os;
  SupervisorCore before(os, options());
  before.start();
  before.on_ready(1);
  before.on_reload(7);  // a reload --wait: its client is carried too
  before.on_ready(2);
  ASSERT_EQ(before.find(1)->state, GenerationState::kDraining);
  ASSERT_TRUE(before.find(1)->quiescing);
  ASSERT_FALSE(before.upgrade_refusal().has_value());
  const TimePoint deadline = before.find(1)->deadline;

  QuietOs after_os;
  after_os.clock = os.clock + 1s;
  SupervisorCore after(after_os, options());
  after.restore(before.snapshot());
  EXPECT_EQ(after.serving()->id, 2);
  EXPECT_EQ(after.find(1)->deadline, deadline);
  EXPECT_EQ(after.counters().reloads_ok, 0u);
  EXPECT_TRUE(after.last_reload()->in_progress);
  // The quiescing generation is looked at again, then killed at the very same deadline.
  ASSERT_TRUE(after.next_deadline().has_value());
  EXPECT_LT(*after.next_deadline(), deadline);
  after_os.clock = deadline;
  after.on_tick();
  EXPECT_EQ(after_os.kills, std::vector<int>{1});
  after.on_exit(1001, SIGKILL);
  ASSERT_EQ(after_os.replies.count(7), 1u);
  EXPECT_TRUE(after_os.replies.at(7).ok);
  EXPECT_EQ(after.counters().reloads_ok, 1u);
  EXPECT_EQ(after.counters().drain_kills, 1u);
  // And the next reload is number 2, its generation number 3.
  after.on_reload(std::nullopt);
  ASSERT_NE(after.starting(), nullptr);
  EXPECT_EQ(after.starting()->id, 3);
  EXPECT_EQ(after.last_reload()->id, 2);
}

UpgradeState sample() {
  QuietOs os;
  SupervisorCore core(os, options());
  core.start();
  core.on_ready(1);
  core.on_status_text(1, "serving \xff bytes");  // not UTF-8: replaced, not an error
  core.on_reload(9);
  core.on_ready(2);
  UpgradeState s;
  s.from_version = "0.1.0";
  s.binary = "/usr/bin/baton";
  s.started_at_ns = 123456789;
  s.core = core.snapshot();
  s.listeners.push_back({"http", "127.0.0.1:8080", false, "", {5, 6}, -1});
  s.listeners.push_back({"admin", "unix:/run/app.sock", false, "/run/app.sock", {}, 7});
  s.slots_in_use = {true, true};
  s.slot_by_generation = {{1, 0}, {2, 1}};
  s.target_slot = 1;
  s.generations = {{1, 8, 9, false, false}, {2, 10, -1, true, true}};
  s.lock_fd = 11;
  s.control_fd = 12;
  s.control_path = "/run/baton/control.sock";
  s.waiters = {{9, 13}};
  s.next_waiter = 10;
  s.upgrade_waiter = CarriedWaiter{10, 14};
  s.notify_fd = 15;
  s.notify_path = "/run/baton/control.sock.notify.42";
  s.manager_fd = 16;
  s.manager_name = "@manager";
  s.manager.ready_sent = true;
  s.manager.last.reload_id = 1;
  s.manager.last.reload_in_progress = true;
  s.metrics_fd = 17;
  s.guard_fd = 18;
  s.guard_pid = 41;
  s.spoke_notify = true;
  s.signal_mask = 1u << (SIGPIPE - 1);
  s.dropped_lines = {{2, 12}};
  s.dropped_lines_total = 12;
  SupervisorConfig& c = s.settings.config;
  c.listens.push_back({"http", parse_address("127.0.0.1:8080").value()});
  c.listens.push_back({"", parse_address("unix:/run/app.sock").value()});
  c.bind.backlog = 512;
  c.bind.unix_mode = 0660;
  c.command = {"/srv/app/bin/server", "--port", "8080"};
  c.working_dir = "/srv/app/current";
  c.env = {{"MODE", "prod"}, {"EMPTY", ""}};
  c.readiness = parse_readiness("delay:1.234").value();
  c.core = options();
  c.core.hold_old = 5s;
  c.core.drain_signal = SIGQUIT;
  c.core.drain_mode = DrainMode::kSignal;
  c.core.readiness = c.readiness.to_string();
  c.run_as = RunAs{1000, 1001, {1001, 27}, "app"};
  c.config_file = "/etc/baton/app.toml";
  c.prefix_output = true;
  s.settings.reread_at_reload = true;
  return s;
}

TEST(UpgradeStateTest, RoundTripKeepsEveryField) {
  const UpgradeState s = sample();
  const std::string bytes = encode_upgrade_state(s);
  auto back = decode_upgrade_state(bytes);
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(encode_upgrade_state(*back), bytes);
  EXPECT_EQ(back->core.generations.size(), 2u);
  EXPECT_EQ(back->core.generations[0].deadline, s.core.generations[0].deadline);
  EXPECT_EQ(back->core.generations[0].state, GenerationState::kDraining);
  EXPECT_EQ(back->core.completing.size(), 1u);
  EXPECT_EQ(back->core.completing[0].waiters, std::vector<WaiterId>{9});
  EXPECT_EQ(back->listeners[0].members, (std::vector<int>{5, 6}));
  EXPECT_EQ(back->listeners[1].shared, 7);
  EXPECT_EQ(back->slot_by_generation, s.slot_by_generation);
  EXPECT_EQ(back->target_slot, 1);
  ASSERT_TRUE(back->upgrade_waiter.has_value());
  EXPECT_EQ(back->upgrade_waiter->fd, 14);
  EXPECT_TRUE(back->manager.last.reload_in_progress);
  EXPECT_EQ(back->dropped_lines.at(2), 12u);
  EXPECT_EQ(back->core.counters.ready_time.count, 2u);
  EXPECT_EQ(passed_fds(*back).size(), 14u);  // 5..18, once each
}

// Review finding 8: an argument or an --env value that is not UTF-8 crossed the exec with its
// bad bytes replaced (U+FFFD): the app ran with other arguments after an upgrade.
TEST(UpgradeStateTest, BytesThatAreNotUtf8CrossExactly) {
  UpgradeState s = sample();
  SupervisorConfig& c = s.settings.config;
  c.command = {"/srv/app/bin/server", "--greeting=caf\xe9", std::string("\xff\xfe\x80", 3),
               "ok \xc3\xa9",         "\xed\xa0\x80",       "\xf0\x82\x82\xac"};
  c.env = {{"LATIN1", "na\xefve"}, {"UTF8", "na\xc3\xafve"}};
  c.working_dir = "/srv/\xe9t\xe9";
  const std::string bytes = encode_upgrade_state(s);
  auto back = decode_upgrade_state(bytes);
  ASSERT_TRUE(back) << back.error().what();
  EXPECT_EQ(back->settings.config.command, c.command);
  EXPECT_EQ(back->settings.config.env, c.env);
  EXPECT_EQ(back->settings.config.working_dir, c.working_dir);
  EXPECT_EQ(encode_upgrade_state(*back), bytes);
  EXPECT_NE(bytes.find("\"ok \xc3\xa9\""), std::string::npos) << "valid UTF-8 stays text";
}

TEST(UpgradeStateTest, MalformedCarriedBytesAreRefused) {
  for (const char* bad : {R"([1,256])", R"("x")", R"([-1])", R"([1.5])"}) {
    std::string bytes = encode_upgrade_state(sample());
    const std::string from = "\"chdir\":\"/srv/app/current\"";
    const auto at = bytes.find(from);
    ASSERT_NE(at, std::string::npos);
    bytes.replace(at, from.size(), std::string("\"chdir\":{\"$bytes\":") + bad + "}");
    EXPECT_FALSE(decode_upgrade_state(bytes).ok()) << bad;
  }
}

TEST(UpgradeStateTest, TheCheckAnswerIsReadWithEveryTypeChecked) {
  auto ok = parse_upgrade_check_answer(R"({"baton_upgrade_check":2,"ok":true,"version":"1.2"})");
  ASSERT_TRUE(ok) << ok.error().what();
  EXPECT_EQ(*ok, "1.2");
  for (const char* bad :
       {R"({"baton_upgrade_check":"2","ok":"yes","version":2})",
        R"({"baton_upgrade_check":1,"ok":true,"version":"x"})",
        R"({"baton_upgrade_check":2,"ok":false,"version":"x"})", "[]", "not json", ""}) {
    EXPECT_FALSE(parse_upgrade_check_answer(bad).ok()) << bad;
  }
}

TEST(UpgradeStateTest, TheSettingsCrossWithEveryEffectiveValue) {
  const UpgradeState s = sample();
  auto back = decode_upgrade_state(encode_upgrade_state(s));
  ASSERT_TRUE(back) << back.error().what();
  const SupervisorConfig& c = back->settings.config;
  ASSERT_EQ(c.listens.size(), 2u);
  EXPECT_EQ(c.listens[0].name, "http");
  EXPECT_EQ(c.listens[0].address.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(c.listens[1].name, "");
  EXPECT_EQ(c.bind.backlog, 512);
  EXPECT_EQ(c.bind.unix_mode, 0660u);
  EXPECT_EQ(c.command, s.settings.config.command);
  EXPECT_EQ(c.working_dir, "/srv/app/current");
  EXPECT_EQ(c.env, s.settings.config.env);
  // Not rounded as the readiness's spelling ("delay:1.234") would be for longer delays.
  EXPECT_EQ(c.readiness.kind, ReadinessSpec::Kind::kDelay);
  EXPECT_EQ(c.readiness.delay, 1234ms);
  EXPECT_EQ(c.core.ready_timeout, 10s);
  EXPECT_EQ(c.core.drain_timeout, 30s);
  EXPECT_EQ(c.core.hold_old, 5s);
  EXPECT_EQ(c.core.drain_signal, SIGQUIT);
  EXPECT_EQ(c.core.drain_mode, DrainMode::kSignal);
  EXPECT_EQ(c.core.readiness, "delay:1.234");
  ASSERT_TRUE(c.run_as.has_value());
  EXPECT_EQ(c.run_as->uid, 1000u);
  EXPECT_EQ(c.run_as->groups, (std::vector<gid_t>{1001, 27}));
  EXPECT_EQ(c.config_file, "/etc/baton/app.toml");
  EXPECT_TRUE(c.prefix_output);
  EXPECT_TRUE(back->settings.reread_at_reload);
  EXPECT_FALSE(c.reload_config) << "the successor builds its own";
}

TEST(UpgradeStateTest, SettingsDifferenceNamesWhatDiffersAndWhatWouldApplyIt) {
  const CarriedSettings running = sample().settings;
  EXPECT_TRUE(settings_difference(running, running).empty());
  CarriedSettings file = running;
  file.config.reload_config = [] { return Result<SupervisorConfig>(SupervisorConfig{}); };
  file.config.config_file = "/elsewhere.toml";  // where settings come from, not what they are
  file.reread_at_reload = false;
  EXPECT_TRUE(settings_difference(running, file).empty());

  file.config.env["MODE"] = "staging";
  file.config.core.drain_timeout = 5s;
  file.config.bind.backlog = 128;
  file.config.run_as->groups.push_back(4);
  const auto diff = settings_difference(running, file);
  EXPECT_EQ(diff.reload_applies, (std::vector<std::string>{"drain-timeout", "env"}));
  EXPECT_EQ(diff.restart_applies, (std::vector<std::string>{"backlog", "user"}));
}

TEST(UpgradeStateTest, PassedFdsSayWhatEachMustBe) {
  const auto fds = passed_fds(sample());
  std::map<int, PassedFd> by_fd;
  for (const auto& p : fds) ASSERT_TRUE(by_fd.emplace(p.fd, p).second) << p.fd;
  EXPECT_EQ(by_fd.at(5).family, AF_INET);
  EXPECT_TRUE(by_fd.at(5).listening);
  EXPECT_EQ(by_fd.at(7).family, AF_UNIX);
  EXPECT_EQ(by_fd.at(8).kind, PassedFd::Kind::kPipe);
  EXPECT_EQ(by_fd.at(11).kind, PassedFd::Kind::kLockFile);
  EXPECT_EQ(by_fd.at(15).type, SOCK_DGRAM);
  EXPECT_FALSE(by_fd.at(14).listening);
  EXPECT_EQ(by_fd.count(9), 1u);
}

TEST(UpgradeStateTest, RejectsWhatDoesNotFit) {
  const std::string good = encode_upgrade_state(sample());
  auto mutated = [&](const std::function<void(nlohmann::json&)>& change) {
    auto j = nlohmann::json::parse(good);
    change(j);
    return decode_upgrade_state(j.dump());
  };
  EXPECT_FALSE(decode_upgrade_state(""));
  EXPECT_FALSE(decode_upgrade_state("[]"));
  EXPECT_FALSE(decode_upgrade_state(good.substr(0, good.size() / 2)));
  EXPECT_FALSE(decode_upgrade_state(std::string(kMaxUpgradeState + 1, ' ')));
  // A state of version 1 (written by a baton that carried no settings) is refused: the pre-flight
  // check fails and the old supervisor carries on.
  for (int version : {1, 3}) {
    auto other = mutated([&](auto& j) { j["baton_upgrade_state"] = version; });
    ASSERT_FALSE(other);
    EXPECT_NE(
        other.error().what().find(fmt::format("version {}; this baton reads version 2", version)),
        std::string::npos)
        << other.error().what();
  }
  EXPECT_FALSE(mutated([](auto& j) { j.erase("settings"); }));
  EXPECT_FALSE(mutated([](auto& j) { j.erase("lock_fd"); }));
  EXPECT_FALSE(mutated([](auto& j) { j["lock_fd"] = "11"; }));
  EXPECT_FALSE(mutated([](auto& j) { j["lock_fd"] = 2; }));          // stdio is not passed
  EXPECT_FALSE(mutated([](auto& j) { j["metrics_fd"] = 5; }));       // named twice
  EXPECT_FALSE(mutated([](auto& j) { j["lock_fd"] = 1LL << 40; }));  // out of range
  EXPECT_FALSE(mutated([](auto& j) { j["slot_by_generation"][0]["slot"] = 7; }));
  EXPECT_FALSE(mutated([](auto& j) { j["slots_in_use"][0] = false; }));  // held slot not in use
  EXPECT_FALSE(mutated([](auto& j) {
    j["listeners"][0]["members"] = nlohmann::json::array({5});
  }));  // fewer than slots
  EXPECT_FALSE(mutated([](auto& j) { j["listeners"][0]["address"] = "nowhere:x"; }));
  EXPECT_FALSE(mutated([](auto& j) { j["core"]["generations"][1]["id"] = 1; }));
  EXPECT_FALSE(mutated([](auto& j) { j["core"]["generations"][1]["state"] = 9; }));
  EXPECT_FALSE(mutated([](auto& j) { j["core"]["generations"][1]["pid"] = -1; }));
  EXPECT_FALSE(mutated([](auto& j) { j["core"]["next_id"] = 2; }));
  EXPECT_FALSE(mutated([](auto& j) { j["core"]["counters"]["crashes"] = -1; }));
  EXPECT_FALSE(mutated([](auto& j) {
    j["core"]["counters"]["ready_time"]["buckets"] = nlohmann::json::array({1});
  }));
  EXPECT_FALSE(mutated([](auto& j) { j["generations"][0]["id"] = 99; }));
  EXPECT_FALSE(mutated([](auto& j) { j["manager_fd"] = -1; }));  // its name without the socket
  EXPECT_FALSE(mutated([](auto& j) {
    j["listeners"] = nlohmann::json::array();
    for (int i = 0; i < 1000; ++i) j["listeners"].push_back(j["listeners"].size());
  }));
  EXPECT_TRUE(mutated([](auto&) {}));
}

TEST(UpgradeStateTest, RejectsSettingsThatDoNotFit) {
  const std::string good = encode_upgrade_state(sample());
  auto mutated = [&](const std::function<void(nlohmann::json&)>& change) {
    auto j = nlohmann::json::parse(good);
    change(j["settings"]);
    return decode_upgrade_state(j.dump());
  };
  EXPECT_TRUE(mutated([](auto&) {}));
  for (const char* key : {"listen", "backlog", "command", "env", "readiness", "ready_timeout_ms",
                          "drain", "user", "reread_at_reload"}) {
    SCOPED_TRACE(key);
    EXPECT_FALSE(mutated([&](auto& s) { s.erase(key); }));
  }
  EXPECT_FALSE(mutated([](auto& s) { s["command"] = nlohmann::json::array(); }));
  EXPECT_FALSE(mutated([](auto& s) { s["command"] = "/bin/server"; }));
  EXPECT_FALSE(mutated([](auto& s) { s["command"][1] = 8080; }));
  EXPECT_FALSE(mutated([](auto& s) { s["command"][0] = std::string("/bin/a\0b", 8); }));
  EXPECT_FALSE(mutated([](auto& s) { s["command"][0] = ""; }));
  EXPECT_FALSE(mutated([](auto& s) {
    s["command"] = nlohmann::json::array();
    for (size_t i = 0; i <= kMaxCarriedArgs; ++i) s["command"].push_back("x");
  }));
  EXPECT_FALSE(mutated([](auto& s) { s["chdir"] = "relative/dir"; }));
  EXPECT_FALSE(mutated([](auto& s) { s["env"] = nlohmann::json::array({"MODE=prod"}); }));
  EXPECT_FALSE(mutated([](auto& s) { s["env"]["MODE"] = 1; }));
  EXPECT_FALSE(mutated([](auto& s) { s["env"]["A=B"] = "c"; }));
  EXPECT_FALSE(mutated([](auto& s) { s["listen"][0]["address"] = "nowhere:x"; }));
  EXPECT_FALSE(mutated([](auto& s) { s["listen"][0]["name"] = "no spaces"; }));
  EXPECT_FALSE(mutated([](auto& s) { s["readiness"]["kind"] = "psychic"; }));
  EXPECT_FALSE(mutated([](auto& s) { s["readiness"]["delay_ms"] = -1; }));
  EXPECT_FALSE(mutated([](auto& s) {
    s["readiness"] = {{"kind", "http"}, {"argument", "healthz"}, {"delay_ms", 0}};
  }));  // not a path
  EXPECT_FALSE(mutated([](auto& s) {
    s["readiness"] = {{"kind", "notify"}, {"argument", "x"}, {"delay_ms", 0}};
  }));
  EXPECT_FALSE(mutated([](auto& s) { s["ready_timeout_ms"] = 0; }));
  EXPECT_FALSE(mutated([](auto& s) { s["drain_timeout_ms"] = 25LL * 3600 * 1000; }));
  EXPECT_FALSE(mutated([](auto& s) { s["drain_timeout_ms"] = 1.5; }));
  EXPECT_FALSE(mutated([](auto& s) { s["drain_signal"] = 0; }));
  EXPECT_FALSE(mutated([](auto& s) { s["drain_signal"] = 65; }));
  EXPECT_FALSE(mutated([](auto& s) { s["drain"] = "gently"; }));
  EXPECT_FALSE(mutated([](auto& s) { s["max_draining"] = 65; }));
  EXPECT_FALSE(mutated([](auto& s) { s["hold_old_ms"] = 2 * 3600 * 1000; }));
  EXPECT_FALSE(mutated([](auto& s) { s["backlog"] = 0; }));
  EXPECT_FALSE(mutated([](auto& s) { s["unix_mode"] = 01777; }));
  EXPECT_FALSE(mutated([](auto& s) { s["prefix_output"] = 1; }));
  EXPECT_FALSE(mutated([](auto& s) { s["user"]["uid"] = -1; }));
  EXPECT_FALSE(mutated([](auto& s) { s["user"]["uid"] = 0xffffffffLL; }));  // "no user"
  EXPECT_FALSE(mutated([](auto& s) { s["user"]["groups"][0] = "wheel"; }));
  EXPECT_TRUE(mutated([](auto& s) { s["user"] = nullptr; }));
  EXPECT_TRUE(mutated([](auto& s) { s["env"] = nlohmann::json::object(); }));
  // A field a later baton may add is ignored (and what it adds is optional: no version bump).
  EXPECT_TRUE(mutated([](auto& s) { s["some_later_setting"] = true; }));
}

// What the encoder writes is the table's (common/run_settings.h): every key but the two that say
// where the settings came from is a setting's state key.
TEST(UpgradeStateTest, EverySettingCarriedIsASettingOfTheTable) {
  const nlohmann::json j = encode_run_settings(sample().settings);
  for (const auto& [key, value] : j.items()) {
    EXPECT_TRUE(key == "config" || key == "reread_at_reload" ||
                run_setting_by_state_key(key) != nullptr)
        << key;
  }
  for (const auto& setting : run_settings()) {
    if (!setting.state_key.empty()) {
      EXPECT_TRUE(j.contains(setting.state_key)) << setting.name;
    }
  }
}

// The table says which settings a reload applies; take_reloadable must take exactly those. Each
// carried setting is changed alone, and its difference must fall on the side the table names.
TEST(UpgradeStateTest, AReloadTakesExactlyTheSettingsTheTableSaysItApplies) {
  const CarriedSettings running = sample().settings;
  const nlohmann::json base = encode_run_settings(running);
  for (const auto& setting : run_settings()) {
    if (setting.state_key.empty()) continue;
    const std::string key(setting.state_key);
    nlohmann::json changed = base;
    nlohmann::json& v = changed.at(key);
    if (v.is_boolean()) {
      v = !v.get<bool>();
    } else if (v.is_number()) {
      v = v.get<std::int64_t>() == setting.min ? setting.max : setting.min;
    } else if (key == "listen") {
      v = nlohmann::json::array({{{"name", "other"}, {"address", "127.0.0.1:9"}}});
    } else if (key == "command") {
      v = {"/bin/other"};
    } else if (key == "env") {
      v = {{"OTHER", "1"}};
    } else if (key == "readiness") {
      v = {{"kind", "notify"}, {"argument", ""}, {"delay_ms", 0}};
    } else if (key == "drain") {
      v = v == "watch" ? "signal" : "watch";
    } else if (key == "user") {
      v = nullptr;
    } else {
      v = v.get<std::string>() + "/other";  // chdir, adopt_library
    }
    CarriedSettings file;
    ASSERT_NO_THROW(file = decode_run_settings(changed)) << key << ": " << changed.dump();
    const auto diff = settings_difference(running, file);
    const std::vector<std::string> just = {std::string(setting.name)};
    EXPECT_EQ(setting.reload_applies ? diff.reload_applies : diff.restart_applies, just)
        << setting.name;
    EXPECT_TRUE((setting.reload_applies ? diff.restart_applies : diff.reload_applies).empty())
        << setting.name;
  }
}

}  // namespace
}  // namespace baton

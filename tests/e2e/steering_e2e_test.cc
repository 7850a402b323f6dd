// End-to-end tests of steering (issue 9): baton decides which generation receives each new
// connection. Real supervisor, real apps (tests/apps/badapp.cc misbehaves on purpose), real
// clients on 127.0.0.1.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <mutex>
#include <regex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "load_client.h"

namespace baton::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string badapp_binary() { return BATON_TEST_BADAPP_BIN; }

// `baton run` under test; the app command is read from a file at each start, so a test deploys a
// new version by rewriting the file before a reload.
class Supervised {
 public:
  // `as` (optional) runs baton and its clients under another identity, e.g. setpriv to uid 65534.
  Supervised(const TempDir& dir, std::vector<std::string> run_args, const std::string& app,
             std::vector<std::string> as = {})
      : dir_(dir), control_(dir.file("control.sock")), as_(std::move(as)) {
    deploy(app);
    // A short drain deadline unless the test sets one: some of these apps ignore SIGTERM and
    // are killed at it.
    std::vector<std::string> argv = as_;
    for (const auto& a : std::vector<std::string>{baton_binary(), "run", "--control", control_}) {
      argv.push_back(a);
    }
    if (std::find(run_args.begin(), run_args.end(), "--drain-timeout") == run_args.end()) {
      argv.insert(argv.end(), {"--drain-timeout", "3"});
    }
    argv.insert(argv.end(), run_args.begin(), run_args.end());
    for (const char* a : {"--", "/bin/sh", "-c"}) argv.push_back(a);
    argv.push_back("exec $(cat " + dir.file("app") + ")");
    process_.emplace(Process::spawn(argv));
  }
  // Generations live in process groups of their own: a stop ends them with the supervisor.
  ~Supervised() {
    if (process_ && process_->running()) {
      ctl({"stop"});
      if (!process_->wait(30s)) process_->signal(SIGKILL);
    }
  }
  void deploy(const std::string& app) { std::ofstream(dir_.file("app")) << app; }
  Process& process() { return *process_; }
  CommandResult ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = as_;
    argv.push_back(baton_binary());
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--control");
    argv.push_back(control_);
    return run(argv, 120s);
  }
  nlohmann::json status() {
    auto r = ctl({"status", "--json"});
    if (r.exit_code != 0) return nlohmann::json();
    return nlohmann::json::parse(r.output, nullptr, false);
  }
  // The first listener's address once generation `id` serves ("" on timeout or exit).
  std::string wait_serving(int id = 1) {
    std::string address;
    wait_until(
        [&] {
          auto s = status();
          if (!s.is_object() || s.value("serving_generation", 0) < id) return false;
          address = s["listeners"][0]["address"];
          return true;
        },
        30s, 20ms);
    return address;
  }

 private:
  const TempDir& dir_;
  std::string control_;
  std::vector<std::string> as_;
  std::optional<Process> process_;
};

std::string testapp(const std::string& args) { return testapp_binary() + " " + args; }
std::string badapp(const std::string& args) { return badapp_binary() + " " + args; }

// Run as root, and again as uid 65534 where the test runs as root: attaching the classic BPF
// program to a SO_REUSEPORT group needs no privilege.
class SteeringAs : public ::testing::TestWithParam<bool> {
 protected:
  // Why the unprivileged run cannot happen here ("" when it can, or for the plain run).
  static std::string cannot() {
    if (!GetParam()) return "";
    if (::geteuid() != 0) return "not root: the plain run is already unprivileged";
    if (::access("/usr/bin/setpriv", X_OK) != 0) return "no setpriv";
    return "";
  }
  // The setpriv prefix for the unprivileged run ({} for the plain one).
  static std::vector<std::string> identity(TempDir& dir) {
    if (!GetParam()) return {};
    // The directory holds the control socket and the app file: the other user's.
    EXPECT_EQ(::chown(dir.path().c_str(), 65534, 65534), 0);
    return {"/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"};
  }
};

INSTANTIATE_TEST_SUITE_P(Users, SteeringAs, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "uid65534" : "asTest"; });

TEST_P(SteeringAs, NewVersionThatAcceptsThenCrashesIsHandedNothingAndNothingFails) {
  if (auto why = cannot(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  auto as = identity(dir);
  Supervised baton(dir, {"--listen", "127.0.0.1:0", "--ready", "http:/healthz"},
                   testapp("--no-notify"), as);
  std::string address = baton.wait_serving();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  struct stat supervisor {};
  const int pid = baton.status()["supervisor"].value("pid", 0);
  ASSERT_EQ(::stat(("/proc/" + std::to_string(pid)).c_str(), &supervisor), 0) << pid;
  EXPECT_EQ(supervisor.st_uid, GetParam() ? 65534u : ::geteuid());
  LoadClient load(parse_address(address).value(), LoadOptions{.threads = 4});
  ASSERT_TRUE(wait_until([&] { return load.requests() > 50; }, 30s));
  baton.deploy(badapp("--accept-then-crash 1500"));
  auto r = baton.ctl({"reload", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("generation 1 keeps serving"));
  const long before = load.requests();
  // What baton and the apps said, and the status, tell where it hangs if it ever does.
  ASSERT_TRUE(wait_until([&] { return load.requests() > before + 50; }, 30s))
      << load.requests() - before << " requests after the rollback, " << load.failed()
      << " failed\n"
      << baton.status().dump() << "\n"
      << baton.process().output();
  load.stop();
  EXPECT_THAT(baton.process().output(), HasSubstr("badapp: generation 2 accepted 0 public"));
  EXPECT_THAT(baton.process().output(), HasSubstr(", steered)"));
  EXPECT_THAT(baton.process().output(), Not(HasSubstr("badapp: generation 2 accepted 1 public")));
  EXPECT_THAT(load.failures(), ::testing::IsEmpty())
      << load.failed() << " of " << load.requests() << " failed";
}

TEST(Steering, StartingGenerationIsHandedNoNewConnection) {
  TempDir dir;
  // Speaks sd_notify (STATUS= at once) but never says READY=1: it stays starting.
  Supervised baton(dir, {"--listen", "127.0.0.1:0", "--ready-timeout", "3"},
                   badapp("--status-at-start --ready-after 0"));
  std::string address = baton.wait_serving();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  baton.deploy(badapp("--status-at-start"));
  auto reload = std::async(std::launch::async, [&] { return baton.ctl({"reload", "--wait"}); });
  ASSERT_TRUE(baton.process().wait_for_output("generation 2 accepting", 30s));
  for (int i = 0; i < 100; ++i) {
    auto r = http_get(address, "/", 10s);
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_THAT(r->body, HasSubstr("generation 1 ")) << "request " << i;
  }
  auto result = reload.get();
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("not ready within"));
  // One connection reached its socket: baton's own readiness probe, steered by source port.
  EXPECT_THAT(baton.process().output(), Not(HasSubstr("badapp: generation 2 accepted 2 public")));
}

TEST(Steering, AppThatSpeaksNoNotifyStartsAndReloadsWithNoReadyFlag) {
  TempDir dir;
  Supervised baton(dir, {"--listen", "127.0.0.1:0", "--ready-timeout", "20"},
                   testapp("--no-notify --init-ms 300"));
  std::string address = baton.wait_serving();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  LoadClient load(parse_address(address).value(), LoadOptions{.threads = 2});
  for (int i = 0; i < 3; ++i) {
    auto r = baton.ctl({"reload", "--wait"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
  }
  load.stop();
  EXPECT_EQ(baton.status()["serving_generation"], 4);
  EXPECT_THAT(load.failures(), ::testing::IsEmpty());
  EXPECT_THAT(baton.process().output(), HasSubstr("accepted baton's probe connection"));
}

// The probe's connection is accepted and closed before baton looks again: its FIN is the proof
// (issue 22, finding 12). Before, only the server side's inode was, gone by the next look.
TEST(Steering, AppThatAcceptsAndClosesAtOnceIsSeenToAccept) {
  for (const char* ready : {"accept", "auto"}) {
    TempDir dir;
    Supervised baton(dir, {"--listen", "127.0.0.1:0", "--ready", ready, "--ready-timeout", "5"},
                     badapp("--accept-and-close"));
    ASSERT_FALSE(baton.wait_serving().empty()) << ready << "\n" << baton.process().output();
    auto r = baton.ctl({"reload", "--wait"});
    EXPECT_EQ(r.exit_code, 0) << ready << ": " << r.output;
    EXPECT_THAT(baton.process().output(), HasSubstr("accepted baton's probe connection"));
  }
}

// Connections wait on a socket the serving generation closed: baton says so (issue 22, finding
// 15).
TEST(Steering, AppThatClosesItsListenerIsLogged) {
  TempDir dir;
  Supervised baton(dir, {"--listen", "127.0.0.1:0"}, badapp("--close-listeners-after 200"));
  const std::string address = baton.wait_serving();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  ASSERT_TRUE(baton.process().wait_for_output("generation 1 closed its listeners", 30s));
  // baton's copy still listens: the kernel completes these handshakes, and nobody accepts them.
  auto to = parse_address(address);
  ASSERT_TRUE(to.ok());
  std::vector<Fd> waiting;
  for (int i = 0; i < 3; ++i) {
    Fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::connect(c.get(), reinterpret_cast<const sockaddr*>(&to->storage), to->length), 0);
    waiting.push_back(std::move(c));
  }
  ASSERT_TRUE(baton.process().wait_for_output("closed its socket of listener listen0", 30s))
      << baton.process().output();
  EXPECT_THAT(baton.process().output(), HasSubstr("3 connection(s) wait there unaccepted"));
}

TEST(Steering, AppThatSpeaksNotifyIsHeldToReady) {
  TempDir dir;
  // Accepts at once, says STATUS= at once, READY=1 only after 500 ms: serving only after that.
  Supervised baton(dir, {"--listen", "127.0.0.1:0", "--ready-timeout", "3"},
                   badapp("--status-at-start --ready-after 500"));
  ASSERT_FALSE(baton.wait_serving().empty()) << baton.process().output();
  // Its accept alone did not make it ready: READY=1, 500 ms after its start, did (a lower bound
  // the app sets, whatever the machine's speed).
  std::smatch ready;
  const std::string out = baton.process().output();
  ASSERT_TRUE(std::regex_search(out, ready,
                                std::regex("generation 1 \\(pid [0-9]+\\) ready after "
                                           "([0-9.]+)s")))
      << out;
  EXPECT_GE(std::stod(ready[1]), 0.5) << out;
  // A later version that accepts but speaks no sd_notify at all: an earlier generation spoke
  // it, so this one is held to READY=1 too, and the reload fails.
  baton.deploy(badapp(""));
  auto r = baton.ctl({"reload", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("not ready within"));
  EXPECT_EQ(baton.status()["serving_generation"], 1);
}

TEST(Steering, NotifyAppThatNeverSaysReadyFailsToStart) {
  TempDir dir;
  Supervised baton(dir, {"--listen", "127.0.0.1:0", "--ready-timeout", "2"},
                   badapp("--status-at-start"));
  auto code = baton.process().wait_exit_code(60s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(baton.process().output(), HasSubstr("not ready within"));
}

TEST(Steering, HoldOldRollsBackAtOnceWhenTheNewVersionStopsAcceptingAndExits) {
  TempDir dir;
  Supervised baton(dir, {"--listen", "127.0.0.1:0", "--hold-old", "20"}, testapp(""));
  std::string address = baton.wait_serving();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  LoadClient load(parse_address(address).value(), LoadOptions{.threads = 4});
  ASSERT_TRUE(wait_until([&] { return load.requests() > 50; }, 30s));
  // Ready at once, stops accepting after 1 s, exits after 2 s: well within the hold.
  baton.deploy(badapp("--ready-after 0 --stop-accepting-after 1000 --exit-after 2000"));
  auto r = baton.ctl({"reload", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("rolled back: generation 1 serves again"));
  const long before = load.requests();
  ASSERT_TRUE(wait_until([&] { return load.requests() > before + 100; }, 30s));
  load.stop();
  auto s = baton.status();
  EXPECT_EQ(s["serving_generation"], 1);
  EXPECT_THAT(load.failures(), ::testing::IsEmpty())
      << load.failed() << " of " << load.requests() << " failed";
}

TEST(Steering, HoldOldOutOfRangeOrWithOnlyUnixListenersIsBadInput) {
  TempDir dir;
  for (auto args : std::vector<std::vector<std::string>>{
           {"--listen", "127.0.0.1:0", "--hold-old", "-1"},
           {"--listen", "127.0.0.1:0", "--hold-old", "2h"},
           {"--listen", "unix:" + dir.file("s"), "--hold-old", "5"}}) {
    std::vector<std::string> argv = {baton_binary(), "run", "--control", dir.file("c.sock")};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--");
    argv.push_back(testapp_binary());
    auto r = run(argv, 30s);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_THAT(r.output, HasSubstr("hold-old"));
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

TEST(Steering, StatusShowsSteeredAndSharedListenersAndSlots) {
  TempDir dir;
  const std::string sock = dir.file("s");
  Supervised baton(dir, {"--listen", "127.0.0.1:0", "--listen", "unix:" + sock}, testapp(""));
  ASSERT_FALSE(baton.wait_serving().empty()) << baton.process().output();
  auto s = baton.status();
  EXPECT_EQ(s["listeners"][0]["steering"], "steered");
  EXPECT_EQ(s["listeners"][1]["steering"], "shared");
  EXPECT_EQ(s["generations"][0]["slot"], 0);
  EXPECT_EQ(s["generations"][0]["share_percent"], 100) << s.dump();
  EXPECT_EQ(s["generations"][0]["accept_queue"], 0) << s.dump();
  EXPECT_EQ(s["generations"][0]["connections"], 0) << s.dump();
  // A request in flight is a connection the generation holds.
  std::string address = s["listeners"][0]["address"];
  std::thread slow([&] { (void)http_get(address, "/slow?ms=1500", 20s); });
  EXPECT_TRUE(wait_until(
      [&] {
        auto now = baton.status();
        return now.is_object() && now["generations"][0].value("connections", 0) == 1;
      },
      10s))
      << baton.status().dump();
  slow.join();
  auto text = baton.ctl({"status"});
  EXPECT_THAT(text.output, HasSubstr("100% of new connections"));
  EXPECT_THAT(text.output, HasSubstr("steered"));
  EXPECT_THAT(text.output, HasSubstr("shared"));
}

// The generation named in a response body ("generation N pid P"), 0 when there is none.
int generation_in(const std::string& body) {
  auto at = body.find("generation ");
  return at == std::string::npos ? 0 : std::atoi(body.c_str() + at + 11);
}

TEST(Steering, CanaryGetsItsShareOfNewConnectionsThenEveryOne) {
  TempDir dir;
  Supervised baton(dir, {"--listen", "127.0.0.1:0"}, testapp(""));
  std::string address = baton.wait_serving();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  auto reload = std::async(std::launch::async, [&] {
    return baton.ctl({"reload", "--wait", "--canary", "20", "--canary-for", "60s"});
  });
  ASSERT_TRUE(baton.process().wait_for_output("canary: the new generation gets 20%", 30s))
      << baton.process().output();
  // New connections, one request each, from ports the kernel picks: 15-25% must reach the canary
  // (1,000 flows: the share's standard deviation is 1.3 points).
  int to_new = 0, to_old = 0;
  for (int i = 0; i < 1000; ++i) {
    auto r = http_get(address, "/", 10s);
    ASSERT_TRUE(r.ok()) << r.error().what();
    const int g = generation_in(r->body);
    ASSERT_TRUE(g == 1 || g == 2) << r->body;
    ++(g == 2 ? to_new : to_old);
  }
  std::printf("[ figures  ] canary 20%%: %d of 1000 new connections to the new generation\n",
              to_new);
  EXPECT_GE(to_new, 150);
  EXPECT_LE(to_new, 250);
  auto s = baton.status();
  EXPECT_EQ(s["serving_generation"], 2);
  EXPECT_EQ(s["generations"][0]["state"], "held");
  EXPECT_EQ(s["generations"][0]["share_percent"], 80) << s.dump();
  EXPECT_EQ(s["generations"][1]["share_percent"], 20) << s.dump();
  baton.ctl({"stop"});  // rather than wait out the window (the next test does)
  reload.get();
}

TEST(Steering, CanaryWindowEndsWithEveryNewConnectionOnTheNewGeneration) {
  TempDir dir;
  Supervised baton(dir, {"--listen", "127.0.0.1:0"}, testapp(""));
  std::string address = baton.wait_serving();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  LoadClient load(parse_address(address).value(), LoadOptions{.threads = 2});
  auto r = baton.ctl({"reload", "--wait", "--canary", "50", "--canary-for", "1500ms"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (int i = 0; i < 200; ++i) {
    auto got = http_get(address, "/", 10s);
    ASSERT_TRUE(got.ok()) << got.error().what();
    EXPECT_EQ(generation_in(got->body), 2) << "request " << i;
  }
  load.stop();
  EXPECT_THAT(load.failures(), ::testing::IsEmpty())
      << load.failed() << " of " << load.requests() << " failed";
  EXPECT_THAT(baton.process().output(), HasSubstr("the canary window is over"));
}

TEST(Steering, CanaryThatFailsInItsWindowRollsBackWithNothingLost) {
  TempDir dir;
  Supervised baton(dir, {"--listen", "127.0.0.1:0"}, testapp(""));
  std::string address = baton.wait_serving();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  LoadClient load(parse_address(address).value(), LoadOptions{.threads = 4});
  ASSERT_TRUE(wait_until([&] { return load.requests() > 50; }, 30s));
  baton.deploy(badapp("--ready-after 0 --stop-accepting-after 1000 --exit-after 2000"));
  auto r = baton.ctl({"reload", "--wait", "--canary", "30", "--canary-for", "30s"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("rolled back: generation 1 serves again"));
  const long before = load.requests();
  ASSERT_TRUE(wait_until([&] { return load.requests() > before + 100; }, 30s));
  load.stop();
  EXPECT_EQ(baton.status()["serving_generation"], 1);
  EXPECT_THAT(load.failures(), ::testing::IsEmpty())
      << load.failed() << " of " << load.requests() << " failed";
}

TEST(Steering, CanaryBadInputIsOneLineAndExitTwo) {
  TempDir dir;
  const std::string sock = dir.file("s");
  Supervised baton(dir, {"--listen", "unix:" + sock}, testapp(""));
  ASSERT_TRUE(wait_until(
      [&] {
        auto st = baton.status();
        return st.is_object() && st.value("serving_generation", 0) == 1;
      },
      30s))
      << baton.process().output();
  for (auto args : std::vector<std::vector<std::string>>{{"--canary", "0"},
                                                         {"--canary", "100"},
                                                         {"--canary", "ten"},
                                                         {"--canary-for", "5s"},
                                                         {"--canary", "10", "--canary-for", "2d"},
                                                         {"--canary", "10", "--canary-for", "x"}}) {
    std::vector<std::string> argv = {"reload"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = baton.ctl(argv);
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.output;
    // One line of error; a flag the parser refuses gets the usual pointer to --help too.
    EXPECT_THAT(r.output.substr(0, r.output.find('\n')), HasSubstr("canary")) << r.output;
    EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 2) << r.output;
  }
  // Well formed, but this supervisor has only a unix listener: refused, nothing started.
  auto r = baton.ctl({"reload", "--wait", "--canary", "10"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("a canary needs a steered listener"));
  EXPECT_EQ(baton.status()["generations"].size(), 1u);
}

// Old generations held alive by slow requests (the drain watch waits for them) while reloads go
// on: however many generations live, only the serving one is handed new connections. A response
// from generation g to a connection opened after generation s was seen serving needs g >= s.
TEST(Steering, OnlyTheServingGenerationIsHandedNewConnectionsAcrossAHundredReloads) {
  TempDir dir;
  // The drain timeout outlasts the held requests: each is released by the test, never cut.
  Supervised baton(dir,
                   {"--listen", "127.0.0.1:0", "--max-draining", "8", "--drain-timeout", "150s"},
                   testapp(""));
  std::string address = baton.wait_serving();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  std::atomic<int> floor{1};
  std::atomic<bool> stop{false};
  std::atomic<int> requests{0};
  std::mutex mu;
  std::vector<std::string> wrong;
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&] {
      while (!stop && requests < 1000000) {
        const int seen = floor;
        auto r = http_get(address, "/", 10s);
        ++requests;
        std::lock_guard lock(mu);
        if (!r.ok()) {
          wrong.push_back(r.error().what());
        } else if (generation_in(r->body) < seen) {
          wrong.push_back("generation " + std::to_string(generation_in(r->body)) +
                          " answered after generation " + std::to_string(seen) + " served");
        }
      }
    });
  }
  // Every fourth generation is held alive by a request that lasts until eight reloads later, so
  // three generations or more live at once on any machine.
  std::vector<std::thread> slow;
  const auto release = [&](int i) { return dir.file("release-" + std::to_string(i)); };
  size_t most_live = 0;
  for (int i = 2; i <= 101; ++i) {
    if (i % 4 == 0) {  // a slow request keeps the generation serving now alive after the switch
      slow.emplace_back([&, i] { (void)http_get(address, "/until?file=" + release(i), 150s); });
    }
    if (i % 4 == 0 && i > 8) std::ofstream(release(i - 8)).flush();
    auto r = baton.ctl({"reload"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_TRUE(wait_until(
        [&] {
          auto s = baton.status();
          if (!s.is_object() || s.value("serving_generation", 0) < i) return false;
          size_t live = 0;
          for (const auto& g : s["generations"]) live += g["state"] != "exited" ? 1 : 0;
          most_live = std::max(most_live, live);
          return true;
        },
        30s, 5ms))
        << "reload " << i << "\n"
        << baton.process().output();
    floor = i;
  }
  stop = true;
  for (int i = 4; i <= 101; i += 4) std::ofstream(release(i)).flush();
  for (auto& t : clients) t.join();
  for (auto& t : slow) t.join();
  std::printf("[ figures  ] 100 reloads: %d requests, at most %zu live generations\n",
              requests.load(), most_live);
  EXPECT_GE(most_live, 3u) << "the test did not hold old generations alive\n"
                           << baton.process().output();
  EXPECT_GT(requests.load(), 500);
  EXPECT_THAT(wrong, ::testing::IsEmpty()) << wrong.size() << " of " << requests.load();
}

}  // namespace
}  // namespace baton::test

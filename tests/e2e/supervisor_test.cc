// End-to-end tests of `baton run`: real supervisor, real apps, real sockets, real clients.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton_run.h"
#include "harness.h"
#include "load_client.h"

namespace baton::test {
namespace {

using ::testing::HasSubstr;

// New-connection-per-request load on `address` from a few threads (see load_client.h).
LoadClient load_on(const std::string& address, int threads) {
  return LoadClient(parse_address(address).value(), {.threads = threads});
}

// Responses per generation, from the tally of testapp's answers "generation G pid P".
std::map<int, long> by_generation(const LoadClient& load) {
  std::map<int, long> out;
  for (const auto& [body, n] : load.tally()) {
    if (body.starts_with("generation ")) out[std::atoi(body.c_str() + 11)] += n;
  }
  return out;
}

// The app a test runs through this wrapper reads its arguments from a file at each start, so a
// test "deploys" a new version by rewriting the file before a reload.
std::vector<std::string> versioned_app(const TempDir& dir, const std::string& args) {
  std::ofstream(dir.file("args")) << args;
  return {"/bin/sh", "-c", "exec " + testapp_binary() + " $(cat " + dir.file("args") + ")"};
}

TEST(Supervisor, FiftyReloadsUnderLoadFailNoRequest) {
  // Each new generation takes 150 ms to start: long enough that every reload has a real overlap
  // (the new one starting while the old one serves the load), short enough for 50 reloads.
  constexpr int kInitMs = 150;
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0"},
              {testapp_binary(), "--init-ms", std::to_string(kInitMs)});
  std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  LoadClient load = load_on(address, 4);
  for (int i = 0; i < 50; ++i) {
    auto r = baton.ctl({"reload", "--wait"});
    ASSERT_EQ(r.exit_code, 0) << "reload " << i << ": " << r.output;
  }
  load.stop();
  auto s = baton.status();
  EXPECT_EQ(s["serving_generation"], 51);
  EXPECT_EQ(s["counters"]["reloads_ok"], 50);
  EXPECT_GT(load.requests(), 500);
  EXPECT_EQ(load.failed(), 0) << load.failed() << " of " << load.requests() << " failed, e.g. "
                              << ::testing::PrintToString(load.failures());
  // The overlap was real: no generation was ready before its start-up delay had passed.
  for (const auto& g : s["generations"]) {
    ASSERT_TRUE(g.contains("ready_after_s")) << g.dump();
    EXPECT_GE(g["ready_after_s"].get<double>(), kInitMs / 1000.0) << g.dump();
  }
  // And every generation served: the reloads really replaced the server each time.
  auto served = by_generation(load);
  for (int g = 1; g <= 51; ++g) EXPECT_GT(served[g], 0) << "generation " << g << " served nothing";
}

TEST(Supervisor, ReloadKeepsOldGenerationWhenNewExitsAtStart) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0"}, versioned_app(dir, "--init-ms 200"));
  std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  LoadClient load = load_on(address, 2);
  std::ofstream(dir.file("args")) << "--init-ms 300 --exit-at-start 3";
  auto r = baton.ctl({"reload", "--wait"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("exited with status 3 before it was ready"));
  EXPECT_THAT(r.output, HasSubstr("generation 1 keeps serving"));
  EXPECT_THAT(r.output, HasSubstr("failing at start with status 3")) << "the output tail";
  auto body = http_get(address, "/");
  ASSERT_TRUE(body.ok());
  EXPECT_THAT(body->body, HasSubstr("generation 1 "));
  load.stop();
  EXPECT_EQ(load.failed(), 0) << ::testing::PrintToString(load.failures());
  auto s = baton.status();
  EXPECT_EQ(s["last_reload"]["result"], "failed");
  EXPECT_EQ(s["counters"]["reloads_failed"], 1);

  // The next good version goes through.
  std::ofstream(dir.file("args")) << "--init-ms 200";
  EXPECT_EQ(baton.ctl({"reload", "--wait"}).exit_code, 0);
  EXPECT_THAT(http_get(address, "/")->body, HasSubstr("generation 3 "));
}

TEST(Supervisor, ReloadKeepsOldGenerationWhenNewIsNeverReady) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--ready-timeout", "2"},
              versioned_app(dir, "--init-ms 100"));
  std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  LoadClient load = load_on(address, 2);
  std::ofstream(dir.file("args")) << "--never-ready";
  auto r = baton.ctl({"reload", "--wait"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("was not ready within 2s"));
  load.stop();
  // The unready generation was handed no connection (steered: its own socket got none while it
  // started), so nothing failed, and the old generation must still be the one serving.
  EXPECT_EQ(load.failed(), 0) << ::testing::PrintToString(load.failures());
  auto s = baton.status();
  EXPECT_EQ(s["serving_generation"], 1);
  ASSERT_TRUE(
      wait_until([&] { return baton.status()["generations"][1]["state"] == "exited"; }, 5s));
}

TEST(Supervisor, SlowRequestInFlightCompletesAcrossReload) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0"}, {testapp_binary(), "--init-ms", "200"});
  std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty());
  std::optional<Result<HttpResponse>> slow;
  std::thread t([&] { slow = http_get(address, "/slow?ms=2500", 20s); });
  // Generation 1 has the request in hand before the reload starts.
  ASSERT_TRUE(baton.process().wait_for_output("serving /slow?ms=2500", 10s))
      << baton.process().output();
  auto r = baton.ctl({"reload", "--wait"});
  t.join();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(slow->ok()) << slow->error().what();
  EXPECT_EQ((*slow)->status, 200);
  EXPECT_THAT((*slow)->body, HasSubstr("generation 1 ")) << "served by the draining generation";
  EXPECT_THAT(baton.process().output(), HasSubstr("generation 1 (pid"));
}

TEST(Supervisor, OldGenerationIgnoringSigtermIsKilledAtDrainDeadline) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--drain-timeout", "1"},
              versioned_app(dir, "--ignore-sigterm"));
  ASSERT_FALSE(baton.wait_address().empty());
  std::ofstream(dir.file("args")) << "";
  auto start = Clock::now();
  auto r = baton.ctl({"reload", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("killed at the drain deadline"));
  EXPECT_GE(Clock::now() - start, 1s);
  auto s = baton.status();
  EXPECT_EQ(s["counters"]["drain_kills"], 1);
  EXPECT_EQ(s["generations"][0]["exit_signal"], SIGKILL);
}

TEST(Supervisor, AppSeesOnlyStdioAndItsListeners) {
  TempDir dir;
  Baton baton(dir,
              {"--listen", "a=127.0.0.1:0", "--listen", "b=unix:" + dir.file("s.sock"), "--listen",
               "u=udp:127.0.0.1:0"},
              {testapp_binary(), "--fd-report", dir.file("fds")});
  ASSERT_FALSE(baton.wait_address().empty()) << baton.process().output();
  std::ifstream in(dir.file("fds"));
  std::set<int> fds;
  for (int fd; in >> fd;) fds.insert(fd);
  EXPECT_EQ(fds, (std::set<int>{0, 1, 2, 3, 4, 5}));
  // And the environment that says what they are.
  auto s = baton.status();
  EXPECT_EQ(s["listeners"][1]["name"], "b");
  EXPECT_EQ(s["listeners"][2]["address"].get<std::string>().rfind("udp:127.0.0.1:", 0), 0u);
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("s.sock").c_str(), &st), 0);
  auto reply = http_get("unix:" + dir.file("s.sock"), "/");
  ASSERT_TRUE(reply.ok()) << reply.error().what();
  EXPECT_EQ(reply->status, 200);
}

TEST(Supervisor, HttpReadinessIsProvenByTheNewGeneration) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--ready", "http:/healthz", "--ready-timeout", "3"},
              versioned_app(dir, "--no-notify --init-ms 300"));
  std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  // A new generation answering 503 on its own probe listener is not ready, although the old one
  // answers 200 on the shared public socket.
  std::ofstream(dir.file("args")) << "--never-ready";
  auto r = baton.ctl({"reload", "--wait"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("not ready within 3s (http:/healthz)"));
  std::ofstream(dir.file("args")) << "--no-notify --init-ms 300";
  r = baton.ctl({"reload", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(Supervisor, ExecReadinessWaitsForTheCheckToPass) {
  TempDir dir;
  // The check leaves a line per run, so the test awaits failed runs instead of sleeping.
  std::string check = "echo run >> " + dir.file("runs") + "; test -f " + dir.file("go");
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--ready", "exec:" + check},
              {testapp_binary(), "--no-notify"});
  auto runs = [&] {
    std::string text = read_file(dir.file("runs"));
    return std::count(text.begin(), text.end(), '\n');
  };
  ASSERT_TRUE(wait_until([&] { return runs() >= 2; }, 10s)) << baton.process().output();
  auto s = baton.status();
  EXPECT_EQ(s["serving_generation"], 0) << "not ready while the check fails";
  EXPECT_EQ(s["generations"][0]["state"], "starting") << s.dump();
  std::ofstream(dir.file("go")) << "";
  EXPECT_FALSE(baton.wait_address(10s).empty()) << baton.process().output();
}

TEST(Supervisor, DelayReadinessIsNotReadyBeforeTheDelay) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--ready", "delay:0.5"},
              {testapp_binary(), "--no-notify"});
  ASSERT_FALSE(baton.wait_address(10s).empty()) << baton.process().output();
  // Measured by the supervisor from the generation's own start: no wall-clock bound in the test.
  auto g = baton.status()["generations"][0];
  ASSERT_TRUE(g.contains("ready_after_s")) << g.dump();
  EXPECT_GE(g["ready_after_s"].get<double>(), 0.5) << g.dump();
}

TEST(Supervisor, CrashedGenerationIsRestartedAndClientsQueue) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0"}, {testapp_binary(), "--init-ms", "300"});
  std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty());
  int pid = baton.status()["generations"][0]["pid"];
  ::kill(pid, SIGKILL);
  // The socket stays open: a request sent now waits in the backlog for generation 2.
  auto r = http_get(address, "/", 10s);
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_THAT(r->body, HasSubstr("generation 2 "));
  EXPECT_EQ(baton.status()["counters"]["crashes"], 1);
}

TEST(Supervisor, StopDrainsAndExitsZeroLeavingNothingBound) {
  TempDir dir;
  Baton baton(dir, {"--listen", "unix:" + dir.file("s.sock")}, {testapp_binary()});
  ASSERT_FALSE(baton.wait_address().empty());
  auto r = baton.ctl({"stop"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(baton.process().wait_exit_code(10s), 0);
  struct stat st {};
  EXPECT_NE(::stat(dir.file("s.sock").c_str(), &st), 0) << "unix listener removed";
  EXPECT_NE(::stat(baton.control().c_str(), &st), 0) << "control socket removed";
}

TEST(Supervisor, SigtermStopsAndSighupReloads) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0"}, {testapp_binary()});
  ASSERT_FALSE(baton.wait_address().empty());
  baton.process().signal(SIGHUP);
  EXPECT_TRUE(wait_until([&] { return baton.status()["serving_generation"] == 2; }, 10s));
  baton.process().signal(SIGTERM);
  EXPECT_EQ(baton.process().wait_exit_code(10s), 0);
}

TEST(Supervisor, FirstGenerationFailingEndsTheSupervisorNonZero) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0"}, {testapp_binary(), "--exit-at-start", "4"});
  auto code = baton.process().wait_exit_code(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(baton.process().output(),
              HasSubstr("start failed: generation 1 exited with status 4"));
}

TEST(Supervisor, ControlSocketRefusesAnotherUid) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);  // the directory is not what stops the other user
  Baton baton(dir, {"--listen", "127.0.0.1:0"}, {testapp_binary()});
  ASSERT_FALSE(baton.wait_address().empty());
  SpawnOptions nobody;
  nobody.uid = 65534;
  auto r = run({baton_binary(), "reload", "--control", baton.control()}, 10s, nobody);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("ermission denied"));
  EXPECT_EQ(baton.status()["serving_generation"], 1) << "no reload happened";
}

TEST(Supervisor, UnmodifiedSocketActivatedServerReloads) {
  if (::access("/usr/bin/gunicorn", X_OK) != 0) GTEST_SKIP() << "gunicorn is not installed";
  TempDir dir;
  // gunicorn takes LISTEN_FDS as systemd passes them; it serves every listener it is given, the
  // private probe listener too, so http readiness proves its workers answer.
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--ready", "http:/"},
              {"/usr/bin/gunicorn", "--chdir", std::string(BATON_TEST_APPS_DIR), "--workers", "2",
               "--graceful-timeout", "10", "wsgi_app:app"});
  std::string address = baton.wait_address(60s);
  ASSERT_FALSE(address.empty()) << baton.process().output();
  LoadClient load = load_on(address, 2);
  for (int i = 0; i < 5; ++i) {
    auto r = baton.ctl({"reload", "--wait"});
    ASSERT_EQ(r.exit_code, 0) << r.output << baton.process().output();
  }
  load.stop();
  EXPECT_EQ(load.failed(), 0) << ::testing::PrintToString(load.failures());
  EXPECT_GT(load.requests(), 20);
  EXPECT_THAT(http_get(address, "/")->body, HasSubstr("gunicorn generation 6 "));
}

// gunicorn's master says READY=1 ("arbiter booted") before its workers import the app. A release
// that fails at import never serves, and the default readiness must not take its word: it waits
// for an accept on the generation's own socket, which no worker makes, and the reload fails with
// the old generation serving throughout.
TEST(Supervisor, GunicornReleaseFailingAtImportIsNeverSwitchedToByDefault) {
  if (::access("/usr/bin/gunicorn", X_OK) != 0) GTEST_SKIP() << "gunicorn is not installed";
  TempDir dir;
  const std::string marker = dir.file("broken");
  Baton baton(dir,
              {"--listen", "127.0.0.1:0", "--env", "WSGI_BROKEN_MARKER=" + marker,
               "--ready-timeout", "60s"},
              {"/usr/bin/gunicorn", "--chdir", std::string(BATON_TEST_APPS_DIR), "--workers", "2",
               "--graceful-timeout", "10", "wsgi_app:app"});
  std::string address = baton.wait_address(60s);
  ASSERT_FALSE(address.empty()) << baton.process().output();
  LoadClient load = load_on(address, 2);
  // Both workers have imported the app (each answers with its pid): a worker still importing
  // when the release turns bad would fail, and gunicorn's master would end generation 1 with it.
  ASSERT_TRUE(wait_until([&] { return load.tally().size() >= 2; }, 60s))
      << ::testing::PrintToString(load.tally());
  { std::ofstream(marker) << "x"; }
  auto failed = baton.ctl({"reload", "--wait"});
  EXPECT_EQ(failed.exit_code, 1) << failed.output << baton.process().output();
  EXPECT_THAT(failed.output, HasSubstr("sent READY=1 but accepted no connection"))
      << baton.process().output();
  auto during = http_get(address, "/");
  ASSERT_TRUE(during.ok()) << during.error().what() << baton.process().output();
  EXPECT_THAT(during->body, HasSubstr("gunicorn generation 1 "));
  ASSERT_EQ(std::remove(marker.c_str()), 0);
  auto fixed = baton.ctl({"reload", "--wait"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.output << baton.process().output();
  load.stop();
  EXPECT_EQ(load.failed(), 0) << ::testing::PrintToString(load.failures());
  EXPECT_GT(load.requests(), 20);
  auto after = http_get(address, "/");
  ASSERT_TRUE(after.ok()) << after.error().what();
  EXPECT_THAT(after->body, HasSubstr("gunicorn generation 3 "));
}

// A `reload --wait` queued behind a first start that then fails is answered with why, before
// the supervisor exits.
TEST(Supervisor, AReloadQueuedBehindAFailingFirstStartIsAnswered) {
  TempDir dir;
  const std::string go = dir.file("go");
  Baton baton(dir, {"--listen", "127.0.0.1:0"},
              {"/bin/sh", "-c", "while [ ! -e \"$0\" ]; do sleep 0.05; done; exit 1", go});
  ASSERT_TRUE(baton.process().wait_for_output("waiting up to", 60s)) << baton.process().output();
  Process reload =
      Process::spawn({baton_binary(), "reload", "--wait", "--control", baton.control()});
  ASSERT_TRUE(baton.process().wait_for_output("reload queued", 60s))
      << baton.process().output() << reload.output();
  { std::ofstream(go) << "x"; }
  const auto code = reload.wait_exit_code(60s);
  ASSERT_TRUE(code.has_value()) << reload.output();
  EXPECT_EQ(*code, 1) << reload.output();
  EXPECT_THAT(reload.output(),
              HasSubstr("the first start failed (generation 1 exited with status 1 "
                        "before it was ready"))
      << reload.output();
  EXPECT_THAT(reload.output(), Not(HasSubstr("without a reply")));
  EXPECT_TRUE(baton.process().wait_exit_code(60s).has_value());
}

// Bad input: one clear line, a non-zero exit, nothing left running or bound.
class BadInput : public ::testing::Test {
 protected:
  // Runs `baton ARGS`; checks the exit code, that the error is one line, and that nothing of
  // the supervisor's stays behind in the directory (control socket, notify socket).
  std::string expect_refused(std::vector<std::string> args, int code = 2) {
    std::vector<std::string> argv = {baton_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv, 10s);
    EXPECT_EQ(r.exit_code, code) << r.output;
    std::string first = r.output.substr(0, r.output.find('\n'));
    EXPECT_THAT(first, ::testing::StartsWith("baton")) << r.output;
    return r.output;
  }
  TempDir dir;
};

TEST_F(BadInput, UnknownFlagIsRefusedWithOneLine) {
  EXPECT_THAT(expect_refused({"run", "--frobnicate", "--", "/bin/true"}), HasSubstr("frobnicate"));
}

TEST_F(BadInput, MalformedListenAddressesAreRefused) {
  for (const char* bad : {"70000", "127.0.0.1:x", "::1:80", "unix:", "bad name=80"}) {
    EXPECT_THAT(expect_refused(
                    {"run", "--control", dir.file("c"), "--listen", bad, "--", testapp_binary()}),
                HasSubstr("bad "))
        << bad;
  }
}

TEST_F(BadInput, MissingCommandListenerOrBadSpecIsRefusedBeforeStarting) {
  EXPECT_THAT(expect_refused({"run", "--control", dir.file("c"), "--listen", "127.0.0.1:0"}),
              HasSubstr("missing the command"));
  EXPECT_THAT(expect_refused({"run", "--control", dir.file("c"), "--listen", "127.0.0.1:0", "--",
                              "no-such-command-xyz"}),
              HasSubstr("no-such-command-xyz: not found in PATH"));
  EXPECT_THAT(expect_refused({"run", "--control", dir.file("c"), "--", testapp_binary()}),
              HasSubstr("give at least one address"));
  EXPECT_THAT(expect_refused({"run", "--control", dir.file("c"), "--listen", "127.0.0.1:0",
                              "--ready", "sometimes", "--", testapp_binary()}),
              HasSubstr("bad --ready"));
  EXPECT_THAT(expect_refused({"run", "--control", dir.file("c"), "--listen", "127.0.0.1:0",
                              "--drain-signal", "SIGNOPE", "--", testapp_binary()}),
              HasSubstr("bad signal 'SIGNOPE'"));
}

TEST_F(BadInput, PortInUseLeavesNothingBound) {
  // Hold a port, then ask for it and a second free one: the second must not stay bound.
  auto held = Process::spawn({baton_binary(), "run", "--control", dir.file("a.sock"), "--listen",
                              "127.0.0.1:0", "--", testapp_binary()});
  std::string address;
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = run({baton_binary(), "status", "--json", "--control", dir.file("a.sock")}, 5s);
        auto j = nlohmann::json::parse(r.output, nullptr, false);
        if (!j.is_object() || j["serving_generation"] == 0) return false;
        address = j["listeners"][0]["address"];
        return true;
      },
      20s));
  std::string out =
      expect_refused({"run", "--control", dir.file("b.sock"), "--listen",
                      "unix:" + dir.file("free.sock"), "--listen", address, "--", testapp_binary()},
                     1);
  EXPECT_THAT(out, HasSubstr("bind " + address + ": Address already in use"));
  struct stat st {};
  EXPECT_NE(::stat(dir.file("free.sock").c_str(), &st), 0) << "the free listener was released";
  EXPECT_NE(::stat(dir.file("b.sock").c_str(), &st), 0) << "no control socket left";
}

TEST_F(BadInput, SecondSupervisorOnTheSameControlPath) {
  Baton first(dir, {"--listen", "127.0.0.1:0"}, {testapp_binary()});
  ASSERT_FALSE(first.wait_address().empty());
  std::string out = expect_refused(
      {"run", "--control", first.control(), "--listen", "127.0.0.1:0", "--", testapp_binary()}, 1);
  EXPECT_THAT(out, HasSubstr("another supervisor"));
  EXPECT_EQ(first.status()["serving_generation"], 1) << "the first one is unharmed";
}

TEST_F(BadInput, ControlCommandsWithoutASupervisorSaySoAndExitTwo) {
  EXPECT_THAT(expect_refused({"reload", "--control", dir.file("nobody.sock")}),
              HasSubstr("no supervisor is running at"));
  EXPECT_THAT(expect_refused({"status", "--control", dir.file("nobody.sock")}),
              HasSubstr("no supervisor is running at"));
}

}  // namespace
}  // namespace baton::test

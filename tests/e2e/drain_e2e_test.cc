// The drain run by baton (--drain=watch), end to end: apps that die on SIGTERM, reloaded under
// load from real clients (our own new-connection-per-request threads, wrk, baton soak with
// keep-alive), must lose nothing. --drain=signal on the same app shows what is lost without it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include "adopt_support.h"
#include "baton_run.h"
#include "harness.h"
#include "load_client.h"

namespace baton::test {
namespace {

using ::testing::HasSubstr;

std::string plainapp_binary() { return BATON_TEST_PLAINAPP_BIN; }

// The plain app (dies on SIGTERM, keep-alive, LISTEN_FDS) under baton with http readiness.
std::vector<std::string> run_args(const std::string& drain, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--listen",      "127.0.0.1:0", "--ready",
                                   "http:/healthz", "--drain",     drain};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST(Drain, AppDyingOnSigtermReloadedTwentyTimesUnderLoadFailsNothing) {
  TempDir dir;
  Baton baton(dir, run_args("watch"), {plainapp_binary(), "--init-ms", "100"});
  std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  if (!baton.steered()) GTEST_SKIP() << "baton run shares its listeners here: nothing to watch";
  LoadClient load(parse_address(address).value(), LoadOptions{.threads = 3});
  // wrk alongside, a new connection per request too, for a bounded time.
  Process wrk = Process::spawn({"/usr/bin/wrk", "-t1", "-c4", "-d8s", "--timeout", "5s", "-H",
                                "Connection: close", "http://" + address + "/"});
  for (int i = 0; i < 20; ++i) {
    auto r = baton.ctl({"reload", "--wait"});
    ASSERT_EQ(r.exit_code, 0) << "reload " << i << ": " << r.output;
    EXPECT_THAT(r.output, ::testing::Not(HasSubstr("killed at the drain deadline"))) << r.output;
  }
  ASSERT_TRUE(wrk.wait(60s).has_value()) << "wrk did not end";
  load.stop();
  const std::string wrk_out = wrk.output();
  EXPECT_THAT(wrk_out, HasSubstr("requests in")) << wrk_out;
  EXPECT_THAT(wrk_out, ::testing::Not(HasSubstr("Socket errors"))) << wrk_out;
  EXPECT_THAT(wrk_out, ::testing::Not(HasSubstr("Non-2xx"))) << wrk_out;
  std::printf("[ figures  ] plainapp: 20 reloads: %ld requests, %ld failed; wrk: %s\n",
              load.requests(), load.failed(), line_with(wrk_out, "requests in").c_str());
  EXPECT_GT(load.requests(), 200);
  EXPECT_THAT(load.failures(), ::testing::IsEmpty())
      << load.failed() << " of " << load.requests() << " failed";
  // Each old generation was watched: signalled once seen quiet (at the switch already, or after
  // quiescing), never "cannot be watched".
  const std::string log = baton.process().output();
  EXPECT_THAT(log, ::testing::Not(HasSubstr("cannot be watched")));
  EXPECT_THAT(log, ::testing::AnyOf(HasSubstr("SIGTERM sent (quiet)"),
                                    HasSubstr("SIGTERM sent (nothing in flight)")));
  auto s = baton.status();
  EXPECT_EQ(s["counters"]["reloads_ok"], 20);
  EXPECT_EQ(s["counters"]["drain_kills"], 0);
}

// A request in flight when the reload comes: with --drain=watch the old generation is signalled
// only once it has answered; with --drain=signal the same app dies with the request in hand.
void slow_request_across_reload(const std::string& drain, bool expect_ok) {
  TempDir dir;
  Baton baton(dir, run_args(drain), {plainapp_binary()});
  std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  if (expect_ok && !baton.steered()) GTEST_SKIP() << "baton run shares its listeners here";
  std::optional<Result<HttpResponse>> slow;
  std::thread t([&] { slow = http_get(address, "/slow?ms=2000", 20s); });
  ASSERT_TRUE(baton.process().wait_for_output("serving /slow?ms=2000", 10s))
      << baton.process().output();
  auto r = baton.ctl({"reload", "--wait"});
  t.join();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(slow.has_value());
  if (expect_ok) {
    ASSERT_TRUE(slow->ok()) << slow->error().what() << "\n" << baton.process().output();
    EXPECT_EQ((*slow)->status, 200);
    EXPECT_THAT((*slow)->body, HasSubstr("generation 1 "));
  } else {
    EXPECT_FALSE(slow->ok()) << "the app died with the request in hand";
  }
}

TEST(Drain, SlowRequestInFlightCompletesAcrossReloadOfAnAppDyingOnSigterm) {
  slow_request_across_reload("watch", true);
}

TEST(Drain, SignalModeCutsTheRequestThatWatchModeKeeps) {
  slow_request_across_reload("signal", false);
}

TEST(Drain, KeepAliveLoadOnAnAppDyingOnSigtermFailsNothingAfterOneRetry) {
  TempDir dir;
  Baton baton(dir, run_args("watch"), {plainapp_binary(), "--init-ms", "100"});
  std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  if (!baton.steered()) GTEST_SKIP() << "baton run shares its listeners here: nothing to watch";
  const std::string json = dir.file("soak.json");
  auto r = run({baton_binary(), "soak", "--url", "http://" + address + "/", "-c", "8", "-t", "2",
                "-d", "6s", "--reloads", "10", "--control", baton.control(), "--json", json},
               120s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(read_file(json), nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["reloads"]["ok"], 10) << r.output;
  EXPECT_GT(j["requests"]["ok"].get<uint64_t>(), 1000u) << r.output;
  EXPECT_EQ(j["requests"]["failed"], 0) << r.output;
  std::printf("[ figures  ] keep-alive soak, 10 reloads: %s\n", j["requests"].dump().c_str());
  EXPECT_EQ(baton.status()["counters"]["drain_kills"], 0) << "idle keep-alives were closed";
}

TEST(Drain, DeadlineEndsAGenerationThatNeverBecomesQuiet) {
  TempDir dir;
  Baton baton(dir, run_args("watch", {"--drain-timeout", "1"}), {plainapp_binary()});
  std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  if (!baton.steered()) GTEST_SKIP() << "baton run shares its listeners here: nothing to watch";
  std::optional<Result<HttpResponse>> slow;
  std::thread t([&] { slow = http_get(address, "/slow?ms=8000", 20s); });
  ASSERT_TRUE(baton.process().wait_for_output("serving /slow?ms=8000", 10s));
  auto r = baton.ctl({"reload", "--wait"});
  t.join();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("killed at the drain deadline"));
  EXPECT_THAT(baton.process().output(), HasSubstr("did not become quiet within the drain timeout"));
  EXPECT_FALSE(slow->ok());
}

// Apps that bind their own port and die on SIGTERM, run through --adopt: Python's http.server and
// a Node `http` server with no signal handler.
struct DyingRuntime {
  std::string name;
  std::string binary;  // "" when not installed
  std::vector<std::string> (*argv)(const std::string& binary, int port, const std::string& dir);
};

std::vector<DyingRuntime> dying_runtimes() {
  return {
      {"python_http_server", BATON_ADOPT_PYTHON3,
       [](const std::string& bin, int port, const std::string& dir) {
         return std::vector<std::string>{bin,      "-m",        "http.server", std::to_string(port),
                                         "--bind", "127.0.0.1", "--directory", dir};
       }},
      {"node_no_handler", BATON_ADOPT_NODE,
       [](const std::string& bin, int port, const std::string&) {
         return std::vector<std::string>{
             bin, "-e",
             "require('http').createServer((q, s) => s.end('node ' + process.pid + '\\n'))"
             ".listen(" +
                 std::to_string(port) + ", '127.0.0.1')"};
       }},
  };
}

class DrainAdopted : public ::testing::TestWithParam<DyingRuntime> {};

TEST_P(DrainAdopted, TwentyReloadsUnderLoadFailNothing) {
  const DyingRuntime& rt = GetParam();
  if (rt.binary.empty()) GTEST_SKIP() << rt.name << " is not installed";
  TempDir dir;
  adopt::ReservedPort reserved;  // held until baton binds it, so nobody else takes it
  const std::string address = "127.0.0.1:" + std::to_string(reserved.port());
  Baton baton(dir, {"--adopt", "--listen", address, "--drain", "watch"},
              rt.argv(rt.binary, reserved.port(), dir.path()));
  ASSERT_FALSE(baton.wait_address(60s).empty()) << baton.process().output();
  reserved.release();
  if (!baton.steered()) GTEST_SKIP() << "baton run shares its listeners here: nothing to watch";

  LoadClient load(parse_address(address).value(), LoadOptions{.threads = 2});
  Process wrk = Process::spawn({"/usr/bin/wrk", "-t1", "-c2", "-d8s", "--timeout", "5s", "-H",
                                "Connection: close", "http://" + address + "/"});
  for (int i = 0; i < 20; ++i) {
    auto r = baton.ctl({"reload", "--wait"});
    ASSERT_EQ(r.exit_code, 0) << "reload " << i << ": " << r.output << baton.process().output();
  }
  ASSERT_TRUE(wrk.wait(60s).has_value()) << "wrk did not end";
  load.stop();
  const std::string wrk_out = wrk.output();
  std::printf("[ figures  ] %s: 20 reloads: %ld requests, %ld failed; wrk: %s\n", rt.name.c_str(),
              load.requests(), load.failed(), line_with(wrk_out, "requests in").c_str());
  EXPECT_THAT(wrk_out, HasSubstr("requests in")) << wrk_out;
  EXPECT_THAT(wrk_out, ::testing::Not(HasSubstr("Socket errors"))) << wrk_out;
  EXPECT_THAT(wrk_out, ::testing::Not(HasSubstr("Non-2xx"))) << wrk_out;
  EXPECT_GT(load.requests(), 100);
  EXPECT_THAT(load.failures(), ::testing::IsEmpty())
      << load.failed() << " of " << load.requests() << " failed";
  EXPECT_EQ(baton.status()["counters"]["drain_kills"], 0) << baton.process().output();
}

INSTANTIATE_TEST_SUITE_P(Runtimes, DrainAdopted, ::testing::ValuesIn(dying_runtimes()),
                         [](const auto& info) { return info.param.name; });

TEST(Drain, BadDrainModeIsRefused) {
  TempDir dir;
  auto r = run({baton_binary(), "run", "--control", dir.file("c"), "--listen", "127.0.0.1:0",
                "--drain", "gently", "--", plainapp_binary()},
               10s);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("'gently': use watch or signal"));
  EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "one line: " << r.output;
}

}  // namespace
}  // namespace baton::test

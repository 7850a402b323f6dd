// Issue 5, "must show": real runtimes that bind their own fixed port (Python http.server, Node
// http, the JDK's com.sun.net.httpserver), with no baton-specific code, adopted through
// libbaton_adopt.so: they serve on baton's socket, two generations share it, >= 30 reloads under
// load fail no request, and the same apps restarted by plain kill-and-start do fail requests.
//
// The *Launcher* tests hand the listener over with tests/apps/adopt/launch.cc exactly as
// `baton run --adopt` does (LISTEN_FDS from fd 3, LD_PRELOAD, BATON_ADOPT=1, NOTIFY_SOCKET) and
// act as the supervisor themselves: start N+1, wait for its READY=1, SIGTERM N. The BatonRun test
// drives the real `baton run --adopt`.
#include <signal.h>
#include <sys/socket.h>

#include <cstdio>
#include <set>

#include <gtest/gtest.h>

#include "adopt_support.h"

namespace baton::test::adopt {
namespace {

constexpr int kReloads = 30;
constexpr auto kReadyTimeout = std::chrono::seconds(60);
constexpr auto kExitTimeout = std::chrono::seconds(20);

class AdoptRuntimeTest : public ::testing::TestWithParam<Runtime (*)()> {
 protected:
  void SetUp() override {
    runtime_ = GetParam()();
    if (!runtime_.missing.empty()) GTEST_SKIP() << runtime_.name << ": " << runtime_.missing;
  }
  std::string prefix() const { return runtime_.name + " pid="; }
  // Every response must come from this runtime's server; counted by its body ("python pid=42").
  LoadOptions load_options() const { return {.threads = 2, .expect_body_prefix = prefix()}; }
  std::string body_of(const Process& p) const { return prefix() + std::to_string(p.pid()); }

  // Starts a generation on `held` and waits for its own READY=1.
  Process start_ready(const HeldListener& held, NotifyListener& notify, int generation) {
    Process p = start_generation({{&held, "http"}}, runtime_.argv(held.port(), "127.0.0.1"),
                                 notify.path(), generation);
    bool ready = notify.wait_for(p.pid(), "READY=1", kReadyTimeout);
    EXPECT_TRUE(ready) << runtime_.name << " generation " << generation << " not ready; output:\n"
                       << p.output();
    return p;
  }

  Runtime runtime_;
  TempDir dir_;
};

TEST_P(AdoptRuntimeTest, LauncherServesOnBatonsSocketWithItsOwnPortAndAddress) {
  HeldListener held = hold_listener("127.0.0.1:0");
  NotifyListener notify(dir_.file("notify"));
  Process gen = start_ready(held, notify, 1);
  ASSERT_TRUE(notify.received(gen.pid(), "BATON_ADOPT_LOADED=1"));
  ASSERT_TRUE(notify.received(gen.pid(), "BATON_ADOPTED=http " + held.address.to_string()));

  auto r = http_get(held.address, "/");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, body_of(gen) + "\n");
  // The app's own getsockname() (Python server_address, Node server.address(), Java
  // getAddress()) reports the port it asked for, which is baton's.
  EXPECT_TRUE(gen.wait_for_output("listening on 127.0.0.1:" + std::to_string(held.port()), 5s))
      << gen.output();
  EXPECT_NE(gen.output().find("adopted baton's listener http=" + held.address.to_string()),
            std::string::npos)
      << gen.output();
}

TEST_P(AdoptRuntimeTest, LauncherTwoGenerationsShareTheSocketAndTheOldOnesCloseHurtsNothing) {
  HeldListener held = hold_listener("127.0.0.1:0");
  NotifyListener notify(dir_.file("notify"));
  Process old_gen = start_ready(held, notify, 1);
  // The new generation's READY=1 is its own: the old one serves the same port all along.
  Process new_gen = start_ready(held, notify, 2);

  std::set<std::string> seen;
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = http_get(held.address, "/");
        if (r && r->status == 200) seen.insert(r->body);
        return seen.count(body_of(old_gen) + "\n") && seen.count(body_of(new_gen) + "\n");
      },
      20s, 1ms))
      << "both generations should accept from the one socket; seen " << seen.size();

  old_gen.signal(SIGTERM);  // the app closes its listener and exits
  ASSERT_TRUE(old_gen.wait_exit_code(kExitTimeout).has_value())
      << "the old generation did not exit; its threads:\n"
      << thread_states(old_gen.pid()) << "output:\n"
      << old_gen.output();
  int acceptconn = 0;
  socklen_t len = sizeof(acceptconn);
  ASSERT_EQ(::getsockopt(held.fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &acceptconn, &len), 0);
  EXPECT_EQ(acceptconn, 1) << "the old generation's close() must not stop baton's listener";
  for (int i = 0; i < 50; ++i) {
    auto r = http_get(held.address, "/");
    ASSERT_TRUE(r) << "request " << i << ": " << r.error().what();
    EXPECT_EQ(r->body, body_of(new_gen) + "\n");
  }
}

TEST_P(AdoptRuntimeTest, LauncherThirtyReloadsUnderLoadFailNoRequest) {
  HeldListener held = hold_listener("127.0.0.1:0");
  NotifyListener notify(dir_.file("notify"));
  Process current = start_ready(held, notify, 1);
  ASSERT_FALSE(HasFailure());
  LoadClient load(held.address, load_options());
  ASSERT_TRUE(load.wait_for_successes(20, 30s)) << load.failed() << " failed";
  auto start = Clock::now();
  for (int gen = 2; gen <= kReloads + 1; ++gen) {
    Process next = start_ready(held, notify, gen);
    ASSERT_FALSE(HasFailure());
    current.signal(SIGTERM);
    ASSERT_TRUE(current.wait_exit_code(kExitTimeout).has_value())
        << "generation " << gen - 1 << " did not drain; its threads:\n"
        << thread_states(current.pid()) << "output:\n"
        << current.output();
    current = std::move(next);
  }
  ASSERT_TRUE(load.wait_for_successes(20, 30s));
  load.stop();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "[ figures  ] %s: %d reloads in %.1f s under load: %ld requests ok, %ld failed, "
      "%zu generations answered\n",
      runtime_.name.c_str(), kReloads, seconds, load.ok(), load.failed(), load.tally().size());
  for (const auto& f : load.failures()) ADD_FAILURE() << "failed request: " << f;
  EXPECT_EQ(load.failed(), 0);
  EXPECT_GE(load.ok(), 200);
  // Every generation served (its pid appears): the reloads really replaced the server.
  EXPECT_EQ(load.tally().size(), static_cast<size_t>(kReloads + 1));
}

// The counterpart without baton: the app binds its port itself and is restarted by stopping it
// and starting a new one. Requests fail (refused while nobody listens, reset when the old socket
// closes with connections queued), which is what the reload tests above would see if adoption
// did not work.
TEST_P(AdoptRuntimeTest, PlainKillAndStartFailsRequests) {
  // Held (bound, not listening) for the whole test: while no generation listens, connects are
  // refused as they should be, and no other process can take the port between restarts.
  ReservedPort reserved;
  int port = reserved.port();
  Address target = parse_address("127.0.0.1:" + std::to_string(port)).value();
  auto start_plain = [&] {
    Process p = Process::spawn(runtime_.argv(port, "127.0.0.1"));
    EXPECT_TRUE(wait_until([&] { return http_get(target, "/", 1s).ok() || !p.running(); }, 60s));
    EXPECT_TRUE(p.running()) << p.output();
    return p;
  };
  Process current = start_plain();
  ASSERT_FALSE(HasFailure());
  LoadClient load(target, load_options());
  ASSERT_TRUE(load.wait_for_successes(20, 30s));
  constexpr int kRestarts = 5;
  for (int i = 0; i < kRestarts; ++i) {
    current.signal(SIGTERM);
    ASSERT_TRUE(current.wait_exit_code(kExitTimeout).has_value());
    current = start_plain();
    ASSERT_FALSE(HasFailure());
  }
  load.stop();
  std::printf("[ figures  ] %s: %d plain restarts under load: %ld requests ok, %ld failed\n",
              runtime_.name.c_str(), kRestarts, load.ok(), load.failed());
  EXPECT_GT(load.failed(), 0) << "kill-and-start should fail requests; if not, the reload tests "
                                 "prove nothing";
}

// The same reloads through the real supervisor.
TEST_P(AdoptRuntimeTest, BatonRunAdoptThirtyReloadsUnderLoadFailNoRequest) {
  // Held until baton has bound the port itself, so no other process takes it in between.
  ReservedPort reserved;
  int port = reserved.port();
  std::string listen = "127.0.0.1:" + std::to_string(port);
  std::string control = dir_.file("control.sock");
  std::vector<std::string> argv{baton_binary(), "run",       "--adopt", "--listen",
                                listen,         "--control", control,   "--"};
  for (auto& a : runtime_.argv(port, "127.0.0.1")) argv.push_back(a);
  Process baton = Process::spawn(argv);
  Address target = parse_address(listen).value();
  ASSERT_TRUE(wait_until([&] { return http_get(target, "/", 1s).ok() || !baton.running(); }, 60s));
  ASSERT_TRUE(baton.running()) << baton.output();
  reserved.release();
  LoadClient load(target, load_options());
  ASSERT_TRUE(load.wait_for_successes(20, 30s));
  for (int i = 0; i < kReloads; ++i) {
    auto r = run({baton_binary(), "reload", "--wait", "--control", control}, 90s);
    ASSERT_EQ(r.exit_code, 0) << "reload " << i + 1 << ": " << r.output << "\nbaton:\n"
                              << baton.output();
  }
  ASSERT_TRUE(load.wait_for_successes(20, 30s));
  load.stop();
  std::printf(
      "[ figures  ] baton run --adopt %s: %d reloads: %ld ok, %ld failed, %zu generations\n",
      runtime_.name.c_str(), kReloads, load.ok(), load.failed(), load.tally().size());
  for (const auto& f : load.failures()) ADD_FAILURE() << "failed request: " << f;
  EXPECT_EQ(load.failed(), 0);
  EXPECT_EQ(load.tally().size(), static_cast<size_t>(kReloads + 1));
  baton.signal(SIGTERM);
  EXPECT_TRUE(baton.wait_exit_code(60s).has_value());
}

// The same apps without --adopt cannot bind the port baton holds. The failure names the fix at
// once (not after the 60 s ready timeout), in each runtime's wording of EADDRINUSE.
TEST_P(AdoptRuntimeTest, BatonRunWithoutAdoptNamesTheFlag) {
  ReservedPort reserved;
  const int port = reserved.port();
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  std::vector<std::string> argv{
      baton_binary(), "run", "--listen", listen, "--control", dir_.file("control.sock"), "--"};
  for (auto& a : runtime_.argv(port, "127.0.0.1")) argv.push_back(a);
  Process baton = Process::spawn(argv);
  const auto code = baton.wait_exit_code(kReadyTimeout / 2);
  ASSERT_TRUE(code.has_value()) << "still waiting for the generation: " << baton.output();
  EXPECT_EQ(*code, 1) << baton.output();
  EXPECT_NE(baton.output().find("itself, which baton holds (\"Address already in use\"): run it "
                                "under --adopt"),
            std::string::npos)
      << baton.output();
}

INSTANTIATE_TEST_SUITE_P(Runtimes, AdoptRuntimeTest,
                         ::testing::Values(&python_runtime, &node_runtime, &java_runtime),
                         [](const auto& info) { return info.param().name; });

}  // namespace
}  // namespace baton::test::adopt

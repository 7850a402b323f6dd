// libbaton_adopt.so, one behaviour at a time, with tests/apps/adopt/testapp.cc (a server with
// every bind-time knob) started through the launcher exactly as `baton run --adopt` starts apps.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <regex>

#include <gtest/gtest.h>

#include "adopt_support.h"

namespace baton::test::adopt {
namespace {

constexpr auto kTimeout = std::chrono::seconds(20);

std::string pid_body(const Process& p) { return "pid=" + std::to_string(p.pid()) + "\n"; }

// "key=value" from the testapp's "bound ..." line.
std::string field(const std::string& output, const std::string& key) {
  std::smatch m;
  std::regex re("(^|[ \n])" + key + "=([^ \n]*)");
  if (!std::regex_search(output, m, re)) return "";
  return m[2];
}

class AdoptLibraryTest : public ::testing::Test {
 protected:
  Process start(const HeldListener& held, std::vector<std::string> args, int generation = 1,
                const SpawnOptions& extra = {}) {
    std::vector<std::string> argv{testapp_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return start_generation({{&held, "http"}}, argv, notify_.path(), generation, extra);
  }
  Process start_ready(const HeldListener& held, std::vector<std::string> args, int generation = 1) {
    Process p = start(held, std::move(args), generation);
    EXPECT_TRUE(notify_.wait_for(p.pid(), "READY=1", kTimeout)) << p.output();
    return p;
  }
  static std::string port_of(const HeldListener& h) { return std::to_string(h.port()); }

  TempDir dir_;
  NotifyListener notify_{dir_.file("notify")};
};

// The bind-time variants real runtimes use, each adopting baton's loopback listener.
struct BindCase {
  const char* name;
  const char* held;               // baton's listener
  std::vector<std::string> args;  // testapp flags; "%P" becomes the held port
};

class AdoptBindTest : public AdoptLibraryTest, public ::testing::WithParamInterface<BindCase> {};

TEST_P(AdoptBindTest, AdoptsBatonsListenerAndServesOnIt) {
  HeldListener held = hold_listener(GetParam().held);
  std::vector<std::string> args;
  for (std::string a : GetParam().args) {
    auto at = a.find("%P");
    if (at != std::string::npos) a.replace(at, 2, port_of(held));
    args.push_back(a);
  }
  Process p = start_ready(held, args);
  ASSERT_TRUE(p.wait_for_output("bound ", kTimeout)) << p.output();
  std::string out = p.output();
  // getsockname() on the app's fd reports baton's socket; it listens.
  EXPECT_EQ(field(out, "addr"), held.address.to_string()) << out;
  EXPECT_EQ(field(out, "acceptconn"), "1") << out;
  EXPECT_NE(out.find("adopted baton's listener http=" + held.address.to_string()),
            std::string::npos)
      << out;
  auto r = http_get(held.address, "/");
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->body, pid_body(p));
}

INSTANTIATE_TEST_SUITE_P(
    Variants, AdoptBindTest,
    ::testing::Values(BindCase{"V4ExactWithReuseAddrAndReusePort",
                               "127.0.0.1:0",
                               {"--bind", "127.0.0.1:%P", "--reuseaddr", "--reuseport"}},
                      BindCase{"V4MappedOnAnIpv6SocketAsTheJdkDoes",
                               "127.0.0.1:0",
                               {"--family", "inet6", "--v6only", "0", "--bind", "127.0.0.1:%P"}},
                      BindCase{"V4WildcardOverBatonsLoopback",
                               "127.0.0.1:0",
                               {"--bind", "0.0.0.0:%P", "--reuseaddr"}},
                      BindCase{"DualStackWildcardOverBatonsLoopback",
                               "127.0.0.1:0",
                               {"--bind", "[::]:%P", "--v6only", "0"}},
                      BindCase{"V6OnlyWildcardOverBatonsV6Loopback",
                               "[::1]:0",
                               {"--bind", "[::]:%P", "--v6only", "1"}},
                      BindCase{"NonBlockingEpollServer",
                               "127.0.0.1:0",
                               {"--bind", "127.0.0.1:%P", "--nonblock", "--wait", "epoll"}},
                      BindCase{"BlockingAcceptWithoutPoll",
                               "127.0.0.1:0",
                               {"--bind", "127.0.0.1:%P", "--wait", "blocking"}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(AdoptLibraryTest, DescriptorFlagsFollowTheAppAndHeldFdsBecomeCloexec) {
  HeldListener held = hold_listener("127.0.0.1:0");
  Process a = start_ready(held, {"--bind", "127.0.0.1:" + port_of(held), "--nonblock"});
  ASSERT_TRUE(a.wait_for_output("bound ", kTimeout));
  EXPECT_EQ(field(a.output(), "cloexec"), "1") << a.output();
  EXPECT_EQ(field(a.output(), "nonblock"), "1");
  // Exec'd children of the app must not inherit baton's descriptors.
  EXPECT_EQ(field(a.output(), "held_cloexec"), "1");
  // O_NONBLOCK lives on the open file description, shared with baton (documented).
  EXPECT_NE(::fcntl(held.fd.get(), F_GETFL) & O_NONBLOCK, 0);

  Process b = start_ready(held, {"--bind", "127.0.0.1:" + port_of(held), "--no-cloexec"}, 2);
  ASSERT_TRUE(b.wait_for_output("bound ", kTimeout));
  EXPECT_EQ(field(b.output(), "cloexec"), "0") << b.output();
  EXPECT_EQ(field(b.output(), "nonblock"), "0");
}

TEST_F(AdoptLibraryTest, ListenKeepsBatonsBacklog) {
  HeldListener held = hold_listener("127.0.0.1:0");
  int before = listen_backlog(held.port());
  if (before < 0) GTEST_SKIP() << "`ss` is not installed";
  ASSERT_GT(before, 2);
  Process p = start_ready(held, {"--bind", "127.0.0.1:" + port_of(held), "--backlog", "1"});
  EXPECT_EQ(listen_backlog(held.port()), before) << "the app's listen(1) reached baton's socket";
}

TEST_F(AdoptLibraryTest, AnAddressBatonDoesNotHoldPassesThroughWithAWarning) {
  HeldListener held = hold_listener("127.0.0.1:0");
  ReservedPort other;
  std::string other_addr = "127.0.0.1:" + std::to_string(other.port());
  Process p =
      start_ready(held, {"--bind", "127.0.0.1:" + port_of(held), "--also-bind", other_addr});
  ASSERT_TRUE(p.wait_for_output("also=", kTimeout)) << p.output();
  EXPECT_EQ(field(p.output(), "also"), other_addr);
  EXPECT_NE(p.output().find("bind " + other_addr +
                            ": baton holds no listener for it (it holds "
                            "http=" +
                            held.address.to_string() + ")"),
            std::string::npos)
      << p.output();
  notify_.drain(100ms);
  EXPECT_TRUE(notify_.received(p.pid(), "BATON_ADOPT_PASSTHROUGH=" + other_addr));
}

TEST_F(AdoptLibraryTest, ShutdownOfTheAdoptedListenerDoesNotStopTheOtherGeneration) {
  // What the library prevents: on Linux, shutdown() of a listening socket stops it for everyone.
  {
    HeldListener probe = hold_listener("127.0.0.1:0");
    Fd copy(::dup(probe.fd.get()));
    ASSERT_EQ(::shutdown(copy.get(), SHUT_RDWR), 0);
    int on = 1;
    socklen_t len = sizeof(on);
    ::getsockopt(probe.fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &on, &len);
    ASSERT_EQ(on, 0) << "precondition: the kernel stops a shut down listener";
  }
  HeldListener held = hold_listener("127.0.0.1:0");
  std::string bind = "127.0.0.1:" + port_of(held);
  Process old_gen = start_ready(held, {"--bind", bind, "--shutdown-listener"}, 1);
  Process new_gen = start_ready(held, {"--bind", bind}, 2);
  old_gen.signal(SIGTERM);
  ASSERT_EQ(old_gen.wait_exit_code(kTimeout), 0) << old_gen.output();
  EXPECT_NE(old_gen.output().find("closed"), std::string::npos);
  EXPECT_NE(old_gen.output().find("shutdown() of adopted listener"), std::string::npos);
  int on = 0;
  socklen_t len = sizeof(on);
  ::getsockopt(held.fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &on, &len);
  EXPECT_EQ(on, 1);
  for (int i = 0; i < 20; ++i) {
    auto r = http_get(held.address, "/");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->body, pid_body(new_gen));
  }
}

// READY=1 must come from the new generation serving, not from the old one that shares the
// socket: a new generation that adopted the socket but has not entered its accept loop yet is
// not ready, however many requests the old generation answers meanwhile.
class AdoptReadinessTest : public AdoptLibraryTest,
                           public ::testing::WithParamInterface<const char*> {};

TEST_P(AdoptReadinessTest, ReadyOnlyOnceTheNewGenerationItselfServes) {
  HeldListener held = hold_listener("127.0.0.1:0");
  std::string bind = "127.0.0.1:" + port_of(held);
  Process old_gen = start_ready(held, {"--bind", bind, "--wait", GetParam()}, 1);
  Process new_gen = start(held, {"--bind", bind, "--wait", GetParam(), "--hold"}, 2);
  ASSERT_TRUE(
      notify_.wait_for(new_gen.pid(), "BATON_ADOPTED=http " + held.address.to_string(), kTimeout))
      << new_gen.output();
  // The old generation keeps answering on the shared socket; the new one must stay not ready.
  for (int i = 0; i < 20; ++i) {
    auto r = http_get(held.address, "/");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->body, pid_body(old_gen));
  }
  EXPECT_FALSE(notify_.wait_for(new_gen.pid(), "READY=1", 500ms))
      << "READY=1 before the new generation accepted anything";
  new_gen.signal(SIGUSR1);  // it enters its accept loop
  EXPECT_TRUE(notify_.wait_for(new_gen.pid(), "READY=1", kTimeout)) << new_gen.output();
  // The log line may reach the output file just after the datagram: wait for it, bounded.
  EXPECT_TRUE(new_gen.wait_for_output("ready: GET / answered 200 through this process's own accept",
                                      kTimeout))
      << new_gen.output();
}

INSTANTIATE_TEST_SUITE_P(WaitModes, AdoptReadinessTest,
                         ::testing::Values("poll", "epoll", "blocking"),
                         [](const auto& info) { return std::string(info.param); });

// `baton run --adopt --ready http:PATH`: the supervisor passes its own per-generation probe
// listener ("baton-probe", last); the library routes it into the app's accept path for good, so
// the supervisor's probe reaches this generation, and ordinary traffic still flows.
TEST_P(AdoptReadinessTest, SupervisorsProbeListenerIsRoutedIntoTheAppsAcceptPath) {
  HeldListener held = hold_listener("127.0.0.1:0");
  HeldListener probe = hold_listener("127.0.0.1:0");  // blocking, as the supervisor creates it
  std::vector<std::string> argv{testapp_binary(), "--bind", "127.0.0.1:" + port_of(held), "--wait",
                                GetParam()};
  Process p = start_generation({{&held, "http"}, {&probe, "baton-probe"}}, argv, notify_.path(), 1);
  ASSERT_TRUE(notify_.wait_for(p.pid(), "BATON_ADOPTED=http " + held.address.to_string(), kTimeout))
      << p.output();
  for (int i = 0; i < 3; ++i) {
    auto r = http_get(probe.address, "/", 5s);
    ASSERT_TRUE(r) << "probe " << i << ": " << r.error().what() << "\n" << p.output();
    EXPECT_EQ(r->body, pid_body(p));
    for (int j = 0; j < 5; ++j) {
      auto pub = http_get(held.address, "/", 5s);
      ASSERT_TRUE(pub) << "public " << j << ": " << pub.error().what();
      EXPECT_EQ(pub->body, pid_body(p));
    }
  }
  notify_.drain(100ms);
  EXPECT_FALSE(notify_.received(p.pid(), "READY=1")) << "the supervisor decides readiness here";
}

TEST_F(AdoptLibraryTest, AcceptReadinessModeWorksForAnyProtocol) {
  HeldListener held = hold_listener("127.0.0.1:0");
  SpawnOptions o;
  o.env["BATON_ADOPT_READY"] = "accept";
  Process p = start(held, {"--bind", "127.0.0.1:" + port_of(held), "--wait", "epoll"}, 1, o);
  EXPECT_TRUE(notify_.wait_for(p.pid(), "READY=1", kTimeout)) << p.output();
}

TEST_F(AdoptLibraryTest, BadReadinessModeIsReportedClearly) {
  HeldListener held = hold_listener("127.0.0.1:0");
  SpawnOptions o;
  o.env["BATON_ADOPT_READY"] = "tcp:80";
  Process p = start(held, {"--bind", "127.0.0.1:" + port_of(held)}, 1, o);
  EXPECT_TRUE(notify_.wait_for(
      p.pid(), "BATON_ADOPT_ERROR=BATON_ADOPT_READY=tcp:80 is not http:/PATH, accept, bind or none",
      kTimeout));
  EXPECT_TRUE(p.wait_for_output("BATON_ADOPT_READY=tcp:80 is not http:/PATH", kTimeout));
}

TEST_F(AdoptLibraryTest, AWrapperThatExecsTheServerAdoptsAForkedChildStaysInert) {
  HeldListener held = hold_listener("127.0.0.1:0");
  std::string cmd = testapp_binary() + " --bind 127.0.0.1:" + port_of(held);
  // exec keeps the pid: the server is LISTEN_PID and adopts.
  Process execd =
      start_generation({{&held, "http"}}, {"/bin/sh", "-c", "exec " + cmd}, notify_.path(), 1);
  EXPECT_TRUE(notify_.wait_for(execd.pid(), "READY=1", kTimeout)) << execd.output();
  // "; exit $?" makes the shell fork: the child has another pid, ignores LISTEN_*, and its own
  // bind of the port baton holds fails as it would without the library.
  auto r = run({launch_binary(), "--fd", std::to_string(held.fd.get()), "--preload",
                adopt_library(), "--", "/bin/sh", "-c", cmd + "; exit $?"},
               kTimeout);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("Address already in use"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("adopted"), std::string::npos) << r.output;
  // The forked child inherits neither baton's descriptor nor its variables.
  EXPECT_EQ(field(r.output, "start_held_cloexec"), "-") << r.output;
  EXPECT_EQ(field(r.output, "start_listen_env"), "0") << r.output;
}

TEST_F(AdoptLibraryTest, HeldDescriptorsAndVariablesStayWithTheAdopterFromLoad) {
  HeldListener held = hold_listener("127.0.0.1:0");
  Process p = start_ready(held, {"--bind", "127.0.0.1:" + port_of(held)});
  ASSERT_TRUE(p.wait_for_output("bound ", kTimeout)) << p.output();
  // Before main() ran, the library had made fd 3 CLOEXEC and taken its variables out.
  EXPECT_EQ(field(p.output(), "start_held_cloexec"), "1") << p.output();
  EXPECT_EQ(field(p.output(), "start_listen_env"), "0") << p.output();
  auto r = http_get(held.address, "/");  // and it adopted all the same
  ASSERT_TRUE(r) << r.error().what();
  EXPECT_EQ(r->body, pid_body(p));
}

TEST_F(AdoptLibraryTest, AnAbsurdListenFdsIsRefusedInOneLine) {
  HeldListener held = hold_listener("127.0.0.1:0");
  auto r = run({launch_binary(), "--fd", std::to_string(held.fd.get()), "--listen-fds", "100000",
                "--preload", adopt_library(), "--", testapp_binary(), "--bind",
                "127.0.0.1:" + port_of(held)},
               kTimeout);
  EXPECT_EQ(r.exit_code, 1) << r.output;  // nothing adopted: its own bind finds the port taken
  EXPECT_NE(r.output.find("LISTEN_FDS=100000: more than 128 descriptors"), std::string::npos)
      << r.output;
  size_t lines = 0;
  for (size_t at = r.output.find("baton-adopt["); at != std::string::npos;
       at = r.output.find("baton-adopt[", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << r.output;
}

TEST_F(AdoptLibraryTest, UnixSocketPathIsAdoptedAndItsFileSurvivesTheAppsUnlink) {
  std::string path = dir_.file("app.sock");
  HeldListener held = hold_listener("unix:" + path);
  Process old_gen = start_ready(held, {"--bind", "unix:" + path, "--unlink-on-exit"}, 1);
  Process new_gen = start_ready(held, {"--bind", "unix:" + path}, 2);
  old_gen.signal(SIGTERM);
  ASSERT_EQ(old_gen.wait_exit_code(kTimeout), 0) << old_gen.output();
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0) << "the app's unlink() removed baton's socket file";
  for (int i = 0; i < 10; ++i) {
    auto r = http_get(held.address, "/");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->body, pid_body(new_gen));
  }
}

TEST_F(AdoptLibraryTest, AStaticallyLinkedAppNeverLoadsTheLibraryAndTheSupervisorCanTell) {
  HeldListener held = hold_listener("127.0.0.1:0");
  Process p = start_generation({{&held, "http"}}, {static_binary()}, notify_.path(), 1);
  ASSERT_EQ(p.wait_exit_code(kTimeout), 0);
  EXPECT_NE(p.output().find("static app, BATON_ADOPT=set"), std::string::npos) << p.output();
  notify_.drain(200ms);
  EXPECT_FALSE(notify_.received(p.pid(), "BATON_ADOPT_LOADED=1"))
      << "no BATON_ADOPT_LOADED=1: the signal the supervisor uses to say adoption cannot work";
}

}  // namespace
}  // namespace baton::test::adopt

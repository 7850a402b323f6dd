// A generation whose main process is a shell that runs the server as its child instead of
// exec()ing it (`sh -c 'server & wait'`), end to end: baton warns once, with the hint; the drain
// signal reaches the shell only, so the server dies with a request in hand; with
// --drain-signal-group the server gets the signal too and finishes the request, and the rest of
// the group is waited for after the shell has gone, and dies with baton if baton is killed first.
#include <poll.h>
#include <signal.h>
#include <unistd.h>
extern "C" {
#include <sys/pidfd.h>
}

#include <cstdlib>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <sstream>
#include <thread>

#include "baton_run.h"
#include "harness.h"

namespace baton::test {
namespace {

using ::testing::HasSubstr;

constexpr const char kWarning[] = "is a shell";

// The wrapper: a shell that starts the test app as its child and waits for it. The child takes
// the listeners, so it gets LISTEN_PID set to its own pid (read by the subshell from
// /proc/self/stat before it execs the app in the same pid), as a launcher script would.
std::vector<std::string> wrapped_testapp() {
  return {"/bin/sh", "-c",
          "( read -r pid rest < /proc/self/stat; export LISTEN_PID=$pid; exec \"$0\" ) & wait",
          testapp_binary()};
}

std::vector<std::string> run_args(std::vector<std::string> more) {
  std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--drain", "signal"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// A 2 s request to generation 1, in flight when the reload comes; its outcome. A request that
// never reached the app is a failure of the test itself, whatever the caller expects.
Result<HttpResponse> slow_request_across_reload(Baton& baton, CommandResult* reload) {
  std::string address = baton.wait_address();
  if (address.empty()) {
    ADD_FAILURE() << "generation 1 never served:\n" << baton.process().output();
    return Error("no generation served");
  }
  std::optional<Result<HttpResponse>> slow;
  std::thread t([&] { slow = http_get(address, "/slow?ms=2000", 20s); });
  bool started = baton.process().wait_for_output("serving /slow?ms=2000", 10s);
  *reload = baton.ctl({"reload", "--wait"});
  t.join();
  if (!started) {
    ADD_FAILURE() << "the slow request never reached the app:\n" << baton.process().output();
    return Error("the slow request never reached the app");
  }
  return std::move(*slow);
}

TEST(ProcessGroup, ShellWrapperWithChildrenIsWarnedAboutOnceWithTheExecHint) {
  TempDir dir;
  Baton baton(dir, run_args({}), wrapped_testapp());
  ASSERT_FALSE(baton.wait_address().empty()) << baton.process().output();
  ASSERT_TRUE(baton.process().wait_for_output(kWarning, 10s)) << baton.process().output();
  const std::string out = baton.process().output();
  EXPECT_THAT(out, HasSubstr("generation 1 (pid "));
  EXPECT_THAT(out, HasSubstr("with 1 child process"));
  EXPECT_THAT(out, HasSubstr("`exec`"));
  EXPECT_THAT(out, HasSubstr("--drain-signal-group"));
  auto r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton.process().output();
  const std::string after = baton.process().output();
  EXPECT_EQ(after.find(kWarning), after.rfind(kWarning)) << "warned twice:\n" << after;
}

TEST(ProcessGroup, WithoutGroupSignalTheServerUnderAShellDiesWithTheRequestInHand) {
  TempDir dir;
  Baton baton(dir, run_args({}), wrapped_testapp());
  CommandResult reload;
  auto slow = slow_request_across_reload(baton, &reload);
  EXPECT_EQ(reload.exit_code, 0) << reload.output;
  EXPECT_FALSE(slow.ok()) << "the shell took SIGTERM and the app was killed with its group";
  EXPECT_THAT(baton.process().output(), HasSubstr("SIGTERM sent"));
}

TEST(ProcessGroup, DrainSignalGroupLetsTheServerUnderAShellFinishItsRequest) {
  TempDir dir;
  Baton baton(dir, run_args({"--drain-signal-group"}), wrapped_testapp());
  CommandResult reload;
  auto slow = slow_request_across_reload(baton, &reload);
  EXPECT_EQ(reload.exit_code, 0) << reload.output;
  ASSERT_TRUE(slow.ok()) << slow.error().what() << "\n" << baton.process().output();
  EXPECT_EQ(slow->status, 200);
  EXPECT_THAT(slow->body, HasSubstr("generation 1 "));
  const std::string out = baton.process().output();
  EXPECT_THAT(out, HasSubstr("to its process group"));
  EXPECT_EQ(out.find(kWarning), std::string::npos) << "no warning when the group is signalled";
  // The shell went first; the app ended generation 1's group once it had answered.
  EXPECT_THAT(out, HasSubstr("generation 1 (pid "));
  EXPECT_THAT(out, HasSubstr("its process group has ended"));
}

// A member of generation 1's group that ignores SIGTERM outlives the shell, so the group lingers
// (draining) after the main process is reaped; baton is then SIGKILLed. The orphan guard must
// still kill that member: baton is gone, nothing else ever will.
TEST(ProcessGroup, LingeringGroupMemberDiesWithASigkilledBaton) {
  TempDir dir;
  const std::string stubborn_pid_file = dir.file("stubborn.pid");
  const std::vector<std::string> app = {
      "/bin/sh", "-c",
      "(trap '' TERM; exec sleep 300) & echo $! > \"$1\"; "
      "( read -r pid rest < /proc/self/stat; export LISTEN_PID=$pid; exec \"$0\" ) & wait",
      testapp_binary(), stubborn_pid_file};
  Baton baton(dir, run_args({"--drain-signal-group", "--drain-timeout", "300s"}), app);
  const int first = baton.wait_serving_pid(1);
  ASSERT_GT(first, 0) << baton.process().output();
  struct GroupReaper {  // whatever the test leaves behind if it fails
    pid_t pgid;
    ~GroupReaper() { ::kill(-pgid, SIGKILL); }
  } reaper{first};
  const pid_t stubborn = std::atoi(read_file(stubborn_pid_file).c_str());
  ASSERT_GT(stubborn, 1) << "the shell wrote no pid";
  Fd stubborn_pidfd(::pidfd_open(stubborn, 0));
  ASSERT_TRUE(stubborn_pidfd) << "the member ignoring SIGTERM runs";

  // Not --wait: that waits for generation 1 to have drained, which its stubborn member delays
  // to the drain deadline.
  auto reload = baton.ctl({"reload"});
  ASSERT_EQ(reload.exit_code, 0) << reload.output << baton.process().output();
  ASSERT_TRUE(baton.process().wait_for_output("the rest of its process group", 30s))
      << "generation 1's group never lingered:\n"
      << baton.process().output();
  pollfd pfd{stubborn_pidfd.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 0), 0) << "the member ignoring SIGTERM is alive while its group drains";
  const int second = baton.wait_serving_pid(2);
  GroupReaper second_reaper{second > 0 ? second : first};

  baton.process().signal(SIGKILL);
  ASSERT_TRUE(baton.process().wait(10s).has_value());
  EXPECT_EQ(::poll(&pfd, 1, 5000), 1)
      << "pid " << stubborn << " of generation 1's lingering group outlived a SIGKILLed baton";
}

// The child of `pid` whose name is `comm`, or 0.
pid_t child_named(pid_t pid, const std::string& comm) {
  std::istringstream children(
      read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children"));
  for (pid_t child = 0; children >> child;) {
    if (read_file("/proc/" + std::to_string(child) + "/comm") == comm + "\n") return child;
  }
  return 0;
}

// Review finding 4, as the app (same uid) plays it: it SIGKILLs baton-guard. baton notices, says
// so, and starts a new guard that knows every group: when baton is SIGKILLed afterwards, a
// process the app left in its group (which no parent-death signal reaches) still dies.
TEST(ProcessGroup, AKilledGuardIsReplacedAndTheNewOneStillCleansUp) {
  TempDir dir;
  const std::string worker_pid_file = dir.file("worker.pid");
  const std::vector<std::string> app = {
      "/bin/sh", "-c", "sleep 300 </dev/null >/dev/null 2>&1 & echo $! > \"$1\"; exec \"$0\"",
      testapp_binary(), worker_pid_file};
  Baton baton(dir, {"--listen", "127.0.0.1:0"}, app);
  const int first = baton.wait_serving_pid(1);
  ASSERT_GT(first, 0) << baton.process().output();
  struct GroupReaper {  // whatever the test leaves behind if it fails
    pid_t pgid;
    ~GroupReaper() { ::kill(-pgid, SIGKILL); }
  } reaper{first};
  const pid_t worker = std::atoi(read_file(worker_pid_file).c_str());
  ASSERT_GT(worker, 1) << "the shell wrote no pid";
  Fd worker_pidfd(::pidfd_open(worker, 0));
  ASSERT_TRUE(worker_pidfd);
  const pid_t guard = child_named(baton.process().pid(), "baton-guard");
  ASSERT_GT(guard, 0);
  ASSERT_EQ(::kill(guard, SIGKILL), 0);
  ASSERT_TRUE(baton.process().wait_for_output("a new one (pid ", 30s)) << baton.process().output();
  EXPECT_THAT(baton.process().output(), HasSubstr("the orphan guard (pid " + std::to_string(guard) +
                                                  ") was killed by signal 9; a new one (pid "));
  EXPECT_THAT(baton.process().output(), HasSubstr("watches 1 process group(s)"));
  // baton logs right after its fork; the new guard names itself a moment later.
  pid_t second = 0;
  EXPECT_TRUE(wait_until(
      [&] {
        second = child_named(baton.process().pid(), "baton-guard");
        return second > 0 && second != guard;
      },
      10s))
      << "no new baton-guard among baton's children";

  baton.process().signal(SIGKILL);
  ASSERT_TRUE(baton.process().wait(10s).has_value());
  pollfd pfd{worker_pidfd.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&pfd, 1, 10000), 1)
      << "pid " << worker << " of generation 1's group outlived a SIGKILLed baton";
}

}  // namespace
}  // namespace baton::test

// End-to-end tests of what operators rely on when baton runs for months under a service manager
// or as a container's entrypoint: it never orphans its app, tells its manager what it does, and
// never stalls on its own output.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
extern "C" {
#include <sys/pidfd.h>
}

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace baton::test {
namespace {

using ::testing::HasSubstr;

// A supervisor under test, its control socket in a private directory.
class Baton {
 public:
  Baton(const TempDir& dir, std::vector<std::string> run_args, std::vector<std::string> app,
        SpawnOptions options = {}, std::string control_name = "control.sock")
      : control_(dir.file(control_name)) {
    std::vector<std::string> argv = {baton_binary(), "run", "--control", control_};
    argv.insert(argv.end(), run_args.begin(), run_args.end());
    argv.push_back("--");
    argv.insert(argv.end(), app.begin(), app.end());
    process_.emplace(Process::spawn(argv, options));
  }
  Process& process() { return *process_; }

  CommandResult ctl(std::vector<std::string> args, std::chrono::milliseconds timeout = 60s) {
    std::vector<std::string> argv = {baton_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--control");
    argv.push_back(control_);
    return run(argv, timeout);
  }
  nlohmann::json status(std::chrono::milliseconds timeout = 60s) {
    auto r = ctl({"status", "--json"}, timeout);
    if (r.exit_code != 0) return nlohmann::json();
    return nlohmann::json::parse(r.output, nullptr, false);
  }
  // Waits until a generation serves; returns the status then (null on timeout).
  nlohmann::json wait_serving(std::chrono::milliseconds timeout = 30s) {
    nlohmann::json last;
    wait_until(
        [&] {
          last = status();
          return last.is_object() && last.value("serving_generation", 0) != 0;
        },
        timeout, 50ms);
    return last.is_object() && last.value("serving_generation", 0) != 0 ? last : nlohmann::json();
  }

 private:
  std::string control_;
  std::optional<Process> process_;
};

int serving_pid(const nlohmann::json& status) {
  for (const auto& g : status["generations"]) {
    if (g["generation"] == status["serving_generation"]) return g["pid"];
  }
  return -1;
}

// True once process `pid` (not necessarily a child) has exited, awaited on its pidfd.
bool await_gone(pid_t pid, std::chrono::milliseconds timeout) {
  Fd pidfd(::pidfd_open(pid, 0));
  if (!pidfd) return errno == ESRCH;
  pollfd pfd{pidfd.get(), POLLIN, 0};
  return ::poll(&pfd, 1, static_cast<int>(timeout.count())) == 1;
}

// Kills a process group the test made (through the supervisor) when the test ends, passed or not.
struct GroupReaper {
  pid_t pgid = -1;
  ~GroupReaper() {
    if (pgid > 0) ::kill(-pgid, SIGKILL);
  }
};

TEST(NeverOrphan, SigkilledSupervisorTakesItsGenerationAndFreesThePort) {
  TempDir dir;
  // The generation forks a helper first, which inherits the listener as a pre-forked worker
  // would: it too must go with the supervisor, or the port stays bound.
  const std::string worker_pid_file = dir.file("worker.pid");
  auto first = std::make_unique<Baton>(
      dir, std::vector<std::string>{"--listen", "127.0.0.1:0"},
      std::vector<std::string>{"/bin/sh", "-c",
                               "sleep 300 & echo $! > " + worker_pid_file + "; exec " +
                                   testapp_binary()});
  auto status = first->wait_serving();
  ASSERT_TRUE(status.is_object()) << first->process().output();
  const std::string address = status["listeners"][0]["address"];
  const int app = serving_pid(status);
  ASSERT_GT(app, 0);
  GroupReaper reaper{app};
  Fd app_pidfd(::pidfd_open(app, 0));
  ASSERT_TRUE(app_pidfd) << "the app runs before the supervisor is killed";
  const int worker = std::atoi(read_file(worker_pid_file).c_str());
  ASSERT_GT(worker, 0);
  Fd worker_pidfd(::pidfd_open(worker, 0));
  ASSERT_TRUE(worker_pidfd) << "the worker runs before the supervisor is killed";

  first->process().signal(SIGKILL);
  ASSERT_TRUE(first->process().wait(10s).has_value());
  pollfd app_gone{app_pidfd.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&app_gone, 1, 1000), 1) << "the app (pid " << app << ") outlived baton";
  pollfd worker_gone{worker_pidfd.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&worker_gone, 1, 1000), 1) << "its worker (pid " << worker << ") outlived baton";

  // The next supervisor binds the same address and serves.
  Baton second(dir, {"--listen", address}, {testapp_binary()}, {}, "control2.sock");
  auto again = second.wait_serving();
  ASSERT_TRUE(again.is_object()) << second.process().output();
  auto r = http_get(address, "/");
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_THAT(r->body, HasSubstr("generation 1 pid " + std::to_string(serving_pid(again))));
}

TEST(NeverOrphan, SigquitIsAGracefulStop) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0"}, {testapp_binary()});
  auto status = baton.wait_serving();
  ASSERT_TRUE(status.is_object()) << baton.process().output();
  const int app = serving_pid(status);
  GroupReaper reaper{app};
  baton.process().signal(SIGQUIT);
  EXPECT_EQ(baton.process().wait_exit_code(30s), 0) << baton.process().output();
  EXPECT_TRUE(await_gone(app, 1s));
  EXPECT_THAT(baton.process().output(), HasSubstr("draining"));
  EXPECT_THAT(baton.process().output(), HasSubstr("exited with status 0"));
}

}  // namespace
}  // namespace baton::test

// End-to-end tests of what operators rely on when baton runs for months under a service manager
// or as a container's entrypoint: it never orphans its app, tells its manager what it does, and
// never stalls on its own output.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
extern "C" {
#include <sys/pidfd.h>
}

#include <time.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fstream>
#include <regex>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton_run.h"
#include "harness.h"
#include "manager_socket.h"

namespace baton::test {
namespace {

using ::testing::HasSubstr;

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
  auto first =
      std::make_unique<Baton>(dir, std::vector<std::string>{"--listen", "127.0.0.1:0"},
                              std::vector<std::string>{"/bin/sh", "-c",
                                                       "sleep 300 & echo $! > " + worker_pid_file +
                                                           "; exec " + testapp_binary()});
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
  EXPECT_TRUE(await_gone(app, 10s));
  EXPECT_THAT(baton.process().output(), HasSubstr("draining"));
  EXPECT_THAT(baton.process().output(), HasSubstr("exited with status 0"));
}

TEST(ManagerNotify, ReadyReloadingReadyStoppingReachTheManager) {
  TempDir dir;
  ManagerSocket manager(dir.file("notify"));
  ASSERT_TRUE(manager.bound());
  SpawnOptions options;
  options.env["NOTIFY_SOCKET"] = manager.path();
  // The app reads its arguments from a file at each start: a test "deploys" a broken version.
  std::ofstream(dir.file("args")) << "";
  Baton baton(dir, {"--listen", "127.0.0.1:0"},
              {"/bin/sh", "-c", "exec " + testapp_binary() + " $(cat " + dir.file("args") + ")"},
              options);
  const std::string baton_pid = std::to_string(baton.process().pid());

  auto ready = manager.next();
  ASSERT_TRUE(ready) << baton.process().output();
  EXPECT_THAT(ready->text, HasSubstr("READY=1\nMAINPID=" + baton_pid));
  EXPECT_THAT(ready->text, HasSubstr("STATUS=serving generation 1 (pid "));
  EXPECT_EQ(ready->sender, baton.process().pid()) << "sent by baton itself, not by the app";

  auto r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto reloading = manager.next();
  ASSERT_TRUE(reloading);
  EXPECT_THAT(reloading->text, ::testing::StartsWith("RELOADING=1\nMONOTONIC_USEC="));
  const uint64_t usec = std::stoull(reloading->text.substr(reloading->text.find('=', 12) + 1));
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  EXPECT_LE(usec, static_cast<uint64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000)
      << "MONOTONIC_USEC is CLOCK_MONOTONIC";
  auto reloaded = manager.next();
  ASSERT_TRUE(reloaded);
  EXPECT_THAT(reloaded->text, ::testing::StartsWith("READY=1"));

  // A reload that rolls back ends with READY=1 too (Type=notify-reload: SIGHUP).
  std::ofstream(dir.file("args")) << "--exit-at-start 3";
  baton.process().signal(SIGHUP);
  auto again = manager.next();
  ASSERT_TRUE(again);
  EXPECT_THAT(again->text, ::testing::StartsWith("RELOADING=1\n"));
  auto done = manager.next();
  ASSERT_TRUE(done);
  EXPECT_THAT(done->text, ::testing::StartsWith("READY=1"));
  EXPECT_EQ(baton.status()["last_reload"]["result"], "failed");

  ASSERT_EQ(baton.ctl({"stop"}).exit_code, 0);
  auto stopping = manager.next();
  ASSERT_TRUE(stopping);
  EXPECT_THAT(stopping->text, ::testing::StartsWith("STOPPING=1"));
  EXPECT_EQ(baton.process().wait_exit_code(30s), 0);
  EXPECT_THAT(baton.process().output(), ::testing::EndsWith(": notice: stopped\n"))
      << "the last line says it is over";
}

TEST(ManagerNotify, TheAppNeverSeesTheManagersSocket) {
  TempDir dir;
  ManagerSocket manager(dir.file("notify"));
  ASSERT_TRUE(manager.bound());
  SpawnOptions options;
  options.env["NOTIFY_SOCKET"] = manager.path();
  // An exec readiness probe sees baton's environment: the manager's socket is not in it.
  Baton baton(
      dir,
      {"--listen", "127.0.0.1:0", "--ready", "exec:test \"$NOTIFY_SOCKET\" != " + manager.path()},
      {testapp_binary(), "--no-notify"}, options);
  auto ready = manager.next();
  ASSERT_TRUE(ready) << baton.process().output();
  EXPECT_THAT(ready->text, HasSubstr("READY=1"));
}

// The state letter of process `pid` (R, S, T...) from /proc/PID/stat; 0 when it cannot be read.
char process_state(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? 0 : stat[close + 2];
}

// The manager's watchdog (WatchdogSec=): WATCHDOG=1 from baton itself while its loop runs, none
// while the loop cannot run (baton stopped: what the manager sees of a wedged loop), and again
// once it runs. The app never sees the variables.
TEST(ManagerNotify, WatchdogPingsWhileTheLoopRunsAndStopWhileItIsWedged) {
  TempDir dir;
  ManagerSocket manager(dir.file("notify"));
  ASSERT_TRUE(manager.bound());
  SpawnOptions options;
  options.env["NOTIFY_SOCKET"] = manager.path();
  options.env["WATCHDOG_USEC"] = "200000";  // a ping every 100ms
  options.unset_env = {"WATCHDOG_PID"};     // optional: absent means "whoever reads it"
  Baton baton(dir, {"--listen", "127.0.0.1:0"},
              {"/bin/sh", "-c",
               "echo \"app watchdog=[$WATCHDOG_USEC$WATCHDOG_PID]\"; exec " + testapp_binary()},
              options);
  const pid_t pid = baton.process().pid();
  auto ready = manager.next();
  ASSERT_TRUE(ready) << baton.process().output();
  EXPECT_THAT(ready->text, HasSubstr("READY=1"));
  for (int i = 0; i < 3; ++i) {
    auto ping = manager.next_watchdog(10s);
    ASSERT_TRUE(ping) << baton.process().output();
    EXPECT_EQ(ping->sender, pid) << "sent by baton itself";
  }
  EXPECT_TRUE(baton.process().wait_for_output("app watchdog=[]", 10s)) << baton.process().output();
  EXPECT_THAT(baton.process().output(), HasSubstr("WATCHDOG=1 every 100ms"));

  // Stopped, baton's loop runs no timer. Once the kernel shows it stopped, what it sent before is
  // in the socket's queue, drained here; then no ping comes in ten intervals (this wait can only
  // pass wrongly on a slow machine, never fail wrongly: a stopped process sends nothing).
  baton.process().signal(SIGSTOP);
  ASSERT_TRUE(wait_until([&] { return process_state(pid) == 'T'; }, 10s));
  while (manager.next_watchdog(1ms)) {
  }
  EXPECT_FALSE(manager.next_watchdog(1s)) << "a ping from a stopped supervisor";
  baton.process().signal(SIGCONT);
  auto resumed = manager.next_watchdog(10s);
  ASSERT_TRUE(resumed) << baton.process().output();
  EXPECT_EQ(resumed->sender, pid);
}

// baton's stdout and stderr go into a fifo that is open but never read: what the apps write
// (2 MB, more than the pipe and the 1 MiB queue) must cost dropped lines, not a stalled baton.
TEST(NeverStall, UnreadOutputLeavesStatusAndReloadsWorking) {
  TempDir dir;
  const std::string fifo = dir.file("out.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Fd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));  // held, never read
  ASSERT_TRUE(reader);
  SpawnOptions options;
  options.output_path = fifo;
  const std::string app =
      "yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmn"
      " | head -c 2000000; exec " +
      testapp_binary();
  Baton baton(dir, {"--listen", "127.0.0.1:0"}, {"/bin/sh", "-c", app}, options);
  auto status = baton.wait_serving();
  ASSERT_TRUE(status.is_object()) << "the first generation never served";

  // A stalled supervisor never answers: 30 s tells it from a busy machine (1 s did not).
  auto quick = baton.ctl({"status", "--json"}, 30s);
  EXPECT_EQ(quick.exit_code, 0) << quick.output;
  auto r = baton.ctl({"reload", "--wait"}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  quick = baton.ctl({"status", "--json"}, 30s);
  ASSERT_EQ(quick.exit_code, 0) << quick.output;
  auto after = nlohmann::json::parse(quick.output, nullptr, false);
  ASSERT_TRUE(after.is_object()) << quick.output;
  EXPECT_EQ(after["serving_generation"], 2);
  EXPECT_GT(after["supervisor"]["output_dropped_lines"].get<int64_t>(), 0);
  EXPECT_GT(after["generations"][0].value("output_dropped_lines", 0), 0) << after.dump();

  baton.process().signal(SIGTERM);
  EXPECT_EQ(baton.process().wait_exit_code(30s), 0) << "SIGTERM is acted on";
}

// baton started by socket activation: systemd-socket-activate binds, waits for the first
// connection, then execs baton with the socket as fd 3 (LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES).
class SocketActivation : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kActivate, X_OK) != 0) GTEST_SKIP() << kActivate << " is not installed";
  }
  // systemd-socket-activate -l SOCKET [--fdname NAME] baton run --control ... RUN_ARGS -- testapp
  Process start(const std::string& socket, const std::string& fdname,
                std::vector<std::string> run_args) {
    std::vector<std::string> argv = {kActivate, "-l", socket};
    if (!fdname.empty()) argv.push_back("--fdname=" + fdname);
    for (std::string a :
         {baton_binary(), std::string("run"), std::string("--control"), control()}) {
      argv.push_back(a);
    }
    argv.insert(argv.end(), run_args.begin(), run_args.end());
    argv.push_back("--");
    argv.push_back(testapp_binary());
    return Process::spawn(argv);
  }
  std::string control() const { return dir_.file("control.sock"); }
  bool exists(const std::string& path) const {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
  }
  static constexpr const char* kActivate = "/usr/bin/systemd-socket-activate";
  TempDir dir_;
};

TEST_F(SocketActivation, BatonServesOnTheSocketItWasGivenAndBindsNothing) {
  const std::string socket = dir_.file("app.sock");
  Process baton = start(socket, "", {"--listen", "unix:" + socket});
  ASSERT_TRUE(wait_until([&] { return unix_listening(socket); }, 10s)) << baton.output();
  auto r = http_get("unix:" + socket, "/", 30s);  // the first connection starts baton
  ASSERT_TRUE(r.ok()) << r.error().what() << baton.output();
  EXPECT_THAT(r->body, HasSubstr("generation 1 pid"));
  EXPECT_THAT(baton.output(), HasSubstr("(fd 3, shared, from the service manager)"));
  baton.signal(SIGTERM);
  EXPECT_EQ(baton.wait_exit_code(30s), 0) << baton.output();
  EXPECT_TRUE(exists(socket)) << "the manager's socket file is the manager's: not unlinked";
}

TEST_F(SocketActivation, MatchedByNameWhenTheAddressesDiffer) {
  const std::string socket = dir_.file("given.sock");
  const std::string asked = dir_.file("asked.sock");
  Process baton = start(socket, "web", {"--listen", "web=unix:" + asked});
  ASSERT_TRUE(wait_until([&] { return unix_listening(socket); }, 10s)) << baton.output();
  auto r = http_get("unix:" + socket, "/", 30s);
  ASSERT_TRUE(r.ok()) << r.error().what() << baton.output();
  EXPECT_THAT(r->body, HasSubstr("generation 1 pid"));
  EXPECT_FALSE(exists(asked)) << "nothing bound for the entry the manager's socket matched";
  baton.signal(SIGTERM);
  EXPECT_EQ(baton.wait_exit_code(30s), 0) << baton.output();
}

TEST_F(SocketActivation, ASocketMatchingNoListenIsOneLineExitOneNothingBound) {
  const std::string socket = dir_.file("given.sock");
  const std::string asked = dir_.file("asked.sock");
  Process baton = start(socket, "", {"--listen", "unix:" + asked});
  ASSERT_TRUE(wait_until([&] { return unix_listening(socket); }, 10s)) << baton.output();
  (void)http_get("unix:" + socket, "/", 10s);  // starts baton, which refuses: no answer
  EXPECT_EQ(baton.wait_exit_code(30s), 1) << baton.output();
  std::string out = baton.output();
  ASSERT_NE(out.find("baton: "), std::string::npos) << out;
  auto ours = out.substr(out.find("baton: "));
  EXPECT_THAT(ours, HasSubstr("matches no --listen"));
  EXPECT_EQ(std::count(ours.begin(), ours.end(), '\n'), 1) << ours;
  EXPECT_FALSE(exists(asked));
  EXPECT_FALSE(exists(control()));
}

// The test as baton's service manager: a TCP socket bound and listening on 127.0.0.1, with
// SO_REUSEPORT or not (the .socket unit's ReusePort=), passed at fd 3 with LISTEN_FDS=1 and
// LISTEN_PID set by the shell that execs baton (so it is baton's pid).
class ManagersTcpSocket : public ::testing::Test {
 protected:
  void open(bool reuse_port) {
    socket_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(socket_);
    int on = 1;
    if (reuse_port) {
      ASSERT_EQ(::setsockopt(socket_.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)), 0);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(socket_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::listen(socket_.get(), 64), 0);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(::getsockname(socket_.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    address_ = fmt::format("127.0.0.1:{}", ntohs(addr.sin_port));
    SpawnOptions options;
    options.inherit_fds = {socket_.get()};
    options.env["LISTEN_FDS"] = "1";
    options.unset_env = {"LISTEN_PID", "LISTEN_FDNAMES"};
    baton_.emplace(dir_, std::vector<std::string>{"--listen", address_},
                   std::vector<std::string>{testapp_binary()}, options);
  }
  // What generation answers a new connection ("" on failure).
  std::string answer() {
    auto r = http_get(address_, "/");
    return r.ok() ? r->body : "failed: " + r.error().what();
  }
  TempDir dir_;
  Fd socket_;
  std::string address_;
  struct ActivatedBaton {
    ActivatedBaton(const TempDir& dir, std::vector<std::string> run_args,
                   std::vector<std::string> app, const SpawnOptions& options)
        : control(dir.file("control.sock")) {
      std::vector<std::string> argv = {"/bin/sh",      "-c",  "LISTEN_PID=$$ exec \"$0\" \"$@\"",
                                       baton_binary(), "run", "--control",
                                       control};
      argv.insert(argv.end(), run_args.begin(), run_args.end());
      argv.push_back("--");
      argv.insert(argv.end(), app.begin(), app.end());
      process.emplace(Process::spawn(argv, options));
    }
    nlohmann::json status() {
      auto r = run({baton_binary(), "status", "--json", "--control", control}, 10s);
      return r.exit_code == 0 ? nlohmann::json::parse(r.output, nullptr, false) : nlohmann::json();
    }
    nlohmann::json wait_serving(int generation) {
      nlohmann::json last;
      wait_until(
          [&] {
            last = status();
            return last.is_object() && last.value("serving_generation", 0) == generation;
          },
          30s, 20ms);
      return last;
    }
    std::string control;
    std::optional<Process> process;
  };
  std::optional<ActivatedBaton> baton_;
};

TEST_F(ManagersTcpSocket, WithReusePortItIsSteeredAndTakesConnectionsWhileBatonIsGone) {
  open(/*reuse_port=*/true);
  auto status = baton_->wait_serving(1);
  ASSERT_EQ(status.value("serving_generation", 0), 1) << baton_->process->output();
  ASSERT_TRUE(status["listeners"].is_array() && status["listeners"].size() == 1u);
  EXPECT_EQ(status["listeners"][0].value("steering", ""), "steered");
  EXPECT_EQ(status["listeners"][0].value("address", ""), address_);
  EXPECT_THAT(baton_->process->output(), HasSubstr("(fd 3, steered, from the service manager)"));
  EXPECT_THAT(answer(), HasSubstr("generation 1 pid"));
  auto r = run({baton_binary(), "reload", "--wait", "--control", baton_->control}, 60s);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (int i = 0; i < 5; ++i) EXPECT_THAT(answer(), HasSubstr("generation 2 pid"));

  baton_->process->signal(SIGTERM);
  ASSERT_EQ(baton_->process->wait_exit_code(30s), 0) << baton_->process->output();
  // baton and its members are gone; the manager's socket, still open here, takes what comes.
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto to = parse_address(address_);
  ASSERT_TRUE(to);
  ASSERT_EQ(::connect(client.get(), to->sockaddr_ptr(), to->length), 0);
  pollfd pfd{socket_.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&pfd, 1, 5000), 1) << "queued on the manager's socket";
}

TEST_F(ManagersTcpSocket, WithoutReusePortItIsSharedAndBatonSaysWhy) {
  open(/*reuse_port=*/false);
  auto status = baton_->wait_serving(1);
  ASSERT_EQ(status.value("serving_generation", 0), 1) << baton_->process->output();
  EXPECT_EQ(status["listeners"][0].value("steering", ""), "shared");
  EXPECT_THAT(baton_->process->output(),
              HasSubstr("the service manager's socket cannot be steered"));
  EXPECT_THAT(baton_->process->output(), HasSubstr("ReusePort=yes"));
  EXPECT_THAT(answer(), HasSubstr("generation 1 pid"));
  baton_->process->signal(SIGTERM);
  EXPECT_EQ(baton_->process->wait_exit_code(30s), 0) << baton_->process->output();
}

// The example units, with the paths of this build, as `systemd-analyze verify` sees them.
class ExampleUnits : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/systemd-analyze", X_OK) != 0) {
      GTEST_SKIP() << "systemd-analyze is not installed";
    }
    auto v = run({"/usr/bin/systemd-analyze", "--version"}, 30s);
    version_ = std::atoi(v.output.c_str() + v.output.find(' ') + 1);
  }
  // Verifies examples/systemd/NAME; returns what systemd-analyze said (empty when all is well).
  std::string verify(const std::string& name) {
    std::string text = read_file(std::string(BATON_TEST_SOURCE_DIR) + "/examples/systemd/" + name);
    EXPECT_FALSE(text.empty()) << name;
    for (auto [from, to] : {std::pair<std::string, std::string>{"/usr/bin/baton", baton_binary()},
                            {"/usr/local/bin/app", testapp_binary()}}) {
      for (size_t at; (at = text.find(from)) != std::string::npos;)
        text.replace(at, from.size(), to);
    }
    std::ofstream(dir_.file(name)) << text;
    auto r = run({"/usr/bin/systemd-analyze", "verify", dir_.file(name)}, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }
  TempDir dir_;
  int version_ = 0;
};

TEST_F(ExampleUnits, NotifyServiceVerifies) { EXPECT_EQ(verify("baton-app.service"), ""); }

TEST_F(ExampleUnits, SocketVerifies) {
  verify("baton-app.service");  // the service it starts, beside it
  EXPECT_EQ(verify("baton-app.socket"), "");
}

TEST_F(ExampleUnits, NotifyReloadServiceVerifies) {
  if (version_ < 253) GTEST_SKIP() << "Type=notify-reload needs systemd 253; this is " << version_;
  EXPECT_EQ(verify("baton-app-notify-reload.service"), "");
}

// The lines of `text`, without their newlines.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  for (size_t nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) {
    out.push_back(text.substr(at, nl - at));
  }
  if (at < text.size()) out.push_back(text.substr(at));
  return out;
}

// An app that writes a line to each stream, a priority-prefixed one to stderr, then serves.
std::vector<std::string> chatty_app() {
  return {
      "/bin/sh", "-c",
      "echo \"out-line gen=$BATON_GENERATION\"; echo \"<4>err-line gen=$BATON_GENERATION\" >&2; "
      "exec " +
          testapp_binary()};
}

TEST(Logs, OwnLinesCarryAUtcTimeAndALevelAppLinesTheirGeneration) {
  TempDir dir;
  const auto before = std::chrono::system_clock::now();
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--prefix-output"}, chatty_app());
  ASSERT_TRUE(baton.wait_serving().is_object()) << baton.process().output();
  auto r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(baton.process().wait_for_output("[gen 2] <4>err-line gen=2", 10s))
      << baton.process().output();
  baton.process().signal(SIGTERM);
  ASSERT_EQ(baton.process().wait_exit_code(30s), 0) << baton.process().output();
  const auto after = std::chrono::system_clock::now();

  const std::string pid = std::to_string(baton.process().pid());
  const std::regex own("^(\\d{4})-(\\d\\d)-(\\d\\d)T(\\d\\d):(\\d\\d):(\\d\\d)\\.\\d{3}Z baton\\[" +
                       pid + "\\]: (error|warning|notice|info): .+$");
  const std::regex app("^\\[gen ([12])\\] .*$");
  int own_lines = 0;
  std::map<std::string, int> levels;
  for (const auto& line : lines_of(baton.process().output())) {
    std::smatch m;
    if (std::regex_match(line, m, app)) {
      // Each app line is labelled with the generation that wrote it, which the app also says.
      if (line.find(" gen=") != std::string::npos) {
        EXPECT_THAT(line, ::testing::EndsWith(" gen=" + m[1].str())) << line;
      }
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, m, own)) << "neither baton's nor labelled: " << line;
    ++own_lines;
    ++levels[m[7].str()];
    std::tm tm{};
    tm.tm_year = std::stoi(m[1]) - 1900;
    tm.tm_mon = std::stoi(m[2]) - 1;
    tm.tm_mday = std::stoi(m[3]);
    tm.tm_hour = std::stoi(m[4]);
    tm.tm_min = std::stoi(m[5]);
    tm.tm_sec = std::stoi(m[6]);
    const auto at = std::chrono::system_clock::from_time_t(::timegm(&tm));
    EXPECT_GE(at, std::chrono::floor<std::chrono::seconds>(before)) << line;
    EXPECT_LE(at, after) << "the time is UTC: " << line;
  }
  EXPECT_GE(own_lines, 8);
  EXPECT_GE(levels["info"], 4);    // listening, started, ready...
  EXPECT_EQ(levels["notice"], 3);  // reload 1 ok, stopping, stopped
  EXPECT_EQ(levels.count("error"), 0u);
  EXPECT_THAT(baton.process().output(), HasSubstr("[gen 1] out-line gen=1\n"));
  EXPECT_THAT(baton.process().output(), HasSubstr("[gen 2] out-line gen=2\n"));
  EXPECT_THAT(baton.process().output(), HasSubstr("[gen 1] testapp: pid "));
}

// stderr is "the journal" when JOURNAL_STREAM names it: here a file the test made, whose device
// and inode it puts in the variable, as systemd does for its stream socket.
class JournalLogs : public ::testing::Test {
 protected:
  SpawnOptions journal_options() {
    options_.output_path = dir_.file("journal");
    std::ofstream(options_.output_path).flush();
    struct stat st {};
    EXPECT_EQ(::stat(options_.output_path.c_str(), &st), 0);
    options_.env["JOURNAL_STREAM"] = fmt::format("{}:{}", st.st_dev, st.st_ino);
    return options_;
  }
  TempDir dir_;
  SpawnOptions options_;
};

TEST_F(JournalLogs, OwnLinesCarryThePriorityInsteadOfTheTimeAppPrioritiesStayInFront) {
  Baton baton(
      dir_, {"--listen", "127.0.0.1:0", "--prefix-output"},
      {"/bin/sh", "-c", "echo '<3>app-broke' >&2; exec " + testapp_binary() + " --exit-at-start 1"},
      journal_options());
  EXPECT_EQ(baton.process().wait_exit_code(30s), 1) << baton.process().output();
  const std::string out = baton.process().output();
  const std::string head = "baton[" + std::to_string(baton.process().pid()) + "]: ";
  EXPECT_THAT(out, HasSubstr("<6>" + head + "info: listening on listen0=127.0.0.1:"));
  EXPECT_THAT(out,
              HasSubstr("<3>" + head + "error: start failed: generation 1 exited with status 1"));
  EXPECT_THAT(out, HasSubstr("\n<3>[gen 1] app-broke\n")) << "the app's own priority stays first";
  for (const auto& line : lines_of(out)) {
    if (line.find(head) == std::string::npos) continue;
    EXPECT_TRUE(std::regex_match(line, std::regex("^<[3-6]>baton\\[\\d+\\]: [a-z]+: .+"))) << line;
  }
}

TEST_F(JournalLogs, AFailureToSetUpIsOneLineAtTheErrorPriority) {
  Fd taken(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(taken.get(), 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(taken.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string address = fmt::format("127.0.0.1:{}", ntohs(addr.sin_port));
  Baton baton(dir_, {"--listen", address}, {testapp_binary()}, journal_options());
  EXPECT_EQ(baton.process().wait_exit_code(30s), 1);
  const std::string out = baton.process().output();
  EXPECT_THAT(out, ::testing::StartsWith("<3>baton: "));
  EXPECT_THAT(out, HasSubstr(address));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

}  // namespace
}  // namespace baton::test

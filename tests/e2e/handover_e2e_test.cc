// Direct handover and drain, end to end: real processes (the example server and handover_app, a
// different build), real sockets, a real keep-alive load client counting failed requests.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <regex>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/address.h"
#include "common/listener.h"
#include "harness.h"
#include "load_client.h"
#include "notify_listener.h"

namespace baton::test {
namespace {

std::string app_binary() { return HANDOVER_APP_BIN; }

// Keep-alive clients, the hard case for a handover (a kept connection must be drained, not cut),
// counting which process answered each request.
const LoadOptions kLoad{.threads = 4, .keep_alive = true, .tally_header = "X-Pid"};

Process start_example(const std::string& handover, int generation,
                      const std::string& listen = "127.0.0.1:0",
                      std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {example_binary(), "--listen",  listen, "--init-seconds",
                                   "0.05",           "--threads", "2"};
  if (!handover.empty()) {
    argv.push_back("--handover");
    argv.push_back(handover);
  }
  for (auto& e : extra) argv.push_back(e);
  SpawnOptions o;
  o.env["BATON_GENERATION"] = std::to_string(generation);
  o.unset_env = {"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
                 "SERVER_STARTER_PORT"};
  return Process::spawn(argv, o);
}

// The address from "... ready on ADDR" (the first line that says so), or "" on timeout.
std::string ready_address(Process& p, const std::string& marker = "ready on ") {
  if (!p.wait_for_output(marker, 20s)) return "";
  std::smatch m;
  std::string out = p.output();
  std::regex re(marker + "(\\S+)");
  if (!std::regex_search(out, m, re)) return "";
  std::string a = m[1];
  return a.substr(0, a.find(','));
}

size_t fd_count(pid_t pid) { return open_fds(pid).size(); }

// "3:socket:[123] 4:anon_inode:[eventfd] ...", for failure messages.
std::string describe_fds(pid_t pid) {
  std::string out;
  for (int fd : open_fds(pid)) {
    char target[256] = {};
    std::string link = fmt::format("/proc/{}/fd/{}", pid, fd);
    ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
    out += fmt::format("{}:{} ", fd, n > 0 ? target : "?");
  }
  return out;
}

// Waits until `pid` holds exactly `n` descriptors (connections close asynchronously).
bool settles_at(pid_t pid, size_t n) {
  return wait_until([&] { return fd_count(pid) == n; }, 10s);
}

void expect_no_failures(const LoadClient& load) {
  EXPECT_EQ(load.failed(), 0) << fmt::format("{}", fmt::join(load.failures(), " | "));
  EXPECT_GT(load.ok(), 0);
}

TEST(HandoverE2E, FiftyHandoversUnderLoadFailNoRequestAndLeakNoDescriptor) {
  TempDir dir;
  const std::string path = dir.file("h");
  std::optional<Process> current = start_example(path, 0);
  const std::string addr = ready_address(*current);
  ASSERT_FALSE(addr.empty()) << current->output();
  const size_t baseline = fd_count(current->pid());

  LoadClient load(parse_address(addr).value(), kLoad);
  ASSERT_TRUE(wait_until([&] { return load.ok() > 200; }, 10s));
  std::vector<pid_t> pids = {current->pid()};
  for (int gen = 1; gen <= 50; ++gen) {
    Process next = start_example(path, gen);
    ASSERT_TRUE(next.wait_for_output("ready on " + addr, 20s)) << "generation " << gen << ":\n"
                                                               << next.output();
    EXPECT_EQ(current->wait_exit_code(30s), 0) << current->output();
    EXPECT_NE(current->output().find("drained"), std::string::npos);
    long before = load.ok();
    current.emplace(std::move(next));
    pids.push_back(current->pid());
    // Traffic goes on between handovers, so each one happens under load.
    ASSERT_TRUE(wait_until([&] { return load.ok() > before + 50; }, 10s));
  }
  load.stop();
  expect_no_failures(load);
  auto by_pid = load.tally();
  EXPECT_GT(by_pid[std::to_string(pids.back())], 0);
  EXPECT_GE(by_pid.size(), 45u);  // nearly every generation answered some requests
  std::printf("50 handovers: %ld ok, %ld failed, %ld retried on a closed keep-alive connection\n",
              load.ok(), load.failed(), load.retried());

  // The 51st instance holds what the first held: listener, handover socket, epoll sets, eventfds.
  EXPECT_TRUE(settles_at(current->pid(), baseline))
      << describe_fds(current->pid()) << "; the first instance had " << baseline;
  auto r = http_get(addr, "/");
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(r->headers["x-baton-generation"], "50");
}

TEST(HandoverE2E, NewInstanceFailingBeforeReadyLeavesTheOldServing) {
  TempDir dir;
  const std::string path = dir.file("h");
  Process old = start_example(path, 0);
  const std::string addr = ready_address(old);
  ASSERT_FALSE(addr.empty()) << old.output();
  const size_t baseline = fd_count(old.pid());
  LoadClient load(parse_address(addr).value(), kLoad);
  ASSERT_TRUE(wait_until([&] { return load.ok() > 100; }, 10s));

  Process died = Process::spawn({app_binary(), "die", path, addr});
  EXPECT_EQ(died.wait_exit_code(20s), 3) << died.output();
  Process crashed = Process::spawn({app_binary(), "crash", path, addr});
  EXPECT_EQ(crashed.wait_exit_code(20s), 128 + SIGKILL) << crashed.output();
  EXPECT_TRUE(old.wait_for_output("went away before it was ready; still serving", 10s));
  long before = load.ok();
  ASSERT_TRUE(wait_until([&] { return load.ok() > before + 200; }, 10s));
  EXPECT_TRUE(old.running());
  load.stop();
  expect_no_failures(load);
  EXPECT_EQ(load.tally().size(), 1u);  // the old instance answered everything
  EXPECT_TRUE(settles_at(old.pid(), baseline)) << describe_fds(old.pid()) << " vs " << baseline;

  // And it still hands over when a healthy successor comes.
  Process next = start_example(path, 1);
  ASSERT_TRUE(next.wait_for_output("ready on " + addr, 20s)) << next.output();
  EXPECT_EQ(old.wait_exit_code(30s), 0);
}

TEST(HandoverE2E, DifferentBuildsHandOverBothWaysUnderLoad) {
  TempDir dir;
  const std::string path = dir.file("h");
  Process first = start_example(path, 0);
  const std::string addr = ready_address(first);
  ASSERT_FALSE(addr.empty());
  LoadClient load(parse_address(addr).value(), kLoad);
  ASSERT_TRUE(wait_until([&] { return load.ok() > 100; }, 10s));

  Process other = Process::spawn({app_binary(), "serve", path, addr});
  ASSERT_TRUE(other.wait_for_output("handover_app: pid", 20s)) << other.output();
  EXPECT_EQ(first.wait_exit_code(30s), 0);
  auto r = http_get(addr, "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->headers["x-baton-generation"], "77");  // the other build answers
  long before = load.ok();
  ASSERT_TRUE(wait_until([&] { return load.ok() > before + 100; }, 10s));

  Process back = start_example(path, 2);
  ASSERT_TRUE(back.wait_for_output("ready on " + addr, 20s)) << back.output();
  EXPECT_EQ(other.wait_exit_code(30s), 0) << other.output();
  before = load.ok();
  ASSERT_TRUE(wait_until([&] { return load.ok() > before + 100; }, 10s));
  load.stop();
  expect_no_failures(load);
  EXPECT_TRUE(load.tally().count(std::to_string(other.pid())));
}

TEST(HandoverE2E, LegacyInstanceWithReusePortIsOverlappedThenStopped) {
  TempDir dir;
  const std::string path = dir.file("h");
  Process legacy = Process::spawn({app_binary(), "legacy-reuse", path, "127.0.0.1:0"});
  const std::string addr = ready_address(legacy);
  ASSERT_FALSE(addr.empty()) << legacy.output();
  Process next = start_example(path, 1, addr);
  ASSERT_TRUE(next.wait_for_output("ready on " + addr, 20s)) << next.output();
  EXPECT_NE(next.output().find("handover fallback: SO_REUSEPORT overlap on " + addr),
            std::string::npos)
      << next.output();
  EXPECT_EQ(legacy.wait_exit_code(20s), 0) << legacy.output();  // it got SIGTERM at ready
  auto r = http_get(addr, "/");
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(r->headers["x-pid"], std::to_string(next.pid()));
}

TEST(HandoverE2E, LegacyInstanceWithoutReusePortIsTerminatedThenBound) {
  TempDir dir;
  const std::string path = dir.file("h");
  Process legacy = Process::spawn({app_binary(), "legacy", path, "127.0.0.1:0"});
  const std::string addr = ready_address(legacy);
  ASSERT_FALSE(addr.empty()) << legacy.output();
  Process next = start_example(path, 1, addr);
  ASSERT_TRUE(next.wait_for_output("ready on " + addr, 20s)) << next.output();
  const std::string out = next.output();
  EXPECT_NE(out.find("does not speak handover protocol 1"), std::string::npos) << out;
  EXPECT_NE(out.find("handover fallback: terminate-then-bind on " + addr), std::string::npos)
      << out;
  EXPECT_EQ(legacy.wait_exit_code(20s), 0) << legacy.output();
  auto r = http_get(addr, "/");
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(r->headers["x-pid"], std::to_string(next.pid()));
}

// An unrelated process listening at the handover path (a "squatter" of the same uid) while the
// contested port is held by someone else: the fallbacks must not signal it.
TEST(HandoverE2E, UnrelatedProcessAtTheHandoverPathIsNotSignalled) {
  TempDir dir;
  const std::string path = dir.file("h");
  auto held = bind_listener(parse_address("127.0.0.1:0").value(), {});  // no SO_REUSEPORT
  ASSERT_TRUE(held.ok()) << held.error().what();
  const std::string addr = bound_address(held->get(), Transport::kTcp)->to_string();
  Process squatter = Process::spawn({app_binary(), "squatter", path, "-"});
  ASSERT_TRUE(squatter.wait_for_output("listening at", 20s)) << squatter.output();

  Process next = start_example(path, 1, addr);
  auto code = next.wait_exit_code(30s);
  EXPECT_NE(code, 0) << next.output();  // the port stays taken: it cannot start
  const std::string out = next.output();
  EXPECT_NE(out.find(fmt::format("not signalling pid {}", squatter.pid())), std::string::npos)
      << out;
  EXPECT_NE(out.find("does not hold it"), std::string::npos) << out;
  EXPECT_EQ(out.find("terminate-then-bind"), std::string::npos) << out;
  EXPECT_TRUE(squatter.running()) << squatter.output();
  EXPECT_EQ(squatter.output().find("got SIGTERM"), std::string::npos);
}

TEST(HandoverE2E, UnrelatedProcessAtTheHandoverPathIsNotSignalledAfterAnOverlap) {
  TempDir dir;
  const std::string path = dir.file("h");
  BindOptions reuse;
  reuse.reuse_port = true;
  auto held = bind_listener(parse_address("127.0.0.1:0").value(), reuse);
  ASSERT_TRUE(held.ok()) << held.error().what();
  const std::string addr = bound_address(held->get(), Transport::kTcp)->to_string();
  Process squatter = Process::spawn({app_binary(), "squatter", path, "-"});
  ASSERT_TRUE(squatter.wait_for_output("listening at", 20s)) << squatter.output();

  Process next = start_example(path, 1, addr);
  ASSERT_TRUE(next.wait_for_output("ready on " + addr, 20s)) << next.output();
  ASSERT_TRUE(next.wait_for_output("not signalling pid", 20s)) << next.output();
  EXPECT_NE(next.output().find(fmt::format("not signalling pid {}", squatter.pid())),
            std::string::npos)
      << next.output();
  EXPECT_EQ(next.output().find("handover fallback: sent SIGTERM"), std::string::npos)
      << next.output();
  EXPECT_TRUE(squatter.running()) << squatter.output();
  EXPECT_EQ(squatter.output().find("got SIGTERM"), std::string::npos);
  next.signal(SIGTERM);
  EXPECT_EQ(next.wait_exit_code(30s), 0) << next.output();
}

// A raw keep-alive connection, for watching what the server does to it.
Fd connect_raw(const std::string& addr) {
  auto a = parse_address(addr).value();
  Fd fd(::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd.get(), a.sockaddr_ptr(), a.length) != 0) fd.reset();
  return fd;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(ExampleDrain, FinishesTheRequestInFlightClosesIdleOnesAndExitsZero) {
  Process p = start_example("", 3);
  const std::string addr = ready_address(p);
  ASSERT_FALSE(addr.empty()) << p.output();
  const size_t base = fd_count(p.pid());

  Fd idle = connect_raw(addr);
  ASSERT_TRUE(idle.valid());
  std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_GT(::send(idle.get(), req.data(), req.size(), MSG_NOSIGNAL), 0);
  char buf[512];
  ASSERT_GT(::recv(idle.get(), buf, sizeof(buf), 0), 0);  // answered, now idle (keep-alive)

  Fd slow = connect_raw(addr);
  ASSERT_TRUE(slow.valid());
  req = "GET /slow?ms=700 HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_GT(::send(slow.get(), req.data(), req.size(), MSG_NOSIGNAL), 0);
  // Both connections accepted (one descriptor each) before the drain starts.
  ASSERT_TRUE(wait_until([&] { return fd_count(p.pid()) == base + 2; }, 5s));

  p.signal(SIGTERM);
  ASSERT_TRUE(p.wait_for_output("draining", 5s));
  EXPECT_EQ(read_all(idle.get()), "");  // the idle keep-alive connection is closed
  std::string resp = read_all(slow.get());
  EXPECT_EQ(resp.rfind("HTTP/1.1 200 OK", 0), 0u) << resp;
  EXPECT_NE(resp.find("Connection: close"), std::string::npos) << resp;
  EXPECT_NE(resp.find("hello from generation 3 pid " + std::to_string(p.pid())), std::string::npos);
  EXPECT_EQ(p.wait_exit_code(10s), 0) << p.output();
  EXPECT_NE(p.output().find("drained"), std::string::npos);
  // It was the only holder of the listener: new connections are refused now.
  EXPECT_FALSE(http_get(addr, "/", 2s).ok());
}

TEST(ExampleDrain, MissedDeadlineExitsOne) {
  Process p = start_example("", 0, "127.0.0.1:0", {"--drain-timeout", "0.3"});
  const std::string addr = ready_address(p);
  ASSERT_FALSE(addr.empty()) << p.output();
  const size_t base = fd_count(p.pid());
  Fd slow = connect_raw(addr);
  std::string req = "GET /slow?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_GT(::send(slow.get(), req.data(), req.size(), MSG_NOSIGNAL), 0);
  ASSERT_TRUE(wait_until([&] { return fd_count(p.pid()) == base + 1; }, 5s));
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait_exit_code(10s), 1) << p.output();
  EXPECT_NE(p.output().find("drain deadline passed"), std::string::npos);
}

TEST(ExampleServer, RoutesAndHeaders) {
  Process p = start_example("", 9);
  const std::string addr = ready_address(p);
  ASSERT_FALSE(addr.empty()) << p.output();
  auto root = http_get(addr, "/");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->status, 200);
  EXPECT_EQ(root->body, fmt::format("hello from generation 9 pid {}\n", p.pid()));
  EXPECT_EQ(root->headers["x-baton-generation"], "9");
  EXPECT_EQ(root->headers["x-pid"], std::to_string(p.pid()));
  auto health = http_get(addr, "/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->body, "ok\n");
  EXPECT_EQ(http_get(addr, "/nope")->status, 404);
  EXPECT_EQ(http_get(addr, "/slow?ms=x")->status, 400);
  auto slow = http_get(addr, "/slow?ms=50");
  ASSERT_TRUE(slow.ok());
  EXPECT_EQ(slow->status, 200);
}

// The listeners a supervisor passes (LISTEN_FDS from fd 3, named, the baton-probe one last) are all
// served; readiness and stopping go to NOTIFY_SOCKET. A python launcher stands in for the
// supervisor: it binds, puts the sockets at 3 and 4 and execs the server (same pid).
TEST(ExampleServer, ServesEveryInheritedListenerAndNotifies) {
  TempDir dir;
  const std::string notify_path = dir.file("notify");
  NotifyListener notify(notify_path);
  const std::string launcher = R"(
import os, socket, sys
a = socket.socket(); a.bind(("127.0.0.1", 0)); a.listen(128)
b = socket.socket(); b.bind(("127.0.0.1", 0)); b.listen(128)
print("launcher: %s:%d %s:%d" % (a.getsockname() + b.getsockname()), flush=True)
fa, fb = os.dup(a.fileno()), os.dup(b.fileno())
os.dup2(fa, 3); os.dup2(fb, 4)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="2", LISTEN_FDNAMES="http:baton-probe")
os.execv(sys.argv[1], sys.argv[1:])
)";
  SpawnOptions o;
  o.env["NOTIFY_SOCKET"] = notify_path;
  o.env["BATON_GENERATION"] = "4";
  Process p = Process::spawn({"/usr/bin/env", "python3", "-c", launcher, example_binary(),
                              "--listen", "127.0.0.1:1", "--init-seconds", "0"},
                             o);
  ASSERT_TRUE(p.wait_for_output("ready on ", 20s)) << p.output();
  std::smatch m;
  std::string out = p.output();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("launcher: (\\S+) (\\S+)"))) << out;
  const std::string http = m[1], probe = m[2];
  EXPECT_NE(out.find("ready on " + http + "," + probe), std::string::npos) << out;
  for (const std::string& a : {http, probe}) {
    auto r = http_get(a, "/healthz");
    ASSERT_TRUE(r.ok()) << a << ": " << r.error().what();
    EXPECT_EQ(r->body, "ok\n");
    EXPECT_EQ(r->headers["x-baton-generation"], "4");
  }
  // The launcher exec'd the server: the pid that speaks is the one started.
  EXPECT_TRUE(notify.wait_for(p.pid(), "READY=1", 5s));
  EXPECT_FALSE(notify.received(p.pid(), "STOPPING=1")) << "not before it is asked to stop";
  p.signal(SIGTERM);
  EXPECT_TRUE(notify.wait_for(p.pid(), "STOPPING=1", 5s));
  EXPECT_EQ(p.wait_exit_code(10s), 0) << p.output();
}

TEST(ExampleServer, BadFlagsGiveOneLineAndNonZeroExit) {
  for (std::vector<std::string> args : {std::vector<std::string>{"--threads", "0"},
                                        {"--init-seconds", "abc"},
                                        {"--listen", "nonsense:addr:1", "--init-seconds", "0"},
                                        {"--bogus"}}) {
    args.insert(args.begin(), example_binary());
    auto r = run(args, 10s);
    EXPECT_NE(r.exit_code, 0) << args[1];
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

}  // namespace
}  // namespace baton::test

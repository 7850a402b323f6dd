// End-to-end tests of `baton upgrade` (docs/upgrade.md): a copy of the baton binary in a temporary
// directory supervises the test app; the file at that path is replaced, and the supervisor
// executes it in place, under load, while an old generation drains, or refuses a broken one.
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
// glibc 2.36's <sys/pidfd.h> lacks the extern "C" guard (fixed in 2.37).
extern "C" {
#include <sys/pidfd.h>
}

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton_run.h"
#include "harness.h"
#include "load_client.h"
#include "manager_socket.h"

namespace baton::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace fs = std::filesystem;

// Puts a copy of `from` at `to` the way an installer does: written beside it, renamed over it.
void install(const std::string& from, const std::string& to, fs::perms perms) {
  const std::string staged = to + ".new";
  fs::copy_file(from, staged, fs::copy_options::overwrite_existing);
  fs::permissions(staged, perms);
  fs::rename(staged, to);
}

constexpr auto kExecutable = fs::perms::owner_all;

// The inode of the file a process runs (what /proc/PID/exe points at).
ino_t running_inode(pid_t pid) {
  struct stat st {};
  return ::stat(("/proc/" + std::to_string(pid) + "/exe").c_str(), &st) == 0 ? st.st_ino : 0;
}

ino_t file_inode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

int generation_pid(const nlohmann::json& status, int generation) {
  if (!status.is_object()) return 0;
  for (const auto& g : status["generations"]) {
    if (g.value("generation", 0) == generation) return g.value("pid", 0);
  }
  return 0;
}

std::string generation_state(const nlohmann::json& status, int generation) {
  if (!status.is_object()) return "";
  for (const auto& g : status["generations"]) {
    if (g.value("generation", 0) == generation) {
      return g.value("quiescing", false) ? "quiescing" : g.value("state", "");
    }
  }
  return "";
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// A config file for the test app on a port of its own, proven ready by `ready`.
std::string config_text(const std::string& ready) {
  return "listen = [\"127.0.0.1:0\"]\n"
         "command = [\"" +
         testapp_binary() +
         "\"]\n"
         "ready = \"" +
         ready + "\"\n";
}

constexpr const char* kBrokenConfig = "listen = [\"127.0.0.1:0\"\nnot toml at all\n";

// A TCP connection to `address` ("127.0.0.1:PORT"); invalid on failure.
Fd connect_tcp(const std::string& address) {
  auto to = parse_address(address);
  if (!to) return Fd();
  Fd fd(::socket(to->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd && ::connect(fd.get(), to->sockaddr_ptr(), to->length) != 0) return Fd();
  return fd;
}

// Sends one HTTP request on `fd` and reads the answer until the server closes (within 30 s).
std::string ask(const Fd& fd) {
  const std::string request = "GET / HTTP/1.1\r\nHost: test\r\n\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return "";
  }
  std::string answer;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) < 0) break;
    if (p.revents == 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  return answer;
}

// A datagram socket standing in for baton's service manager ($NOTIFY_SOCKET).
class Manager {
 public:
  explicit Manager(const std::string& path) : path_(path), fd_(bind_unix(path, SOCK_DGRAM)) {}
  const std::string& path() const { return path_; }
  bool bound() const { return fd_.valid(); }
  // Every datagram until one containing `needle` arrives (within `timeout`); "" on timeout.
  std::string until(const std::string& needle, std::chrono::milliseconds timeout = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string all;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd_.get(), POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) return "";
      char buf[4096];
      ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
      if (n < 0) return "";
      all += std::string(buf, static_cast<size_t>(n)) + "\n--\n";
      if (all.find(needle) != std::string::npos) return all;
    }
  }

 private:
  std::string path_;
  Fd fd_;
};

class Upgrade : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = dir_.file("bin/baton");
    fs::create_directories(dir_.file("bin"));
    install(baton_binary(), binary_, kExecutable);
  }
  std::unique_ptr<Baton> start(std::vector<std::string> run_args,
                               const std::vector<std::string>& app_args = {},
                               const SpawnOptions& options = {}) {
    std::vector<std::string> app = {testapp_binary()};
    app.insert(app.end(), app_args.begin(), app_args.end());
    return std::make_unique<Baton>(dir_, run_args, app, options, "control.sock", binary_);
  }
  TempDir dir_;
  std::string binary_;
};

TEST_F(Upgrade, UnderLoadNothingFailsAndPidsGenerationsAndCountersStay) {
  Manager manager(dir_.file("manager"));
  ASSERT_TRUE(manager.bound());
  SpawnOptions options;
  options.env["NOTIFY_SOCKET"] = manager.path();
  auto baton = start({"--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"}, {}, options);
  ASSERT_FALSE(baton->wait_address().empty()) << baton->process().output();
  ASSERT_FALSE(manager.until("READY=1").empty());
  // One reload first, so that there are counters, a record and a second slot to carry.
  ASSERT_EQ(baton->ctl({"reload", "--wait"}).exit_code, 0);
  ASSERT_FALSE(manager.until("RELOADING=1").empty());
  ASSERT_FALSE(manager.until("READY=1").empty());
  auto before = baton->wait_serving(2);
  ASSERT_TRUE(before.is_object()) << baton->process().output();
  const std::string address = before["listeners"][0].value("address", "");
  const int supervisor = before["supervisor"].value("pid", 0);
  const int app = generation_pid(before, 2);
  ASSERT_EQ(supervisor, baton->process().pid());
  const size_t fds_before = open_fds(supervisor).size();

  LoadClient fresh(parse_address(address).value(), LoadOptions{.threads = 2});
  LoadClient kept(parse_address(address).value(), LoadOptions{.threads = 2, .keep_alive = true});
  ASSERT_TRUE(fresh.wait_for_successes(100, 30s));
  ASSERT_TRUE(kept.wait_for_successes(100, 30s));

  install(baton_binary(), binary_, kExecutable);  // "the new version": a file of its own
  ASSERT_NE(running_inode(supervisor), file_inode(binary_));
  auto r = baton->ctl({"upgrade", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  EXPECT_THAT(r.output, HasSubstr("upgraded: baton "));
  EXPECT_EQ(running_inode(supervisor), file_inode(binary_)) << "the new file runs now";
  ASSERT_TRUE(fresh.wait_for_successes(100, 30s));
  ASSERT_TRUE(kept.wait_for_successes(100, 30s));

  auto after = baton->status();
  ASSERT_TRUE(after.is_object());
  EXPECT_EQ(after["supervisor"]["pid"], supervisor);
  EXPECT_EQ(after["serving_generation"], 2);
  EXPECT_EQ(generation_pid(after, 2), app);
  EXPECT_EQ(generation_state(after, 1), "exited");
  EXPECT_EQ(after["counters"], before["counters"]);
  EXPECT_EQ(after["last_reload"]["id"], before["last_reload"]["id"]);
  EXPECT_EQ(after["last_reload"]["reason"], before["last_reload"]["reason"]);
  EXPECT_EQ(after["listeners"], before["listeners"]);
  // The metrics listener too: same address, and it answers with the carried counters.
  const std::string metrics = before["supervisor"].value("metrics", "");
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(after["supervisor"].value("metrics", ""), metrics);
  auto scraped = http_get(metrics, "/metrics", 10s);
  ASSERT_TRUE(scraped.ok()) << scraped.error().what();
  EXPECT_THAT(scraped->body, HasSubstr("baton_reloads_total{result=\"ok\"} 1"));
  // The uptime goes on from the supervisor's start, not from the exec.
  EXPECT_GT(after["supervisor"].value("uptime_s", 0.0),
            before["supervisor"].value("uptime_s", 0.0));
  // Nothing leaked across the exec (the state's memfd, a check's pipes): four more upgrades on
  // the same state hold what the first one did. Each count may include, at most, the control
  // connection just answered (the reply is sent before it is closed): a leak of one descriptor
  // per exec shows as four.
  const size_t fds_upgraded = open_fds(supervisor).size();
  EXPECT_LE(fds_upgraded, fds_before + 1);
  for (int i = 0; i < 4; ++i) {
    r = baton->ctl({"upgrade", "--wait"});
    ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  }
  EXPECT_LE(open_fds(supervisor).size(), fds_upgraded + 1);

  // The carried state is real: a reload after the upgrade takes the free slot and drains.
  r = baton->ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  EXPECT_THAT(r.output, HasSubstr("generation 3 serving, generation 2 drained"));
  ASSERT_TRUE(fresh.wait_for_successes(50, 30s));
  fresh.stop();
  kept.stop();
  EXPECT_THAT(fresh.failures(), IsEmpty()) << fresh.failed() << " of " << fresh.requests();
  EXPECT_THAT(kept.failures(), IsEmpty()) << kept.failed() << " of " << kept.requests();
  EXPECT_EQ(baton->status()["counters"]["reloads_ok"], 2);

  // The manager heard of the upgrade, and of no second start: the reload after it is a reload.
  const std::string told = manager.until("RELOADING=1");
  EXPECT_THAT(told, HasSubstr("STATUS=upgrading baton "));
  EXPECT_THAT(told, ::testing::Not(HasSubstr("MAINPID=")));
  const std::string out = baton->process().output();
  EXPECT_THAT(out, HasSubstr("upgrading: executing " + binary_ + " in place"));
  EXPECT_THAT(out, HasSubstr("upgraded: baton "));
  EXPECT_TRUE(baton->stop());
}

// The manager's watchdog variables left baton's environment at start; the exec hands them to the
// new binary, which pings on from the same pid.
TEST_F(Upgrade, TheNewBinaryPingsTheManagersWatchdogOn) {
  ManagerSocket manager(dir_.file("manager"));
  ASSERT_TRUE(manager.bound());
  SpawnOptions options;
  options.env["NOTIFY_SOCKET"] = manager.path();
  options.env["WATCHDOG_USEC"] = "200000";
  options.unset_env = {"WATCHDOG_PID"};
  auto baton = start({"--listen", "127.0.0.1:0"}, {}, options);
  const pid_t pid = baton->process().pid();
  auto ready = manager.next();
  ASSERT_TRUE(ready) << baton->process().output();
  ASSERT_TRUE(manager.next_watchdog(10s)) << baton->process().output();

  install(baton_binary(), binary_, kExecutable);
  auto r = baton->ctl({"upgrade", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  // The answer came from the new image: whatever is queued now may be the old one's, drained;
  // the next ping is the new one's.
  while (manager.next_watchdog(1ms)) {
  }
  auto ping = manager.next_watchdog(10s);
  ASSERT_TRUE(ping) << baton->process().output();
  EXPECT_EQ(ping->sender, pid);
  const std::string out = baton->process().output();
  const std::string said = "the service manager's watchdog: WATCHDOG=1 every 100ms";
  const size_t first = out.find(said);
  ASSERT_NE(first, std::string::npos) << out;
  EXPECT_NE(out.find(said, first + 1), std::string::npos) << "the new image read it too: " << out;
}

// The soft limit on open descriptors of `pid` ("" when unreadable), from /proc/PID/limits.
std::string descriptor_limit_of(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("Max open files")) continue;
    std::istringstream fields(line.substr(14));
    std::string soft;
    fields >> soft;
    return soft;
  }
  return "";
}

// baton raises its own descriptor limit (each taken-over connection costs one) and starts its
// apps with the one it was given; so does the image an upgrade starts, which inherits the raised
// limit: it is put back before the exec.
TEST_F(Upgrade, AppsKeepTheDescriptorLimitBatonWasGiven) {
  rlimit mine{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &mine), 0);
  if (mine.rlim_max <= 1000) GTEST_SKIP() << "the hard limit leaves nothing to raise";
  rlimit given = mine;
  given.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &given), 0);
  auto baton = start({"--listen", "127.0.0.1:0"});  // inherits 1000
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &mine), 0);
  const int first = baton->wait_serving_pid(1);
  ASSERT_NE(first, 0) << baton->process().output();
  EXPECT_EQ(descriptor_limit_of(first), "1000");
  EXPECT_NE(descriptor_limit_of(baton->process().pid()), "1000") << "baton raised its own";

  auto r = baton->ctl({"upgrade", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  EXPECT_NE(descriptor_limit_of(baton->process().pid()), "1000") << "the new image raised it";
  r = baton->ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  const int second = baton->wait_serving_pid(2);
  ASSERT_NE(second, 0) << baton->process().output();
  EXPECT_EQ(descriptor_limit_of(second), "1000") << "the app of the new image";
}

TEST_F(Upgrade, ADrainingGenerationAndTheReloadWaitingForItAreCarried) {
  auto baton = start({"--listen", "127.0.0.1:0", "--drain-timeout", "60"});
  const std::string address = baton->wait_address();
  ASSERT_FALSE(address.empty()) << baton->process().output();
  if (!baton->steered()) GTEST_SKIP() << "shared listeners: an old generation is not watched";
  const int old_pid = baton->wait_serving_pid(1);

  // A slow request holds generation 1 busy, so it quiesces after the switch: until the test lets
  // it go, however slow the machine. Whatever happens below, it is let go and its client joined.
  const std::string release = dir_.file("release");
  std::optional<Result<HttpResponse>> slow;
  std::thread client([&] { slow = http_get(address, "/until?file=" + release, 150s); });
  struct LetGo {
    std::thread& client;
    const std::string& release;
    ~LetGo() {
      std::ofstream(release).flush();
      if (client.joinable()) client.join();
    }
  } let_go{client, release};
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = baton->status();
        for (const auto& g : s.is_object() ? s["generations"] : nlohmann::json::array()) {
          if (g.value("generation", 0) == 1 && g.value("connections", 0) > 0) return true;
        }
        return false;
      },
      10s));
  Process reload = Process::spawn(
      {baton_binary(), "reload", "--wait", "--control", baton->control(), "--timeout", "60s"});
  ASSERT_TRUE(wait_until([&] { return generation_state(baton->status(), 1) == "quiescing"; }, 20s))
      << baton->status().dump();

  auto r = baton->ctl({"upgrade", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  EXPECT_EQ(generation_state(baton->status(), 1), "quiescing");
  EXPECT_EQ(generation_pid(baton->status(), 1), old_pid);

  std::ofstream(release).flush();
  client.join();
  ASSERT_TRUE(slow.has_value() && slow->ok()) << (slow && !slow->ok() ? slow->error().what() : "");
  EXPECT_EQ((*slow)->status, 200);
  EXPECT_THAT((*slow)->body, HasSubstr("generation 1"));
  // The reload's own client crossed the exec too, and hears the end of the drain.
  EXPECT_EQ(reload.wait_exit_code(30s), 0) << reload.output();
  EXPECT_THAT(reload.output(), HasSubstr("generation 2 serving, generation 1 drained"));
  EXPECT_EQ(generation_state(baton->status(), 1), "exited");
  EXPECT_EQ(baton->status()["counters"]["drain_kills"], 0);
  EXPECT_TRUE(baton->stop());
}

TEST_F(Upgrade, ABrokenBinaryAtThePathChangesNothing) {
  auto baton = start({"--listen", "127.0.0.1:0"});
  const std::string address = baton->wait_address();
  ASSERT_FALSE(address.empty()) << baton->process().output();
  const int supervisor = baton->process().pid();
  const int app = baton->wait_serving_pid(1);
  LoadClient load(parse_address(address).value(), LoadOptions{.threads = 2});
  ASSERT_TRUE(load.wait_for_successes(50, 30s));

  const std::string script = dir_.file("fails.sh");
  { std::ofstream(script) << "#!/bin/sh\necho 'cannot start: no such thing' >&2\nexit 1\n"; }
  // Exits 0 with a JSON answer whose fields have the wrong types: read carefully, not trusted.
  const std::string liar = dir_.file("liar.sh");
  {
    std::ofstream(liar) << "#!/bin/sh\necho '{\"baton_upgrade_check\":\"1\",\"ok\":\"yes\","
                           "\"version\":2}'\n";
  }
  struct Case {
    std::string name;
    std::function<void()> put;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"missing", [&] { fs::remove(binary_); }, "No such file or directory"},
      {"not executable",
       [&] { install(baton_binary(), binary_, fs::perms::owner_read | fs::perms::owner_write); },
       "Permission denied"},
      {"a script that exits 1", [&] { install(script, binary_, kExecutable); },
       "failed its pre-flight check: cannot start: no such thing"},
      {"another program", [&] { install("/bin/true", binary_, kExecutable); },
       "did not answer the pre-flight check as baton does"},
      {"a program whose answer has the wrong types", [&] { install(liar, binary_, kExecutable); },
       "did not answer the pre-flight check as baton does"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    c.put();
    auto r = baton->ctl({"upgrade", "--wait"});
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.says));
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    auto s = baton->status();
    ASSERT_TRUE(s.is_object());
    EXPECT_EQ(s["supervisor"]["pid"], supervisor);
    EXPECT_EQ(generation_pid(s, 1), app);
    EXPECT_EQ(s["serving_generation"], 1);
    const long ok = load.ok();
    EXPECT_TRUE(wait_until([&] { return load.ok() > ok + 20; }, 30s)) << "still serving";
  }
  load.stop();
  EXPECT_THAT(load.failures(), IsEmpty()) << load.failed() << " of " << load.requests();
  EXPECT_THAT(baton->process().output(), HasSubstr("the supervisor carries on"));
  EXPECT_THAT(baton->process().output(), ::testing::Not(HasSubstr("upgrading: executing")));
  // And once a baton is back at the path, the upgrade goes through.
  install(baton_binary(), binary_, kExecutable);
  auto r = baton->ctl({"upgrade"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("passed its pre-flight check"));
  EXPECT_TRUE(baton->process().wait_for_output("upgraded: baton ", 30s));
  EXPECT_EQ(baton->status()["supervisor"]["pid"], supervisor);
  EXPECT_TRUE(baton->stop());
}

// Finding 3 of the review, as an attacker who may write the binary's directory plays it: the file
// at the path passes the pre-flight check, and in the moment after, another is put in its place.
// The exec runs the file that was checked, never the one swapped in.
TEST_F(Upgrade, ABinarySwappedInAfterTheCheckIsNeverExecuted) {
  auto baton = start({"--listen", "127.0.0.1:0"});
  const std::string address = baton->wait_address();
  ASSERT_FALSE(address.empty()) << baton->process().output();
  const int supervisor = baton->process().pid();
  const int app = baton->wait_serving_pid(1);
  const std::string real = dir_.file("bin/baton.real");
  install(baton_binary(), real, kExecutable);
  const std::string marker = dir_.file("swapped-in-ran");
  const std::string swapped = dir_.file("swapped.sh");
  { std::ofstream(swapped) << "#!/bin/sh\ntouch " << marker << "\nexit 3\n"; }
  fs::permissions(swapped, kExecutable);
  // As the check: baton's own check answers, and the swap is done before the answer, so it is
  // in place by the time the supervisor execs. Otherwise: baton itself.
  const std::string wrapper = dir_.file("wrapper.sh");
  {
    std::ofstream(wrapper) << "#!/bin/sh\n"
                           << "if [ \"$1\" = upgrade-check ]; then\n"
                           << "  " << real << " \"$@\"; status=$?\n"
                           << "  mv " << swapped << " " << binary_ << "\n"
                           << "  exit $status\n"
                           << "fi\n"
                           << "exec " << real << " \"$@\"\n";
  }
  install(wrapper, binary_, kExecutable);
  auto r = baton->ctl({"upgrade", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  EXPECT_FALSE(fs::exists(swapped)) << "the swap was done during the check";
  EXPECT_FALSE(fs::exists(marker)) << "the binary swapped in after the check was executed";
  auto s = baton->status();
  ASSERT_TRUE(s.is_object()) << baton->process().output();
  EXPECT_EQ(s["supervisor"]["pid"], supervisor);
  EXPECT_EQ(generation_pid(s, 1), app);
  EXPECT_EQ(running_inode(supervisor), file_inode(real));
  EXPECT_TRUE(baton->stop());
}

// Review finding 15: a process the pre-flight check left in the background outlived it.
TEST_F(Upgrade, WhatThePreFlightCheckLeavesBehindIsKilled) {
  auto baton = start({"--listen", "127.0.0.1:0"});
  ASSERT_FALSE(baton->wait_address().empty()) << baton->process().output();
  const std::string real = dir_.file("bin/baton.real");
  install(baton_binary(), real, kExecutable);
  const std::string pid_file = dir_.file("left.pid");
  const std::string wrapper = dir_.file("wrapper.sh");
  {
    std::ofstream(wrapper) << "#!/bin/sh\n"
                           << "if [ \"$1\" = upgrade-check ]; then\n"
                           << "  sleep 300 </dev/null >/dev/null 2>&1 &\n"
                           << "  echo $! > " << pid_file << "\n"
                           << "fi\n"
                           << "exec " << real << " \"$@\"\n";
  }
  install(wrapper, binary_, kExecutable);
  auto r = baton->ctl({"upgrade", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  const pid_t left = std::atoi(read_file(pid_file).c_str());
  ASSERT_GT(left, 1) << "the check wrote no pid";
  Fd left_pidfd(::pidfd_open(left, 0));
  struct Reaper {  // if the test fails, the sleep goes anyway
    pid_t pid;
    ~Reaper() { ::kill(pid, SIGKILL); }
  } reaper{left};
  if (left_pidfd) {
    pollfd p{left_pidfd.get(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 10000), 1) << "pid " << left << " left by the check still runs";
  }
  EXPECT_TRUE(baton->stop());
}

TEST_F(Upgrade, RefusedWhileAnOldGenerationIsHeld) {
  auto baton = start({"--listen", "127.0.0.1:0", "--hold-old", "60"});
  ASSERT_FALSE(baton->wait_address().empty()) << baton->process().output();
  ASSERT_EQ(baton->ctl({"reload"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return generation_state(baton->status(), 1) == "held"; }, 20s));
  auto r = baton->ctl({"upgrade", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("generation 1 is held (--hold-old)"));
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_EQ(generation_state(baton->status(), 1), "held");
  EXPECT_TRUE(baton->stop());
}

TEST_F(Upgrade, RefusedWhileBatonRelaysAConnectionOfAGenerationThatIsGone) {
  auto baton = start({"--listen", "127.0.0.1:0", "--hold-old", "60"});
  const std::string address = baton->wait_address();
  ASSERT_FALSE(address.empty()) << baton->process().output();
  if (!baton->steered()) GTEST_SKIP() << "shared listeners: no connection is ever stranded";
  const int supervisor = baton->process().pid();
  const int first = baton->wait_serving_pid(1);
  ASSERT_EQ(baton->ctl({"reload"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return generation_state(baton->status(), 1) == "held"; }, 20s));
  const int second = generation_pid(baton->status(), 2);
  ASSERT_GT(second, 0);
  // Generation 2 receives the new connections but, stopped, accepts none: this one waits in its
  // socket's queue. Then it dies within the hold: generation 1 serves again, and the connection,
  // stranded on a socket no generation holds, is accepted and relayed by baton (relay.h).
  ASSERT_EQ(::kill(second, SIGSTOP), 0);
  Fd client = connect_tcp(address);
  ASSERT_TRUE(client) << std::strerror(errno);
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = baton->status();
        for (const auto& g : s.is_object() ? s["generations"] : nlohmann::json::array()) {
          if (g.value("generation", 0) == 2 && g.value("accept_queue", 0) == 1) return true;
        }
        return false;
      },
      10s))
      << baton->status().dump();
  ASSERT_EQ(::kill(second, SIGKILL), 0);
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = baton->status();
        return generation_state(s, 2) == "exited" && s.value("serving_generation", 0) == 1;
      },
      20s))
      << baton->status().dump() << baton->process().output();

  install(baton_binary(), binary_, kExecutable);
  const ino_t running = running_inode(supervisor);
  auto r = baton->ctl({"upgrade", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("baton itself relays 1 connection(s) of a generation that is "
                                  "gone; try again once they end; nothing changed"));
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  auto s = baton->status();
  ASSERT_TRUE(s.is_object());
  EXPECT_EQ(s["supervisor"]["pid"], supervisor);
  EXPECT_EQ(s["serving_generation"], 1);
  EXPECT_EQ(generation_pid(s, 1), first);
  EXPECT_EQ(running_inode(supervisor), running) << "the old image still runs";
  EXPECT_THAT(baton->process().output(), ::testing::Not(HasSubstr("upgrading: executing")));

  // The relayed connection is whole: generation 1 answers on it. Once it has ended, nothing is
  // relayed, and the upgrade goes through (asked again until then: the pair ends as soon as both
  // directions are closed, an event this test cannot wait on from outside).
  EXPECT_THAT(ask(client), HasSubstr("generation 1"));
  client.reset();
  ASSERT_TRUE(wait_until(
      [&] {
        r = baton->ctl({"upgrade", "--wait"});
        return r.exit_code == 0;
      },
      30s, 100ms))
      << r.output;
  EXPECT_THAT(r.output, HasSubstr("upgraded: baton "));
  EXPECT_EQ(running_inode(supervisor), file_inode(binary_));
  EXPECT_EQ(generation_pid(baton->status(), 1), first);
  EXPECT_TRUE(baton->stop());
}

// The settings a supervisor runs with cross the exec; the config file is not read again there.
class UpgradeWithConfig : public Upgrade {
 protected:
  // baton started from a config file (readiness "accept"), generation 1 serving, and a load of
  // new connections that has had its first answers. Each test then edits the file.
  struct Serving {
    std::unique_ptr<Baton> baton;
    int supervisor = 0;
    int app = 0;
    std::unique_ptr<LoadClient> load;
  };
  void start_serving(Serving& out) {
    config_ = dir_.file("app.toml");
    write_file(config_, config_text("accept"));
    out.baton = std::make_unique<Baton>(dir_, std::vector<std::string>{"--config", config_},
                                        std::vector<std::string>{}, SpawnOptions{}, "control.sock",
                                        binary_);
    const std::string address = out.baton->wait_address();
    ASSERT_FALSE(address.empty()) << out.baton->process().output();
    out.supervisor = out.baton->process().pid();
    out.app = out.baton->wait_serving_pid(1);
    out.load =
        std::make_unique<LoadClient>(parse_address(address).value(), LoadOptions{.threads = 2});
    ASSERT_TRUE(out.load->wait_for_successes(50, 30s));
  }
  // After the upgrade: the same supervisor, generation 1 and the settings it started with
  // (readiness "accept"), whatever the file says now; the load still answered.
  void expect_kept(Serving& on) {
    auto s = on.baton->status();
    ASSERT_TRUE(s.is_object()) << on.baton->process().output();
    EXPECT_EQ(s["supervisor"]["pid"], on.supervisor);
    EXPECT_EQ(s["supervisor"].value("readiness", ""), "accept") << "the settings it ran with";
    EXPECT_EQ(s["supervisor"].value("config", ""), config_);
    EXPECT_EQ(generation_pid(s, 1), on.app);
    ASSERT_TRUE(on.load->wait_for_successes(50, 30s));
  }
  // The load answered to the end with nothing failed, and baton stops cleanly.
  void expect_nothing_failed(Serving& on) {
    ASSERT_TRUE(on.load->wait_for_successes(50, 30s));
    on.load->stop();
    EXPECT_THAT(on.load->failures(), IsEmpty())
        << on.load->failed() << " of " << on.load->requests();
    EXPECT_TRUE(on.baton->stop());
  }
  std::string config_;
};

TEST_F(UpgradeWithConfig, KeepsTheRunningSettingsWhenTheFileNowSaysOthers) {
  Serving on;
  ASSERT_NO_FATAL_FAILURE(start_serving(on));
  Baton* baton = on.baton.get();
  ASSERT_EQ(baton->status()["supervisor"].value("readiness", ""), "accept");

  // The file as baton read it: the upgrade has nothing to tell.
  install(baton_binary(), binary_, kExecutable);
  auto r = baton->ctl({"upgrade", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  EXPECT_THAT(r.output, Not(HasSubstr("warning"))) << "nothing in the file differs";

  // A valid edit, not reloaded yet: of a setting a reload takes, and of one it does not.
  write_file(config_, config_text("http:/healthz") + "max-draining = 2\n");
  install(baton_binary(), binary_, kExecutable);
  r = baton->ctl({"upgrade", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  EXPECT_EQ(running_inode(on.supervisor), file_inode(binary_)) << "the new file runs now";
  ASSERT_NO_FATAL_FAILURE(expect_kept(on));
  // The operator hears that the upgrade did not apply the edit, and what would.
  const std::string told = config_ +
                           " now says other settings than baton runs with, and the upgrade "
                           "kept those: `baton reload` applies ready; only a restart of baton "
                           "applies max-draining";
  EXPECT_THAT(r.output, HasSubstr("baton upgrade: warning: " + told)) << r.output;
  EXPECT_THAT(baton->process().output(), HasSubstr("upgrade: " + told));

  // The edit takes effect where an edit always does: at the next reload.
  r = baton->ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  EXPECT_EQ(baton->status()["supervisor"].value("readiness", ""), "http:/healthz");
  expect_nothing_failed(on);
}

TEST_F(UpgradeWithConfig, GoesThroughWhenTheFileNoLongerParses) {
  Serving on;
  ASSERT_NO_FATAL_FAILURE(start_serving(on));
  Baton* baton = on.baton.get();

  write_file(config_, kBrokenConfig);
  install(baton_binary(), binary_, kExecutable);
  auto r = baton->ctl({"upgrade", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  EXPECT_EQ(running_inode(on.supervisor), file_inode(binary_));
  ASSERT_NO_FATAL_FAILURE(expect_kept(on));
  EXPECT_THAT(r.output, HasSubstr("baton upgrade: warning: " + config_ + " no longer checks: "));
  EXPECT_THAT(r.output, HasSubstr("; the next reload fails until it does"));
  // A reload reads the file, as before the upgrade: it fails, and generation 1 serves on.
  r = baton->ctl({"reload", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("no longer checks"));
  EXPECT_THAT(r.output, HasSubstr("generation 1 keeps serving"));
  expect_nothing_failed(on);
}

TEST_F(UpgradeWithConfig, AFileBrokenBetweenTheCheckAndTheExecIsNotRead) {
  Serving on;
  ASSERT_NO_FATAL_FAILURE(start_serving(on));
  Baton* baton = on.baton.get();
  // The "new binary" is a wrapper: as the pre-flight check it runs baton's check, then breaks
  // the config file before answering, so the exec that follows finds it broken.
  const std::string real = dir_.file("bin/baton.real");
  install(baton_binary(), real, kExecutable);
  const std::string wrapper = dir_.file("wrapper.sh");
  {
    std::ofstream(wrapper) << "#!/bin/sh\n"
                           << "if [ \"$1\" = upgrade-check ]; then\n"
                           << "  " << real << " \"$@\"; status=$?\n"
                           << "  printf 'not toml at all\\n' > " << config_ << "\n"
                           << "  exit $status\n"
                           << "fi\n"
                           << "exec " << real << " \"$@\"\n";
  }
  install(wrapper, binary_, kExecutable);
  auto r = baton->ctl({"upgrade", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  EXPECT_EQ(read_file(config_), "not toml at all\n") << "the wrapper ran as the check";
  ASSERT_NO_FATAL_FAILURE(expect_kept(on));
  // Read after the exec only to tell the operator, who learns it before the next reload fails.
  EXPECT_THAT(r.output, HasSubstr("baton upgrade: warning: " + config_ + " no longer checks: "));
  expect_nothing_failed(on);
}

TEST_F(Upgrade, AGenerationThatDiesDuringTheExecIsReapedAfterIt) {
  auto baton = start({"--listen", "127.0.0.1:0"});
  ASSERT_FALSE(baton->wait_address().empty()) << baton->process().output();
  const int supervisor = baton->process().pid();
  const int victim = baton->wait_serving_pid(1);
  ASSERT_GT(victim, 0);
  // The "new binary" is a wrapper: run as the supervisor's exec (not as the pre-flight check),
  // it kills the serving generation, then executes baton, still in the supervisor's pid. The
  // generation's exit lands between the two images.
  const std::string real = dir_.file("bin/baton.real");
  install(baton_binary(), real, kExecutable);
  const std::string wrapper = dir_.file("wrapper.sh");
  {
    std::ofstream(wrapper) << "#!/bin/sh\n"
                           << "[ \"$1\" = upgrade-check ] || kill -9 " << victim << "\n"
                           << "exec " << real << " \"$@\"\n";
  }
  install(wrapper, binary_, kExecutable);
  auto r = baton->ctl({"upgrade", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton->process().output();
  // Reaped by the upgraded supervisor (no zombie left), seen as a crash, and a new one serves.
  EXPECT_TRUE(baton->process().wait_for_output(
      "generation 1 (pid " + std::to_string(victim) + ") was killed by SIGKILL while serving", 30s))
      << baton->process().output();
  EXPECT_GT(baton->wait_serving_pid(2), 0) << baton->process().output();
  EXPECT_EQ(baton->status()["supervisor"]["pid"], supervisor);
  EXPECT_EQ(baton->status()["counters"]["crashes"], 1);
  EXPECT_NE(::access(("/proc/" + std::to_string(victim)).c_str(), F_OK), 0) << "reaped";
  EXPECT_TRUE(baton->stop());
}

TEST_F(Upgrade, ListenersFromSocketActivationAreCarried) {
  constexpr const char* kActivate = "/usr/bin/systemd-socket-activate";
  if (::access(kActivate, X_OK) != 0) GTEST_SKIP() << kActivate << " is not installed";
  const std::string socket = dir_.file("app.sock");
  const std::string control = dir_.file("control.sock");
  Process baton = Process::spawn({kActivate, "-l", socket, binary_, "run", "--control", control,
                                  "--listen", "unix:" + socket, "--", testapp_binary()});
  ASSERT_TRUE(wait_until([&] { return ::access(socket.c_str(), F_OK) == 0; }, 10s))
      << baton.output();
  auto first = http_get("unix:" + socket, "/", 30s);  // the first connection starts baton
  ASSERT_TRUE(first.ok()) << first.error().what() << baton.output();
  ASSERT_THAT(baton.output(), HasSubstr("from the service manager"));

  install(baton_binary(), binary_, kExecutable);
  auto r = run({baton_binary(), "upgrade", "--wait", "--control", control}, 60s);
  ASSERT_EQ(r.exit_code, 0) << r.output << baton.output();
  auto again = http_get("unix:" + socket, "/", 30s);
  ASSERT_TRUE(again.ok()) << again.error().what() << baton.output();
  EXPECT_EQ(again->body, first->body) << "the same generation serves";
  baton.signal(SIGTERM);
  EXPECT_EQ(baton.wait_exit_code(30s), 0) << baton.output();
  // Still the manager's socket after the exec: baton does not unlink it at exit.
  EXPECT_EQ(::access(socket.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace baton::test

// The control directory and control socket as an attacker on the same machine sees them (issue
// 11): a planted directory, silent clients, a removed lock file. Real baton processes.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton/fd.h"
#include "harness.h"

namespace baton::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

Process start_baton(const std::string& control) {
  return Process::spawn({baton_binary(), "run", "--control", control, "--listen", "127.0.0.1:0",
                         "--", testapp_binary()});
}

bool serving(const std::string& control) {
  return wait_until(
      [&] {
        auto r = run({baton_binary(), "status", "--json", "--control", control}, 10s);
        auto j = nlohmann::json::parse(r.output, nullptr, false);
        return j.is_object() && j.value("serving_generation", 0) != 0;
      },
      30s, 50ms);
}

std::string read_all(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

TEST(ControlHardening, PlantedControlDirectoryIsRefusedAndTheVictimFileUnchanged) {
  TempDir tmp;
  const std::string planted = tmp.file("baton-planted");
  ASSERT_EQ(::mkdir(planted.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(planted.c_str(), 0777), 0);  // as another user would leave it
  const std::string victim = tmp.file("victim");
  { std::ofstream(victim) << "precious\n"; }
  ASSERT_EQ(::symlink(victim.c_str(), (planted + "/control.sock.lock").c_str()), 0);
  auto r = run({baton_binary(), "run", "--control", planted + "/control.sock", "--listen",
                "127.0.0.1:0", "--", testapp_binary()},
               20s);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("control directory " + planted + " has mode 777"));
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_EQ(read_all(victim), "precious\n");
  struct stat st {};
  EXPECT_NE(::stat((planted + "/control.sock").c_str(), &st), 0) << "nothing bound there";

  // Made private, the symlinked lock is still not followed.
  ASSERT_EQ(::chmod(planted.c_str(), 0700), 0);
  r = run({baton_binary(), "run", "--control", planted + "/control.sock", "--listen", "127.0.0.1:0",
           "--", testapp_binary()},
          20s);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("a symlink, not followed"));
  EXPECT_EQ(read_all(victim), "precious\n");
}

TEST(ControlHardening, ControlDirectoryOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory away";
  TempDir tmp;
  const std::string theirs = tmp.file("theirs");
  ASSERT_EQ(::mkdir(theirs.c_str(), 0700), 0);
  ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
  auto r = run({baton_binary(), "run", "--control", theirs + "/control.sock", "--listen",
                "127.0.0.1:0", "--", testapp_binary()},
               20s);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("is owned by uid 65534"));
}

TEST(ControlHardening, StatusAnswersWithSeventySilentClientsConnected) {
  TempDir tmp;
  const std::string control = tmp.file("control.sock");
  Process baton = start_baton(control);
  ASSERT_TRUE(serving(control)) << baton.output();
  std::vector<Fd> silent;
  for (int i = 0; i < 70; ++i) {
    Fd c = connect_unix(control, SOCK_STREAM);
    ASSERT_TRUE(c.valid()) << i << ": " << std::strerror(errno);
    silent.push_back(std::move(c));
  }
  auto r = run({baton_binary(), "status", "--control", control}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("generation  1"));
  // The silent ones were answered, not reset: "no request" or "too many control clients".
  char buf[512];
  ssize_t n = ::recv(silent.back().get(), buf, sizeof(buf), 0);
  ASSERT_GT(n, 0) << std::strerror(errno);
  EXPECT_THAT(std::string(buf, static_cast<size_t>(n)), HasSubstr("too many control clients"));
  n = ::recv(silent.front().get(), buf, sizeof(buf), 0);
  ASSERT_GT(n, 0) << std::strerror(errno);
  EXPECT_THAT(std::string(buf, static_cast<size_t>(n)), HasSubstr("no request within"));
}

// The lowest descriptor number `pid` has free (what its next open or accept would get).
int lowest_free_fd(pid_t pid) {
  std::set<int> open;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    open.insert(std::atoi(e.path().filename().c_str()));
  }
  int n = 0;
  while (open.contains(n)) ++n;
  return n;
}

// Review finding 11: at its descriptor limit, baton's accept on the control socket failed with
// EMFILE, the connection stayed queued and the loop spun, answering nobody. Now each client is
// answered (an error that says why), the condition is logged once, and once descriptors are
// free again baton answers as before.
TEST(ControlHardening, AtTheDescriptorLimitControlClientsAreAnsweredNotLeftHanging) {
  TempDir tmp;
  const std::string control = tmp.file("control.sock");
  Process baton = start_baton(control);
  ASSERT_TRUE(serving(control)) << baton.output();
  rlimit before{};
  ASSERT_EQ(::prlimit(baton.pid(), RLIMIT_NOFILE, nullptr, &before), 0);
  // No descriptor below the limit is free: the next accept fails with EMFILE.
  rlimit full = before;
  full.rlim_cur = static_cast<rlim_t>(lowest_free_fd(baton.pid()));
  ASSERT_EQ(::prlimit(baton.pid(), RLIMIT_NOFILE, &full, nullptr), 0) << std::strerror(errno);
  for (int i = 0; i < 3; ++i) {
    auto r = run({baton_binary(), "status", "--control", control}, 30s);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("out of file descriptors")) << "attempt " << i;
  }
  ASSERT_EQ(::prlimit(baton.pid(), RLIMIT_NOFILE, &before, nullptr), 0);
  auto r = run({baton_binary(), "status", "--control", control}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("generation  1"));
  const std::string out = baton.output();
  size_t logged = 0;
  for (size_t at = out.find("control socket: cannot accept"); at != std::string::npos;
       at = out.find("control socket: cannot accept", at + 1)) {
    ++logged;
  }
  EXPECT_EQ(logged, 1u) << out;
}

TEST(ControlHardening, RemovedLockFileDoesNotLetASecondSupervisorTakeOver) {
  TempDir tmp;
  const std::string control = tmp.file("control.sock");
  Process first = start_baton(control);
  ASSERT_TRUE(serving(control)) << first.output();
  ASSERT_EQ(::unlink((control + ".lock").c_str()), 0);
  auto r = run({baton_binary(), "run", "--control", control, "--listen", "127.0.0.1:0", "--",
                testapp_binary()},
               20s);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("a supervisor already answers on " + control));
  auto status = run({baton_binary(), "status", "--json", "--control", control}, 10s);
  ASSERT_EQ(status.exit_code, 0) << status.output;
  auto j = nlohmann::json::parse(status.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << status.output;
  EXPECT_EQ(j["supervisor"]["pid"], first.pid()) << "the first one still answers";
}

// Issue 11, finding 7: started with fds 0-2 closed, baton puts /dev/null there before it opens
// anything (else its lock file became fd 2 and its log lines went into it).
TEST(ControlHardening, MissingStandardDescriptorsBecomeDevNull) {
  TempDir tmp;
  const std::string control = tmp.file("control.sock");
  Process baton = Process::spawn(
      {"/bin/sh", "-c",
       "exec \"$0\" run --control \"$1\" --listen 127.0.0.1:0 -- \"$2\" <&- >&- 2>&-",
       baton_binary(), control, testapp_binary()});
  ASSERT_TRUE(serving(control));
  for (int fd = 0; fd <= 2; ++fd) {
    char target[256] = {};
    std::string link = "/proc/" + std::to_string(baton.pid()) + "/fd/" + std::to_string(fd);
    ASSERT_GT(::readlink(link.c_str(), target, sizeof(target) - 1), 0) << link;
    EXPECT_STREQ(target, "/dev/null") << "fd " << fd;
  }
  EXPECT_EQ(read_all(control + ".lock"), std::to_string(baton.pid()) + "\n");
  auto stop = run({baton_binary(), "stop", "--control", control}, 20s);
  EXPECT_EQ(stop.exit_code, 0) << stop.output;
  EXPECT_TRUE(baton.wait_exit_code(30s).has_value());
}

// Issue 11, finding 7: an exec: readiness check sees none of the descriptors baton itself
// inherited (here fd 7, open on a file, without CLOEXEC); it lists its own in a file.
TEST(ControlHardening, ExecReadinessCheckDoesNotInheritBatonsDescriptors) {
  TempDir tmp;
  const std::string control = tmp.file("control.sock");
  const std::string seen = tmp.file("seen");
  const std::string check = "ls /proc/$$/fd > " + seen;
  Process baton = Process::spawn(
      {"/bin/sh", "-c",
       "exec \"$0\" run --control \"$1\" --listen 127.0.0.1:0 --ready \"$2\" -- \"$3\" "
       "--no-notify 7<\"$0\"",
       baton_binary(), control, "exec:" + check, testapp_binary()});
  ASSERT_TRUE(serving(control)) << baton.output();
  char target[256] = {};
  std::string link = "/proc/" + std::to_string(baton.pid()) + "/fd/7";
  ASSERT_GT(::readlink(link.c_str(), target, sizeof(target) - 1), 0) << "baton holds fd 7";
  std::string fds = read_all(seen);
  ASSERT_FALSE(fds.empty());
  EXPECT_EQ(fds.find("7\n"), std::string::npos) << fds;
  auto stop = run({baton_binary(), "stop", "--control", control}, 20s);
  EXPECT_EQ(stop.exit_code, 0) << stop.output;
  EXPECT_TRUE(baton.wait_exit_code(30s).has_value());
}

// Issue 11, finding 5: a process of the same uid, in baton's session (as this test and its
// children are), tries to join a starting generation's process group and say READY=1 for it.
TEST(NotifyIdentity, AProcessJoiningAStartingGenerationsGroupCannotMakeItReady) {
  TempDir tmp;
  const std::string control = tmp.file("control.sock");
  Process baton = Process::spawn({baton_binary(), "run", "--control", control, "--listen",
                                  "127.0.0.1:0", "--ready", "notify", "--", "/bin/sh", "-c",
                                  "echo \"notify=$NOTIFY_SOCKET group=$$\"; exec sleep 300"});
  ASSERT_TRUE(baton.wait_for_output(" group=", 30s)) << baton.output();
  std::smatch m;
  const std::string out = baton.output();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("notify=(\\S+) group=(\\d+)"))) << out;
  const std::string notify = m[1], group = m[2];
  const char* kAttacker =
      "import os, socket, sys\n"
      "try:\n"
      "    os.setpgid(0, int(sys.argv[1])); print('joined', flush=True)\n"
      "except OSError as e:\n"
      "    print('setpgid refused:', e.strerror, flush=True)\n"
      "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
      "s.sendto(b'READY=1', sys.argv[2])\n"
      "print('sent', os.getpid(), flush=True)\n";
  auto attacker = run({"/usr/bin/python3", "-c", kAttacker, group, notify}, 20s);
  ASSERT_EQ(attacker.exit_code, 0) << attacker.output;
  EXPECT_THAT(attacker.output, HasSubstr("setpgid refused"));
  std::smatch pid;
  ASSERT_TRUE(std::regex_search(attacker.output, pid, std::regex("sent (\\d+)")));
  // The supervisor read the datagram (and said it ignored it) before this status is asked.
  ASSERT_TRUE(baton.wait_for_output("ignored a notify datagram from pid " + pid[1].str(), 20s))
      << baton.output();
  auto status = run({baton_binary(), "status", "--json", "--control", control}, 10s);
  auto j = nlohmann::json::parse(status.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << status.output;
  EXPECT_EQ(j.value("serving_generation", -1), 0) << status.output;
  auto stop = run({baton_binary(), "stop", "--control", control}, 20s);
  EXPECT_EQ(stop.exit_code, 0) << stop.output;
  EXPECT_TRUE(baton.wait_exit_code(30s).has_value());
}

}  // namespace
}  // namespace baton::test

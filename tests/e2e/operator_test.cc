// End-to-end tests of the operator's side of `baton run`: the config file and `baton check`, a
// reload that reads the file again, release directories, the env file, --metrics, status --check.
// Real supervisor, real apps (tests/apps/testapp), real sockets and clients.
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
// glibc 2.36's <sys/pidfd.h> lacks the extern "C" guard (fixed in 2.37).
extern "C" {
#include <sys/pidfd.h>
}

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton_run.h"
#include "harness.h"

namespace baton::test {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

void write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// A supervisor started with `run_args` (which include --config or the command after --).
// Generations run in process groups of their own: baton is asked to stop them (a second SIGTERM
// kills what still drains) before the harness kills baton itself.
class Supervisor : public Baton {
 public:
  Supervisor(const TempDir& dir, const std::vector<std::string>& run_args)
      : Baton(dir, run_args, {}) {}
  ~Supervisor() { stop(); }
  std::string address() { return status()["listeners"][0].value("address", ""); }
};

std::string cmdline_of(int pid) {
  std::string raw = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  for (auto& c : raw) c = c == '\0' ? ' ' : c;
  return raw;
}

std::string toml_config(const std::string& app_args, const std::string& extra = "") {
  return "listen = [\"http=127.0.0.1:0\"]\n"
         "command = [\"" +
         testapp_binary() + "\"" + app_args +
         "]\n"
         "ready = \"http:/healthz\"\n"
         "ready-timeout = \"20s\"\n"
         "drain-timeout = \"5s\"\n" +
         extra;
}

TEST(Check, AcceptsAGoodFileWithASummary) {
  TempDir dir;
  write(dir.file("app.toml"),
        toml_config(", \"--init-ms\", \"10\"", "env = { MODE = \"prod\" }\n"));
  auto r = run({baton_binary(), "check", "--config", dir.file("app.toml")});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("listen         http=127.0.0.1:0"));
  EXPECT_THAT(r.output, HasSubstr("ready          http:/healthz within 20s"));
  EXPECT_THAT(r.output, HasSubstr("MODE"));
  EXPECT_THAT(r.output, HasSubstr("\nok\n"));
}

TEST(Check, RejectsPort99999InOneLineWithExit2) {
  TempDir dir;
  std::string text = toml_config("");
  text.replace(text.find("127.0.0.1:0"), 11, "127.0.0.1:99999");
  write(dir.file("app.toml"), text);
  auto r = run({baton_binary(), "check", "--config", dir.file("app.toml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "baton check: " + dir.file("app.toml") +
                          ":1: listen: bad address '127.0.0.1:99999': port must be a number from "
                          "0 to 65535\n");
}

TEST(Check, ReportsEveryProblemOnItsOwnLine) {
  TempDir dir;
  write(dir.file("app.toml"),
        "listen = [\"8080\"]\ncommand = [\"/no/such/server\"]\nready-timeout = \"30x\"\n"
        "colour = \"blue\"\n");
  auto r = run({baton_binary(), "check", "--config", dir.file("app.toml")});
  EXPECT_EQ(r.exit_code, 2);
  // The file's problems and the check's, each at the file's line of its key.
  EXPECT_THAT(r.output, HasSubstr(dir.file("app.toml") + ":4: unknown key 'colour'"));
  EXPECT_THAT(r.output, HasSubstr("baton check: " + dir.file("app.toml") +
                                  ":2: command: /no/such/server: No such file or directory\n"));
  EXPECT_THAT(r.output, HasSubstr("baton check: " + dir.file("app.toml") +
                                  ":3: ready-timeout: bad duration '30x'"));
  // A flag's problem is the flag's.
  r = run({baton_binary(), "check", "--config", dir.file("app.toml"), "--ready-timeout", "1x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("baton check: ready-timeout: bad duration '1x'"));
}

TEST(Check, FlagsOverrideTheFile) {
  TempDir dir;
  std::string text = toml_config("");
  text.replace(text.find("127.0.0.1:0"), 11, "127.0.0.1:99999");
  write(dir.file("app.toml"), text);
  auto r = run({baton_binary(), "check", "--config", dir.file("app.toml"), "--listen",
                "web=[::1]:0", "--ready-timeout", "2m"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("listen         web=[::1]:0"));
  EXPECT_THAT(r.output, HasSubstr("within 2m"));
}

TEST(Check, RefusesAConfigFileOthersCanWrite) {
  TempDir dir;
  write(dir.file("app.toml"), toml_config(""));
  ::chmod(dir.file("app.toml").c_str(), 0666);
  auto r = run({baton_binary(), "check", "--config", dir.file("app.toml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("writable by other users"));
}

// --user: the user must be able to execute the command and enter the working directory, or run
// would fail at the first spawn; check says so first.
TEST(Check, UserMustBeAbleToExecuteTheCommandAndEnterChdir) {
  if (::geteuid() != 0) GTEST_SKIP() << "--user needs root";
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0711), 0);  // others may pass through, not list
  for (const char* name : {"ok.sh", "private.sh"}) write(dir.file(name), "#!/bin/sh\nexit 0\n");
  ASSERT_EQ(::chmod(dir.file("ok.sh").c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir.file("private.sh").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(dir.file("private").c_str(), 0700), 0);
  auto check = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {baton_binary(), "check", "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };

  auto ok = check({"--user", "nobody", "--", dir.file("ok.sh")});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  auto as_root = check({"--", dir.file("private.sh")});  // baton's own user can
  EXPECT_EQ(as_root.exit_code, 0) << as_root.output;

  auto exec = check({"--user", "nobody", "--", dir.file("private.sh")});
  EXPECT_EQ(exec.exit_code, 2) << exec.output;
  EXPECT_EQ(exec.output, "baton check: user nobody cannot execute the command " +
                             dir.file("private.sh") + ": Permission denied\n");

  auto chdir = check({"--user", "nobody", "--chdir", dir.file("private"), "--", "/bin/true"});
  EXPECT_EQ(chdir.exit_code, 2) << chdir.output;
  EXPECT_EQ(chdir.output, "baton check: user nobody cannot enter chdir " + dir.file("private") +
                              ": Permission denied\n");
}

TEST(Run, TakesDurationsInTheOneSyntax) {
  auto r = run({baton_binary(), "check", "--listen", "0", "--ready-timeout", "30s",
                "--drain-timeout", "500ms", "--ready", "delay:2s", "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("delay:2 within 30s"));
  EXPECT_THAT(r.output, HasSubstr("kill after 500ms"));
}

TEST(ConfigReload, ServesThenPicksUpAnEditedCommandAndSurvivesABrokenEdit) {
  TempDir dir;
  const std::string config = dir.file("app.toml");
  write(config, toml_config(", \"--init-ms\", \"10\""));
  Supervisor baton(dir, {"--config", config});
  const int first = baton.wait_serving_pid(1);
  ASSERT_NE(first, 0) << baton.process().output();
  auto hello = http_get(baton.address(), "/");
  ASSERT_TRUE(hello.ok()) << hello.error().what();
  EXPECT_EQ(hello->status, 200);

  // An edited command: the next generation runs it. (A changed listener cannot be taken in
  // without closing the one held: it is kept, and the log says so.)
  std::string edited = toml_config(", \"--init-ms\", \"20\"");
  edited.replace(edited.find("http=127.0.0.1:0"), 16, "http=127.0.0.1:1");
  write(config, edited);
  auto r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton.process().output();
  const int second = baton.wait_serving_pid(2);
  ASSERT_NE(second, 0);
  EXPECT_THAT(cmdline_of(second), HasSubstr("--init-ms 20"));
  EXPECT_THAT(baton.process().output(), HasSubstr("take effect when baton itself restarts"));
  auto same = http_get(baton.address(), "/");
  ASSERT_TRUE(same.ok()) << same.error().what();
  EXPECT_THAT(same->body, HasSubstr("generation 2"));

  // A broken edit: the reload fails with the reason, generation 2 keeps serving.
  std::string broken = toml_config(", \"--init-ms\", \"30\"");
  broken.replace(broken.find("127.0.0.1:0"), 11, "127.0.0.1:99999");
  write(config, broken);
  r = baton.ctl({"reload", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("port must be a number from 0 to 65535"));
  EXPECT_THAT(r.output, HasSubstr("generation 2 keeps serving"));
  auto s = baton.status();
  EXPECT_EQ(s.value("serving_generation", 0), 2);
  ASSERT_TRUE(s["last_failed_reload"].is_object()) << s.dump();
  EXPECT_EQ(s["last_failed_reload"].value("result", ""), "failed");
  auto still = http_get(baton.address(), "/");
  ASSERT_TRUE(still.ok()) << still.error().what();
  EXPECT_THAT(still->body, HasSubstr("generation 2"));
  EXPECT_TRUE(baton.process().running());

  // `status` shows the failure, and keeps it after a later success.
  write(config, toml_config(", \"--init-ms\", \"40\""));
  r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto text = baton.ctl({"status"});
  EXPECT_THAT(text.output, HasSubstr("last failed #2 failed"));
  EXPECT_THAT(text.output, HasSubstr("no longer checks"));
}

TEST(ReleaseDirectories, AFlippedCurrentLinkTakesTheNextGenerationToTheNewRelease) {
  TempDir dir;
  for (const char* release : {"1", "2"}) {
    fs::create_directories(dir.file("releases/") + release);
    fs::create_symlink(testapp_binary(), dir.file("releases/") + release + "/app");
  }
  fs::create_directory_symlink(dir.file("releases/1"), dir.file("current"));
  write(dir.file("env"), "# the release's settings\nRELEASE_NOTE=first\n");
  ::chmod(dir.file("env").c_str(), 0600);
  Supervisor baton(dir, {"--listen", "127.0.0.1:0", "--ready", "http:/healthz", "--chdir",
                         dir.file("current"), "--env-file", dir.file("env"), "--", "./app"});
  const int first = baton.wait_serving_pid(1);
  ASSERT_NE(first, 0) << baton.process().output();
  EXPECT_EQ(fs::read_symlink("/proc/" + std::to_string(first) + "/cwd"),
            fs::canonical(dir.file("releases/1")));
  EXPECT_THAT(read_file("/proc/" + std::to_string(first) + "/environ"),
              HasSubstr("RELEASE_NOTE=first"));

  // Deploy: flip the link (atomically, by rename), edit the env file, reload.
  fs::create_directory_symlink(dir.file("releases/2"), dir.file("current.new"));
  fs::rename(dir.file("current.new"), dir.file("current"));
  write(dir.file("env"), "RELEASE_NOTE=second\n");
  auto r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output << baton.process().output();
  const int second = baton.wait_serving_pid(2);
  ASSERT_NE(second, 0);
  EXPECT_EQ(fs::read_symlink("/proc/" + std::to_string(second) + "/cwd"),
            fs::canonical(dir.file("releases/2")));
  EXPECT_THAT(read_file("/proc/" + std::to_string(second) + "/environ"),
              HasSubstr("RELEASE_NOTE=second"));
}

// The Uid: line of /proc/PID/status: real, effective, saved, filesystem.
std::string uids_of(int pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("Uid:");
  return at == std::string::npos ? "" : status.substr(at, status.find('\n', at) - at);
}

TEST(User, GenerationsRunAsTheUserAndStillReportReady) {
  if (::geteuid() != 0) GTEST_SKIP() << "--user needs root";
  TempDir dir;
  // The control directory is not baton's: the operator makes it searchable (baton would not).
  fs::permissions(dir.path(),
                  fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  Supervisor baton(dir, {"--listen", "127.0.0.1:0", "--user", "nobody", "--", testapp_binary()});
  const int pid = baton.wait_serving_pid(1);  // READY=1 came over the notify socket, from nobody
  ASSERT_NE(pid, 0) << baton.process().output();
  EXPECT_EQ(uids_of(pid), "Uid:\t65534\t65534\t65534\t65534");
  auto r = http_get(baton.address(), "/");
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(r->status, 200);
  auto control = baton.status();
  EXPECT_EQ(control.value("serving_generation", 0), 1) << "the control socket stays baton's";
}

// Review finding 13: the app saw baton's own HOME (/root) and USER. It gets its user's HOME,
// USER, LOGNAME and SHELL, unless the operator sets one.
TEST(User, GenerationsGetTheirUsersHomeAndNames) {
  if (::geteuid() != 0) GTEST_SKIP() << "--user needs root";
  const passwd* pw = ::getpwnam("nobody");
  ASSERT_NE(pw, nullptr);
  const std::string home = pw->pw_dir, shell = pw->pw_shell;
  TempDir dir;
  fs::permissions(dir.path(),
                  fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  Supervisor baton(dir, {"--listen", "127.0.0.1:0", "--user", "nobody", "--env", "SHELL=/bin/false",
                         "--", testapp_binary()});
  const int pid = baton.wait_serving_pid(1);
  ASSERT_NE(pid, 0) << baton.process().output();
  std::string environ_text = read_file("/proc/" + std::to_string(pid) + "/environ");
  std::vector<std::string> env;
  for (size_t at = 0, end; (end = environ_text.find('\0', at)) != std::string::npos; at = end + 1) {
    env.push_back(environ_text.substr(at, end - at));
  }
  EXPECT_THAT(env, ::testing::Contains("HOME=" + home));
  EXPECT_THAT(env, ::testing::Contains("USER=nobody"));
  EXPECT_THAT(env, ::testing::Contains("LOGNAME=nobody"));
  EXPECT_THAT(env, ::testing::Contains("SHELL=/bin/false")) << "the operator's --env wins";
  EXPECT_THAT(env, ::testing::Not(::testing::Contains("HOME=/root")));
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

// Under --user, the kernel must still SIGKILL a generation when its supervisor dies: the
// parent-death signal is set after the change of user (which clears it). The orphan guard, which
// would kill it too, is stopped first, so only the parent-death signal can.
TEST(User, AGenerationDiesWithItsSupervisorWithoutTheGuard) {
  if (::geteuid() != 0) GTEST_SKIP() << "--user needs root";
  TempDir dir;
  fs::permissions(dir.path(),
                  fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  Supervisor baton(dir, {"--listen", "127.0.0.1:0", "--user", "nobody", "--", testapp_binary()});
  const int app = baton.wait_serving_pid(1);
  ASSERT_GT(app, 0) << baton.process().output();
  Fd app_pidfd(::pidfd_open(app, 0));
  ASSERT_TRUE(app_pidfd);
  const pid_t guard = child_named(baton.process().pid(), "baton-guard");
  ASSERT_GT(guard, 0) << "no guard among the supervisor's children";
  struct Cleanup {  // whatever the test leaves behind if it fails
    pid_t guard, app;
    ~Cleanup() {
      ::kill(guard, SIGKILL);
      ::kill(app, SIGKILL);
    }
  } cleanup{guard, app};
  ASSERT_EQ(::kill(guard, SIGSTOP), 0);
  baton.process().signal(SIGKILL);
  ASSERT_TRUE(baton.process().wait(10s).has_value());
  pollfd pfd{app_pidfd.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&pfd, 1, 10000), 1)
      << "generation 1 (pid " << app << ", running as nobody) outlived a SIGKILLed supervisor";
}

// A 0700 directory baton did not create (here the test's; /root in the review) keeps its mode:
// baton says what the generations need instead of opening it up.
TEST(User, AControlDirectoryBatonDidNotCreateKeepsItsMode) {
  if (::geteuid() != 0) GTEST_SKIP() << "--user needs root";
  TempDir dir;
  fs::permissions(dir.path(), fs::perms::owner_all);
  Supervisor baton(dir, {"--listen", "127.0.0.1:0", "--user", "nobody", "--", testapp_binary()});
  EXPECT_TRUE(baton.process().wait_for_output("is not searchable by them", 30s))
      << baton.process().output();
  EXPECT_THAT(baton.process().output(), HasSubstr("chmod o+x it (0711)"));
  struct stat st {};
  ASSERT_EQ(::stat(dir.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u) << "baton changed the mode of a directory not its own";
}

// One that baton creates is its own, and opened up for the generations' user.
TEST(User, AControlDirectoryBatonCreatesIsOpenedForTheUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "--user needs root";
  TempDir dir;
  fs::permissions(dir.path(),
                  fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  Baton baton(dir, {"--listen", "127.0.0.1:0", "--user", "nobody"}, {testapp_binary()}, {},
              "made-by-baton/control.sock");
  EXPECT_GT(baton.wait_serving_pid(1), 0) << baton.process().output();  // READY=1 reached it
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("made-by-baton").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  EXPECT_TRUE(baton.stop());
}

TEST(User, UnknownUserIsAProblemOfTheCheck) {
  auto r = run({baton_binary(), "check", "--listen", "0", "--user", "no-such-user-anywhere", "--",
                "/bin/true"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "baton check: user: no such user 'no-such-user-anywhere'\n");
}

TEST(Metrics, CountsTheReloadInPrometheusText) {
  TempDir dir;
  Supervisor baton(dir,
                   {"--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--", testapp_binary()});
  ASSERT_NE(baton.wait_serving_pid(1), 0) << baton.process().output();
  const std::string metrics = baton.status()["supervisor"].value("metrics", "");
  ASSERT_FALSE(metrics.empty());
  auto before = http_get(metrics, "/metrics");
  ASSERT_TRUE(before.ok()) << before.error().what();
  EXPECT_EQ(before->status, 200);
  EXPECT_THAT(before->body, HasSubstr("baton_reloads_total{result=\"ok\"} 0\n"));
  // The conventions' families: the build's version, and the supervisor process's own figures.
  EXPECT_THAT(before->body,
              ContainsRegex("\nbaton_build_info\\{version=\"[0-9]+\\.[0-9.]+\"\\} 1\n"));
  for (const char* family : {"process_start_time_seconds", "process_cpu_seconds_total",
                             "process_resident_memory_bytes", "process_open_fds"}) {
    EXPECT_THAT(before->body, ContainsRegex(std::string("\n") + family + " [0-9][0-9.e+]*\n"))
        << family;
  }

  auto r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto after = http_get(metrics, "/metrics");
  ASSERT_TRUE(after.ok()) << after.error().what();
  EXPECT_THAT(after->headers["content-type"], HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(after->body, HasSubstr("baton_reloads_total{result=\"ok\"} 1\n"));
  EXPECT_THAT(after->body, HasSubstr("baton_serving_generation 2\n"));
  EXPECT_THAT(after->body, HasSubstr("baton_ready_seconds_count 2\n"));
  EXPECT_THAT(after->body, HasSubstr("baton_reload_seconds_count 1\n"));
  auto text = baton.ctl({"status"});
  EXPECT_THAT(text.output, HasSubstr("metrics     http://" + metrics + "/metrics\n"));
  auto other = http_get(metrics, "/");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->status, 404);
}

// Review finding 10: sixteen connections that never send a request took every slot, and each
// scrape was closed unanswered. A new connection now closes the oldest instead.
TEST(Metrics, ScrapesAreAnsweredWhileSilentClientsHoldEverySlot) {
  TempDir dir;
  Supervisor baton(dir,
                   {"--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--", testapp_binary()});
  ASSERT_NE(baton.wait_serving_pid(1), 0) << baton.process().output();
  const std::string metrics = baton.status()["supervisor"].value("metrics", "");
  ASSERT_FALSE(metrics.empty());
  auto to = parse_address(metrics).value();
  std::vector<Fd> silent;
  for (int i = 0; i < 40; ++i) {
    Fd c(::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::connect(c.get(), to.sockaddr_ptr(), to.length), 0);
    silent.push_back(std::move(c));
  }
  for (int i = 0; i < 3; ++i) {
    auto r = http_get(metrics, "/metrics");
    ASSERT_TRUE(r.ok()) << "scrape " << i << ": " << r.error().what();
    EXPECT_EQ(r->status, 200);
  }
}

TEST(Metrics, ABarePortIsLoopbacksOnly) {
  auto r = run({baton_binary(), "check", "--listen", "0", "--metrics", "9100", "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("metrics        http://127.0.0.1:9100/metrics"));
}

// The value of one sample in Prometheus text ("name{labels}" exactly), or nullopt when absent.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

TEST(Metrics, ShowEachGenerationsShareQueueAndConnectionsInACanary) {
  TempDir dir;
  Supervisor baton(dir,
                   {"--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--", testapp_binary()});
  ASSERT_NE(baton.wait_serving_pid(1), 0) << baton.process().output();
  if (!baton.steered()) GTEST_SKIP() << "baton run shares its listeners here: no steering figures";
  const std::string metrics = baton.status()["supervisor"].value("metrics", "");
  const std::string address = baton.address();
  ASSERT_FALSE(metrics.empty());
  // A connection generation 1 holds (its request unfinished) through the canary.
  auto to = parse_address(address).value();
  Fd held(::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(held.get(), to.sockaddr_ptr(), to.length), 0);
  ASSERT_EQ(::send(held.get(), "GET / HTTP/1.1\r\n", 16, MSG_NOSIGNAL), 16);

  auto reload = std::async(std::launch::async, [&] {
    return baton.ctl({"reload", "--wait", "--canary", "20", "--canary-for", "60s"});
  });
  ASSERT_TRUE(baton.process().wait_for_output("canary: the new generation gets 20%", 30s))
      << baton.process().output();
  std::string text;
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = http_get(metrics, "/metrics");
        if (!r.ok() || r->status != 200) return false;
        text = r->body;
        return sample(text, "baton_generation_connections{generation=\"1\",state=\"held\"}")
                   .value_or(0) >= 1;
      },
      30s))
      << text;
  EXPECT_THAT(text, HasSubstr("# HELP baton_generation_share_ratio "));
  EXPECT_THAT(text, HasSubstr("# TYPE baton_generation_share_ratio gauge\n"));
  EXPECT_EQ(sample(text, "baton_generation_share_ratio{generation=\"1\",state=\"held\"}"), 0.8)
      << text;
  EXPECT_EQ(sample(text, "baton_generation_share_ratio{generation=\"2\",state=\"serving\"}"), 0.2)
      << text;
  EXPECT_TRUE(sample(text, "baton_generation_accept_queue{generation=\"2\",state=\"serving\"}"))
      << text;
  EXPECT_EQ(sample(text, "baton_listener_info{listener=\"listen0\",address=\"" + address +
                             "\",mode=\"steered\"}"),
            1)
      << text;
  EXPECT_EQ(sample(text, "baton_generations{state=\"held\"}"), 1) << text;
  // The same figures as the status.
  auto s = baton.status();
  EXPECT_EQ(s["generations"][0]["share_percent"], 80) << s.dump();
  EXPECT_GE(s["generations"][0].value("connections", 0), 1) << s.dump();

  held.reset();
  baton.ctl({"stop"});  // rather than wait out the window
  reload.get();
}

TEST(StatusCheck, ExitsZeroOnlyWhileAGenerationServes) {
  TempDir dir;
  auto none = run({baton_binary(), "status", "--check", "--control", dir.file("control.sock")});
  EXPECT_EQ(none.exit_code, 2) << "no supervisor: " << none.output;
  // Held to READY=1, which it never sends (under the default rule it would be ready as soon as
  // it accepted baton's probe connection).
  Supervisor baton(dir, {"--listen", "127.0.0.1:0", "--ready", "notify", "--", testapp_binary(),
                         "--never-ready"});
  ASSERT_TRUE(baton.process().wait_for_output("started", 20s)) << baton.process().output();
  auto starting = baton.ctl({"status", "--check"});
  EXPECT_EQ(starting.exit_code, 1) << starting.output;
  EXPECT_EQ(starting.output, "not serving\n");
}

TEST(StatusCheck, SaysWhichGenerationServes) {
  TempDir dir;
  Supervisor baton(dir, {"--listen", "127.0.0.1:0", "--", testapp_binary()});
  const int pid = baton.wait_serving_pid(1);
  ASSERT_NE(pid, 0) << baton.process().output();
  auto r = baton.ctl({"status", "--check"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "serving: generation 1 (pid " + std::to_string(pid) + ")\n");
}

TEST(Cli, ReloadSaysWhatStartedOnce) {
  TempDir dir;
  Supervisor baton(dir, {"--listen", "127.0.0.1:0", "--", testapp_binary()});
  ASSERT_NE(baton.wait_serving_pid(1), 0) << baton.process().output();
  auto r = baton.ctl({"reload"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "reload started: generation 2 starting\n");
}

TEST(Cli, StatusNamesSignalsAndUptimeForPeople) {
  TempDir dir;
  Supervisor baton(dir, {"--listen", "127.0.0.1:0", "--drain-timeout", "0", "--", testapp_binary(),
                         "--ignore-sigterm"});
  ASSERT_NE(baton.wait_serving_pid(1), 0) << baton.process().output();
  auto r = baton.ctl({"reload", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto text = baton.ctl({"status"});
  EXPECT_THAT(text.output, HasSubstr("killed by SIGKILL"));
  EXPECT_THAT(text.output, ::testing::Not(HasSubstr("killed by signal")));
  EXPECT_THAT(text.output, ::testing::ContainsRegex("up [0-9.]+s, readiness"));
}

TEST(Cli, UnknownCommandIsNamed) {
  auto r = run({baton_binary(), "frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("baton: unknown command 'frobnicate'"));
  EXPECT_THAT(r.output, HasSubstr("Run 'baton --help' for usage."));
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("frobnicate --help")));
}

TEST(Cli, AnUnknownFlagNamesTheFlagItsTypoMeant) {
  auto r = run({baton_binary(), "run", "--lsten", "8080", "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--lsten"));
  EXPECT_THAT(r.output, HasSubstr("did you mean --listen?"));
  r = run({baton_binary(), "check", "--colour", "red", "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("did you mean")));
}

TEST(Cli, RunHelpIsWrappedTo100ColumnsWhenNotATerminal) {
  auto r = run({baton_binary(), "run", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--drain-timeout"));
  size_t start = 0;
  while (start < r.output.size()) {
    const size_t end = std::min(r.output.find('\n', start), r.output.size());
    EXPECT_LE(end - start, 100u) << r.output.substr(start, end - start);
    start = end + 1;
  }
}

TEST(Cli, BracketedIpv6ListenIsReportedAsWritten) {
  auto r = run({baton_binary(), "check", "--listen", "[::1]", "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("'[::1]'"));
}

}  // namespace
}  // namespace baton::test

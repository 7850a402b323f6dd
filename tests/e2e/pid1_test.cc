// End-to-end tests of baton as a container's PID 1. A container runtime starts its entrypoint as
// the first process of a new PID namespace; unshare(1) does the same here. As PID 1, baton
// inherits every process orphaned in the namespace and must reap it, or zombies pile up; SIGTERM
// (`docker stop`) must drain the app and end baton with exit 0, leaving nothing behind.
// The example Dockerfile cannot be built here (no docker): its stages, files and entrypoint are
// checked, and its entrypoint is run as PID 1 the same way; the context .dockerignore leaves is
// configured as its build stage does.
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace baton::test {
namespace {

using ::testing::HasSubstr;

// ---- processes, as /proc shows them from outside the namespace ----

struct ProcInfo {
  pid_t pid = -1;
  pid_t ppid = -1;
  char state = '?';
  std::vector<pid_t> nspid;  // the pid in each namespace, outermost first (NSpid:)
  std::string pid_ns;        // "pid:[INODE]"
};

std::optional<ProcInfo> proc_info(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  const std::string stat = read_file(dir + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  ProcInfo p;
  p.pid = pid;
  if (std::sscanf(stat.c_str() + close + 1, " %c %d", &p.state, &p.ppid) != 2) return std::nullopt;
  std::istringstream status(read_file(dir + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (!line.starts_with("NSpid:")) continue;
    std::istringstream ids(line.substr(6));
    for (pid_t id; ids >> id;) p.nspid.push_back(id);
  }
  std::error_code ec;
  p.pid_ns = std::filesystem::read_symlink(dir + "/ns/pid", ec).string();
  return p;
}

std::vector<ProcInfo> all_processes() {
  std::vector<ProcInfo> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (auto p = proc_info(std::atoi(name.c_str()))) out.push_back(*p);
  }
  return out;
}

// unshare(1) with what makes a new PID namespace for this user (a user namespace too when not
// root); empty, with the reason in `why`, when this machine does not allow it.
std::vector<std::string> unshare_command(std::string& why) {
  const std::string unshare = "/usr/bin/unshare";
  if (::access(unshare.c_str(), X_OK) != 0) {
    why = unshare + " is not installed";
    return {};
  }
  // --kill-child: should unshare itself be killed (a failing test), the namespace goes with it.
  std::vector<std::vector<std::string>> tries;
  if (::geteuid() == 0)
    tries.push_back({unshare, "--pid", "--fork", "--mount-proc", "--kill-child"});
  tries.push_back(
      {unshare, "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", "--kill-child"});
  for (const auto& command : tries) {
    auto probe = command;
    probe.push_back("/bin/true");
    auto r = run(probe, 10s);
    if (r.exit_code == 0) return command;
    why = "cannot make a PID namespace here: " + r.output;
  }
  return {};
}

// `baton run ARGS` as PID 1 of a new PID namespace, driven from outside it.
class Pid1 {
 public:
  Pid1(std::vector<std::string> unshare, const std::vector<std::string>& baton_argv,
       const std::string& control)
      : control_(control) {
    unshare.insert(unshare.end(), baton_argv.begin(), baton_argv.end());
    process_.emplace(Process::spawn(unshare));
  }
  Process& unshare() { return *process_; }

  // baton's pid outside the namespace: unshare's child, which is 1 inside (0 when not yet).
  pid_t baton_pid() {
    for (const auto& p : all_processes()) {
      if (p.ppid == process_->pid() && !p.nspid.empty() && p.nspid.back() == 1) return p.pid;
    }
    return 0;
  }
  nlohmann::json status() {
    auto r = run({baton_binary(), "status", "--json", "--control", control_}, 10s);
    if (r.exit_code != 0) return nlohmann::json();
    return nlohmann::json::parse(r.output, nullptr, false);
  }
  nlohmann::json wait_serving() {
    nlohmann::json last;
    wait_until(
        [&] {
          last = status();
          return last.is_object() && last.value("serving_generation", 0) != 0;
        },
        30s, 50ms);
    return last.is_object() && last.value("serving_generation", 0) != 0 ? last : nlohmann::json();
  }

 private:
  std::string control_;
  std::optional<Process> process_;
};

// Every process of PID namespace `ns` ("pid:[...]").
std::vector<ProcInfo> processes_in(const std::string& ns) {
  std::vector<ProcInfo> out;
  for (const auto& p : all_processes()) {
    if (p.pid_ns == ns) out.push_back(p);
  }
  return out;
}

void write_script(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), 0755);
}

TEST(Pid1, ReapsOrphanedGrandchildrenAndSigtermDrainsToNothing) {
  std::string why;
  const auto unshare = unshare_command(why);
  if (unshare.empty()) GTEST_SKIP() << why;
  TempDir dir;
  // The app's middle shell starts a grandchild in the background and exits at once: the
  // grandchild is orphaned and the kernel makes PID 1, baton, its parent. It writes its pid (as
  // the namespace sees it) and waits for a line on a fifo, so the test decides when it exits.
  const std::string fifo = dir.file("release");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  write_script(dir.file("grandchild"),
               "#!/bin/sh\necho $$ > \"$1.tmp\"; mv \"$1.tmp\" \"$1\"\n"
               "read line < \"$2\"\n");
  write_script(dir.file("app"), "#!/bin/sh\nsh -c '\"$0\" \"$1\" \"$2\" &' " +
                                    dir.file("grandchild") + " " + dir.file("orphan.pid") + " " +
                                    fifo + "\nexec " + testapp_binary() + "\n");
  const std::string control = dir.file("control.sock");
  Pid1 pid1(unshare,
            {baton_binary(), "run", "--control", control, "--listen", "127.0.0.1:0", "--",
             dir.file("app")},
            control);
  auto status = pid1.wait_serving();
  ASSERT_TRUE(status.is_object()) << pid1.unshare().output();
  EXPECT_EQ(status["supervisor"]["pid"], 1) << "baton is PID 1 in its namespace";
  const std::string address = status["listeners"][0]["address"];
  auto served = http_get(address, "/");
  ASSERT_TRUE(served.ok()) << served.error().what();
  EXPECT_THAT(served->body, HasSubstr("generation 1"));

  const pid_t baton = pid1.baton_pid();
  ASSERT_GT(baton, 0);
  const auto baton_info = proc_info(baton);
  ASSERT_TRUE(baton_info);
  const std::string ns = baton_info->pid_ns;
  ASSERT_TRUE(wait_until([&] { return !read_file(dir.file("orphan.pid")).empty(); }, 10s));
  const pid_t orphan_ns_pid = std::atoi(read_file(dir.file("orphan.pid")).c_str());
  std::optional<ProcInfo> orphan;
  for (const auto& p : processes_in(ns)) {
    if (!p.nspid.empty() && p.nspid.back() == orphan_ns_pid) orphan = p;
  }
  ASSERT_TRUE(orphan) << "the grandchild (pid " << orphan_ns_pid << " inside) runs";
  ASSERT_TRUE(wait_until([&] { return proc_info(orphan->pid)->ppid == baton; }, 10s))
      << "orphaned, the grandchild is PID 1's child";

  {
    // Opened read-write, the fifo never blocks the test; the line lets the grandchild exit.
    Fd release(::open(fifo.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(release);
    ASSERT_EQ(::write(release.get(), "go\n", 3), 3);
    // Exited and reaped: its /proc entry goes only once its parent, baton, has waited for it.
    EXPECT_TRUE(wait_until([&] { return !proc_info(orphan->pid).has_value(); }, 10s))
        << "the grandchild is left a zombie: "
        << (proc_info(orphan->pid) ? std::string(1, proc_info(orphan->pid)->state) : "");
  }
  for (const auto& p : processes_in(ns)) {
    EXPECT_NE(p.state, 'Z') << "zombie pid " << p.pid << " in the namespace";
  }
  EXPECT_TRUE(pid1.status().is_object()) << "baton still answers after reaping a stranger";

  // docker stop: SIGTERM to PID 1. The app drains (testapp exits 0 on SIGTERM), baton exits 0.
  ASSERT_EQ(::kill(baton, SIGTERM), 0);
  EXPECT_EQ(pid1.unshare().wait_exit_code(30s), 0) << pid1.unshare().output();
  const std::string out = pid1.unshare().output();
  EXPECT_THAT(out, HasSubstr("stopping: draining every generation"));
  EXPECT_THAT(out, HasSubstr("generation 1 (pid "));
  EXPECT_THAT(out, HasSubstr(") exited with status 0")) << out;
  EXPECT_TRUE(processes_in(ns).empty()) << "a process of the namespace outlived baton";
}

// ---- the example Dockerfile ----

struct Instruction {
  std::string keyword;  // upper case
  std::string args;     // continuation lines joined
};

std::vector<Instruction> parse_dockerfile(const std::string& text) {
  std::vector<Instruction> out;
  std::istringstream in(text);
  std::string logical;
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    if (line.ends_with("\\")) {
      logical += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    logical += line;
    const auto start = logical.find_first_not_of(" \t");
    const auto space = logical.find_first_of(" \t", start);
    Instruction ins;
    ins.keyword = logical.substr(start, space - start);
    for (auto& c : ins.keyword) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    ins.args =
        space == std::string::npos ? "" : logical.substr(logical.find_first_not_of(" \t", space));
    out.push_back(ins);
    logical.clear();
  }
  return out;
}

class Dockerfile : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string text = read_file(source("examples/container/Dockerfile"));
    ASSERT_FALSE(text.empty());
    instructions_ = parse_dockerfile(text);
  }
  static std::string source(const std::string& path) {
    return std::string(BATON_TEST_SOURCE_DIR) + "/" + path;
  }
  std::vector<const Instruction*> all(const std::string& keyword) const {
    std::vector<const Instruction*> out;
    for (const auto& i : instructions_) {
      if (i.keyword == keyword) out.push_back(&i);
    }
    return out;
  }
  // The exec form ["a", "b"] of the last `keyword` (a shell form would make /bin/sh PID 1,
  // which passes no SIGTERM on and reaps nothing).
  std::vector<std::string> exec_form(const std::string& keyword) const {
    auto found = all(keyword);
    if (found.empty()) return {};
    auto json = nlohmann::json::parse(found.back()->args, nullptr, false);
    if (!json.is_array()) return {};
    std::vector<std::string> out;
    for (const auto& v : json) {
      if (!v.is_string()) return {};
      out.push_back(v);
    }
    return out;
  }
  // The image's command line with its paths made this build's: the installed baton, the app.
  std::vector<std::string> local_command() const {
    auto argv = exec_form("ENTRYPOINT");
    auto cmd = exec_form("CMD");
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    for (auto& a : argv) {
      if (a == "/usr/bin/baton") a = baton_binary();
      if (a == "/usr/local/bin/app") a = example_binary();
    }
    return argv;
  }
  std::vector<Instruction> instructions_;
};

TEST_F(Dockerfile, BuildsInOneDebianStageAndRunsFromASlimOne) {
  auto from = all("FROM");
  ASSERT_EQ(from.size(), 2u);
  EXPECT_THAT(from[0]->args, ::testing::MatchesRegex("debian:[a-z0-9.-]+ AS build"));
  EXPECT_THAT(from[1]->args, ::testing::MatchesRegex("debian:[a-z0-9.-]+-slim"));
  // What the build stage runs from the repository exists in it.
  for (const auto* run : all("RUN")) {
    std::smatch m;
    std::string args = run->args;
    for (std::regex re("(scripts/[A-Za-z0-9_.-]+)"); std::regex_search(args, m, re);
         args = m.suffix()) {
      EXPECT_EQ(::access(source(m[1]).c_str(), X_OK), 0) << m[1];
    }
  }
  // The runtime stage takes from the build stage only what `cmake --install` and the build make.
  for (const auto* copy : all("COPY")) {
    if (!copy->args.starts_with("--from=build ")) continue;
    EXPECT_THAT(copy->args, ::testing::MatchesRegex(
                                "--from=build /(out/usr/bin/baton|build/bin/baton-example-http) "
                                "/usr/(bin/baton|local/bin/app)"));
  }
}

// The Debian package that holds `path` ("" when none does).
std::string package_of(const std::string& path) {
  std::error_code ec;
  const std::string real = std::filesystem::canonical(path, ec).string();
  // With merged /usr, dpkg knows a library by the path its package ships, /lib/... or /usr/lib/...
  std::vector<std::string> candidates = {path, real};
  if (real.starts_with("/usr/")) candidates.push_back(real.substr(4));
  for (const std::string& candidate : candidates) {
    auto r = run({"/usr/bin/dpkg-query", "-S", candidate}, 30s);
    if (r.exit_code == 0) return r.output.substr(0, r.output.find_first_of(":,"));
  }
  return "";
}

TEST_F(Dockerfile, TheRuntimeStageInstallsEveryLibraryItsBinariesLink) {
  if (::access("/usr/bin/dpkg-query", X_OK) != 0 || ::access("/usr/bin/ldd", X_OK) != 0) {
    GTEST_SKIP() << "dpkg-query and ldd are needed to find the libraries' packages";
  }
  // What the runtime stage installs (its RUN apt-get install), beyond what debian:*-slim has.
  std::set<std::string> installed = {"libc6", "libgcc-s1", "libstdc++6"};
  for (const auto* run : all("RUN")) {
    auto at = run->args.find("apt-get install");
    if (at == std::string::npos) continue;
    std::istringstream words(run->args.substr(at + 15));
    for (std::string w; words >> w && w != "&&";) {
      if (!w.starts_with("-")) installed.insert(w);
    }
  }
  for (const std::string& binary : {baton_binary(), example_binary()}) {
    auto r = run({"/usr/bin/ldd", binary}, 30s);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      auto arrow = line.find("=> /");
      if (arrow == std::string::npos) continue;
      const std::string lib = line.substr(arrow + 3, line.find(' ', arrow + 3) - arrow - 3);
      // A sanitizer build (scripts/test's ASan pass) links the sanitizers' runtimes, which the
      // image's release build never does.
      if (lib.find("/libasan.so") != std::string::npos ||
          lib.find("/libubsan.so") != std::string::npos) {
        continue;
      }
      const std::string package = package_of(lib);
      ASSERT_FALSE(package.empty()) << lib << " belongs to no package";
      EXPECT_TRUE(installed.count(package) != 0)
          << binary << " links " << lib << " from " << package
          << ", which the runtime stage does not install";
    }
  }
}

TEST_F(Dockerfile, EntrypointIsBatonInExecFormAndItsSettingsCheck) {
  const auto entry = exec_form("ENTRYPOINT");
  ASSERT_GE(entry.size(), 2u) << "ENTRYPOINT must be a JSON array: baton is PID 1";
  EXPECT_EQ(entry[0], "/usr/bin/baton");
  EXPECT_EQ(entry[1], "run");
  EXPECT_EQ(entry.back(), "--") << "CMD is the app";
  ASSERT_FALSE(exec_form("CMD").empty());
  auto argv = local_command();
  argv[1] = "check";
  auto r = run(argv, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // docker stop waits 10 s by default before SIGKILL: the drain must fit in it.
  auto pos = std::find(entry.begin(), entry.end(), "--drain-timeout");
  ASSERT_NE(pos, entry.end());
  ASSERT_NE(pos + 1, entry.end());
  EXPECT_THAT(*(pos + 1), ::testing::MatchesRegex("[1-9]s"));
  EXPECT_FALSE(all("HEALTHCHECK").empty());
}

TEST_F(Dockerfile, ItsEntrypointServesAsPid1AndStopsOnSigterm) {
  std::string why;
  const auto unshare = unshare_command(why);
  if (unshare.empty()) GTEST_SKIP() << why;
  TempDir dir;
  auto argv = local_command();
  ASSERT_GE(argv.size(), 3u);
  // Here: a free loopback port instead of the image's 0.0.0.0:8080, a private control socket.
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == "--listen") argv[i + 1] = "127.0.0.1:0";
  }
  const std::string control = dir.file("control.sock");
  argv.insert(argv.begin() + 2, {"--control", control});
  Pid1 pid1(unshare, argv, control);
  auto status = pid1.wait_serving();
  ASSERT_TRUE(status.is_object()) << pid1.unshare().output();
  EXPECT_EQ(status["supervisor"]["pid"], 1);
  auto health = http_get(status["listeners"][0]["address"].get<std::string>(), "/healthz");
  ASSERT_TRUE(health.ok()) << health.error().what();
  EXPECT_EQ(health->status, 200);
  const pid_t baton = pid1.baton_pid();
  ASSERT_GT(baton, 0);
  ASSERT_EQ(::kill(baton, SIGTERM), 0);
  EXPECT_EQ(pid1.unshare().wait_exit_code(30s), 0) << pid1.unshare().output();
}

// ---- its build context (.dockerignore) ----

// The patterns of the repository's .dockerignore, in the subset of its syntax the file keeps to
// (checked here): one a line, `#` comments, `*`, `?` and `[...]` within one path element, and a
// leading `**/` for any depth. No `!` exceptions: this matcher would not honour them.
std::vector<std::string> dockerignore_patterns(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    std::string p = line.substr(first, line.find_last_not_of(" \t") - first + 1);
    while (p.starts_with("/")) p.erase(0, 1);
    const bool any_depth = p.starts_with("**/");
    EXPECT_FALSE(p.starts_with("!")) << "exceptions are not understood here: " << p;
    EXPECT_EQ(p.find("**", any_depth ? 3 : 0), std::string::npos) << "`**` only leading: " << p;
    out.push_back(p);
  }
  return out;
}

// Whether docker leaves `path` (relative to the context's root) out: it, or a directory above
// it, matches a pattern.
bool left_out(const std::vector<std::string>& patterns, std::string path) {
  for (;;) {
    for (const std::string& p : patterns) {
      if (!p.starts_with("**/")) {
        if (::fnmatch(p.c_str(), path.c_str(), FNM_PATHNAME) == 0) return true;
        continue;
      }
      for (std::string tail = path;;) {
        if (::fnmatch(p.c_str() + 3, tail.c_str(), FNM_PATHNAME) == 0) return true;
        const auto slash = tail.find('/');
        if (slash == std::string::npos) break;
        tail.erase(0, slash + 1);
      }
    }
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return false;
    path.resize(slash);
  }
}

class Dockerignore : public Dockerfile {
 protected:
  void SetUp() override {
    Dockerfile::SetUp();
    const std::string text = read_file(source(".dockerignore"));
    ASSERT_FALSE(text.empty()) << "no .dockerignore at the root of the build context";
    patterns_ = dockerignore_patterns(text);
  }
  std::vector<std::string> patterns_;
};

TEST_F(Dockerignore, LeavesOutBuildTreesHistoryAndCaches) {
  for (const char* path :
       {"build/CMakeCache.txt", "build-asan/bin/baton", "build-fuzz/corpus/url/x", ".git/HEAD",
        ".cache/clangd/index/x", "src/cli/main.cc.swp"}) {
    EXPECT_TRUE(left_out(patterns_, path)) << path;
  }
  for (const char* path : {"CMakeLists.txt", "src/cli/CMakeLists.txt", "scripts/setup-deps",
                           "examples/container/Dockerfile", "docs/man/baton.1", "README.md"}) {
    EXPECT_FALSE(left_out(patterns_, path)) << path;
  }
}

// The context docker would send, copied file by file, configures with the build stage's flags,
// and every source file the install step takes from it is in it.
TEST_F(Dockerignore, TheContextItKeepsConfiguresAndInstallsAsTheBuildStageDoes) {
  bool found = false;
  for (const auto* r : all("RUN")) {
    if (r->args.find("cmake -S . -B /build") == std::string::npos) continue;
    found = true;
    EXPECT_THAT(r->args, HasSubstr("-DBATON_BUILD_TESTS=OFF -DBATON_BUILD_BENCH=OFF"));
  }
  ASSERT_TRUE(found) << "the build stage's cmake line has changed: change this test with it";
  namespace fs = std::filesystem;
  TempDir dir;
  const fs::path root = BATON_TEST_SOURCE_DIR;
  const fs::path context = dir.file("context");
  size_t files = 0;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string rel = fs::relative(it->path(), root).string();
    if (left_out(patterns_, rel)) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    const fs::path to = context / rel;
    if (it->is_symlink()) {
      fs::create_directories(to.parent_path());
      fs::copy_symlink(it->path(), to);
    } else if (it->is_directory()) {
      fs::create_directories(to);
    } else if (it->is_regular_file()) {
      fs::create_directories(to.parent_path());
      fs::copy_file(it->path(), to);
      ++files;
    }
  }
  ASSERT_GT(files, 0u);
  const std::string build = dir.file("build");
  auto r = run({BATON_CMAKE, "-S", context.string(), "-B", build, "-G", "Ninja",
                "-DCMAKE_BUILD_TYPE=Release", "-DBATON_BUILD_TESTS=OFF", "-DBATON_BUILD_BENCH=OFF"},
               120s);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The install scripts name each source file they copy by its absolute path in the context.
  std::string escaped;
  for (char c : context.string()) {
    if (std::strchr(".^$|()[]{}*+?\\", c) != nullptr) escaped += '\\';
    escaped += c;
  }
  const std::regex quoted("\"(" + escaped + "/[^\"]+)\"");
  size_t named = 0;
  for (const auto& e : fs::recursive_directory_iterator(build)) {
    if (e.path().filename() != "cmake_install.cmake") continue;
    const std::string text = read_file(e.path().string());
    for (std::sregex_iterator m(text.begin(), text.end(), quoted), end; m != end; ++m) {
      ++named;
      EXPECT_TRUE(fs::exists((*m)[1].str())) << (*m)[1].str() << " is installed but left out";
    }
  }
  EXPECT_GT(named, 0u) << "no install step read: the check above checked nothing";
}

}  // namespace
}  // namespace baton::test

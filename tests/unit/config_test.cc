// Unit tests of the run settings: the TOML file, flags over the file, the check, env files.
#include "cli/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace baton::cli {
namespace {

using test::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir.file(name)) << text;
  ::chmod(dir.file(name).c_str(), 0600);
  return dir.file(name);
}

TEST(ConfigFile, ReadsEveryKindOfKey) {
  TempDir dir;
  auto path = write(dir, "a.toml",
                    "listen = [\"http=127.0.0.1:8080\", \"unix:/tmp/x.sock\"]\n"
                    "command = [\"/bin/sleep\", \"60\"]\n"
                    "ready = \"http:/healthz\"\nready-timeout = \"2m\"\ndrain-timeout = 5\n"
                    "max-draining = 2\nipv6-only = true\nenv = { A = \"1\", B = \"two\" }\n"
                    "metrics = \"127.0.0.1:9100\"\n");
  RunSettings s;
  std::vector<std::string> problems;
  read_config_file(path, s, problems);
  EXPECT_TRUE(problems.empty()) << problems[0];
  EXPECT_THAT(s.listen, ElementsAre("http=127.0.0.1:8080", "unix:/tmp/x.sock"));
  EXPECT_THAT(s.command, ElementsAre("/bin/sleep", "60"));
  EXPECT_EQ(s.ready, "http:/healthz");
  EXPECT_EQ(s.ready_timeout, "2m");
  EXPECT_EQ(s.drain_timeout, "5");
  EXPECT_EQ(s.max_draining, 2);
  EXPECT_TRUE(s.ipv6_only);
  EXPECT_THAT(s.env, ElementsAre("A=1", "B=two"));
  EXPECT_EQ(s.metrics, "127.0.0.1:9100");
}

TEST(ConfigFile, PrefixOutputIsABooleanThatReachesTheSupervisor) {
  TempDir dir;
  RunSettings s;
  std::vector<std::string> problems;
  read_config_file(write(dir, "a.toml", "prefix-output = true\n"), s, problems);
  ASSERT_TRUE(problems.empty()) << problems[0];
  EXPECT_TRUE(s.prefix_output);
  s.listen = {"127.0.0.1:0"};
  s.command = {"true"};
  SupervisorConfig c;
  ASSERT_TRUE(check_run_settings(s, c).empty());
  EXPECT_TRUE(c.prefix_output);
  RunSettings wrong;
  read_config_file(write(dir, "b.toml", "prefix-output = \"yes\"\n"), wrong, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("prefix-output"));
}

// Found by the settings_check fuzz target: toml++ quotes the newline it stopped at, and the
// problem spanned two lines.
TEST(ConfigFile, ASyntaxErrorAtALineEndIsOneLine) {
  TempDir dir;
  RunSettings s;
  std::vector<std::string> problems;
  read_config_file(write(dir, "a.toml", "MODE=fals\nexport NAME=\"NE\n"), s, problems);
  ASSERT_FALSE(problems.empty());
  for (const auto& p : problems) EXPECT_EQ(p.find('\n'), std::string::npos) << p;
  EXPECT_THAT(problems[0], HasSubstr("saw 'fals\\x0a'"));
}

TEST(ConfigFile, DrainSignalGroupIsABooleanThatReachesTheSupervisor) {
  TempDir dir;
  RunSettings s;
  std::vector<std::string> problems;
  read_config_file(write(dir, "a.toml", "drain-signal-group = true\n"), s, problems);
  ASSERT_TRUE(problems.empty()) << problems[0];
  EXPECT_TRUE(s.drain_signal_group);
  s.listen = {"127.0.0.1:0"};
  s.command = {"true"};
  SupervisorConfig c;
  ASSERT_TRUE(check_run_settings(s, c).empty());
  EXPECT_TRUE(c.core.drain_signal_group);
  EXPECT_FALSE(SupervisorConfig{}.core.drain_signal_group) << "off by default";
  RunSettings wrong;
  read_config_file(write(dir, "b.toml", "drain-signal-group = 1\n"), wrong, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("drain-signal-group"));
}

TEST(ConfigFile, NamesTheLineOfEachProblem) {
  TempDir dir;
  auto path = write(dir, "a.toml", "listen = 8080\nbacklog = \"big\"\ncolour = \"red\"\n");
  RunSettings s;
  std::vector<std::string> problems;
  read_config_file(path, s, problems);
  EXPECT_THAT(problems, ElementsAre(path + ":1: listen: expected a string or an array of strings",
                                    path + ":2: backlog: expected an integer",
                                    path + ":3: unknown key 'colour'"));
}

TEST(ConfigFile, NotTomlIsOneProblemWithItsLine) {
  TempDir dir;
  auto path = write(dir, "a.toml", "listen = [\"8080\"]\nready = \n");
  RunSettings s;
  std::vector<std::string> problems;
  read_config_file(path, s, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr(path + ":2: not valid TOML"));
}

TEST(ConfigFile, MissingFileIsAProblem) {
  RunSettings s;
  std::vector<std::string> problems;
  read_config_file("/nonexistent/baton.toml", s, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], "config /nonexistent/baton.toml: No such file or directory");
}

TEST(ConfigFile, FlagsGivenReplaceTheFilesValuesOnly) {
  RunSettings file;
  file.listen = {"8080"};
  file.ready = "http:/a";
  file.command = {"/bin/true"};
  RunSettings flags;
  flags.listen = {"9090", "9091"};
  flags.ready = "notify";  // the default, but not given: the file's stays
  overlay(file, flags, {"listen"});
  EXPECT_THAT(file.listen, ElementsAre("9090", "9091"));
  EXPECT_EQ(file.ready, "http:/a");
  EXPECT_THAT(file.command, ElementsAre("/bin/true"));
}

TEST(CheckRunSettings, AGoodSetHasNoProblems) {
  RunSettings s;
  s.listen = {"127.0.0.1:0"};
  s.command = {"true"};
  s.ready_timeout = "30s";
  s.drain_timeout = "0";
  SupervisorConfig c;
  auto problems = check_run_settings(s, c);
  EXPECT_TRUE(problems.empty()) << problems[0];
  EXPECT_EQ(c.core.ready_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.core.drain_timeout, std::chrono::seconds(0));
  EXPECT_EQ(c.command[0].front(), '/') << "resolved in PATH";
}

TEST(CheckRunSettings, EveryProblemIsOneLine) {
  RunSettings s;
  s.listen = {"127.0.0.1:99999"};
  s.command = {"/no/such/app"};
  s.ready = "sometimes";
  s.ready_timeout = "30x";
  s.drain_signal = "NOPE";
  s.max_draining = 0;
  s.unix_mode = "999";
  s.chdir = "relative/dir";
  s.env = {"1BAD=x"};
  s.user = "no-such-user-here";
  s.metrics = "unix:/tmp/m.sock";
  SupervisorConfig c;
  auto problems = check_run_settings(s, c);
  ASSERT_EQ(problems.size(), 11u);
  for (const auto& p : problems) EXPECT_EQ(p.find('\n'), std::string::npos) << p;
  EXPECT_EQ(problems[0],
            "listen: bad address '127.0.0.1:99999': port must be a number from 0 to 65535");
}

TEST(CheckRunSettings, UsersByNameOrNumberAndHugeNumbersAreProblemsNotCrashes) {
  RunSettings s;
  s.listen = {"0"};
  s.command = {"true"};
  for (const char* bad : {"99999999999999999999", "nobody:99999999999999999999",
                          "nobody:", "nobody:no-such-group-here"}) {
    s.user = bad;
    SupervisorConfig c;
    auto problems = check_run_settings(s, c);
    ASSERT_EQ(problems.size(), 1u) << bad;
    EXPECT_THAT(problems[0], ::testing::StartsWith("user: ")) << bad;
  }
  if (::geteuid() == 0) {
    s.user = "65534:65534";
    SupervisorConfig c;
    auto problems = check_run_settings(s, c);
    EXPECT_TRUE(problems.empty()) << problems[0];
    ASSERT_TRUE(c.run_as.has_value());
    EXPECT_EQ(c.run_as->uid, 65534u);
    EXPECT_EQ(c.run_as->gid, 65534u);
  }
}

TEST(CheckRunSettings, RelativeCommandIsFoundInTheWorkingDirectoryAndKeptRelative) {
  TempDir dir;
  ::symlink("/bin/true", dir.file("app").c_str());
  RunSettings s;
  s.listen = {"0"};
  s.chdir = dir.path();
  s.command = {"./app"};
  SupervisorConfig c;
  auto problems = check_run_settings(s, c);
  EXPECT_TRUE(problems.empty()) << problems[0];
  EXPECT_EQ(c.command[0], "./app") << "looked up again at each spawn, in the directory of then";
  EXPECT_EQ(c.working_dir, dir.path());
}

TEST(CheckRunSettings, ExplicitEnvWinsOverTheEnvFile) {
  TempDir dir;
  RunSettings s;
  s.listen = {"0"};
  s.command = {"true"};
  s.env = {"A=flag"};
  s.env_file = write(dir, "env", "A=file\nB=file\n");
  SupervisorConfig c;
  auto problems = check_run_settings(s, c);
  EXPECT_TRUE(problems.empty()) << problems[0];
  EXPECT_EQ(c.env["A"], "flag");
  EXPECT_EQ(c.env["B"], "file");
}

TEST(EnvFile, ParsesTheUsualForms) {
  auto vars = parse_env_text(
      "# comment\n\nA=1\nexport B=two words\nC=\"quoted\"\nD='single'\r\n"
      "E=\nF==x\n",
      "env");
  ASSERT_TRUE(vars.ok()) << vars.error().what();
  std::vector<std::pair<std::string, std::string>> want = {
      {"A", "1"}, {"B", "two words"}, {"C", "quoted"}, {"D", "single"}, {"E", ""}, {"F", "=x"}};
  EXPECT_EQ(*vars, want);
}

TEST(EnvFile, RejectsLinesThatAreNotAssignments) {
  auto vars = parse_env_text("A=1\nnot an assignment\n", "prod.env");
  ASSERT_FALSE(vars.ok());
  EXPECT_EQ(vars.error().what(), "prod.env:2: expected NAME=VALUE");
  EXPECT_FALSE(parse_env_text("1A=x\n", "e").ok());
  EXPECT_FALSE(parse_env_text("A-B=x\n", "e").ok());
}

// Review finding 15: a NUL in an env-file value was cut there without a word.
TEST(EnvFile, RejectsANulByteInAValue) {
  auto vars = parse_env_text(std::string("A=1\nTOKEN=abc\0def\n", 17), "prod.env");
  ASSERT_FALSE(vars.ok());
  EXPECT_EQ(vars.error().what(), "prod.env:2: a NUL byte in the value of TOKEN");
}

// Review finding 15: a NUL in an env name cut `check`'s line short; one in a value was cut.
TEST(CheckRunSettings, NulBytesInEnvAreShownAndRefused) {
  RunSettings s;
  s.listen = {"127.0.0.1:0"};
  s.command = {"/bin/true"};
  s.env = {std::string("A\0B=x", 5), std::string("C=x\0y", 5)};
  SupervisorConfig c;
  auto problems = check_run_settings(s, c);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0], "env: 'A\\x00B=x' is not NAME=VALUE");
  EXPECT_EQ(problems[1], "env: C: a value cannot hold a NUL byte");
}

TEST(EnvFile, BoundsTheNumberOfVariables) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "V" + std::to_string(i) + "=x\n";
  auto vars = parse_env_text(text, "big.env");
  ASSERT_FALSE(vars.ok());
  EXPECT_THAT(vars.error().what(), HasSubstr("more than 4096 variables"));
}

TEST(EnvFile, RefusesAFileOthersCanWrite) {
  TempDir dir;
  auto path = write(dir, "env", "A=1\n");
  ::chmod(path.c_str(), 0646);
  auto vars = read_env_file(path);
  ASSERT_FALSE(vars.ok());
  EXPECT_THAT(vars.error().what(), HasSubstr("writable by other users"));
}

TEST(EnvFile, RefusesWhatIsNotARegularFileWithoutBlocking) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  auto vars = read_env_file(dir.file("fifo"));  // a FIFO with no writer: open must not hang
  ASSERT_FALSE(vars.ok());
  EXPECT_THAT(vars.error().what(), HasSubstr("not a regular file"));
}

TEST(ConfigFile, RefusesAFileLargerThanOneMebibyte) {
  TempDir dir;
  auto path = write(dir, "big.toml", "# " + std::string(1 << 20, 'x') + "\n");
  RunSettings s;
  std::vector<std::string> problems;
  read_config_file(path, s, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("larger than 1048576 bytes"));
}

TEST(LoadRunConfig, ReloadRereadsTheFileAndFailsWithTheReasonWhenItNoLongerChecks) {
  TempDir dir;
  auto path = write(dir, "a.toml", "listen = [\"0\"]\ncommand = [\"/bin/true\"]\n");
  RunSource source;
  source.config_path = path;
  SupervisorConfig c;
  auto problems = load_run_config(source, c);
  ASSERT_TRUE(problems.empty()) << problems[0];
  ASSERT_TRUE(c.reload_config);

  write(dir, "a.toml", "listen = [\"0\"]\ncommand = [\"/bin/false\"]\n");
  auto fresh = c.reload_config();
  ASSERT_TRUE(fresh.ok()) << fresh.error().what();
  EXPECT_EQ(fresh->command[0], "/bin/false");

  write(dir, "a.toml", "listen = [\"0\"]\ncommand = [\"/bin/false\"]\nready = \"maybe\"\n");
  fresh = c.reload_config();
  ASSERT_FALSE(fresh.ok());
  EXPECT_THAT(fresh.error().what(),
              HasSubstr(path + " no longer checks: " + path + ":3: ready: bad 'maybe'"));
}

TEST(LoadRunConfig, WithoutFileOrEnvFileNothingIsReadAgain) {
  RunSource source;
  source.flags.listen = {"0"};
  source.flags.command = {"/bin/true"};
  source.given = {"listen", "command"};
  SupervisorConfig c;
  auto problems = load_run_config(source, c);
  ASSERT_TRUE(problems.empty()) << problems[0];
  EXPECT_FALSE(c.reload_config);
}

TEST(ConfigFile, AnUnknownKeyNamesTheKeyItsTypoMeant) {
  TempDir dir;
  auto path = write(dir, "a.toml", "drain-timout = \"5s\"\nlsten = [\"8080\"]\ncolour = 1\n");
  RunSettings s;
  std::vector<std::string> problems;
  read_config_file(path, s, problems);
  EXPECT_THAT(problems,
              ElementsAre(path + ":1: unknown key 'drain-timout'; did you mean 'drain-timeout'?",
                          path + ":2: unknown key 'lsten'; did you mean 'listen'?",
                          path + ":3: unknown key 'colour'"));
}

TEST(ConfigFile, EverySyntaxErrorIsToldWithItsLine) {
  TempDir dir;
  auto path = write(dir, "a.toml",
                    "listen = [\"8080\"]\nready = \nbacklog = 12 12\nchdir = 1\nlsten = 1\n");
  RunSettings s;
  std::vector<std::string> problems;
  EXPECT_FALSE(read_config_file(path, s, problems).has_value());
  // Both syntax errors, then what the rest of the file says.
  ASSERT_EQ(problems.size(), 4u);
  EXPECT_THAT(problems[0], HasSubstr(path + ":2: not valid TOML"));
  EXPECT_THAT(problems[1], HasSubstr(path + ":3: not valid TOML"));
  EXPECT_EQ(problems[2], path + ":4: chdir: expected a string");
  EXPECT_EQ(problems[3], path + ":5: unknown key 'lsten'; did you mean 'listen'?");
}

TEST(LoadRunConfig, AValueFromTheFileIsToldAtItsLineAndOneFromAFlagAsTheFlag) {
  TempDir dir;
  auto path = write(dir, "a.toml",
                    "listen = [\"0\"]\ncommand = [\"/bin/true\"]\nready = \"maybe\"\n"
                    "drain-timeout = \"25h\"\n");
  RunSource source;
  source.config_path = path;
  SupervisorConfig c;
  EXPECT_THAT(load_run_config(source, c),
              ElementsAre(HasSubstr(path + ":3: ready: bad 'maybe': use auto, notify"),
                          path + ":4: drain-timeout: at most 24h"));
  source.flags.ready = "sometimes";
  source.given = {"ready"};
  EXPECT_THAT(load_run_config(source, c), ElementsAre(HasSubstr("bad --ready 'sometimes'"),
                                                      path + ":4: drain-timeout: at most 24h"));
}

TEST(LoadRunConfig, TheFilesProblemsAndTheChecksAreToldTogetherEachOnce) {
  TempDir dir;
  auto path =
      write(dir, "a.toml", "listen = 8080\ncommand = [\"/no/such/server\"]\ncolour = \"blue\"\n");
  RunSource source;
  source.config_path = path;
  SupervisorConfig c;
  auto problems = load_run_config(source, c);
  ASSERT_EQ(problems.size(), 3u) << problems[0];
  EXPECT_EQ(problems[0], path + ":1: listen: expected a string or an array of strings");
  EXPECT_EQ(problems[1], path + ":3: unknown key 'colour'");
  EXPECT_THAT(problems[2], HasSubstr(path + ":2: command: "));  // no second word on listen
}

}  // namespace
}  // namespace baton::cli

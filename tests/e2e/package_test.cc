// baton as an operator installs it: `cmake --install` into a prefix, and `cpack -G DEB`: the
// packages' contents and fields, dpkg -i into a fresh root, and a service run from it as its unit
// says.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"
#include "manager_socket.h"

namespace baton::test {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The man page's text, from the gzipped file that is installed.
std::string gunzip(const std::string& path) { return run({"/bin/gzip", "-dc", path}, 30s).output; }

// The value of `key=` in a unit file's text ("" when absent); the last one wins, as in systemd.
std::string unit_value(const std::string& unit, const std::string& key) {
  std::string value;
  std::istringstream in(unit);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(key + "=")) value = line.substr(key.size() + 1);
  }
  return value;
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size()) {
    text.replace(at, from.size(), to);
  }
}

TEST(Install, PrefixHoldsBinaryPreloadLibraryManPageCompletionsAndUnit) {
  TempDir dir;
  const std::string prefix = dir.file("prefix");
  auto inst = run({BATON_CMAKE, "--install", BATON_BUILD_DIR, "--prefix", prefix}, 300s);
  ASSERT_EQ(inst.exit_code, 0) << inst.output;
  for (const std::string& path : std::vector<std::string>{
           "/bin/baton", "/share/man/man1/baton.1.gz", "/share/bash-completion/completions/baton",
           "/share/zsh/vendor-completions/_baton", "/share/doc/baton/configuration.md",
           "/share/doc/baton/copyright", "/include/baton/baton.h",
           "/lib/systemd/system/baton@.service",
           std::string("/") + BATON_LIBDIR + "/baton/libbaton_adopt.so"}) {
    EXPECT_TRUE(exists(prefix + path)) << path;
  }
  EXPECT_FALSE(exists(prefix + "/bin/baton-example-http")) << "the example server is no tool";
  // The unit outside /usr starts the binary of its own prefix.
  const std::string unit = read_file(prefix + "/lib/systemd/system/baton@.service");
  EXPECT_THAT(unit_value(unit, "ExecStart"), ::testing::StartsWith(prefix + "/bin/baton run "));
  // The installed binary finds its preload library in the prefix.
  auto check =
      run({prefix + "/bin/baton", "check", "--adopt", "--listen", "127.0.0.1:0", "--", "/bin/sh"},
          30s, SpawnOptions{{}, {"BATON_ADOPT_LIBRARY"}});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_THAT(check.output, HasSubstr(prefix));
  // The installed bash completion completes commands and each command's flags.
  auto completion = run({"/bin/bash", "-c",
                         "source " + prefix +
                             "/share/bash-completion/completions/baton; "
                             "t() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); _baton; "
                             "echo \"${COMPREPLY[*]}\"; }; t baton ch; t baton status --ch"},
                        30s);
  EXPECT_EQ(completion.output, "check\n--check\n");
  const std::string page = gunzip(prefix + "/share/man/man1/baton.1.gz");
  EXPECT_THAT(page, ::testing::StartsWith(".TH BATON 1"));
  EXPECT_THAT(page, HasSubstr(".SS baton check"));
  EXPECT_THAT(page, Not(HasSubstr("@BATON_VERSION@")));
  if (exists("/usr/bin/man")) {  // man-db is not on every machine; the page must render where it is
    auto man =
        run({"/bin/sh", "-c", "MANWIDTH=80 man -l " + prefix + "/share/man/man1/baton.1.gz"}, 30s);
    EXPECT_EQ(man.exit_code, 0) << man.output;
    EXPECT_THAT(man.output, HasSubstr("baton check"));
  }
}

// Both packages, built once for the tests below.
class Package : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    auto pack = run({BATON_CPACK, "-G", "DEB", "-B", dir_->path(), "--config",
                     std::string(BATON_BUILD_DIR) + "/CPackConfig.cmake"},
                    600s);
    pack_output_ = pack.exit_code == 0 ? "" : pack.output;
    for (const char* name : {"baton", "libbaton-dev"}) {
      auto found = run({"/bin/sh", "-c", "ls " + dir_->path() + "/" + name + "_*.deb"}, 10s);
      debs_[name] = found.exit_code == 0 ? found.output.substr(0, found.output.find('\n')) : "";
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(pack_output_, "") << "cpack failed";
    ASSERT_FALSE(runtime().empty()) << "no baton_*.deb";
    ASSERT_FALSE(dev().empty()) << "no libbaton-dev_*.deb";
  }
  static const std::string& runtime() { return debs_["baton"]; }
  static const std::string& dev() { return debs_["libbaton-dev"]; }
  static std::string contents(const std::string& deb) {
    auto c = run({"/usr/bin/dpkg-deb", "--contents", deb}, 30s);
    EXPECT_EQ(c.exit_code, 0) << c.output;
    return c.output;
  }
  static std::string field(const std::string& deb, const std::string& name) {
    return run({"/usr/bin/dpkg-deb", "--field", deb, name}, 30s).output;
  }
  // Unpacks `deb` under `root` as dpkg would, without touching this machine's /usr.
  static void unpack(const std::string& deb, const std::string& root) {
    auto u = run({"/usr/bin/dpkg-deb", "-x", deb, root}, 60s);
    ASSERT_EQ(u.exit_code, 0) << u.output;
  }

  // Installs `debs` with dpkg into `root`, a fresh one: an empty dpkg database and nothing else.
  // The root has no libc6 or libfmt-dev package, so their dependencies are forced (the binaries
  // run with this machine's libraries); the maintainer scripts run outside the root
  // (--force-script-chrootless), with DPKG_ROOT telling them whose root it is.
  static void dpkg_install(const std::string& root, const std::vector<std::string>& debs) {
    auto mkdirs =
        run({"/bin/mkdir", "-p", root + "/var/lib/dpkg/info", root + "/var/lib/dpkg/updates"});
    ASSERT_EQ(mkdirs.exit_code, 0) << mkdirs.output;
    std::ofstream(root + "/var/lib/dpkg/status").flush();
    std::vector<std::string> argv = {"/usr/bin/dpkg",
                                     "--root=" + root,
                                     "--log=/dev/null",
                                     "--force-depends",
                                     "--force-script-chrootless",
                                     "-i"};
    argv.insert(argv.end(), debs.begin(), debs.end());
    auto install = run(argv, 120s);
    ASSERT_EQ(install.exit_code, 0) << install.output;
  }

  static TempDir* dir_;
  static std::string pack_output_;
  static std::map<std::string, std::string> debs_;
};
TempDir* Package::dir_ = nullptr;
std::string Package::pack_output_;
std::map<std::string, std::string> Package::debs_;

TEST_F(Package, RuntimeHoldsTheCommandItsUnitAndManPageButNoDevelopmentFiles) {
  const std::string files = contents(runtime());
  for (const char* path :
       {"./usr/bin/baton\n", "./usr/share/man/man1/baton.1.gz\n",
        "./usr/share/bash-completion/completions/baton\n",
        "./usr/share/zsh/vendor-completions/_baton\n", "/baton/libbaton_adopt.so\n",
        "./lib/systemd/system/baton@.service\n", "./usr/share/doc/baton/copyright\n",
        "./usr/share/doc/baton/changelog.gz\n"}) {
    EXPECT_THAT(files, HasSubstr(path));
  }
  for (const char* dev_file : {"/include/", "libbaton.a", "baton.pc", "batonConfig.cmake"}) {
    EXPECT_THAT(files, Not(HasSubstr(dev_file)));
  }
  EXPECT_THAT(files, Not(HasSubstr("man1/baton.1\n"))) << "the man page is gzipped";

  // A real maintainer, dependencies found by dpkg-shlibdeps. With the C++ runtime linked in (the
  // default: BATON_STATIC_CXX_RUNTIME), that is libc alone; otherwise libstdc++ too.
  // The project's identity, whoever builds the package.
  EXPECT_EQ(field(runtime(), "Maintainer"), "baton maintainers <baton@users.noreply.github.com>\n");
  EXPECT_EQ(field(dev(), "Maintainer"), field(runtime(), "Maintainer"));
  auto depends = field(runtime(), "Depends");
  EXPECT_THAT(depends, HasSubstr("libc6 (>="));
  if (BATON_STATIC_CXX_RUNTIME) {
    for (const char* shared : {"libstdc++", "libfmt", "libtomlplusplus"}) {
      EXPECT_THAT(depends, Not(HasSubstr(shared)));
    }
  } else {
    EXPECT_THAT(depends, HasSubstr("libstdc++"));
  }

  TempDir root;
  unpack(runtime(), root.path());
  auto version = run({root.file("usr/bin/baton"), "--version"}, 30s);
  EXPECT_EQ(version.exit_code, 0) << version.output;
  EXPECT_THAT(version.output, HasSubstr("0."));
  // The preload library has a soname, and the unpacked binary finds it beside itself.
  auto dynamic = run(
      {"/bin/sh", "-c", "find " + root.path() + " -name libbaton_adopt.so -exec readelf -d {} +"},
      30s);
  EXPECT_THAT(dynamic.output, HasSubstr("(SONAME)"));
  auto check = run(
      {root.file("usr/bin/baton"), "check", "--adopt", "--listen", "127.0.0.1:0", "--", "/bin/sh"},
      30s, SpawnOptions{{}, {"BATON_ADOPT_LIBRARY"}});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_THAT(check.output, HasSubstr(root.path()));

  const std::string unit = read_file(root.file("lib/systemd/system/baton@.service"));
  EXPECT_EQ(unit_value(unit, "Type"), "notify");
  EXPECT_EQ(unit_value(unit, "ExecStart"),
            "/usr/bin/baton run --config /etc/baton/%i.toml --control %t/baton/%i/control.sock");
  EXPECT_THAT(unit_value(unit, "ExecReload"),
              ::testing::StartsWith("/usr/bin/baton reload --wait"));
  EXPECT_EQ(unit_value(unit, "KillMode"), "mixed") << "SIGTERM to baton alone: baton drains";
  EXPECT_EQ(unit_value(unit, "NoNewPrivileges"), "yes");
  EXPECT_EQ(unit_value(unit, "WatchdogSec"), "30s") << "baton pings while its loop runs";
  if (exists("/usr/bin/systemd-analyze")) {  // systemd's own check, with the unpacked binary
    std::string local = unit;
    replace_all(local, "/usr/bin/baton", root.file("usr/bin/baton"));
    std::ofstream(root.file("baton@shop.service")) << local;
    auto verify = run(
        {"/usr/bin/systemd-analyze", "verify", "--man=no", root.file("baton@shop.service")}, 60s);
    EXPECT_EQ(verify.exit_code, 0) << verify.output;
    EXPECT_EQ(verify.output, "");
  }
  const std::string page = gunzip(root.file("usr/share/man/man1/baton.1.gz"));
  EXPECT_THAT(page, ::testing::StartsWith(".TH BATON 1"));
  // A machine-readable copyright file that names the license of the sources' LICENSE file.
  const std::string copyright = read_file(root.file("usr/share/doc/baton/copyright"));
  EXPECT_THAT(copyright,
              ::testing::StartsWith(
                  "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/"));
  EXPECT_THAT(copyright, HasSubstr("\nFiles: *\n"));
  EXPECT_THAT(copyright, HasSubstr("\nLicense: Apache-2.0\n"));
  EXPECT_THAT(copyright, HasSubstr("/usr/share/common-licenses/Apache-2.0"));
  EXPECT_THAT(read_file(std::string(BATON_SOURCE_DIR) + "/LICENSE"),
              HasSubstr("Apache License\n                           Version 2.0, January 2004"));
}

TEST_F(Package, DevHoldsTheLibraryHeadersCMakePackageAndACleanPkgConfigFile) {
  const std::string files = contents(dev());
  for (const char* path :
       {"./usr/include/baton/baton.h\n", "/libbaton.a\n", "/pkgconfig/baton.pc\n",
        "/cmake/baton/batonConfig.cmake\n", "./usr/share/doc/libbaton-dev/copyright\n"}) {
    EXPECT_THAT(files, HasSubstr(path));
  }
  EXPECT_THAT(files, Not(HasSubstr("./usr/bin/")));
  EXPECT_THAT(field(dev(), "Depends"), HasSubstr("libfmt-dev")) << "libbaton.a calls into fmt";
  TempDir root;
  unpack(dev(), root.path());
  auto pc = run({"/bin/sh", "-c", "find " + root.path() + " -name baton.pc -exec cat {} +"}, 30s);
  EXPECT_THAT(pc.output, HasSubstr("Libs: -L${libdir} -lbaton\n"));
  EXPECT_THAT(pc.output, Not(HasSubstr("-std="))) << "the consumer picks its C++ standard";
  EXPECT_THAT(pc.output, Not(ContainsRegex("\nRequires:"))) << "the headers need no fmt";
  EXPECT_THAT(pc.output, HasSubstr("Requires.private: fmt\n")) << "a static link does";
}

TEST_F(Package, DpkgInstallsBothIntoAFreshRootAndRemovesThem) {
  TempDir root;
  dpkg_install(root.path(), {runtime(), dev()});
  for (const char* package : {"baton", "libbaton-dev"}) {
    auto status =
        run({"/usr/bin/dpkg-query", "--root=" + root.path(), "-W", "-f=${Status}", package});
    EXPECT_EQ(status.output, "install ok installed") << package;
  }
  auto version = run({root.file("usr/bin/baton"), "--version"}, 30s);
  EXPECT_EQ(version.exit_code, 0) << version.output;
  EXPECT_TRUE(exists(root.file("lib/systemd/system/baton@.service")));
  EXPECT_TRUE(exists(root.file("usr/include/baton/baton.h")));

  auto remove = run({"/usr/bin/dpkg", "--root=" + root.path(), "--log=/dev/null",
                     "--force-script-chrootless", "-r", "libbaton-dev", "baton"},
                    120s);
  EXPECT_EQ(remove.exit_code, 0) << remove.output;
  EXPECT_FALSE(exists(root.file("usr/bin/baton")));
  EXPECT_FALSE(exists(root.file("lib/systemd/system/baton@.service")));
  EXPECT_FALSE(exists(root.file("usr/include/baton/baton.h")));
}

// lintian at every level, pedantic included: any tag fails the test (a tag that must stay would be
// overridden, with its reason, in a file the package ships in /usr/share/lintian/overrides/; none
// has to today). Three tags depend on how this build is
// configured, not on the packaging, and are not shown: the tests' build has no multiarch libdir
// unless its prefix is /usr, and not Debian's hardening flags. scripts/package-check builds the
// packages as README.md says and runs lintian with nothing suppressed.
TEST_F(Package, LintianShowsNoTagAtAnyLevel) {
  ASSERT_TRUE(exists("/usr/bin/lintian")) << "lintian is not installed: scripts/setup-deps build";
  auto lint = run({"/usr/bin/lintian", "--pedantic", "--display-info", "--fail-on",
                   "error,warning,info,pedantic", "--suppress-tags",
                   "pkg-config-unavailable-for-cross-compilation,hardening-no-bindnow,"
                   "hardening-no-fortify-functions",
                   runtime(), dev()},
                  300s);
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  EXPECT_THAT(lint.output, Not(ContainsRegex("(^|\n)[EWIPX]: "))) << lint.output;
}

// The unit's own ExecStart= and ExecReload= lines, run from the installed package with this test as
// the service manager (a NOTIFY_SOCKET, the runtime directory, SIGTERM to baton alone to stop it,
// as KillMode=mixed does): baton says READY=1 once the app serves, a reload is RELOADING=1 then
// READY=1 and exits 0, and a stop drains and exits 0.
TEST_F(Package, ServiceRunsFromTheInstalledPackageAsItsUnitSays) {
  TempDir root;
  dpkg_install(root.path(), {runtime()});
  const std::string unit = read_file(root.file("lib/systemd/system/baton@.service"));
  auto expand = [&](std::string line) {
    replace_all(line, "/usr/bin/baton", root.file("usr/bin/baton"));
    replace_all(line, "/etc/baton/", root.file("etc/baton/"));
    replace_all(line, "%t", root.file("run"));
    replace_all(line, "%i", "shop");
    return words(line);
  };
  ASSERT_EQ(run({"/bin/mkdir", "-p", root.file("etc/baton")}).exit_code, 0);
  std::ofstream(root.file("etc/baton/shop.toml"))
      << "listen = [\"127.0.0.1:0\"]\ncommand = [\"" << testapp_binary() << "\"]\n";
  ManagerSocket manager(root.file("notify"));
  ASSERT_TRUE(manager.bound());
  SpawnOptions options;
  options.env["NOTIFY_SOCKET"] = manager.path();
  options.unset_env = {"BATON_CONTROL", "BATON_ADOPT_LIBRARY"};
  auto baton = Process::spawn(expand(unit_value(unit, "ExecStart")), options);
  auto ready = manager.next(60s);
  ASSERT_TRUE(ready) << baton.output();
  EXPECT_THAT(ready->text, HasSubstr("READY=1"));
  EXPECT_EQ(ready->sender, baton.pid());

  auto reload = run(expand(unit_value(unit, "ExecReload")), 120s, options);
  EXPECT_EQ(reload.exit_code, 0) << reload.output << baton.output();
  auto reloading = manager.next();
  ASSERT_TRUE(reloading) << baton.output();
  EXPECT_THAT(reloading->text, ::testing::StartsWith("RELOADING=1"));
  auto reloaded = manager.next();
  ASSERT_TRUE(reloaded) << baton.output();
  EXPECT_THAT(reloaded->text, ::testing::StartsWith("READY=1"));

  baton.signal(SIGTERM);
  auto stopping = manager.next();
  ASSERT_TRUE(stopping) << baton.output();
  EXPECT_THAT(stopping->text, ::testing::StartsWith("STOPPING=1"));
  EXPECT_EQ(baton.wait_exit_code(60s), 0) << baton.output();
}

}  // namespace
}  // namespace baton::test

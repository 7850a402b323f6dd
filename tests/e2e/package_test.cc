// baton as an operator installs it: `cmake --install` into a prefix, and `cpack -G DEB`.
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace baton::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

TEST(Install, PrefixHoldsBinaryPreloadLibraryManPageAndCompletions) {
  TempDir dir;
  const std::string prefix = dir.file("prefix");
  auto inst = run({BATON_CMAKE, "--install", BATON_BUILD_DIR, "--prefix", prefix}, 300s);
  ASSERT_EQ(inst.exit_code, 0) << inst.output;
  for (const std::string& path : std::vector<std::string>{
           "/bin/baton", "/share/man/man1/baton.1", "/share/bash-completion/completions/baton",
           "/share/zsh/vendor-completions/_baton", "/share/doc/baton/configuration.md",
           "/include/baton/baton.h",
           std::string("/") + BATON_LIBDIR + "/baton/libbaton_adopt.so"}) {
    EXPECT_TRUE(exists(prefix + path)) << path;
  }
  EXPECT_FALSE(exists(prefix + "/bin/baton-example-http")) << "the example server is no tool";
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
  const std::string page = read_file(prefix + "/share/man/man1/baton.1");
  EXPECT_THAT(page, ::testing::StartsWith(".TH BATON 1"));
  EXPECT_THAT(page, HasSubstr(".SS baton check"));
  EXPECT_THAT(page, Not(HasSubstr("@BATON_VERSION@")));
  if (exists("/usr/bin/man")) {  // man-db is not on every machine; the page must render where it is
    auto man =
        run({"/bin/sh", "-c", "MANWIDTH=80 man -l " + prefix + "/share/man/man1/baton.1"}, 30s);
    EXPECT_EQ(man.exit_code, 0) << man.output;
    EXPECT_THAT(man.output, HasSubstr("baton check"));
  }
}

TEST(Package, CpackBuildsADebThatHoldsAndRunsBaton) {
  TempDir dir;
  auto pack = run({BATON_CPACK, "-G", "DEB", "-B", dir.path(), "--config",
                   std::string(BATON_BUILD_DIR) + "/CPackConfig.cmake"},
                  600s);
  ASSERT_EQ(pack.exit_code, 0) << pack.output;
  auto found = run({"/bin/sh", "-c", "ls " + dir.path() + "/*.deb"}, 10s);
  ASSERT_EQ(found.exit_code, 0) << found.output;
  const std::string deb = found.output.substr(0, found.output.find('\n'));

  auto contents = run({"/usr/bin/dpkg-deb", "--contents", deb}, 30s);
  ASSERT_EQ(contents.exit_code, 0) << contents.output;
  EXPECT_THAT(contents.output, HasSubstr("./usr/bin/baton\n"));
  EXPECT_THAT(contents.output, HasSubstr("./usr/share/man/man1/baton.1"));
  EXPECT_THAT(contents.output, HasSubstr("./usr/share/bash-completion/completions/baton"));
  EXPECT_THAT(contents.output, HasSubstr("libbaton_adopt.so"));
  // dpkg-shlibdeps finds what the binaries load. With the C++ runtime linked in (the default:
  // BATON_STATIC_CXX_RUNTIME), that is libc alone; otherwise toml++ and the rest come with it.
  auto depends = run({"/usr/bin/dpkg-deb", "--field", deb, "Depends"}, 30s);
  EXPECT_THAT(depends.output, HasSubstr("libc6"));
  if (BATON_STATIC_CXX_RUNTIME) {
    for (const char* shared : {"libstdc++", "libfmt", "libtomlplusplus"}) {
      EXPECT_THAT(depends.output, Not(HasSubstr(shared)));
    }
  } else {
    EXPECT_THAT(depends.output, HasSubstr("libstdc++"));
  }

  // Unpacked (as dpkg would, without touching this machine's /usr), it runs.
  auto unpack = run({"/usr/bin/dpkg-deb", "-x", deb, dir.file("root")}, 60s);
  ASSERT_EQ(unpack.exit_code, 0) << unpack.output;
  auto version = run({dir.file("root") + "/usr/bin/baton", "--version"}, 30s);
  EXPECT_EQ(version.exit_code, 0) << version.output;
  EXPECT_THAT(version.output, HasSubstr("0."));
}

}  // namespace
}  // namespace baton::test

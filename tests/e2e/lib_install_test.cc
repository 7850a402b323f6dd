// libbaton as a user gets it: `cmake --install`, then a separate project finds it with
// find_package(baton) and another links it with pkg-config flags; both binaries run.
#include <gtest/gtest.h>

#include "harness.h"

namespace baton::test {
namespace {

TEST(LibInstall, FindPackageAndPkgConfigConsumersBuildAndRun) {
  TempDir dir;
  const std::string prefix = dir.file("prefix");
  auto inst = run({BATON_CMAKE, "--install", BATON_LIB_BUILD_DIR, "--prefix", prefix}, 120s);
  ASSERT_EQ(inst.exit_code, 0) << inst.output;

  const std::string flags = BATON_CONSUMER_FLAGS;
  auto cfg = run(
      {BATON_CMAKE, "-S", BATON_CONSUMER_SRC, "-B", dir.file("b"), "-DCMAKE_PREFIX_PATH=" + prefix,
       "-DCMAKE_CXX_FLAGS=" + flags, "-DCMAKE_EXE_LINKER_FLAGS=" + flags},
      120s);
  ASSERT_EQ(cfg.exit_code, 0) << cfg.output;
  auto build = run({BATON_CMAKE, "--build", dir.file("b")}, 300s);
  ASSERT_EQ(build.exit_code, 0) << build.output;
  auto ran = run({dir.file("b") + "/consumer"}, 30s);
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("consumer ready on 127.0.0.1:"), std::string::npos) << ran.output;

  // pkg-config, through a shell since the flags are split into words there. --static: libbaton
  // is a static library, and what it links (fmt, threads) is in the .pc's private fields. No
  // -std= is given: the headers build with the compiler's default (C++17 for GCC 12).
  const std::string pc = "PKG_CONFIG_PATH=" + prefix + "/" + BATON_LIBDIR + "/pkgconfig";
  auto pc_build = run(
      {"/bin/sh", "-c",
       "c++ " + flags + " " + std::string(BATON_CONSUMER_SRC) + "/main.cc -o " +
           dir.file("pc-consumer") + " $(" + pc + " pkg-config --static --cflags --libs baton)"},
      300s);
  ASSERT_EQ(pc_build.exit_code, 0) << pc_build.output;
  ran = run({dir.file("pc-consumer")}, 30s);
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("consumer drained"), std::string::npos) << ran.output;
}

}  // namespace
}  // namespace baton::test

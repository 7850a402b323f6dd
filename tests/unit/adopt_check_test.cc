// check_adoptable(): programs the preload library can never load into are refused up front.
#include "adopt/check.h"

#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>

#include "harness.h"

namespace baton::adopt {
namespace {

TEST(AdoptCheck, DynamicProgramsAndScriptsOnThemAreAdoptable) {
  Status s = check_adoptable("/bin/sh");
  EXPECT_TRUE(s.ok()) << s.error().what();
  s = check_adoptable("sh");  // looked up in PATH
  EXPECT_TRUE(s.ok()) << s.error().what();
  test::TempDir dir;
  std::string script = dir.file("run.sh");
  std::ofstream(script) << "#!/bin/sh\nexec true\n";
  ::chmod(script.c_str(), 0755);
  s = check_adoptable(script);
  EXPECT_TRUE(s.ok()) << s.error().what();
}

TEST(AdoptCheck, StaticallyLinkedProgramIsRefusedWithAClearMessage) {
  Status s = check_adoptable(BATON_ADOPT_STATIC_BIN);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().what().find("is statically linked"), std::string::npos) << s.error().what();
  EXPECT_NE(s.error().what().find("--adopt"), std::string::npos);
}

TEST(AdoptCheck, ScriptWhoseInterpreterIsStaticIsRefused) {
  test::TempDir dir;
  std::string script = dir.file("run");
  std::ofstream(script) << "#!" << BATON_ADOPT_STATIC_BIN << "\n";
  ::chmod(script.c_str(), 0755);
  Status s = check_adoptable(script);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().what().find("statically linked"), std::string::npos) << s.error().what();
}

TEST(AdoptCheck, MissingOrNonProgramFilesAreRefused) {
  EXPECT_FALSE(check_adoptable("/nonexistent/app").ok());
  EXPECT_FALSE(check_adoptable("no-such-program-baton-adopt").ok());
  test::TempDir dir;
  std::string text = dir.file("text");
  std::ofstream(text) << "hello\n";
  Status s = check_adoptable(text);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().what().find("neither an ELF program nor a #! script"), std::string::npos);
}

TEST(AdoptCheck, LibraryMustBeReadable) {
  EXPECT_TRUE(check_adopt_library(test::adopt_library()).ok());
  Status s = check_adopt_library("/nonexistent/libbaton_adopt.so");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().what().find("BATON_ADOPT_LIBRARY"), std::string::npos);
}

}  // namespace
}  // namespace baton::adopt

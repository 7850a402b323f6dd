// Unit tests of process_group.h: which main processes are shells, and the warning about a shell
// that runs the server as its child.
#include "supervisor/process_group.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace baton {
namespace {

using ::testing::HasSubstr;

TEST(ProcessGroup, ShellsAreKnownByTheirProgramName) {
  for (const char* shell : {"sh", "dash", "bash", "ash", "ksh", "mksh", "zsh", "busybox"}) {
    EXPECT_TRUE(is_shell(shell)) << shell;
  }
  for (const char* other : {"python3.11", "java", "node", "bash5", "sshd", "", "/bin/sh"}) {
    EXPECT_FALSE(is_shell(other)) << other;
  }
}

TEST(ProcessGroup, ShellWithAChildIsWarnedAboutWithTheExecHintAndTheFlag) {
  std::string w = shell_wrapper_warning(3, 4242, ProcessShape{"dash", 1});
  EXPECT_THAT(w, HasSubstr("generation 3 (pid 4242) is a shell (dash) with 1 child process:"));
  EXPECT_THAT(w, HasSubstr("`exec`"));
  EXPECT_THAT(w, HasSubstr("--drain-signal-group"));
  EXPECT_THAT(shell_wrapper_warning(3, 4242, ProcessShape{"bash", 2}),
              HasSubstr("with 2 child processes"));
}

TEST(ProcessGroup, NoWarningForAShellWithoutChildrenOrAServerWithChildren) {
  EXPECT_EQ(shell_wrapper_warning(1, 10, ProcessShape{"dash", 0}), "");      // it exec()ed or waits
  EXPECT_EQ(shell_wrapper_warning(1, 10, ProcessShape{"gunicorn", 4}), "");  // a pre-fork server
}

TEST(ProcessGroup, InspectsTheProgramAndChildrenOfALiveProcess) {
  auto shape = inspect_process(::getpid());
  ASSERT_TRUE(shape.ok()) << shape.error().what();
  EXPECT_EQ(shape->program, "supervisor_core_test");
  EXPECT_EQ(shape->children, 0u);
  EXPECT_FALSE(inspect_process(0).ok());  // no such process
}

}  // namespace
}  // namespace baton

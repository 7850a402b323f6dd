// Where the control socket goes when --control is not given.
#include <gtest/gtest.h>

#include "supervisor/control_protocol.h"

namespace baton {
namespace {

TEST(DefaultControlPath, BatonControlWinsOverEverything) {
  EXPECT_EQ(default_control_path("/x/c.sock", "/run/app", "/run/user/1000", 0), "/x/c.sock");
}

TEST(DefaultControlPath, SystemdRuntimeDirectoryNextFirstOfSeveral) {
  EXPECT_EQ(default_control_path(nullptr, "/run/app", "/run/user/1000", 1000),
            "/run/app/control.sock");
  EXPECT_EQ(default_control_path("", "/run/a:/run/b", nullptr, 0), "/run/a/control.sock");
}

TEST(DefaultControlPath, RootUsesRunBaton) {
  EXPECT_EQ(default_control_path(nullptr, nullptr, "/run/user/0", 0), "/run/baton/control.sock");
}

TEST(DefaultControlPath, UserUsesXdgRuntimeDirElseTmp) {
  EXPECT_EQ(default_control_path(nullptr, "", "/run/user/1000", 1000),
            "/run/user/1000/baton/control.sock");
  EXPECT_EQ(default_control_path(nullptr, nullptr, nullptr, 1000), "/tmp/baton-1000/control.sock");
}

}  // namespace
}  // namespace baton

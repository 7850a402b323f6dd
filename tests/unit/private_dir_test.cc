// The control directory checks (common/private_dir.h), on real directories.
#include "common/private_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "harness.h"

namespace baton {
namespace {

TEST(PrivateDir, CreatesAMissingDirectoryWithMode0700) {
  test::TempDir tmp;
  const std::string dir = tmp.file("a/b");
  auto fd = open_private_dir(dir);
  ASSERT_TRUE(fd.ok()) << fd.error().what();
  struct stat st {};
  ASSERT_EQ(::lstat(dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(PrivateDir, RefusesADirectoryOthersMayWrite) {
  test::TempDir tmp;
  const std::string dir = tmp.file("planted");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
  auto fd = open_private_dir(dir);
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.error().what().find("has mode 777"), std::string::npos) << fd.error().what();
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);  // readable by others is fine
  EXPECT_TRUE(open_private_dir(dir).ok());
}

TEST(PrivateDir, RefusesASymlinkToADirectory) {
  test::TempDir tmp;
  ASSERT_EQ(::mkdir(tmp.file("real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(tmp.file("real").c_str(), tmp.file("link").c_str()), 0);
  auto fd = open_private_dir(tmp.file("link"));
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.error().what().find("not a directory"), std::string::npos) << fd.error().what();
}

TEST(PrivateDir, RefusesADirectoryOfAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory away";
  test::TempDir tmp;
  const std::string dir = tmp.file("theirs");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
  auto fd = open_private_dir(dir);
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.error().what().find("owned by uid 65534"), std::string::npos) << fd.error().what();
}

TEST(PrivateDir, FilesInsideAreOpenedWithoutFollowingSymlinks) {
  test::TempDir tmp;
  auto dir = open_private_dir(tmp.file("d"));
  ASSERT_TRUE(dir.ok());
  const std::string victim = tmp.file("victim");
  {
    Fd v(::open(victim.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_EQ(::write(v.get(), "precious", 8), 8);
  }
  ASSERT_EQ(::symlink(victim.c_str(), tmp.file("d/x.lock").c_str()), 0);
  auto fd = open_in_dir(dir->get(), "x.lock", O_RDWR | O_CREAT | O_TRUNC);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().code(), ELOOP);
  struct stat st {};
  ASSERT_EQ(::stat(victim.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 8);  // not truncated
  EXPECT_TRUE(open_in_dir(dir->get(), "y.lock", O_RDWR | O_CREAT).ok());
  EXPECT_FALSE(open_in_dir(dir->get(), "../y", O_RDWR | O_CREAT).ok());
}

}  // namespace
}  // namespace baton

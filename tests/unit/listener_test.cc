// Unit tests of bind_listener's unix sockets: the file's mode, and the race between bind and the
// mode change that a user who may write the socket's directory can win.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/address.h"
#include "common/listener.h"
#include "harness.h"

namespace baton {
namespace {

// What the attacker puts in the socket's place (the hook is a plain function: no captures).
std::string swap_in;

void replace_with_symlink(const std::string& path) {
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_EQ(::symlink(swap_in.c_str(), path.c_str()), 0);
}

void replace_with_hard_link(const std::string& path) {
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_EQ(::link(swap_in.c_str(), path.c_str()), 0);
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(Listener, UnixSocketGetsTheModeAskedEvenPastTheUmask) {
  test::TempDir tmp;
  auto address = parse_address("unix:" + tmp.file("s.sock"));
  ASSERT_TRUE(address.ok()) << address.error().what();
  const mode_t old = ::umask(022);
  BindOptions options;
  options.unix_mode = 0666;
  auto fd = bind_listener(*address, options);
  ::umask(old);
  ASSERT_TRUE(fd.ok()) << fd.error().what();
  EXPECT_EQ(mode_of(tmp.file("s.sock")), 0666u);
}

// The attack of finding 1 replayed deterministically: between bind and the mode change, the
// socket's name is replaced by a symlink to a file the attacker wants world-writable.
TEST(Listener, UnixModeNeverReachesAFileSwappedInAfterBind) {
  test::TempDir tmp;
  const std::string target = tmp.file("secret");
  std::ofstream(target) << "root only\n";
  ASSERT_EQ(::chmod(target.c_str(), 0600), 0);
  const std::string sock = tmp.file("s.sock");
  auto address = parse_address("unix:" + sock);
  ASSERT_TRUE(address.ok()) << address.error().what();
  const mode_t old = ::umask(022);
  BindOptions options;
  options.unix_mode = 0666;
  swap_in = target;
  options.after_bind_for_test = replace_with_symlink;
  auto fd = bind_listener(*address, options);
  ::umask(old);
  EXPECT_EQ(mode_of(target), 0600u) << "the symlink's target had its mode changed";
  ASSERT_FALSE(fd.ok());
  EXPECT_NE(fd.error().what().find("replaced"), std::string::npos) << fd.error().what();
}

// The same with another socket (not a symlink) put in the name's place: it is not the one bound.
TEST(Listener, UnixModeNeverReachesAnotherSocketSwappedInAfterBind) {
  test::TempDir tmp;
  const std::string sock = tmp.file("s.sock");
  const std::string other = tmp.file("other.sock");
  auto other_address = parse_address("unix:" + other);
  ASSERT_TRUE(other_address.ok());
  BindOptions private_mode;
  private_mode.unix_mode = 0600;
  auto other_fd = bind_listener(*other_address, private_mode);
  ASSERT_TRUE(other_fd.ok()) << other_fd.error().what();
  auto address = parse_address("unix:" + sock);
  ASSERT_TRUE(address.ok());
  const mode_t old = ::umask(022);
  BindOptions options;
  options.unix_mode = 0666;
  swap_in = other;
  options.after_bind_for_test = replace_with_hard_link;
  auto fd = bind_listener(*address, options);
  ::umask(old);
  EXPECT_EQ(mode_of(other), 0600u) << "another socket had its mode changed";
  EXPECT_FALSE(fd.ok());
}

}  // namespace
}  // namespace baton

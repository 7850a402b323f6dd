// Unit tests of the OS helpers in src/common: unix socket addresses, peer credentials, PATH search.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "baton/fd.h"
#include "common/path_search.h"
#include "common/unix_socket.h"
#include "harness.h"

namespace baton {
namespace {

TEST(UnixAddress, PathCountsItsTerminatingNul) {
  sockaddr_un sun{};
  auto len = fill_unix_address("/run/x.sock", sun);
  ASSERT_TRUE(len.ok()) << len.error().what();
  EXPECT_EQ(sun.sun_family, AF_UNIX);
  EXPECT_STREQ(sun.sun_path, "/run/x.sock");
  EXPECT_EQ(*len, offsetof(sockaddr_un, sun_path) + 12);
}

TEST(UnixAddress, AtMeansTheAbstractNamespaceCountedExactly) {
  sockaddr_un sun{};
  auto len = fill_unix_address("@baton", sun);
  ASSERT_TRUE(len.ok());
  EXPECT_EQ(sun.sun_path[0], '\0');
  EXPECT_EQ(std::string(sun.sun_path + 1, 5), "baton");
  EXPECT_EQ(*len, offsetof(sockaddr_un, sun_path) + 6);
}

TEST(UnixAddress, RefusesEmptyTooLongAndNul) {
  sockaddr_un sun{};
  EXPECT_FALSE(fill_unix_address("", sun).ok());
  EXPECT_TRUE(fill_unix_address(std::string(sizeof(sun.sun_path) - 1, 'a'), sun).ok());
  auto too_long = fill_unix_address(std::string(sizeof(sun.sun_path), 'a'), sun);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().what().find("too long"), std::string::npos);
  EXPECT_FALSE(fill_unix_address(std::string("/a\0b", 4), sun).ok());
}

TEST(PeerCredentials, NameThisProcessAcrossASocketPair) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Fd a(sv[0]), b(sv[1]);
  auto cred = peer_credentials(a.get());
  ASSERT_TRUE(cred.ok()) << cred.error().what();
  EXPECT_EQ(cred->pid, ::getpid());
  EXPECT_EQ(cred->uid, ::geteuid());
  EXPECT_TRUE(peer_uid_allowed(cred->uid));
  EXPECT_TRUE(peer_uid_allowed(0));
  if (::geteuid() != 0) {
    EXPECT_FALSE(peer_uid_allowed(::geteuid() + 1));
  }
  EXPECT_FALSE(peer_credentials(-1).ok());
}

TEST(SearchPath, FindsARegularExecutableFileOnly) {
  test::TempDir dir;
  const std::string exe = dir.file("tool"), plain = dir.file("data");
  std::ofstream(exe) << "#!/bin/sh\n";
  std::ofstream(plain) << "x";
  ASSERT_EQ(::chmod(exe.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(dir.file("subdir").c_str(), 0755), 0);
  const char* old = std::getenv("PATH");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("PATH", ("/nonexistent:" + dir.path()).c_str(), 1);
  auto found = search_path("tool");
  auto not_executable = search_path("data");
  auto directory = search_path("subdir");
  auto missing = search_path("no-such-tool");
  ::setenv("PATH", saved.c_str(), 1);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, exe);
  EXPECT_FALSE(not_executable.has_value());
  EXPECT_FALSE(directory.has_value());
  EXPECT_FALSE(missing.has_value());
}

}  // namespace
}  // namespace baton

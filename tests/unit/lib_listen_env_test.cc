// Parsing of LISTEN_* and SERVER_STARTER_PORT, and taking inherited descriptors.
#include "lib/listen_env.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "common/address.h"
#include "common/listener.h"

namespace baton {
namespace {

Result<std::vector<ListenFdEntry>> parse(const char* pid, const char* fds, const char* names,
                                         pid_t self = 100) {
  return parse_listen_fds_env(pid, fds, names, self);
}

TEST(ListenEnv, UnsetMeansNothingInherited) {
  auto r = parse(nullptr, nullptr, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(ListenEnv, NamesFollowDescriptorsFromThree) {
  auto r = parse("100", "3", "http:admin:baton-probe");
  ASSERT_TRUE(r.ok()) << r.error().what();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].name, "http");
  EXPECT_EQ((*r)[0].fd, 3);
  EXPECT_EQ((*r)[2].name, "baton-probe");
  EXPECT_EQ((*r)[2].fd, 5);
}

TEST(ListenEnv, MissingNamesAreUnknownLikeSystemd) {
  auto r = parse("100", "2", nullptr);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1].name, "unknown");
}

TEST(ListenEnv, OtherProcessPidIsIgnored) {
  auto r = parse("101", "2", "a:b");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(ListenEnv, MissingPidIsAccepted) {
  auto r = parse(nullptr, "1", "a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 1u);
}

TEST(ListenEnv, ZeroDescriptorsWithEmptyNames) {
  auto r = parse("100", "0", "");
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_TRUE(r->empty());
}

TEST(ListenEnv, MalformedPidIsAnErrorNamingTheVariable) {
  for (const char* pid : {"", "abc", "12x", "-5", "+100", "0", " 100", "99999999999999999999"}) {
    auto r = parse(pid, "1", nullptr);
    ASSERT_FALSE(r.ok()) << "LISTEN_PID=" << pid;
    EXPECT_NE(r.error().what().find("LISTEN_PID"), std::string::npos);
  }
}

TEST(ListenEnv, MalformedCountIsAnErrorNamingTheVariable) {
  for (const char* fds : {"", "x", "2 ", "-1", "1.5", "0x3", "3;4"}) {
    auto r = parse("100", fds, nullptr);
    ASSERT_FALSE(r.ok()) << "LISTEN_FDS=" << fds;
    EXPECT_NE(r.error().what().find("LISTEN_FDS"), std::string::npos);
  }
}

TEST(ListenEnv, CountIsCapped) {
  auto r = parse("100", "129", nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what().find("more than 128"), std::string::npos);
  EXPECT_TRUE(parse("100", "128", nullptr).ok());
  EXPECT_FALSE(parse("100", "4294967296", nullptr).ok());
}

TEST(ListenEnv, NameCountMustMatch) {
  auto r = parse("100", "2", "http");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what().find("LISTEN_FDNAMES has 1 names but LISTEN_FDS=2"),
            std::string::npos);
  EXPECT_FALSE(parse("100", "1", "a:b").ok());
}

TEST(ListenEnv, InvalidNamesAreRejected) {
  EXPECT_FALSE(parse("100", "2", "a:").ok());
  EXPECT_FALSE(parse("100", "1", "sp ace").ok());
  EXPECT_FALSE(parse("100", "1", "tab\there").ok());
  EXPECT_FALSE(parse("100", "1", std::string(256, 'n').c_str()).ok());
  EXPECT_TRUE(parse("100", "1", std::string(255, 'n').c_str()).ok());
}

TEST(ServerStarterPort, ParsesPortsHostsAndPaths) {
  auto r = parse_server_starter_port("8080=3;127.0.0.1:8081=4;/run/app.sock=7;");
  ASSERT_TRUE(r.ok()) << r.error().what();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].name, "8080");
  EXPECT_EQ((*r)[0].fd, 3);
  EXPECT_EQ((*r)[1].name, "127.0.0.1:8081");
  EXPECT_EQ((*r)[1].fd, 4);
  EXPECT_EQ((*r)[2].name, "/run/app.sock");
  EXPECT_EQ((*r)[2].fd, 7);
  EXPECT_TRUE(parse_server_starter_port("")->empty());
}

TEST(ServerStarterPort, MalformedValuesAreErrors) {
  for (const char* v : {"8080", "=3", "8080=", "8080=x", "8080=1", "8080=3;9090=3", "a=3=b",
                        "8080=-3", "8080=3 "}) {
    auto r = parse_server_starter_port(v);
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_NE(r.error().what().find("SERVER_STARTER_PORT"), std::string::npos) << v;
  }
}

Fd tcp_listener() {
  auto a = parse_address("127.0.0.1:0");
  auto fd = bind_listener(*a, {});
  if (!fd) std::abort();
  return std::move(*fd);
}

TEST(InheritFromEnv, TakesServerStarterDescriptorsAndUnsetsTheVariable) {
  Fd l = tcp_listener();
  int raw = l.release();  // ownership passes to what inherit returns
  std::string value = "http=" + std::to_string(raw);
  ::unsetenv("LISTEN_FDS");
  ::setenv("SERVER_STARTER_PORT", value.c_str(), 1);
  auto r = inherit_listeners_from_env();
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(std::getenv("SERVER_STARTER_PORT"), nullptr);
  ASSERT_EQ(r->size(), 1u);
  const Listener& info = (*r)[0].info;
  EXPECT_EQ(info.name, "http");
  EXPECT_EQ(info.fd, raw);
  EXPECT_EQ(info.type, SOCK_STREAM);
  EXPECT_EQ(info.origin, ListenerOrigin::kInherited);
  EXPECT_EQ(info.address.rfind("127.0.0.1:", 0), 0u);
  EXPECT_TRUE(::fcntl(raw, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(raw, F_GETFD) & FD_CLOEXEC);
}

TEST(InheritFromEnv, ClosedDescriptorIsAnError) {
  Fd l = tcp_listener();
  int raw = l.get();
  l.reset();
  ::unsetenv("LISTEN_FDS");
  ::setenv("SERVER_STARTER_PORT", ("8080=" + std::to_string(raw)).c_str(), 1);
  auto r = inherit_listeners_from_env();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what().find("not open"), std::string::npos);
}

TEST(InheritFromEnv, NonSocketAndNonListeningDescriptorsAreErrors) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[1]);
  ::unsetenv("LISTEN_FDS");
  ::setenv("SERVER_STARTER_PORT", ("8080=" + std::to_string(p[0])).c_str(), 1);
  auto r = inherit_listeners_from_env();  // closes p[0]: it took ownership
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what().find("not a socket"), std::string::npos);
  EXPECT_LT(::fcntl(p[0], F_GETFD), 0);

  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::setenv("SERVER_STARTER_PORT", ("8080=" + std::to_string(s)).c_str(), 1);
  r = inherit_listeners_from_env();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what().find("not listening"), std::string::npos);
}

// LISTEN_FDS always starts at descriptor 3, so this runs in a forked child (gtest death-test
// machinery) where fd 3 can be taken over without disturbing the test runner.
TEST(InheritFromEnv, TakesListenFdsFromThreeWhenPidMatches) {
  GTEST_FLAG_SET(death_test_style, "fast");
  EXPECT_EXIT(
      {
        Fd l = tcp_listener();
        if (::dup2(l.get(), 3) != 3) std::_Exit(10);
        ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
        ::setenv("LISTEN_FDS", "1", 1);
        ::setenv("LISTEN_FDNAMES", "web", 1);
        auto r = inherit_listeners_from_env();
        if (!r.ok()) std::_Exit(11);
        if (r->size() != 1 || (*r)[0].info.name != "web" || (*r)[0].info.fd != 3) std::_Exit(12);
        if (std::getenv("LISTEN_FDS") || std::getenv("LISTEN_PID") || std::getenv("LISTEN_FDNAMES"))
          std::_Exit(13);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(InheritFromEnv, ListenFdsForAnotherPidAreLeftAlone) {
  GTEST_FLAG_SET(death_test_style, "fast");
  EXPECT_EXIT(
      {
        Fd l = tcp_listener();
        if (::dup2(l.get(), 3) != 3) std::_Exit(10);
        ::setenv("LISTEN_PID", std::to_string(::getpid() + 1).c_str(), 1);
        ::setenv("LISTEN_FDS", "1", 1);
        auto r = inherit_listeners_from_env();
        if (!r.ok() || !r->empty()) std::_Exit(11);
        if (::fcntl(3, F_GETFD) < 0) std::_Exit(12);  // not ours: not closed
        if (std::getenv("LISTEN_FDS")) std::_Exit(13);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace baton

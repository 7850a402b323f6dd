#include "common/address.h"

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(Address, BarePortIsDualStackWildcard) {
  auto a = parse_address("8100");
  ASSERT_TRUE(a.ok()) << a.error().what();
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->port(), 8100);
  EXPECT_EQ(a->to_string(), "[::]:8100");
}

TEST(Address, ParsesIpv4Ipv6UnixUdp) {
  EXPECT_EQ(parse_address("127.0.0.1:80")->to_string(), "127.0.0.1:80");
  EXPECT_EQ(parse_address("[::1]:8100")->to_string(), "[::1]:8100");
  EXPECT_EQ(parse_address("unix:/run/x.sock")->to_string(), "unix:/run/x.sock");
  EXPECT_EQ(parse_address("unix:/run/x.sock")->unix_path(), "/run/x.sock");
  EXPECT_EQ(parse_address("unix:@abstract")->to_string(), "unix:@abstract");
  EXPECT_EQ(parse_address("unix:@abstract")->unix_path(), "");
  auto udp = parse_address("udp:127.0.0.1:5353");
  ASSERT_TRUE(udp.ok());
  EXPECT_EQ(udp->transport, Transport::kUdp);
  EXPECT_EQ(udp->socket_type(), SOCK_DGRAM);
  EXPECT_EQ(udp->to_string(), "udp:127.0.0.1:5353");
}

TEST(Address, ResolvesLocalhost) {
  auto a = parse_address("localhost:9000");
  ASSERT_TRUE(a.ok()) << a.error().what();
  EXPECT_EQ(a->port(), 9000);
}

TEST(Address, RejectsMalformedWithOneLineReason) {
  for (const char* bad : {"", "70000", "-1", "abc", "127.0.0.1:", "127.0.0.1:x", "[::1]", "[::1]80",
                          "::1:80", "unix:", "udp:", "[]:80", ":80x"}) {
    auto a = parse_address(bad);
    EXPECT_FALSE(a.ok()) << "accepted '" << bad << "'";
    if (!a.ok()) {
      EXPECT_EQ(a.error().what().find('\n'), std::string::npos);
      EXPECT_NE(a.error().what().find("bad address"), std::string::npos) << a.error().what();
    }
  }
  std::string long_path = "unix:/" + std::string(200, 'a');
  EXPECT_FALSE(parse_address(long_path).ok());
}

TEST(ListenSpec, NameIsOptional) {
  auto s = parse_listen_spec("http=127.0.0.1:8100");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->name, "http");
  EXPECT_EQ(s->address.port(), 8100);
  auto unnamed = parse_listen_spec("[::1]:8100");
  ASSERT_TRUE(unnamed.ok());
  EXPECT_EQ(unnamed->name, "");
  auto path_with_eq = parse_listen_spec("unix:/tmp/a=b");
  ASSERT_TRUE(path_with_eq.ok());
  EXPECT_EQ(path_with_eq->address.unix_path(), "/tmp/a=b");
}

TEST(ListenSpec, RejectsBadNames) {
  EXPECT_FALSE(parse_listen_spec("bad name=8100").ok());
  EXPECT_FALSE(parse_listen_spec("=8100").ok());
  EXPECT_FALSE(parse_listen_spec(std::string(65, 'n') + "=8100").ok());
}

}  // namespace
}  // namespace baton

// Which held listener an app's bind() adopts (src/adopt/match.h): the rules of a real bind.
#include "adopt/match.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/address.h"

namespace baton::adopt {
namespace {

Address addr(const std::string& text) {
  auto a = parse_address(text);
  EXPECT_TRUE(a.ok()) << text;
  return a.ok() ? a.value() : Address{};
}

// IPv4 spelt the JDK's way: ::ffff:a.b.c.d on an AF_INET6 socket.
Address mapped(const std::string& v4, int port) {
  return addr("[::ffff:" + v4 + "]:" + std::to_string(port));
}

HeldSocket held(const std::string& text, bool v6only = false, int type = SOCK_STREAM,
                const char* name = "") {
  Address a = addr(text);
  HeldSocket h;
  h.type = type;
  h.v6only = v6only;
  std::memcpy(&h.addr, &a.storage, sizeof(h.addr));
  h.addr_len = a.length;
  std::snprintf(h.name, sizeof(h.name), "%s", name);
  h.probe = std::string(name) == "baton-probe";
  return h;
}

Match find(const std::vector<HeldSocket>& hs, const Address& want, int app_family = 0,
           int type = SOCK_STREAM) {
  return find_match(hs.data(), static_cast<int>(hs.size()), app_family ? app_family : want.family(),
                    type, want.sockaddr_ptr(), want.length);
}

TEST(AdoptMatch, ExactAddressAndPortIsExact) {
  std::vector<HeldSocket> hs{held("127.0.0.1:8080")};
  Match m = find(hs, addr("127.0.0.1:8080"));
  EXPECT_EQ(m.index, 0);
  EXPECT_EQ(m.quality, MatchQuality::kExact);
}

TEST(AdoptMatch, V4MappedSpellingIsTheSameAddress) {
  std::vector<HeldSocket> hs{held("127.0.0.1:8080")};
  Match m = find(hs, mapped("127.0.0.1", 8080), AF_INET6);
  EXPECT_EQ(m.index, 0);
  EXPECT_EQ(m.quality, MatchQuality::kExact);
  // ::ffff:0.0.0.0 is the IPv4 wildcard.
  std::vector<HeldSocket> any{held("0.0.0.0:8080")};
  EXPECT_EQ(find(any, mapped("0.0.0.0", 8080), AF_INET6).quality, MatchQuality::kExact);
}

TEST(AdoptMatch, OtherPortOrPortZeroNeverMatches) {
  std::vector<HeldSocket> hs{held("0.0.0.0:8080"), held("[::]:8080")};
  EXPECT_EQ(find(hs, addr("127.0.0.1:8081")).index, -1);
  EXPECT_EQ(find(hs, addr("127.0.0.1:0")).index, -1);
  EXPECT_EQ(find(hs, addr("[::]:0")).index, -1);
}

TEST(AdoptMatch, WildcardsCoverAsARealBindWould) {
  std::vector<HeldSocket> v4any{held("0.0.0.0:80")};
  EXPECT_EQ(find(v4any, addr("127.0.0.1:80")).quality, MatchQuality::kCovers);
  EXPECT_EQ(find(v4any, addr("[::1]:80")).quality, MatchQuality::kNone);

  std::vector<HeldSocket> dual{held("[::]:80", /*v6only=*/false)};
  EXPECT_EQ(find(dual, addr("127.0.0.1:80")).quality, MatchQuality::kCovers);
  EXPECT_EQ(find(dual, addr("0.0.0.0:80")).quality, MatchQuality::kCovers);
  EXPECT_EQ(find(dual, addr("[::1]:80")).quality, MatchQuality::kCovers);
  EXPECT_EQ(find(dual, addr("[::]:80")).quality, MatchQuality::kExact);

  std::vector<HeldSocket> v6only{held("[::]:80", /*v6only=*/true)};
  EXPECT_EQ(find(v6only, addr("[::1]:80")).quality, MatchQuality::kCovers);
  EXPECT_EQ(find(v6only, addr("127.0.0.1:80")).quality, MatchQuality::kNone);
}

TEST(AdoptMatch, AppWildcardOverHeldSpecificOverlaps) {
  // `python -m http.server 8000` binds [::] (or 0.0.0.0) while baton holds 127.0.0.1:8000: the
  // app serves what baton holds, instead of failing with EADDRINUSE.
  std::vector<HeldSocket> hs{held("127.0.0.1:8000")};
  EXPECT_EQ(find(hs, addr("[::]:8000")).quality, MatchQuality::kOverlaps);
  EXPECT_EQ(find(hs, addr("0.0.0.0:8000")).quality, MatchQuality::kOverlaps);
  EXPECT_EQ(find(hs, addr("[::]:8000")).index, 0);
}

TEST(AdoptMatch, ADifferentSpecificAddressDoesNotMatch) {
  std::vector<HeldSocket> hs{held("127.0.0.1:8000")};
  EXPECT_EQ(find(hs, addr("127.0.0.2:8000")).index, -1);
  EXPECT_EQ(find(hs, addr("[::1]:8000")).index, -1);
}

TEST(AdoptMatch, BestQualityWinsThenTheAppsFamily) {
  std::vector<HeldSocket> hs{held("0.0.0.0:80"), held("127.0.0.1:80"), held("[::1]:80")};
  EXPECT_EQ(find(hs, addr("127.0.0.1:80")).index, 1);  // exact beats covers
  EXPECT_EQ(find(hs, addr("[::1]:80")).index, 2);
  // The wildcard [::] exactly matches nothing, is covered by nothing: all three overlap, and the
  // first of the app's family wins.
  EXPECT_EQ(find(hs, addr("[::]:80")).index, 2);
  // A v4 wildcard on an AF_INET socket: 0.0.0.0 exact.
  EXPECT_EQ(find(hs, addr("0.0.0.0:80")).index, 0);
}

TEST(AdoptMatch, TypeMustMatchAndProbeListenersAreNeverAdopted) {
  std::vector<HeldSocket> hs{held("127.0.0.1:53", false, SOCK_DGRAM),
                             held("127.0.0.1:9999", false, SOCK_STREAM, "baton-probe")};
  EXPECT_EQ(find(hs, addr("127.0.0.1:53"), 0, SOCK_STREAM).index, -1);
  EXPECT_EQ(find(hs, addr("127.0.0.1:53"), 0, SOCK_DGRAM).index, 0);
  EXPECT_EQ(find(hs, addr("127.0.0.1:9999")).index, -1);
}

TEST(AdoptMatch, UnixSocketsMatchByExactPathOrAbstractName) {
  std::vector<HeldSocket> hs{held("unix:/run/app.sock"), held("unix:@abstract")};
  EXPECT_EQ(find(hs, addr("unix:/run/app.sock")).index, 0);
  EXPECT_EQ(find(hs, addr("unix:/run/other.sock")).index, -1);
  EXPECT_EQ(find(hs, addr("unix:@abstract")).index, 1);
  EXPECT_EQ(find(hs, addr("unix:@abstrac")).index, -1);
  // An IP bind never matches a unix socket, whatever the numbers.
  EXPECT_EQ(find(hs, addr("127.0.0.1:1")).index, -1);
}

TEST(AdoptMatch, FormatsAddressesForMessages) {
  char buf[128];
  Address a = addr("[::1]:8080");
  EXPECT_STREQ(format_address(a.sockaddr_ptr(), a.length, buf, sizeof(buf)), "[::1]:8080");
  a = addr("127.0.0.1:80");
  EXPECT_STREQ(format_address(a.sockaddr_ptr(), a.length, buf, sizeof(buf)), "127.0.0.1:80");
  a = addr("unix:@name");
  EXPECT_STREQ(format_address(a.sockaddr_ptr(), a.length, buf, sizeof(buf)), "unix:@name");
  a = addr("unix:/x/y");
  EXPECT_STREQ(format_address(a.sockaddr_ptr(), a.length, buf, sizeof(buf)), "unix:/x/y");
  EXPECT_EQ(address_port(a.sockaddr_ptr(), a.length), 0);
}

}  // namespace
}  // namespace baton::adopt

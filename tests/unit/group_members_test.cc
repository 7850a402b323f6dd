// Unit tests of group_members.h: reading a sock_diag dump for the sockets bound to a listener's
// address, telling baton's members from strangers, and one real dump on loopback.
#include "supervisor/group_members.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/listener.h"

namespace baton {
namespace {

using ::testing::ElementsAre;

Address parse(const char* text) {
  auto a = parse_address(text);
  EXPECT_TRUE(a.ok()) << text;
  return a.ok() ? *a : Address{};
}

void append(std::vector<std::uint8_t>& out, std::uint16_t type, const void* payload,
            size_t length) {
  const size_t at = out.size();
  out.resize(at + NLMSG_ALIGN(NLMSG_LENGTH(length)));
  nlmsghdr header{};
  header.nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(length));
  header.nlmsg_type = type;
  std::memcpy(out.data() + at, &header, sizeof(header));
  if (length > 0) std::memcpy(out.data() + at + NLMSG_HDRLEN, payload, length);
}

// A record of a socket of `family` bound to `ip` (network order bytes) and `port`.
inet_diag_msg record(int family, const void* ip, size_t ip_len, std::uint16_t port,
                     std::uint32_t inode, std::uint32_t interface = 0) {
  inet_diag_msg m{};
  m.idiag_family = static_cast<std::uint8_t>(family);
  m.id.idiag_sport = htons(port);
  m.id.idiag_if = interface;
  std::memcpy(m.id.idiag_src, ip, ip_len);
  m.idiag_inode = inode;
  return m;
}

TEST(GroupMembers, KeepsOnlyTheSocketsBoundToTheListenersOwnAddress) {
  const Address bound = parse("127.0.0.1:8080");
  const std::uint8_t here[4] = {127, 0, 0, 1};
  const std::uint8_t other[4] = {127, 0, 0, 2};
  const std::uint8_t any[4] = {0, 0, 0, 0};
  std::vector<std::uint8_t> data;
  for (const auto& m : {record(AF_INET, here, 4, 8080, 11), record(AF_INET, other, 4, 8080, 12),
                        record(AF_INET, any, 4, 8080, 13), record(AF_INET, here, 4, 8081, 14),
                        record(AF_INET, here, 4, 8080, 15, 2),  // bound to a device: not the group
                        record(AF_INET6, here, 4, 8080, 16), record(AF_INET, here, 4, 8080, 17)}) {
    append(data, SOCK_DIAG_BY_FAMILY, &m, sizeof(m));
  }
  std::vector<std::uint64_t> inodes;
  auto done = parse_group_datagram(data, bound, inodes, 100);
  ASSERT_TRUE(done.ok()) << done.error().what();
  EXPECT_FALSE(*done);
  EXPECT_THAT(inodes, ElementsAre(11u, 17u));
  append(data, NLMSG_DONE, nullptr, 0);
  inodes.clear();
  done = parse_group_datagram(data, bound, inodes, 100);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(*done);
}

TEST(GroupMembers, MatchesAnIpv6AddressByAllSixteenBytes) {
  const Address bound = parse("[::1]:443");
  std::uint8_t loopback[16] = {};
  loopback[15] = 1;
  std::uint8_t other[16] = {};
  other[15] = 2;
  std::vector<std::uint8_t> data;
  for (const auto& m :
       {record(AF_INET6, other, 16, 443, 1), record(AF_INET6, loopback, 16, 443, 2)}) {
    append(data, SOCK_DIAG_BY_FAMILY, &m, sizeof(m));
  }
  std::vector<std::uint64_t> inodes;
  ASSERT_TRUE(parse_group_datagram(data, bound, inodes, 100).ok());
  EXPECT_THAT(inodes, ElementsAre(2u));
}

TEST(GroupMembers, RefusesWhatDoesNotFitAndReportsTheKernelsError) {
  const Address bound = parse("127.0.0.1:8080");
  std::vector<std::uint64_t> inodes;
  std::vector<std::uint8_t> data;
  const int code = -ENOENT;
  append(data, NLMSG_ERROR, &code, sizeof(code));
  auto r = parse_group_datagram(data, bound, inodes, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ENOENT);
  // A header longer than the datagram.
  data.assign(sizeof(nlmsghdr), 0);
  nlmsghdr header{};
  header.nlmsg_len = 1000;
  header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  std::memcpy(data.data(), &header, sizeof(header));
  EXPECT_FALSE(parse_group_datagram(data, bound, inodes, 100).ok());
  // More sockets on the address than the limit.
  const std::uint8_t here[4] = {127, 0, 0, 1};
  data.clear();
  for (std::uint32_t i = 0; i < 3; ++i) {
    auto m = record(AF_INET, here, 4, 8080, i + 1);
    append(data, SOCK_DIAG_BY_FAMILY, &m, sizeof(m));
  }
  r = parse_group_datagram(data, bound, inodes, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EOVERFLOW);
}

TEST(GroupMembers, StrangersAreTheInodesBatonDoesNotHold) {
  const std::vector<std::uint64_t> seen = {5, 7, 9};
  const std::vector<std::uint64_t> ours = {9, 5};
  EXPECT_THAT(strangers(seen, ours), ElementsAre(7u));
  EXPECT_TRUE(strangers(ours, seen).empty());
}

TEST(GroupMembers, TheKernelListsEveryListenerOnTheAddressAndNoOther) {
  BindOptions reuse;
  reuse.reuse_port = true;
  auto first = bind_listener(parse("127.0.0.1:0"), reuse);
  ASSERT_TRUE(first.ok()) << first.error().what();
  auto bound = bound_address(first->get(), Transport::kTcp);
  ASSERT_TRUE(bound.ok());
  auto second = bind_listener(*bound, reuse);
  ASSERT_TRUE(second.ok()) << second.error().what();
  auto elsewhere = bind_listener(parse("127.0.0.1:0"), reuse);
  ASSERT_TRUE(elsewhere.ok());
  auto seen = sockets_bound_to(*bound);
  ASSERT_TRUE(seen.ok()) << seen.error().what();
  EXPECT_THAT(*seen, ::testing::UnorderedElementsAre(socket_inode(first->get()),
                                                     socket_inode(second->get())));
}

TEST(GroupMembers, TheKernelListsUdpSocketsBoundToTheAddressToo) {
  BindOptions reuse;
  reuse.reuse_port = true;
  auto first = bind_listener(parse("udp:127.0.0.1:0"), reuse);
  ASSERT_TRUE(first.ok()) << first.error().what();
  auto bound = bound_address(first->get(), Transport::kUdp);
  ASSERT_TRUE(bound.ok());
  auto second = bind_listener(*bound, reuse);
  ASSERT_TRUE(second.ok()) << second.error().what();
  auto seen = sockets_bound_to(*bound);
  if (!seen.ok() && seen.error().code() == ENOENT) GTEST_SKIP() << "no udp_diag in this kernel";
  ASSERT_TRUE(seen.ok()) << seen.error().what();
  EXPECT_THAT(*seen, ::testing::UnorderedElementsAre(socket_inode(first->get()),
                                                     socket_inode(second->get())));
}

}  // namespace
}  // namespace baton

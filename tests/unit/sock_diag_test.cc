// Unit tests of the sock_diag helper (src/common/sock_diag.h): the requests as they go on the
// wire, the reading of a lookup reply, and one real lookup against the kernel on loopback.
#include "common/sock_diag.h"

#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "baton/fd.h"
#include "common/listener.h"

namespace baton {
namespace {

Address parse(const char* text) {
  auto a = parse_address(text);
  EXPECT_TRUE(a.ok()) << text;
  return a.ok() ? *a : Address{};
}

std::vector<std::uint8_t> message(std::uint16_t type, const void* payload, size_t length) {
  std::vector<std::uint8_t> out(NLMSG_LENGTH(length));
  nlmsghdr header{};
  header.nlmsg_len = static_cast<std::uint32_t>(out.size());
  header.nlmsg_type = type;
  std::memcpy(out.data(), &header, sizeof(header));
  std::memcpy(out.data() + NLMSG_HDRLEN, payload, length);
  return out;
}

TEST(SockDiagRequest, LookupCarriesTheExactFourTupleInNetworkOrder) {
  auto r = tcp_lookup_request(parse("127.0.0.1:8100"), parse("127.0.0.2:40000"));
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(r->header.nlmsg_len, sizeof(SockDiagRequest));
  EXPECT_EQ(r->header.nlmsg_type, SOCK_DIAG_BY_FAMILY);
  EXPECT_EQ(r->header.nlmsg_flags, NLM_F_REQUEST);  // one socket, not a dump
  EXPECT_EQ(r->body.sdiag_family, AF_INET);
  EXPECT_EQ(r->body.sdiag_protocol, IPPROTO_TCP);
  EXPECT_EQ(r->body.idiag_states, kAllTcpStates);
  EXPECT_EQ(r->body.id.idiag_sport, htons(8100));
  EXPECT_EQ(r->body.id.idiag_dport, htons(40000));
  EXPECT_EQ(r->body.id.idiag_src[0], htonl(0x7f000001));
  EXPECT_EQ(r->body.id.idiag_dst[0], htonl(0x7f000002));
  EXPECT_EQ(r->body.id.idiag_cookie[0], INET_DIAG_NOCOOKIE);
  EXPECT_EQ(r->body.id.idiag_cookie[1], INET_DIAG_NOCOOKIE);
}

TEST(SockDiagRequest, LookupOfIpv6CopiesAllSixteenBytes) {
  auto r = tcp_lookup_request(parse("[::1]:8100"), parse("[::1]:40000"));
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(r->body.sdiag_family, AF_INET6);
  EXPECT_EQ(std::memcmp(r->body.id.idiag_src, &in6addr_loopback, 16), 0);
  EXPECT_EQ(std::memcmp(r->body.id.idiag_dst, &in6addr_loopback, 16), 0);
}

TEST(SockDiagRequest, LookupRefusesUnixUdpAndMixedFamilies) {
  EXPECT_FALSE(tcp_lookup_request(parse("unix:/tmp/x"), parse("unix:/tmp/y")).ok());
  EXPECT_FALSE(tcp_lookup_request(parse("udp:127.0.0.1:53"), parse("udp:127.0.0.1:53")).ok());
  EXPECT_FALSE(tcp_lookup_request(parse("127.0.0.1:1"), parse("[::1]:2")).ok());
}

TEST(SockDiagRequest, DumpAsksForEverySocketOnTheLocalPortInTheStatesGiven) {
  const std::uint8_t info = 1U << (INET_DIAG_INFO - 1);
  SockDiagRequest r = tcp_dump_request(AF_INET6, 8100, 1U << 1, info);
  EXPECT_EQ(r.header.nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
  EXPECT_EQ(r.body.sdiag_family, AF_INET6);
  EXPECT_EQ(r.body.idiag_states, 1U << 1);
  EXPECT_EQ(r.body.idiag_ext, info);
  EXPECT_EQ(r.body.id.idiag_sport, htons(8100));
  EXPECT_EQ(r.body.id.idiag_dport, 0);
}

TEST(SockDiagLookupReply, ReadsTheRecord) {
  inet_diag_msg msg{};
  msg.idiag_inode = 4242;
  auto bytes = message(SOCK_DIAG_BY_FAMILY, &msg, sizeof(msg));
  auto parsed = parse_lookup_reply(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().what();
  EXPECT_EQ(parsed->idiag_inode, 4242U);
}

TEST(SockDiagLookupReply, KernelErrorKeepsItsErrno) {
  nlmsgerr err{};
  err.error = -ENOENT;
  auto parsed = parse_lookup_reply(message(NLMSG_ERROR, &err, sizeof(err)));
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code(), ENOENT);
}

TEST(SockDiagLookupReply, RefusesTruncatedLyingAndForeignMessages) {
  inet_diag_msg msg{};
  auto bytes = message(SOCK_DIAG_BY_FAMILY, &msg, sizeof(msg));
  // Cut short: the header says more than arrived.
  auto cut = parse_lookup_reply(std::span(bytes.data(), bytes.size() - 1));
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().code(), EPROTO);
  EXPECT_FALSE(parse_lookup_reply(std::span(bytes.data(), 4)).ok());
  // A record too short to be an inet_diag_msg.
  EXPECT_FALSE(parse_lookup_reply(message(SOCK_DIAG_BY_FAMILY, &msg, 8)).ok());
  // A message of another type.
  EXPECT_FALSE(parse_lookup_reply(message(NLMSG_DONE, &msg, sizeof(msg))).ok());
}

// The kernel, asked about the server side of a loopback connection: no inode while it waits in
// the accept queue, one once accepted; ENOENT for a 4-tuple nobody has.
TEST(SockDiagSocket, LookupTellsQueuedFromAcceptedAndNoneFromBoth) {
  auto listener = bind_listener(parse("127.0.0.1:0"), BindOptions{});
  ASSERT_TRUE(listener.ok()) << listener.error().what();
  auto server = bound_address(listener->get(), Transport::kTcp);
  ASSERT_TRUE(server.ok());
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(client.valid());
  ASSERT_EQ(::connect(client.get(), server->sockaddr_ptr(), server->length), 0);
  auto client_address = bound_address(client.get(), Transport::kTcp);
  ASSERT_TRUE(client_address.ok());

  auto inode = [&](const Address& local, const Address& remote) -> Result<std::uint32_t> {
    auto msg = lookup_tcp_socket(local, remote);
    if (!msg) return msg.error();
    return msg->idiag_inode;
  };
  auto queued = inode(*server, *client_address);
  ASSERT_TRUE(queued.ok()) << queued.error().what();
  EXPECT_EQ(*queued, 0U);

  Fd accepted(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted.valid());
  auto taken = inode(*server, *client_address);
  ASSERT_TRUE(taken.ok()) << taken.error().what();
  EXPECT_NE(*taken, 0U);

  Address nobody = *client_address;
  reinterpret_cast<sockaddr_in*>(&nobody.storage)->sin_port = htons(1);
  auto none = inode(*server, nobody);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), ENOENT);
}

TEST(SockDiagSocket, ADatagramLargerThanTheBufferIsAnErrorNotCut) {
  auto diag = SockDiagSocket::open();
  ASSERT_TRUE(diag.ok()) << diag.error().what();
  auto request = tcp_lookup_request(parse("127.0.0.1:1"), parse("127.0.0.1:2"));
  ASSERT_TRUE(request.ok());
  ASSERT_TRUE(diag->send(*request).ok());
  std::array<std::uint8_t, 8> tiny;
  auto reply = diag->receive(tiny);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code(), EMSGSIZE);
}

}  // namespace
}  // namespace baton

// Unit tests of drain_watch's pure parts: the idle and quiet decisions, and the parsers of what
// /proc and sock_diag hand over (untrusted: truncated, oversized, malformed).
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "supervisor/drain_watch.h"

namespace baton {
namespace {

constexpr std::uint8_t kEstablished = 1;
constexpr std::uint8_t kCloseWait = 8;

TcpConnection idle_connection() {
  TcpConnection c;
  c.inode = 42;
  c.state = kEstablished;
  c.has_info = true;
  c.bytes_received = 80;  // a request came
  c.bytes_sent = 200;     // a response went out
  c.send_queue = 200;     // not acknowledged yet: the client's ACK comes with its next request
  c.last_data_recv_ms = 500;
  c.last_data_sent_ms = 499;  // the response after the request
  return c;
}

TEST(DrainIdle, ConnectionWhoseLastActivityWasAResponseIsIdle) {
  EXPECT_TRUE(is_idle_keepalive(idle_connection()));
}

TEST(DrainIdle, RequestAndResponseInTheSameTickCountAsIdle) {
  TcpConnection c = idle_connection();
  c.last_data_sent_ms = c.last_data_recv_ms;
  EXPECT_TRUE(is_idle_keepalive(c));
}

TEST(DrainIdle, RequestReadButNotAnsweredIsBusy) {
  TcpConnection c = idle_connection();
  c.last_data_recv_ms = 100;  // a request came after the last response
  c.last_data_sent_ms = 2000;
  EXPECT_FALSE(is_idle_keepalive(c));
}

TEST(DrainIdle, FirstRequestNotYetAnsweredIsBusy) {
  TcpConnection c = idle_connection();
  c.bytes_sent = 0;
  c.send_queue = 0;  // set up and given its request in the same tick: the times are equal
  c.last_data_recv_ms = c.last_data_sent_ms = 300;
  EXPECT_FALSE(is_idle_keepalive(c));
}

TEST(DrainIdle, UnreadInputOrUnsentOutputIsBusy) {
  TcpConnection unread = idle_connection();
  unread.recv_queue = 1;
  EXPECT_FALSE(is_idle_keepalive(unread));
  TcpConnection unsent = idle_connection();
  unsent.notsent_bytes = 4096;  // a response still being written
  EXPECT_FALSE(is_idle_keepalive(unsent));
}

TEST(DrainIdle, OnlyEstablishedConnectionsWithTcpInfoAreJudged) {
  TcpConnection closing = idle_connection();
  closing.state = kCloseWait;
  EXPECT_FALSE(is_idle_keepalive(closing));
  TcpConnection unknown = idle_connection();
  unknown.has_info = false;
  EXPECT_FALSE(is_idle_keepalive(unknown));
}

TEST(DrainIdle, FreshConnectionIsLeftAloneForASecond) {
  TcpConnection c = idle_connection();
  c.bytes_received = 0;
  c.bytes_sent = 0;
  c.send_queue = 0;
  c.last_data_recv_ms = 30;
  c.last_data_sent_ms = 30;
  EXPECT_FALSE(is_idle_keepalive(c)) << "the client is about to send its request";
  c.last_data_recv_ms = c.last_data_sent_ms = 1500;
  EXPECT_TRUE(is_idle_keepalive(c));
}

TEST(DrainQuiet, QuietOnlyWithEmptyQueuesAndNoConnection) {
  const std::uint32_t empty[] = {0, 0};
  const std::uint32_t one_waiting[] = {0, 1};
  EXPECT_TRUE(is_quiet(empty, 0));
  EXPECT_FALSE(is_quiet(empty, 1));
  EXPECT_FALSE(is_quiet(one_waiting, 0));
  EXPECT_TRUE(is_quiet({}, 0)) << "no listener of its own and nothing held";
}

TEST(DrainParse, SocketInodeOfLink) {
  EXPECT_EQ(socket_inode_of_link("socket:[12345]"), 12345u);
  EXPECT_EQ(socket_inode_of_link("socket:[]"), 0u);
  EXPECT_EQ(socket_inode_of_link("socket:[12x]"), 0u);
  EXPECT_EQ(socket_inode_of_link("socket:[99999999999999999999999]"), 0u) << "overflow";
  EXPECT_EQ(socket_inode_of_link("pipe:[12345]"), 0u);
  EXPECT_EQ(socket_inode_of_link("/dev/null"), 0u);
  EXPECT_EQ(socket_inode_of_link(""), 0u);
}

TEST(DrainParse, PgidOfStatReadsAfterTheLastParenthesis) {
  EXPECT_EQ(pgid_of_stat("1234 (server) S 1 1234 1234 0 -1"), 1234);
  EXPECT_EQ(pgid_of_stat("1235 (evil) S 1 99 ) R 7 4321 4321 0"), 4321)
      << "a command name holding ') ' must not shift the fields";
  EXPECT_EQ(pgid_of_stat("1235 (x) S 1"), -1);
  EXPECT_EQ(pgid_of_stat("1235 (x) S 1 abc 5 0"), -1);
  EXPECT_EQ(pgid_of_stat("no parenthesis"), -1);
  EXPECT_EQ(pgid_of_stat(""), -1);
}

TEST(DrainParse, ChildrenListIsBoundedAndSkipsGarbage) {
  EXPECT_EQ(parse_children("12 34 ", 10), (std::vector<pid_t>{12, 34}));
  EXPECT_EQ(parse_children("12 x 0 -5 56\n", 10), (std::vector<pid_t>{12, 56}));
  EXPECT_EQ(parse_children("1 2 3 4 5", 3), (std::vector<pid_t>{1, 2, 3}));
  EXPECT_TRUE(parse_children("", 3).empty());
}

// sock_diag records, built as the kernel lays them out.
class Datagram {
 public:
  void add_socket(std::uint64_t inode, std::uint16_t sport, std::uint8_t state,
                  const tcp_info* info, size_t info_len) {
    inet_diag_msg msg{};
    msg.idiag_family = AF_INET;
    msg.idiag_state = state;
    msg.idiag_inode = static_cast<std::uint32_t>(inode);
    msg.id.idiag_sport = htons(sport);
    msg.id.idiag_dport = htons(50000);
    msg.idiag_rqueue = 3;
    msg.idiag_wqueue = 5;
    std::vector<std::uint8_t> payload(NLMSG_ALIGN(sizeof(msg)));
    std::memcpy(payload.data(), &msg, sizeof(msg));
    if (info != nullptr) {
      rtattr attr{};
      attr.rta_type = INET_DIAG_INFO;
      attr.rta_len = static_cast<unsigned short>(RTA_LENGTH(info_len));
      std::vector<std::uint8_t> a(RTA_ALIGN(attr.rta_len));
      std::memcpy(a.data(), &attr, sizeof(attr));
      std::memcpy(a.data() + RTA_LENGTH(0), info, info_len);
      payload.insert(payload.end(), a.begin(), a.end());
    }
    add(SOCK_DIAG_BY_FAMILY, payload);
  }
  void add(std::uint16_t type, const std::vector<std::uint8_t>& payload) {
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(NLMSG_HDRLEN + payload.size());
    h.nlmsg_type = type;
    size_t at = bytes_.size();
    bytes_.resize(at + NLMSG_ALIGN(h.nlmsg_len));
    std::memcpy(bytes_.data() + at, &h, sizeof(h));
    std::memcpy(bytes_.data() + at + NLMSG_HDRLEN, payload.data(), payload.size());
  }
  void done() { add(NLMSG_DONE, std::vector<std::uint8_t>(4)); }
  std::vector<std::uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<std::uint8_t> bytes_;
};

TEST(DrainParse, DiagDatagramYieldsSocketsWithTheirTcpInfo) {
  tcp_info info{};
  info.tcpi_last_data_recv = 700;
  info.tcpi_last_data_sent = 600;
  info.tcpi_bytes_received = 10;
  info.tcpi_bytes_sent = 20;
  info.tcpi_notsent_bytes = 9;
  Datagram d;
  d.add_socket(7, 8080, kEstablished, &info, sizeof(info));
  d.add_socket(8, 8080, kCloseWait, nullptr, 0);
  d.done();
  std::vector<TcpConnection> out;
  auto done = parse_diag_datagram(d.bytes(), out, 100);
  ASSERT_TRUE(done.ok()) << done.error().what();
  EXPECT_TRUE(*done);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].inode, 7u);
  EXPECT_EQ(out[0].local_port, 8080);
  EXPECT_EQ(out[0].remote_port, 50000);
  EXPECT_EQ(out[0].recv_queue, 3u);
  EXPECT_EQ(out[0].send_queue, 5u);
  EXPECT_TRUE(out[0].has_info);
  EXPECT_EQ(out[0].last_data_recv_ms, 700u);
  EXPECT_EQ(out[0].last_data_sent_ms, 600u);
  EXPECT_EQ(out[0].bytes_received, 10u);
  EXPECT_EQ(out[0].bytes_sent, 20u);
  EXPECT_EQ(out[0].notsent_bytes, 9u);
  EXPECT_EQ(out[1].state, kCloseWait);
  EXPECT_FALSE(out[1].has_info);
}

TEST(DrainParse, DatagramWithoutDoneAsksForMore) {
  Datagram d;
  d.add_socket(7, 80, kEstablished, nullptr, 0);
  std::vector<TcpConnection> out;
  auto done = parse_diag_datagram(d.bytes(), out, 100);
  ASSERT_TRUE(done.ok());
  EXPECT_FALSE(*done);
  EXPECT_EQ(out.size(), 1u);
}

TEST(DrainParse, ShortTcpInfoIsNotTrusted) {
  tcp_info info{};
  info.tcpi_last_data_sent = 1;
  Datagram d;
  d.add_socket(7, 80, kEstablished, &info, 16);  // an older or hostile kernel's short record
  std::vector<TcpConnection> out;
  ASSERT_TRUE(parse_diag_datagram(d.bytes(), out, 100).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].has_info);
}

TEST(DrainParse, RecordLongerThanTheDatagramIsRefused) {
  Datagram d;
  d.add_socket(7, 80, kEstablished, nullptr, 0);
  nlmsghdr h;
  std::memcpy(&h, d.bytes().data(), sizeof(h));
  h.nlmsg_len = 1 << 20;
  std::memcpy(d.bytes().data(), &h, sizeof(h));
  std::vector<TcpConnection> out;
  EXPECT_FALSE(parse_diag_datagram(d.bytes(), out, 100).ok());
  h.nlmsg_len = 3;  // shorter than its own header
  std::memcpy(d.bytes().data(), &h, sizeof(h));
  EXPECT_FALSE(parse_diag_datagram(d.bytes(), out, 100).ok());
  EXPECT_TRUE(out.empty());
}

TEST(DrainParse, AttributeLongerThanItsRecordIsIgnored) {
  tcp_info info{};
  Datagram d;
  d.add_socket(7, 80, kEstablished, &info, sizeof(info));
  // Make the attribute claim more than the record holds.
  const size_t attr_at = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(inet_diag_msg));
  rtattr attr;
  std::memcpy(&attr, d.bytes().data() + attr_at, sizeof(attr));
  attr.rta_len = 60000;
  std::memcpy(d.bytes().data() + attr_at, &attr, sizeof(attr));
  std::vector<TcpConnection> out;
  ASSERT_TRUE(parse_diag_datagram(d.bytes(), out, 100).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].has_info);
}

TEST(DrainParse, NetlinkErrorCarriesItsErrno) {
  Datagram d;
  int code = -EPERM;
  std::vector<std::uint8_t> payload(sizeof(nlmsgerr));
  std::memcpy(payload.data(), &code, sizeof(code));
  d.add(NLMSG_ERROR, payload);
  std::vector<TcpConnection> out;
  auto r = parse_diag_datagram(d.bytes(), out, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), EPERM);
}

TEST(DrainParse, SocketCountIsBounded) {
  Datagram d;
  for (int i = 0; i < 10; ++i)
    d.add_socket(static_cast<std::uint64_t>(i + 1), 80, kEstablished, nullptr, 0);
  std::vector<TcpConnection> out;
  ASSERT_TRUE(parse_diag_datagram(d.bytes(), out, 4).ok());
  EXPECT_EQ(out.size(), 4u);
}

TEST(DrainParse, TruncatedTailIsIgnored) {
  Datagram d;
  d.add_socket(7, 80, kEstablished, nullptr, 0);
  d.bytes().resize(d.bytes().size() + 7, 0xff);  // less than a header's worth of trailing bytes
  std::vector<TcpConnection> out;
  auto r = parse_diag_datagram(d.bytes(), out, 100);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(out.size(), 1u);
}

}  // namespace
}  // namespace baton

// The handover wire protocol (lib/handover_protocol.h) without any I/O.
#include "lib/handover_protocol.h"

#include <sys/socket.h>

#include <gtest/gtest.h>

namespace baton::handover {
namespace {

// Decodes a packet the test knows to be well-formed.
Message msg(std::string_view packet) {
  auto m = decode(packet);
  if (!m.ok()) {
    ADD_FAILURE() << m.error().what();
    return {};
  }
  return m.value();
}

TEST(HandoverCodec, HelloRoundTrips) {
  std::string packet = encode(make_hello({1, 1, 4242}));
  EXPECT_EQ(packet, "baton-handover HELLO\nmin_version=1\nmax_version=1\npid=4242\n");
  auto m = decode(packet);
  ASSERT_TRUE(m.ok()) << m.error().what();
  auto h = parse_hello(*m);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->pid, 4242);
  EXPECT_EQ(h->min_version, 1);
}

TEST(HandoverCodec, OfferRoundTripsWithListenersInOrder) {
  Offer o{1, 77, {{"http", SOCK_STREAM, "127.0.0.1:8080"}, {"dns", SOCK_DGRAM, "udp:[::1]:53"}}};
  auto m = decode(encode(make_offer(o)));
  ASSERT_TRUE(m.ok());
  auto back = parse_offer(*m, 2);
  ASSERT_TRUE(back.ok()) << back.error().what();
  ASSERT_EQ(back->listeners.size(), 2u);
  EXPECT_EQ(back->pid, 77);
  EXPECT_EQ(back->listeners[0].name, "http");
  EXPECT_EQ(back->listeners[0].address, "127.0.0.1:8080");
  EXPECT_EQ(back->listeners[1].type, SOCK_DGRAM);
  EXPECT_EQ(back->listeners[1].address, "udp:[::1]:53");
}

TEST(HandoverCodec, OfferMustCarryOneDescriptorPerListener) {
  Offer o{1, 77, {{"http", SOCK_STREAM, "127.0.0.1:8080"}}};
  auto m = decode(encode(make_offer(o)));
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(parse_offer(*m, 0).ok());
  EXPECT_FALSE(parse_offer(*m, 2).ok());
  EXPECT_TRUE(parse_offer(*m, 1).ok());
}

TEST(HandoverCodec, MalformedOffersAreRejected) {
  auto offer = [](std::string body) { return msg("baton-handover OFFER\n" + body); };
  EXPECT_FALSE(parse_offer(offer("pid=1\n"), 0).ok());             // no version
  EXPECT_FALSE(parse_offer(offer("version=2\npid=1\n"), 0).ok());  // not offered
  EXPECT_FALSE(parse_offer(offer("version=1\npid=0\n"), 0).ok());  // bad pid
  EXPECT_FALSE(parse_offer(offer("version=1\npid=1\nlistener=http\n"), 1).ok());
  EXPECT_FALSE(parse_offer(offer("version=1\npid=1\nlistener=a raw 1.2.3.4:5\n"), 1).ok());
  EXPECT_FALSE(parse_offer(offer("version=1\npid=1\nlistener= stream x\n"), 1).ok());
  EXPECT_FALSE(parse_offer(offer("version=1\npid=1\nlistener=a stream \n"), 1).ok());
  EXPECT_TRUE(parse_offer(offer("version=1\npid=1\nfuture_key=x\n"), 0).ok());  // ignored
}

TEST(HandoverCodec, FramingViolationsAreRejected) {
  EXPECT_FALSE(decode("").ok());
  EXPECT_FALSE(decode("GET / HTTP/1.1\r\n\r\n").ok());
  EXPECT_FALSE(decode("baton-handover HELLO").ok());    // no final newline
  EXPECT_FALSE(decode("baton-handover \n").ok());       // no type
  EXPECT_FALSE(decode("baton-handover BOGUS\n").ok());  // unknown type
  EXPECT_FALSE(decode("baton-handover hello\n").ok());  // types are upper case
  EXPECT_FALSE(decode("baton-handover HELLO\nnoequals\n").ok());
  EXPECT_FALSE(decode("baton-handover HELLO\nBad=1\n").ok());  // keys are [a-z_]
  EXPECT_FALSE(decode("baton-handover HELLO\n=1\n").ok());
  EXPECT_FALSE(decode("baton-handover HELLO\npid=1\npid=2\n").ok());  // repeated key
  EXPECT_FALSE(decode(std::string("baton-handover HELLO\npid=1\0\n", 28)).ok());
  EXPECT_FALSE(decode("baton-handover HELLO\npid=\x01\n").ok());
  EXPECT_FALSE(decode("baton-handover READY\n\n").ok());  // empty line
  std::string big = "baton-handover HELLO\nx=" + std::string(kMaxPacket, 'a') + "\n";
  EXPECT_FALSE(decode(big).ok());
  EXPECT_TRUE(decode("baton-handover READY\n").ok());
}

TEST(HandoverCodec, HelloFieldsAreChecked) {
  auto hello = [](std::string body) { return parse_hello(msg("baton-handover HELLO\n" + body)); };
  EXPECT_FALSE(hello("min_version=1\nmax_version=1\n").ok());  // no pid
  EXPECT_FALSE(hello("min_version=x\nmax_version=1\npid=3\n").ok());
  EXPECT_FALSE(hello("min_version=2\nmax_version=1\npid=3\n").ok());  // empty range
  EXPECT_FALSE(hello("min_version=1\nmax_version=1\npid=-3\n").ok());
  EXPECT_FALSE(hello("min_version=1\nmax_version=1\npid=99999999999\n").ok());
  EXPECT_TRUE(hello("min_version=1\nmax_version=9\npid=3\n").ok());
  EXPECT_FALSE(parse_hello(msg(encode(make_ready()))).ok());  // wrong type
}

TEST(HandoverCodec, RefuseReasonIsSanitised) {
  auto m = decode(encode(make_refuse({"line1\nline2", true, 1, 1})));
  ASSERT_TRUE(m.ok()) << m.error().what();
  auto r = parse_refuse(*m);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reason, "line1 line2");
  EXPECT_TRUE(r->retry);
}

TEST(HandoverCodec, DrainingCarriesThePid) {
  auto m = decode(encode(make_draining(99)));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(parse_draining(*m).value(), 99);
}

std::vector<OfferedListener> one_listener() { return {{"http", SOCK_STREAM, "127.0.0.1:1"}}; }

TEST(ParentSession, HelloThenReadyOffersThenDrains) {
  ParentSession s(10, one_listener(), false);
  ParentAction a = s.on_packet(encode(make_hello({1, 1, 20})), 0);
  EXPECT_TRUE(a.attach_fds);
  EXPECT_FALSE(a.close);
  EXPECT_FALSE(a.start_drain);
  auto offer = parse_offer(msg(a.reply), 1);
  ASSERT_TRUE(offer.ok()) << offer.error().what();
  EXPECT_EQ(offer->pid, 10);
  EXPECT_TRUE(s.offered());
  EXPECT_EQ(s.peer_pid(), 20);

  a = s.on_packet(encode(make_ready()), 0);
  EXPECT_TRUE(a.start_drain);
  EXPECT_TRUE(a.close);
  EXPECT_FALSE(a.attach_fds);
  EXPECT_EQ(parse_draining(msg(a.reply)).value(), 10);
  EXPECT_TRUE(s.done());
}

TEST(ParentSession, NewerPeerGetsTheHighestCommonVersion) {
  ParentSession s(10, one_listener(), false);
  ParentAction a = s.on_packet(encode(make_hello({1, 5, 20})), 0);
  auto offer = parse_offer(msg(a.reply), 1);
  ASSERT_TRUE(offer.ok());
  EXPECT_EQ(offer->version, kVersion);
}

TEST(ParentSession, NoCommonVersionIsRefusedForGood) {
  ParentSession s(10, one_listener(), false);
  ParentAction a = s.on_packet(encode(make_hello({2, 3, 20})), 0);
  EXPECT_TRUE(a.close);
  EXPECT_FALSE(a.attach_fds);
  auto r = parse_refuse(msg(a.reply));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->retry);
  EXPECT_EQ(r->max_version, kVersion);
}

TEST(ParentSession, DrainingInstanceRefusesWithRetry) {
  ParentSession s(10, one_listener(), true);
  ParentAction a = s.on_packet(encode(make_hello({1, 1, 20})), 0);
  EXPECT_FALSE(a.attach_fds);
  EXPECT_FALSE(a.start_drain);
  auto r = parse_refuse(msg(a.reply));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->retry);
}

TEST(ParentSession, UnexpectedMessagesEndTheConversationWithoutDraining) {
  {
    ParentSession s(10, one_listener(), false);
    ParentAction a = s.on_packet(encode(make_ready()), 0);  // READY before HELLO
    EXPECT_TRUE(a.close);
    EXPECT_FALSE(a.start_drain);
    EXPECT_TRUE(a.reply.empty());
    EXPECT_FALSE(a.log.empty());
  }
  {
    ParentSession s(10, one_listener(), false);
    (void)s.on_packet(encode(make_hello({1, 1, 20})), 0);
    ParentAction a = s.on_packet(encode(make_hello({1, 1, 20})), 0);  // HELLO twice
    EXPECT_TRUE(a.close);
    EXPECT_FALSE(a.start_drain);
  }
  {
    ParentSession s(10, one_listener(), false);
    ParentAction a = s.on_packet(encode(make_hello({1, 1, 20})), 1);  // descriptors sent to us
    EXPECT_TRUE(a.close);
    EXPECT_FALSE(a.attach_fds);
  }
  {
    ParentSession s(10, one_listener(), false);
    (void)s.on_packet(encode(make_hello({1, 1, 20})), 0);
    ParentAction a = s.on_packet("garbage", 0);
    EXPECT_TRUE(a.close);
    EXPECT_FALSE(a.start_drain);
  }
  {
    ParentSession s(10, one_listener(), false);
    (void)s.on_packet(encode(make_hello({1, 1, 20})), 0);
    (void)s.on_packet(encode(make_ready()), 0);
    ParentAction a = s.on_packet(encode(make_ready()), 0);  // after the end
    EXPECT_TRUE(a.close);
    EXPECT_FALSE(a.start_drain);
  }
}

}  // namespace
}  // namespace baton::handover

// Both halves of direct handover over real unix sockets, in one process (lib/handover.h).
#include "lib/handover.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "common/address.h"
#include "common/listener.h"
#include "harness.h"
#include "lib/handover_protocol.h"

namespace baton::handover {
namespace {

using namespace std::chrono_literals;

// The old instance's side, with one real TCP listener, recording what happens to it.
struct FakeOld {
  Fd listener;
  std::string address;
  std::atomic<bool> draining{false};
  std::atomic<int> drains{0};
  std::mutex mu;
  std::vector<std::string> lines;
  std::unique_ptr<HandoverParent> parent;

  explicit FakeOld(const std::string& path, bool already_draining = false,
                   std::chrono::milliseconds session_timeout = std::chrono::seconds(60)) {
    listener = bind_listener(parse_address("127.0.0.1:0").value(), {}).value();
    address = bound_address(listener.get(), Transport::kTcp)->to_string();
    draining = already_draining;
    HandoverParent::Hooks hooks;
    hooks.with_listeners = [this](const auto& fn) {
      Listener l{"http", address, listener.get(), SOCK_STREAM, ListenerOrigin::kBound};
      fn(std::vector<Listener>{l}, draining.load());
    };
    hooks.drain = [this] {
      ++drains;
      draining = true;
    };
    hooks.log = [this](const std::string& line) {
      std::lock_guard lock(mu);
      lines.push_back(line);
    };
    hooks.session_timeout = session_timeout;
    auto p = HandoverParent::start(path, std::move(hooks));
    if (!p) ADD_FAILURE() << p.error().what();
    parent = std::move(*p);
  }
  bool logged(const std::string& needle) {
    std::lock_guard lock(mu);
    for (const auto& l : lines) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
};

// A process-less stand-in for an older build: listens on the path with its own rules.
class Impostor {
 public:
  Impostor(const std::string& path, int type, std::function<void(int conn)> on_conn)
      : fd_(test::bind_unix(path, type, 4)) {
    if (!fd_) ADD_FAILURE() << "impostor bind";
    thread_ = std::thread([this, on_conn] {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) return;
      Fd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (c) on_conn(c.get());
    });
  }
  ~Impostor() { thread_.join(); }

 private:
  Fd fd_;
  std::thread thread_;
};

std::string read_packet(int fd) {
  char buf[kMaxPacket];
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) return "";
  ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST(Handover, NoPeerWhenThePathIsMissingOrStale) {
  test::TempDir dir;
  auto t = take_listeners(dir.file("h"), 1s);
  ASSERT_TRUE(t.ok()) << t.error().what();
  EXPECT_EQ(t->outcome, Takeover::Outcome::kNoPeer);
  { FakeOld gone(dir.file("h")); }  // unlinks its path on destruction...
  EXPECT_EQ(::access(dir.file("h").c_str(), F_OK), -1);
  Fd stale = test::bind_unix(dir.file("h"), SOCK_SEQPACKET);  // ...a bound, unlistened one:
  ASSERT_TRUE(stale.valid());
  t = take_listeners(dir.file("h"), 1s);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->outcome, Takeover::Outcome::kNoPeer);
}

TEST(Handover, TakesWorkingListenersThenOldDrainsOnReady) {
  test::TempDir dir;
  FakeOld old(dir.file("h"));
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("h").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto t = take_listeners(dir.file("h"), 5s);
  ASSERT_TRUE(t.ok()) << t.error().what();
  ASSERT_EQ(t->outcome, Takeover::Outcome::kTaken);
  ASSERT_EQ(t->listeners.size(), 1u);
  EXPECT_EQ(t->peer_pid, ::getpid());
  const Listener& l = t->listeners[0].info;
  EXPECT_EQ(l.name, "http");
  EXPECT_EQ(l.address, old.address);
  EXPECT_EQ(l.origin, ListenerOrigin::kHandover);
  EXPECT_NE(l.fd, old.listener.get());

  // The received descriptor is the same socket: a connection to it is accepted through it.
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto addr = parse_address(old.address);
  ASSERT_EQ(::connect(client.get(), addr->sockaddr_ptr(), addr->length), 0);
  pollfd p{l.fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  Fd accepted(::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(accepted.valid());

  EXPECT_EQ(old.drains.load(), 0);  // nothing changes for the old one before READY
  auto drained = finish_takeover(t->connection.get(), 5s);
  ASSERT_TRUE(drained.ok()) << drained.error().what();
  EXPECT_EQ(*drained, ::getpid());
  EXPECT_TRUE(test::wait_until([&] { return old.drains.load() == 1; }, 5s));
}

TEST(Handover, NewInstanceGoneBeforeReadyLeavesTheOldServing) {
  test::TempDir dir;
  FakeOld old(dir.file("h"));
  {
    auto t = take_listeners(dir.file("h"), 5s);
    ASSERT_TRUE(t.ok());
    ASSERT_EQ(t->outcome, Takeover::Outcome::kTaken);
  }  // connection and descriptors closed, as when the new process dies
  EXPECT_TRUE(test::wait_until([&] { return old.logged("went away before it was ready"); }, 5s));
  EXPECT_EQ(old.drains.load(), 0);
  auto again = take_listeners(dir.file("h"), 5s);  // and it still hands over
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outcome, Takeover::Outcome::kTaken);
}

TEST(Handover, OneHandoverAtATime) {
  test::TempDir dir;
  FakeOld old(dir.file("h"));
  auto first = take_listeners(dir.file("h"), 5s);
  ASSERT_TRUE(first.ok());
  auto second = take_listeners(dir.file("h"), 300ms);
  ASSERT_FALSE(second.ok()) << static_cast<int>(second->outcome) << " " << second->detail;
  EXPECT_EQ(second.error().code(), ETIMEDOUT);
  EXPECT_NE(second.error().what().find("busy"), std::string::npos);
}

Fd connect_seqpacket(const std::string& path) { return test::connect_unix(path, SOCK_SEQPACKET); }

// Without a session deadline, these peers would hold the one session slot until they close, and
// every later newcomer would be told "busy" until its own timeout.
TEST(Handover, PeerStoppingAfterTheOfferDoesNotBlockTheNextHandover) {
  test::TempDir dir;
  FakeOld old(dir.file("h"), false, 300ms);
  Fd stuck = connect_seqpacket(dir.file("h"));
  ASSERT_TRUE(stuck.valid());
  std::string hello = encode(make_hello({kMinVersion, kVersion, ::getpid()}));
  ASSERT_GT(::send(stuck.get(), hello.data(), hello.size(), MSG_NOSIGNAL), 0);
  ASSERT_NE(read_packet(stuck.get()).find("OFFER"), std::string::npos);
  // ...and then it says nothing more, its connection left open.
  auto t = take_listeners(dir.file("h"), 10s);
  ASSERT_TRUE(t.ok()) << t.error().what();
  EXPECT_EQ(t->outcome, Takeover::Outcome::kTaken);
  EXPECT_TRUE(old.logged("did not finish the handover within 300 ms"));
  EXPECT_EQ(old.drains.load(), 0);  // the stuck peer never said READY: nothing drains
}

TEST(Handover, PeerSilentBeforeHelloDoesNotBlockTheNextHandover) {
  test::TempDir dir;
  FakeOld old(dir.file("h"), false, 300ms);
  Fd silent = connect_seqpacket(dir.file("h"));
  ASSERT_TRUE(silent.valid());
  auto t = take_listeners(dir.file("h"), 10s);
  ASSERT_TRUE(t.ok()) << t.error().what();
  EXPECT_EQ(t->outcome, Takeover::Outcome::kTaken);
  auto drained = finish_takeover(t->connection.get(), 5s);
  ASSERT_TRUE(drained.ok()) << drained.error().what();
  EXPECT_TRUE(test::wait_until([&] { return old.drains.load() == 1; }, 5s));
}

// Review finding 14: a same-uid client that connects and says nothing held the one session for
// the whole session timeout (60 s), refusing every real successor meanwhile. It is dropped at
// the much shorter hello timeout; the successor, retrying while refused as busy, gets through.
TEST(Handover, PeerSilentFromTheStartIsDroppedLongBeforeTheSessionTimeout) {
  test::TempDir dir;
  FakeOld old(dir.file("h"), false, std::chrono::hours(1));
  Fd silent = connect_seqpacket(dir.file("h"));
  ASSERT_TRUE(silent.valid());
  auto t = take_listeners(dir.file("h"), 60s);
  ASSERT_TRUE(t.ok()) << t.error().what();
  EXPECT_EQ(t->outcome, Takeover::Outcome::kTaken);
  EXPECT_TRUE(old.logged("a peer said nothing within 5000 ms of connecting"));
  auto drained = finish_takeover(t->connection.get(), 5s);
  ASSERT_TRUE(drained.ok()) << drained.error().what();
}

TEST(Handover, DrainingInstanceOffersNothing) {
  test::TempDir dir;
  FakeOld old(dir.file("h"), /*already_draining=*/true);
  auto t = take_listeners(dir.file("h"), 300ms);
  ASSERT_FALSE(t.ok()) << static_cast<int>(t->outcome) << " " << t->detail;
  EXPECT_NE(t.error().what().find("already draining"), std::string::npos);
}

TEST(Handover, PeerAnsweringGarbageIsALegacyPeer) {
  test::TempDir dir;
  Impostor imp(dir.file("h"), SOCK_SEQPACKET, [](int c) {
    (void)read_packet(c);
    (void)::send(c, "HTTP/1.0 400 Bad Request\r\n\r\n", 28, MSG_NOSIGNAL);
  });
  auto t = take_listeners(dir.file("h"), 5s);
  ASSERT_TRUE(t.ok()) << t.error().what();
  EXPECT_EQ(t->outcome, Takeover::Outcome::kLegacyPeer);
  EXPECT_EQ(t->peer_pid, ::getpid());
  EXPECT_TRUE(t->listeners.empty());
}

TEST(Handover, StreamSocketAtThePathIsALegacyPeer) {
  test::TempDir dir;
  Impostor imp(dir.file("h"), SOCK_STREAM, [](int) {});
  auto t = take_listeners(dir.file("h"), 5s);
  ASSERT_TRUE(t.ok()) << t.error().what();
  EXPECT_EQ(t->outcome, Takeover::Outcome::kLegacyPeer);
  EXPECT_EQ(t->peer_pid, ::getpid());
}

TEST(Handover, SilentPeerIsALegacyPeerAfterTheTimeout) {
  test::TempDir dir;
  Impostor imp(dir.file("h"), SOCK_SEQPACKET, [](int c) {
    (void)read_packet(c);  // HELLO, then silence until the other side gives up and closes
    (void)read_packet(c);
  });
  auto t = take_listeners(dir.file("h"), 200ms);
  ASSERT_TRUE(t.ok()) << t.error().what();
  EXPECT_EQ(t->outcome, Takeover::Outcome::kLegacyPeer);
  EXPECT_NE(t->detail.find("no answer"), std::string::npos);
}

TEST(Handover, OfferWithoutItsDescriptorsIsAProtocolError) {
  test::TempDir dir;
  Impostor imp(dir.file("h"), SOCK_SEQPACKET, [](int c) {
    (void)read_packet(c);
    std::string offer = encode(make_offer({1, 5, {{"http", SOCK_STREAM, "127.0.0.1:1"}}}));
    (void)::send(c, offer.data(), offer.size(), MSG_NOSIGNAL);
  });
  auto t = take_listeners(dir.file("h"), 5s);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code(), EPROTO);
}

TEST(Handover, ParentDropsAConversationThatBreaksTheProtocol) {
  test::TempDir dir;
  FakeOld old(dir.file("h"));
  Fd c = test::connect_unix(dir.file("h"), SOCK_SEQPACKET);
  ASSERT_TRUE(c.valid());
  std::string ready = encode(make_ready());  // READY without HELLO: no drain, no descriptors
  ASSERT_GT(::send(c.get(), ready.data(), ready.size(), MSG_NOSIGNAL), 0);
  EXPECT_EQ(read_packet(c.get()), "");  // closed without an answer
  EXPECT_TRUE(test::wait_until([&] { return old.logged("rejected"); }, 5s));
  EXPECT_EQ(old.drains.load(), 0);
}

TEST(Handover, PathIsUnlinkedOnlyWhileItIsStillOurs) {
  test::TempDir dir;
  auto a = std::make_unique<FakeOld>(dir.file("h"));
  auto b = std::make_unique<FakeOld>(dir.file("h"));  // renamed over a's socket
  a.reset();
  EXPECT_EQ(::access(dir.file("h").c_str(), F_OK), 0);
  auto t = take_listeners(dir.file("h"), 5s);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->outcome, Takeover::Outcome::kTaken);  // b answers
  t = Takeover{};
  b.reset();
  EXPECT_EQ(::access(dir.file("h").c_str(), F_OK), -1);
}

TEST(Handover, PreparedSocketIsInvisibleUntilPublished) {
  test::TempDir dir;
  const std::string path = dir.file("h");
  HandoverParent::Hooks hooks;
  hooks.with_listeners = [](const auto& fn) { fn(std::vector<Listener>{}, false); };
  {
    auto prepared = HandoverParent::prepare(path, hooks);
    ASSERT_TRUE(prepared.ok()) << prepared.error().what();
    EXPECT_EQ(::access(path.c_str(), F_OK), -1);  // nothing at the path yet
    auto t = take_listeners(path, 1s);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->outcome, Takeover::Outcome::kNoPeer);
  }  // never published: its private name is gone too
  EXPECT_EQ(::access((path + "." + std::to_string(::getpid()) + ".new").c_str(), F_OK), -1);

  auto prepared = HandoverParent::prepare(path, hooks);
  ASSERT_TRUE(prepared.ok());
  ASSERT_TRUE((*prepared)->publish().ok());
  auto t = take_listeners(path, 1s);
  ASSERT_TRUE(t.ok()) << t.error().what();
  EXPECT_EQ(t->outcome, Takeover::Outcome::kTaken);
  EXPECT_TRUE(t->listeners.empty());
}

TEST(Handover, UnusablePathFailsAtPrepare) {
  auto p = HandoverParent::prepare("/nonexistent-dir/h", {});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), ENOENT);
  EXPECT_FALSE(HandoverParent::prepare("/tmp/" + std::string(120, 'x'), {}).ok());
}

TEST(Handover, AnotherUserCannotTakeTheSockets) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  test::TempDir dir;
  FakeOld old(dir.file("h"));
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  GTEST_FLAG_SET(death_test_style, "fast");  // fork only: the old instance stays root
  // With the 0600 socket, the kernel already says no.
  EXPECT_EXIT(
      {
        if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) {
          std::_Exit(10);
        }
        auto t = take_listeners(dir.file("h"), 1s);
        std::_Exit(!t.ok() && t.error().code() == EACCES ? 0 : 11);
      },
      ::testing::ExitedWithCode(0), "");
  // Opened up, the peer-credential check says no: nothing is handed over.
  ASSERT_EQ(::chmod(dir.file("h").c_str(), 0666), 0);
  EXPECT_EXIT(
      {
        if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) {
          std::_Exit(10);
        }
        auto t = take_listeners(dir.file("h"), 1s);
        std::_Exit(t.ok() && t->listeners.empty() ? 0 : 11);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_TRUE(old.logged("not our owner"));
  EXPECT_EQ(old.drains.load(), 0);
}

}  // namespace
}  // namespace baton::handover

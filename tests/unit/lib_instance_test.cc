// The notify protocol and the Instance verbs that need no second process.
#include "baton/instance.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include "baton/fd.h"
#include "baton/notify.h"
#include "common/address.h"
#include "common/listener.h"
#include "harness.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

// A datagram socket standing in for systemd's / the supervisor's notify socket.
class NotifyReceiver {
 public:
  explicit NotifyReceiver(const std::string& name) : name_(name) {
    fd_ = test::bind_unix(name, SOCK_DGRAM);
    if (!fd_) std::abort();
  }
  // The next datagram, or "" after 5 s.
  std::string next() {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return "";
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  bool empty() {
    pollfd p{fd_.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  Fd fd_;
};

TEST(Notify, SendsToAPathSocket) {
  test::TempDir dir;
  NotifyReceiver rx(dir.file("notify"));
  ASSERT_TRUE(notify_to(rx.name(), "READY=1").ok());
  EXPECT_EQ(rx.next(), "READY=1");
}

TEST(Notify, SendsToAnAbstractSocket) {
  NotifyReceiver rx("@baton-test-" + std::to_string(::getpid()));
  ASSERT_TRUE(notify_to(rx.name(), "STATUS=hi").ok());
  EXPECT_EQ(rx.next(), "STATUS=hi");
}

TEST(Notify, BadSocketNamesAreErrors) {
  EXPECT_FALSE(notify_to("", "READY=1").ok());
  auto relative = notify_to("relative/path", "READY=1");
  ASSERT_FALSE(relative.ok());
  EXPECT_NE(relative.error().what().find("absolute"), std::string::npos);
  EXPECT_FALSE(notify_to("/" + std::string(200, 'x'), "READY=1").ok());
}

TEST(Notify, NobodyListeningIsAnError) {
  test::TempDir dir;
  auto s = notify_to(dir.file("nobody"), "READY=1");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ENOENT);
}

TEST(Notify, UnsetSocketIsANoOp) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(notify("READY=1").ok());
}

TEST(Instance, NotifiesReadyStatusStoppingAndHidesTheSocketFromChildren) {
  test::TempDir dir;
  NotifyReceiver rx(dir.file("notify"));
  ::setenv("NOTIFY_SOCKET", rx.name().c_str(), 1);
  auto inst = Instance::create();
  ASSERT_TRUE(inst.ok()) << inst.error().what();
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
  auto l = (*inst)->listen("http", "127.0.0.1:0");
  ASSERT_TRUE(l.ok()) << l.error().what();
  ASSERT_TRUE((*inst)->ready().ok());
  EXPECT_EQ(rx.next(), "READY=1");
  ASSERT_TRUE((*inst)->status("serving\n2 connections").ok());
  EXPECT_EQ(rx.next(), "STATUS=serving 2 connections");
  ASSERT_TRUE((*inst)->close_listeners().ok());
  EXPECT_EQ(rx.next(), "STOPPING=1");
  ASSERT_TRUE((*inst)->close_listeners().ok());  // idempotent, and says nothing twice
  EXPECT_TRUE(rx.empty());
}

TEST(Instance, OnlyOnePerProcess) {
  auto a = Instance::create();
  ASSERT_TRUE(a.ok());
  auto b = Instance::create();
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().what().find("already exists"), std::string::npos);
  a->reset();
  auto c = Instance::create();
  EXPECT_TRUE(c.ok());
}

TEST(Instance, MalformedEnvironmentFailsCreate) {
  ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
  ::setenv("LISTEN_FDS", "two", 1);
  auto inst = Instance::create();
  ASSERT_FALSE(inst.ok());
  EXPECT_NE(inst.error().what().find("LISTEN_FDS='two'"), std::string::npos);
  EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);
  EXPECT_TRUE(Instance::create().ok());  // the failed one did not stay registered
}

TEST(Instance, ListenBindsOnceAndFindsByNameAndAddress) {
  auto inst = Instance::create();
  ASSERT_TRUE(inst.ok());
  auto a = (*inst)->listen("http", "127.0.0.1:0");
  ASSERT_TRUE(a.ok()) << a.error().what();
  EXPECT_EQ(a->origin, ListenerOrigin::kBound);
  EXPECT_TRUE(::fcntl(a->fd, F_GETFL) & O_NONBLOCK);
  auto again = (*inst)->listen("http", "127.0.0.1:0");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->fd, a->fd);
  auto by_addr = (*inst)->listen("other", a->address);
  ASSERT_TRUE(by_addr.ok());
  EXPECT_EQ(by_addr->fd, a->fd);
  auto all = (*inst)->listeners();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
  auto bad = (*inst)->listen("x", "not an address");
  EXPECT_FALSE(bad.ok());
}

TEST(Instance, AddressInUseWithoutHandoverIsAnErrorNotAFallback) {
  auto taken = bind_listener(parse_address("127.0.0.1:0").value(), {});
  ASSERT_TRUE(taken.ok());
  std::string address = bound_address(taken->get(), Transport::kTcp)->to_string();
  std::vector<std::string> lines;
  InstanceOptions o;
  o.log = [&](const std::string& line) { lines.push_back(line); };
  auto inst = Instance::create(o);
  ASSERT_TRUE(inst.ok());
  auto l = (*inst)->listen("http", address);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code(), EADDRINUSE);
  EXPECT_TRUE(lines.empty());
}

TEST(Instance, ListenAfterCloseIsAnError) {
  auto inst = Instance::create();
  ASSERT_TRUE(inst.ok());
  ASSERT_TRUE((*inst)->listen("a", "127.0.0.1:0").ok());
  ASSERT_TRUE((*inst)->close_listeners().ok());
  EXPECT_FALSE((*inst)->listen("b", "127.0.0.1:0").ok());
}

TEST(Instance, HandoverModeReadyNeedsListenersFirst) {
  test::TempDir dir;
  InstanceOptions o;
  o.handover_path = dir.file("h");
  o.log = [](const std::string&) {};
  auto inst = Instance::create(o);
  ASSERT_TRUE(inst.ok());
  auto early = (*inst)->ready();
  ASSERT_FALSE(early.ok());
  EXPECT_NE(early.error().what().find("before listeners()"), std::string::npos);
  ASSERT_TRUE((*inst)->listen("http", "127.0.0.1:0").ok());
  ASSERT_TRUE((*inst)->ready().ok());
  EXPECT_EQ(::access(dir.file("h").c_str(), F_OK), 0);  // serving the path for a successor
}

TEST(Instance, RequestDrainMakesTheFdReadableWithADeadline) {
  InstanceOptions o;
  o.drain_timeout = 7s;
  auto inst = Instance::create(o);
  ASSERT_TRUE(inst.ok());
  EXPECT_FALSE((*inst)->draining());
  EXPECT_EQ((*inst)->drain_deadline(), std::chrono::steady_clock::time_point::max());
  pollfd p{(*inst)->drain_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
  auto before = std::chrono::steady_clock::now();
  (*inst)->request_drain();
  EXPECT_TRUE((*inst)->draining());
  EXPECT_EQ(::poll(&p, 1, 0), 1);
  EXPECT_EQ(::poll(&p, 1, 0), 1);  // stays readable, for every thread that looks
  auto deadline = (*inst)->drain_deadline();
  EXPECT_GE(deadline, before + 7s);
  EXPECT_LE(deadline, std::chrono::steady_clock::now() + 7s);
}

TEST(Instance, SigtermAsksForDrainAndHandlerIsRemovedAfterwards) {
  {
    auto inst = Instance::create();
    ASSERT_TRUE(inst.ok());
    ::raise(SIGTERM);
    EXPECT_TRUE((*inst)->draining());
    pollfd p{(*inst)->drain_fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 0), 1);
  }
  struct sigaction now {};
  ::sigaction(SIGTERM, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

TEST(Instance, WithoutSignalHandlingSigtermIsLeftAlone) {
  InstanceOptions o;
  o.handle_signals = false;
  auto inst = Instance::create(o);
  ASSERT_TRUE(inst.ok());
  struct sigaction now {};
  ::sigaction(SIGTERM, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

}  // namespace
}  // namespace baton

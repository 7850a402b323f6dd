// drain_watch against real processes: a server that knows nothing of draining (baton-plainapp),
// real keep-alive clients, the real kernel's sock_diag and pidfd_getfd.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <optional>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/listener.h"
#include "harness.h"
#include "http_connection.h"
#include "supervisor/drain_watch.h"
#include "supervisor/drain_watches.h"
#include "supervisor/listener_set.h"

namespace baton::test {
namespace {

std::string plainapp_binary() { return BATON_TEST_PLAINAPP_BIN; }

struct App {
  Fd listener;
  Address address;
  std::optional<Process> process;
};

// baton-plainapp serving a listener this test holds, as baton holds it for a generation.
// `wrapper`: started through a shell that forks it (a worker in the same process group) instead
// of exec'ing it.
App start_app(bool wrapper = false) {
  App app;
  auto fd = bind_listener(parse_address("127.0.0.1:0").value(), BindOptions{});
  EXPECT_TRUE(fd.ok());
  app.listener = std::move(fd).value();
  app.address = bound_address(app.listener.get(), Transport::kTcp).value();
  SpawnOptions options;
  options.env["LISTEN_FDS"] = "1";
  options.inherit_fds = {app.listener.get()};
  std::string exec = "LISTEN_PID=$$ exec " + plainapp_binary();
  std::vector<std::string> argv = {"/bin/sh", "-c", exec};
  if (wrapper) argv = {"/bin/sh", "-c", "/bin/sh -c '" + exec + "' & wait"};
  app.process.emplace(Process::spawn(argv, options));
  EXPECT_TRUE(app.process->wait_for_output("serving 1 listeners", 10s)) << app.process->output();
  return app;
}

TEST(DrainWatch, TakesOverOnlyIdleKeepAlivesAndNeverClosesThemUnderTheirClients) {
  App app = start_app();
  std::vector<std::unique_ptr<HttpConnection>> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(std::make_unique<HttpConnection>(app.address));
    ASSERT_TRUE(idle.back()->connected());
    ASSERT_TRUE(idle.back()->send_get("/"));
    ASSERT_FALSE(idle.back()->read_response().empty());
  }
  HttpConnection busy(app.address);
  ASSERT_TRUE(busy.send_get("/slow?ms=1500"));
  ASSERT_TRUE(app.process->wait_for_output("serving /slow?ms=1500", 10s));

  GenerationWatch watch(app.process->pid(), {app.listener.get()});
  auto first = watch.check();
  ASSERT_TRUE(first.ok()) << first.error().what();
  EXPECT_EQ(first->accept_queue, 0u);
  EXPECT_EQ(first->connections, 4u);
  EXPECT_EQ(first->idle_taken, 3u) << "the three answered keep-alive connections";
  EXPECT_FALSE(first->quiet);
  std::vector<TakenConnection> taken = std::move(first->taken);

  // The request in flight is not cut: it is answered, then its connection is idle in turn. The
  // app closes each connection taken over (it read end-of-file), and each comes back to baton.
  std::string slow = busy.read_response();
  EXPECT_NE(slow.find("200 OK"), std::string::npos) << slow;
  size_t taken_later = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = watch.check();
        if (!r.ok()) return false;
        taken_later += r->idle_taken;
        for (auto& t : r->taken) taken.push_back(std::move(t));
        return r->quiet;
      },
      10s, 20ms));
  EXPECT_EQ(taken_later, 1u);
  ASSERT_EQ(taken.size(), 4u) << "every connection the app let go is baton's alone";
  for (const auto& t : taken) EXPECT_EQ(t.local_port, app.address.port());
  EXPECT_TRUE(app.process->running()) << "watching never signals the app";
  // No client saw its connection close: baton's copy holds it open.
  for (auto& c : idle) EXPECT_FALSE(c->sees_close(100ms));
  EXPECT_FALSE(busy.sees_close(100ms));
  // The client's next request waits for baton on the copy, and the copy can answer it.
  ASSERT_TRUE(busy.send_get("/next"));
  pollfd p{taken.back().fd.get(), POLLIN, 0};
  bool request_arrived = false;
  for (auto& t : taken) {
    p.fd = t.fd.get();
    char buf[64];
    if (::poll(&p, 1, 0) == 1 && ::recv(t.fd.get(), buf, sizeof(buf), MSG_DONTWAIT) > 0) {
      request_arrived = true;
    }
  }
  if (!request_arrived) {  // the last look raced the send: wait on all copies
    std::vector<pollfd> all;
    for (auto& t : taken) all.push_back({t.fd.get(), POLLIN, 0});
    ASSERT_GT(::poll(all.data(), all.size(), 10000), 0);
    request_arrived = true;
  }
  EXPECT_TRUE(request_arrived);
  taken.clear();  // baton lets go: now the clients see the close
  EXPECT_TRUE(busy.sees_close());
}

TEST(DrainWatch, RequestReadButUnansweredIsNeverClosed) {
  App app = start_app();
  HttpConnection busy(app.address);
  ASSERT_TRUE(busy.send_get("/slow?ms=800"));
  ASSERT_TRUE(app.process->wait_for_output("serving /slow?ms=800", 10s));
  GenerationWatch watch(app.process->pid(), {app.listener.get()});
  // Look repeatedly while the request is served: it is never taken for idle.
  const auto until = Clock::now() + 600ms;
  while (Clock::now() < until) {
    auto r = watch.check();
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_EQ(r->idle_taken, 0u);
    EXPECT_EQ(r->connections, 1u);
    std::this_thread::sleep_for(20ms);  // the poll step of a real watch, not a wait for an event
  }
  EXPECT_NE(busy.read_response().find("200 OK"), std::string::npos);
}

TEST(DrainWatch, AcceptQueueOfAListenerNobodyAcceptsOn) {
  auto fd = bind_listener(parse_address("127.0.0.1:0").value(), BindOptions{});
  ASSERT_TRUE(fd.ok());
  Address address = bound_address(fd->get(), Transport::kTcp).value();
  EXPECT_EQ(accept_queue_length(fd->get()).value(), 0u);
  HttpConnection a(address), b(address);
  ASSERT_TRUE(a.connected() && b.connected());
  EXPECT_EQ(accept_queue_length(fd->get()).value(), 2u);
  // A process holding nothing, with two connections waiting for it: not quiet.
  Process idle_process = Process::spawn({"/bin/sleep", "30"});
  GenerationWatch watch(idle_process.pid(), {fd->get()});
  auto r = watch.check();
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(r->accept_queue, 2u);
  EXPECT_EQ(r->connections, 0u);
  EXPECT_FALSE(r->quiet);
}

TEST(DrainWatch, ANonListenerIsRefused) {
  Fd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_FALSE(accept_queue_length(udp.get()).ok());
  Fd unbound(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_FALSE(accept_queue_length(unbound.get()).ok());
}

TEST(DrainWatch, WorkersInTheProcessGroupAreWatchedToo) {
  App app = start_app(/*wrapper=*/true);  // the main pid is a shell; the server is its child
  HttpConnection c(app.address);
  ASSERT_TRUE(c.send_get("/"));
  ASSERT_FALSE(c.read_response().empty());
  GenerationWatch watch(app.process->pid(), {app.listener.get()});
  auto r = watch.check();
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(r->connections, 1u);
  EXPECT_EQ(r->idle_taken, 1u);
  // The shell's child closes it (end-of-file), and baton's copy comes back on a later look.
  std::vector<TakenConnection> taken;
  ASSERT_TRUE(wait_until(
      [&] {
        auto again = watch.check();
        if (!again.ok()) return false;
        for (auto& t : again->taken) taken.push_back(std::move(t));
        return again->quiet;
      },
      10s, 20ms));
  EXPECT_EQ(taken.size(), 1u);
  EXPECT_FALSE(c.sees_close(100ms));
}

TEST(DrainWatch, OtherProcessesConnectionsOnThePortAreNotCounted) {
  App app = start_app();
  // The app holds the server end of this connection; the watched process holds nothing.
  HttpConnection c(app.address);
  ASSERT_TRUE(c.send_get("/"));
  ASSERT_FALSE(c.read_response().empty());
  Process other = Process::spawn({"/bin/sleep", "30"});
  GenerationWatch watch(other.pid(), {app.listener.get()});
  auto r = watch.check();
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(r->connections, 0u);
  EXPECT_TRUE(r->quiet);
  EXPECT_FALSE(c.sees_close(200ms)) << "a connection of another process is never touched";
}

TEST(DrainWatch, GoneProcessHoldsNothing) {
  Process p = Process::spawn({"/bin/true"});
  ASSERT_TRUE(p.wait(10s).has_value());
  auto held = held_sockets(p.pid());
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(held->empty());
  HeldSocket gone{p.pid(), 3, 12345};
  EXPECT_FALSE(take_read_side(gone).ok());
}

TEST(DrainWatch, ShutdownRefusesADescriptorThatIsNoLongerTheListedSocket) {
  App app = start_app();
  auto held = held_sockets(app.process->pid());
  ASSERT_TRUE(held.ok());
  ASSERT_FALSE(held->empty()) << "its listener at fd 3";
  HeldSocket wrong = held->front();
  wrong.inode += 1;  // as if the fd number had been reused for another socket
  auto s = take_read_side(wrong);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().what().find("no longer"), std::string::npos) << s.error().what();
}

// DrainWatches, as the supervisor uses it: the generation's own socket from a real ListenerSet
// (a steered SO_REUSEPORT group), the app given that socket at fd 3.
TEST(DrainWatches, WatchesAGenerationThroughItsOwnSocketUntilQuiet) {
  std::vector<std::string> logs;
  auto log = [&](const std::string& line) { logs.push_back(line); };
  auto set = ListenerSet::bind({parse_listen_spec("127.0.0.1:0").value()}, BindOptions{}, log);
  ASSERT_TRUE(set.ok()) << set.error().what();
  if (!set->listeners()[0].steered()) GTEST_SKIP() << "steering unavailable here: " << logs[0];
  auto sockets = set->assign(1);
  ASSERT_TRUE(sockets.ok());
  ASSERT_TRUE(set->switch_to(1).ok());
  SpawnOptions options;
  options.env["LISTEN_FDS"] = "1";
  options.inherit_fds = *sockets;
  Process app =
      Process::spawn({"/bin/sh", "-c", "LISTEN_PID=$$ exec " + plainapp_binary()}, options);
  ASSERT_TRUE(app.wait_for_output("serving 1 listeners", 10s)) << app.output();
  HttpConnection client(set->listeners()[0].address);
  ASSERT_TRUE(client.send_get("/"));
  ASSERT_FALSE(client.read_response().empty());

  Generation g;
  g.id = 1;
  g.pid = app.pid();
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  Relay relay(*loop, log);
  DrainWatches watches(relay, log);
  EXPECT_EQ(watches.check(*set, g), QuietCheck::kBusy) << "its idle connection is taken over";
  ASSERT_TRUE(wait_until([&] { return watches.check(*set, g) == QuietCheck::kQuiet; }, 10s, 20ms));
  EXPECT_THAT(logs, ::testing::Contains("generation 1 quiet after baton took over 1 idle "
                                        "keep-alive connection"));
  EXPECT_EQ(relay.taken_over_now(), 1u);
  EXPECT_FALSE(client.sees_close(100ms)) << "the client never sees its connection close";
  // Its next request is relayed, through the steering, to the generation that serves (here the
  // same one, which is still running).
  ASSERT_TRUE(client.send_get("/"));
  const auto bound = loop->add_timer(Clock::now() + 10s, [&] { loop->stop(); });
  loop->run([] { return std::optional<EventLoop::Clock::time_point>(Clock::now() + 5ms); },
            [&] {
              pollfd p{client.fd(), POLLIN, 0};
              if (::poll(&p, 1, 0) == 1) loop->stop();
            });
  loop->cancel_timer(bound);
  const std::string response = client.read_response();
  EXPECT_NE(response.find("200 OK"), std::string::npos) << response;
  EXPECT_EQ(relay.takeover().relayed, 1u);
}

TEST(DrainWatches, AGenerationSharingAStreamListenerCannotBeWatched) {
  TempDir dir;
  auto set = ListenerSet::bind({parse_listen_spec("unix:" + dir.file("s")).value()}, BindOptions{},
                               [](const std::string&) {});
  ASSERT_TRUE(set.ok()) << set.error().what();
  ASSERT_TRUE(set->assign(1).ok());
  Generation g;
  g.id = 1;
  g.pid = ::getpid();
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop.ok());
  Relay relay(*loop, [](const std::string&) {});
  DrainWatches watches(relay, [](const std::string& line) { ADD_FAILURE() << line; });
  EXPECT_EQ(watches.check(*set, g), QuietCheck::kUnwatchable)
      << "a unix socket is shared by every generation: it keeps taking connections";
}

}  // namespace
}  // namespace baton::test

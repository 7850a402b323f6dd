// ListenerSet and AcceptProbe with real sockets: slots, the gate, the switch, the probe.
#include "supervisor/listener_set.h"

#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "supervisor/accept_probe.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

std::vector<ListenSpec> specs(std::initializer_list<const char*> texts) {
  std::vector<ListenSpec> out;
  for (const char* t : texts) out.push_back(parse_listen_spec(t).value());
  return out;
}

ListenerSet bind_set(std::initializer_list<const char*> texts) {
  auto set = ListenerSet::bind(specs(texts), BindOptions{}, [](const std::string& line) {
    ADD_FAILURE() << "unexpected log: " << line;
  });
  EXPECT_TRUE(set) << (set ? "" : set.error().what());
  return std::move(set).value();
}

// Connects a new client to `to`; returns which of `fds` has it queued (-1: none within 5 s).
int connect_lands(const Address& to, const std::vector<int>& fds, Fd* keep = nullptr) {
  Fd c(::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(c.get(), to.sockaddr_ptr(), to.length) != 0) return -1;
  std::vector<pollfd> p;
  for (int fd : fds) p.push_back({fd, POLLIN, 0});
  if (::poll(p.data(), p.size(), 5000) <= 0) return -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i].revents & POLLIN) {
      Fd accepted(::accept4(p[i].fd, nullptr, nullptr, SOCK_CLOEXEC));
      if (keep != nullptr) *keep = std::move(c);
      return static_cast<int>(i);
    }
  }
  return -1;
}

// Polls the probe, as the supervisor does, until it answers or 5 s pass.
Result<bool> settle(AcceptProbe& probe, bool want) {
  for (auto end = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < end;
       std::this_thread::sleep_for(1ms)) {
    auto r = probe.accepted();
    if (!r || *r == want) return r;
  }
  return !want;
}

TEST(ListenerSet, StartingGenerationGetsOnlyTheProbeUntilTheSwitch) {
  for (const char* where : {"127.0.0.1:0", "[::1]:0", "0.0.0.0:0"}) {
    ListenerSet set = bind_set({where});
    const Address addr = set.listeners()[0].address;
    auto first = set.assign(1);
    ASSERT_TRUE(first);
    ASSERT_TRUE(set.switch_to(1));
    auto second = set.assign(2);
    ASSERT_TRUE(second);
    ASSERT_NE((*first)[0], (*second)[0]);
    EXPECT_EQ(set.slot_of(1), 0);
    EXPECT_EQ(set.slot_of(2), 1);
    const std::vector<int> fds = {(*first)[0], (*second)[0]};
    Address to = addr;
    if (std::string(where) == "0.0.0.0:0")
      to = parse_address("127.0.0.1:" + std::to_string(addr.port())).value();
    for (int i = 0; i < 10; ++i) EXPECT_EQ(connect_lands(to, fds), 0) << where;

    auto probe = AcceptProbe::open(addr);
    ASSERT_TRUE(probe) << probe.error().what();
    ASSERT_TRUE(set.add_probe(probe->source(), 2));
    ASSERT_TRUE(probe->connect());
    pollfd p{fds[1], POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1) << "the probe did not reach generation 2's socket";
    auto before = probe->accepted();  // in the accept queue (POLLIN above), not accepted
    ASSERT_TRUE(before);
    EXPECT_FALSE(*before);
    Fd accepted(::accept4(fds[1], nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(accepted);
    auto after = settle(*probe, true);
    ASSERT_TRUE(after) << after.error().what();
    EXPECT_TRUE(*after);
    ASSERT_TRUE(set.remove_probe(probe->source()));

    ASSERT_TRUE(set.switch_to(2));
    for (int i = 0; i < 10; ++i) EXPECT_EQ(connect_lands(to, fds), 1) << where;
  }
}

TEST(ListenerSet, SuccessorOfAnExitedTargetReusesItsSlotAndTakesWhatWaits) {
  ListenerSet set = bind_set({"127.0.0.1:0"});
  const Address addr = set.listeners()[0].address;
  auto first = set.assign(1);
  ASSERT_TRUE(first && set.switch_to(1));
  const int socket = (*first)[0];
  set.release(1);  // crashed; a connection arrives before the restart
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(client.get(), addr.sockaddr_ptr(), addr.length), 0);
  auto second = set.assign(2);
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)[0], socket);
  EXPECT_EQ(set.slot_of(2), 0);
  pollfd p{socket, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1);
}

TEST(ListenerSet, SlotsAreReusedAndGrowOnlyWhenAllAreLive) {
  ListenerSet set = bind_set({"127.0.0.1:0", "udp:127.0.0.1:0"});
  ASSERT_TRUE(set.assign(1) && set.switch_to(1));
  ASSERT_TRUE(set.assign(2) && set.switch_to(2));
  ASSERT_TRUE(set.assign(3));
  EXPECT_EQ(set.slot_of(3), 2);
  set.release(1);
  ASSERT_TRUE(set.switch_to(3));
  ASSERT_TRUE(set.assign(4));
  EXPECT_EQ(set.slot_of(4), 0);
  EXPECT_EQ(set.listeners()[0].group->size(), 3);
  EXPECT_EQ(set.listeners()[1].group->size(), 3);
}

TEST(ListenerSet, UnixListenersAreSharedByEveryGeneration) {
  char dir[] = "/tmp/baton-ls-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string("unix:") + dir + "/s";
  {
    ListenerSet set = bind_set({path.c_str(), "127.0.0.1:0"});
    EXPECT_FALSE(set.listeners()[0].steered());
    EXPECT_TRUE(set.listeners()[1].steered());
    auto a = set.assign(1);
    auto b = set.assign(2);
    ASSERT_TRUE(a && b);
    EXPECT_EQ((*a)[0], (*b)[0]);
    EXPECT_NE((*a)[1], (*b)[1]);
  }
  ::rmdir(dir);
}

}  // namespace
}  // namespace baton

// End-to-end test of a socket baton does not hold in a listener's SO_REUSEPORT group (issue 22,
// finding 2), done as an attacker with baton's uid would: bind SO_REUSEPORT to the listener's
// address and listen, then wait for the next reload that adds a member. The kernel appends the
// attacker's socket to the group, so without a check baton's new member lands one index later
// than baton counts, and the steering program hands the attacker every new connection while
// `status` says the new generation serves all of them. baton must never steer to it.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "baton/fd.h"
#include "baton_run.h"
#include "common/address.h"
#include "harness.h"

namespace baton::test {
namespace {

using ::testing::HasSubstr;

// The attacker's socket: same uid, SO_REUSEPORT, bound to `address` and listening. Non-blocking,
// so the test can ask whether anything reached it.
Fd intrude(const Address& address) {
  Fd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  EXPECT_TRUE(fd) << std::strerror(errno);
  int one = 1;
  EXPECT_EQ(::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address.storage), address.length),
            0)
      << std::strerror(errno);
  EXPECT_EQ(::listen(fd.get(), 64), 0) << std::strerror(errno);
  return fd;
}

// Connections the attacker's socket was handed (accepted and closed here).
int stolen(const Fd& intruder) {
  int n = 0;
  while (true) {
    Fd c(::accept4(intruder.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) break;
    ++n;
  }
  return n;
}

// Ten requests, each answered by the serving generation, none left to the attacker.
void expect_served_by(const std::string& address, int generation, const Fd& intruder) {
  for (int i = 0; i < 10; ++i) {
    auto r = http_get(address, "/", 5s);
    ASSERT_TRUE(r.ok()) << "request " << i << ": " << r.error().what() << "; the attacker holds "
                        << stolen(intruder);
    EXPECT_THAT(r->body, HasSubstr("generation " + std::to_string(generation) + " "));
  }
  EXPECT_EQ(stolen(intruder), 0);
}

TEST(ForeignMember, SameUidSocketInTheGroupIsNeverSteeredToAndIsCounted) {
  TempDir dir;
  Baton baton(dir, {"--listen", "127.0.0.1:0"}, {testapp_binary()});
  const std::string address = baton.wait_address();
  ASSERT_FALSE(address.empty()) << baton.process().output();
  ASSERT_TRUE(baton.steered());
  auto parsed = parse_address(address);
  ASSERT_TRUE(parsed.ok());
  Fd intruder = intrude(*parsed);

  // Generation 1 holds slot 0, so the reload's generation needs a new member: the attacker's
  // socket sits where that member would have gone.
  auto r = baton.ctl({"reload", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("a socket baton does not hold"));
  expect_served_by(address, 1, intruder);
  auto status = baton.status();
  ASSERT_TRUE(status.is_object());
  EXPECT_EQ(status.value("serving_generation", 0), 1);
  ASSERT_TRUE(status["listeners"][0].contains("foreign_members")) << status.dump();
  EXPECT_GE(status["listeners"][0]["foreign_members"].get<int>(), 1);
  EXPECT_THAT(baton.process().output(), HasSubstr("a socket baton does not hold"));

  // Once the attacker's socket is gone, the group is baton's alone again and reloads work.
  intruder.reset();
  r = baton.ctl({"reload", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  Fd none = intrude(*parsed);  // a late intruder, joined after the member was added
  expect_served_by(address, 3, none);
}

}  // namespace
}  // namespace baton::test

// The proof the legacy handover fallback needs before it signals anyone (lib/listener_holder.h).
#include "lib/listener_holder.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/address.h"
#include "common/listener.h"

namespace baton::handover {
namespace {

TEST(ListenerHolder, ReadsTheInodesOfSocketsOnAPortFromAProcNetTable) {
  const char* table =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
      "timeout inode\n"
      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        "
      "0 4242 1 0000000000000000 100 0 0 10 0\n"
      "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        "
      "0 4343 1 0000000000000000 20 4 30 10 -1\n"
      "   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        "
      "0 4444 1 0000000000000000 100 0 0 10 0\n"
      "   3: garbage\n";
  EXPECT_EQ(sockets_on_port(table, 8080, true), std::vector<ino_t>{4242});  // not the connection
  EXPECT_EQ(sockets_on_port(table, 8080, false), (std::vector<ino_t>{4242, 4343}));
  EXPECT_EQ(sockets_on_port(table, 80, true), std::vector<ino_t>{4444});
  EXPECT_TRUE(sockets_on_port(table, 81, false).empty());
  EXPECT_TRUE(sockets_on_port("", 80, false).empty());
}

TEST(ListenerHolder, OnlyTheProcessHoldingThePortIsSignalled) {
  auto tcp = bind_listener(parse_address("127.0.0.1:0").value(), {});
  ASSERT_TRUE(tcp.ok()) << tcp.error().what();
  auto addr = bound_address(tcp->get(), Transport::kTcp).value();
  Fd self = open_pidfd(::getpid());
  ASSERT_TRUE(self.valid());
  // Signal 0: the checks run, nothing is delivered.
  EXPECT_TRUE(signal_if_holder(self.get(), ::getpid(), addr, 0).ok());
  // Excluding our only socket on the port (as after an SO_REUSEPORT overlap), nobody holds it.
  EXPECT_FALSE(signal_if_holder(self.get(), ::getpid(), addr, 0, socket_inode(tcp->get())).ok());

  // A child without the socket (it closed its copy) is not signalled.
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(tcp->get());
    ::close(ready[0]);
    char c = 'x';
    if (::write(ready[1], &c, 1) != 1) std::_Exit(1);
    ::pause();
    std::_Exit(0);
  }
  ::close(ready[1]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  Fd child_fd = open_pidfd(child);
  ASSERT_TRUE(child_fd.valid());
  auto s = signal_if_holder(child_fd.get(), child, addr, SIGTERM);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().what().find("holds no socket on port"), std::string::npos)
      << s.error().what();
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, WNOHANG), 0);  // still running: nothing was sent
  ::kill(child, SIGKILL);
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  // Once reaped, its pidfd signals nothing, whoever has the pid now.
  EXPECT_FALSE(signal_if_holder(child_fd.get(), child, addr, 0).ok());

  auto udp = bind_listener(parse_address("udp:127.0.0.1:0").value(), {});
  ASSERT_TRUE(udp.ok());
  auto uaddr = bound_address(udp->get(), Transport::kUdp).value();
  EXPECT_TRUE(signal_if_holder(self.get(), ::getpid(), uaddr, 0).ok());
}

}  // namespace
}  // namespace baton::handover

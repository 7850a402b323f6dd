// Unit tests of NotifySocket::receive: real datagrams sent to a real socket in a temporary
// directory, from this process and from a child, well-formed and not.
#include "supervisor/notify_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/unix_socket.h"

namespace baton {
namespace {

class NotifySocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bt-notify.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/notify";
    auto s = NotifySocket::bind(path_);
    ASSERT_TRUE(s) << s.error().what();
    socket_.emplace(std::move(s.value()));
  }
  void TearDown() override {
    socket_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Sends one datagram to the socket, as sd_notify does (no credentials attached by the sender:
  // the kernel supplies them because the receiver set SO_PASSCRED). With `fd` >= 0, the
  // datagram carries that descriptor too.
  static void send_to(const std::string& path, const std::string& text, int fd = -1) {
    int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) std::abort();
    sockaddr_un addr{};
    auto length = fill_unix_address(path, addr);
    if (!length) std::abort();
    iovec iov{const_cast<char*>(text.data()), text.size()};
    msghdr msg{};
    msg.msg_name = &addr;
    msg.msg_namelen = *length;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (fd >= 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t n = ::sendmsg(s, &msg, 0);
    ::close(s);
    if (n != static_cast<ssize_t>(text.size())) std::abort();
  }
  void send(const std::string& text, int fd = -1) { send_to(path_, text, fd); }

  std::string dir_, path_;
  std::optional<NotifySocket> socket_;
};

TEST_F(NotifySocketTest, ReceivesTheMessageWithTheSendersPid) {
  send("READY=1\nSTATUS=Serving 12 clients");
  auto r = socket_->receive();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->pid, ::getpid());
  EXPECT_TRUE(r->message.ready);
  EXPECT_FALSE(r->message.stopping);
  ASSERT_TRUE(r->message.status.has_value());
  EXPECT_EQ(*r->message.status, "Serving 12 clients");
  EXPECT_FALSE(socket_->receive().has_value()) << "one datagram, one message";
}

TEST_F(NotifySocketTest, NothingWaitingIsNulloptAtOnce) {
  // The socket is nonblocking: receive() must not wait for a datagram that is not there.
  EXPECT_FALSE(socket_->receive().has_value());
}

TEST_F(NotifySocketTest, ThePidIsTheKernelsWordForTheSender) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    send_to(path_, "READY=1");
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto r = socket_->receive();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->pid, child);
  EXPECT_TRUE(r->message.ready);
}

TEST_F(NotifySocketTest, OversizedDatagramIsDroppedAndTheNextOneStillArrives) {
  send(std::string("READY=1\n") + std::string(kMaxNotifyDatagram, 'x'));
  send("STOPPING=1");
  auto r = socket_->receive();
  ASSERT_TRUE(r.has_value()) << "the good datagram behind the dropped one";
  EXPECT_FALSE(r->message.ready) << "READY=1 of the oversized datagram must not count";
  EXPECT_TRUE(r->message.stopping);
  EXPECT_FALSE(socket_->receive().has_value());
}

TEST_F(NotifySocketTest, DatagramOfExactlyTheLimitIsAccepted) {
  std::string text = "READY=1\nSTATUS=";
  text += std::string(kMaxNotifyDatagram - text.size(), 's');
  ASSERT_EQ(text.size(), kMaxNotifyDatagram);
  send(text);
  auto r = socket_->receive();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->message.ready);
}

TEST_F(NotifySocketTest, DatagramCarryingADescriptorIsDroppedAndTheDescriptorClosed) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);
  send("READY=1", write_end.get());
  write_end.reset();  // now the copy in flight is the only write end
  EXPECT_FALSE(socket_->receive().has_value()) << "a datagram with descriptors is dropped";
  char c;
  EXPECT_EQ(::read(read_end.get(), &c, 1), 0)
      << "EOF: the received copy of the write end was closed, not leaked";
}

TEST_F(NotifySocketTest, UnknownKeysAreIgnoredAndAdoptKeysParsed) {
  send("MAINPID=42\nREADY=10\nX_OTHER=1\nBATON_ADOPT_LOADED=1\nBATON_ADOPTED=http 127.0.0.1:80");
  auto r = socket_->receive();
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->message.ready) << "READY=10 is not READY=1";
  EXPECT_TRUE(r->message.adopt_loaded);
  ASSERT_TRUE(r->message.adopted.has_value());
  EXPECT_EQ(*r->message.adopted, "http 127.0.0.1:80");
  EXPECT_FALSE(r->message.status.has_value());
}

TEST_F(NotifySocketTest, DestructionRemovesTheSocketFile) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  socket_.reset();
  EXPECT_NE(::stat(path_.c_str(), &st), 0);
}

TEST_F(NotifySocketTest, BindReplacesAStaleFileAndRefusesATooLongPath) {
  std::string stale = dir_ + "/stale";
  std::ofstream(stale) << "left over";
  auto s = NotifySocket::bind(stale);
  ASSERT_TRUE(s) << s.error().what();
  send_to(stale, "READY=1");
  auto r = s->receive();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->message.ready);

  auto too_long = NotifySocket::bind(dir_ + "/" + std::string(sizeof(sockaddr_un::sun_path), 'n'));
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().what().find("too long"), std::string::npos);
}

}  // namespace
}  // namespace baton

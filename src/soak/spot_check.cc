#include "soak/spot_check.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "baton/fd.h"
#include "common/listener.h"
#include "common/syscall.h"
#include "soak/http_parser.h"
#include "soak/load.h"

namespace baton::soak {
namespace {

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left_ms = (deadline - now_ns()) / 1'000'000;
    if (left_ms <= 0) return false;
    pollfd p{fd, events, 0};
    int rc = retry_eintr(::poll, &p, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (rc > 0) return true;
    if (rc < 0) return false;
  }
}

}  // namespace

Result<SpotCheckResponse> spot_check(const Address& address, const std::string& request,
                                     const std::string& capture_header,
                                     std::chrono::nanoseconds timeout) {
  int64_t deadline = now_ns() + timeout.count();
  std::string where = address.to_string();
  Fd fd(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error::from_errno("socket");
  if (::connect(fd.get(), address.sockaddr_ptr(), address.length) != 0) {
    // EINTR: the nonblocking connect goes on in the background; wait for it like EINPROGRESS.
    if (errno != EINPROGRESS && errno != EAGAIN && errno != EINTR) {
      return Error::from_errno("connect " + where);
    }
    if (!wait_for(fd.get(), POLLOUT, deadline)) return Error(ETIMEDOUT, "connect " + where);
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Error(err, "connect " + where);
  }
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n =
        retry_eintr(::send, fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN) return Error::from_errno("send to " + where);
      if (!wait_for(fd.get(), POLLOUT, deadline)) return Error(ETIMEDOUT, "send to " + where);
      continue;
    }
    sent += static_cast<size_t>(n);
  }
  ResponseParser parser;
  parser.capture_header(capture_header);
  parser.reset();
  char buf[16384];
  for (;;) {
    ssize_t n = retry_eintr(::recv, fd.get(), buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno != EAGAIN) return Error::from_errno("response from " + where);
      if (!wait_for(fd.get(), POLLIN, deadline)) {
        return Error(ETIMEDOUT, "response from " + where);
      }
      continue;
    }
    ResponseParser::State st;
    if (n == 0) {
      st = parser.finish_eof();
    } else {
      size_t used = 0;
      st = parser.feed(buf, static_cast<size_t>(n), &used);
    }
    if (st == ResponseParser::State::kComplete) {
      return SpotCheckResponse{parser.status(), parser.captured()};
    }
    if (st == ResponseParser::State::kError) {
      return Error("response from " + where + ": " + parser.error());
    }
  }
}

}  // namespace baton::soak

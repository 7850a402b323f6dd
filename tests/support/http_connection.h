// http_connection.h: one keep-alive HTTP/1.1 client connection for end-to-end tests.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <string>

#include "baton/fd.h"
#include "common/address.h"
#include "harness.h"

namespace baton::test {

// A keep-alive HTTP client connection: requests sent one at a time on the same connection, with
// no retry and no reconnect, so a test sees exactly what the server did to it.
class HttpConnection {
 public:
  explicit HttpConnection(const Address& address) {
    fd_.reset(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    connected_ = fd_ && ::connect(fd_.get(), address.sockaddr_ptr(), address.length) == 0;
  }
  bool connected() const { return connected_; }
  bool send_get(const std::string& path) {
    return send_raw("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n");
  }
  bool send_raw(const std::string& bytes) {
    return ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Reads one response (headers and Content-Length body); "" on EOF, error or timeout.
  std::string read_response(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      auto end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        auto cl = buffer_.find("Content-Length: ");
        size_t length = cl == std::string::npos ? 0 : std::stoul(buffer_.substr(cl + 16));
        if (buffer_.size() >= end + 4 + length) {
          std::string out = buffer_.substr(0, end + 4 + length);
          buffer_.erase(0, out.size());
          return out;
        }
      }
      if (!readable(deadline)) return {};
      char buf[4096];
      ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
      if (n <= 0) return {};
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }
  int fd() const { return fd_.get(); }
  // True when the server ended the connection (end-of-file or reset) within `timeout`.
  bool sees_end(std::chrono::milliseconds timeout = 10s) {
    if (!readable(Clock::now() + timeout)) return false;
    char c;
    return ::recv(fd_.get(), &c, 1, 0) <= 0;
  }
  // True when the connection ends (EOF) within `timeout`, whatever comes before the end.
  bool reads_to_end(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = Clock::now() + timeout;
    buffer_.clear();
    for (;;) {
      if (!readable(deadline)) return false;
      char buf[4096];
      ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
      if (n == 0) return true;
      if (n < 0) return false;
    }
  }
  // True when the server closed the connection (EOF) within `timeout`.
  bool sees_close(std::chrono::milliseconds timeout = 10s) {
    if (!readable(Clock::now() + timeout)) return false;
    char c;
    return ::recv(fd_.get(), &c, 1, 0) == 0;
  }

 private:
  bool readable(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd_.get(), POLLIN, 0};
    return left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) == 1;
  }
  Fd fd_;
  bool connected_ = false;
  std::string buffer_;
};

}  // namespace baton::test

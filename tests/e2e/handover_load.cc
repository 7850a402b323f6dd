#include "handover_load.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "baton/fd.h"

namespace baton::test {
namespace {

enum class Outcome { kOk, kRetryable, kFailed };

struct Exchange {
  Outcome outcome = Outcome::kFailed;
  std::string error;
  std::string pid;
  bool server_closes = false;
};

// Sends one request on `fd` and reads one response.
Exchange exchange(int fd, bool reused, bool close) {
  Exchange ex;
  std::string req = "GET / HTTP/1.1\r\nHost: load\r\n";
  if (close) req += "Connection: close\r\n";
  req += "\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ex.outcome = reused ? Outcome::kRetryable : Outcome::kFailed;
    ex.error = std::string("send: ") + std::strerror(errno);
    return ex;
  }
  std::string buf;
  char chunk[4096];
  size_t head_end = std::string::npos, need = 0;
  while (true) {
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      int err = n < 0 ? errno : 0;
      ex.outcome = reused && buf.empty() && (n == 0 || err == ECONNRESET) ? Outcome::kRetryable
                                                                          : Outcome::kFailed;
      ex.error = n == 0 ? "EOF after " + std::to_string(buf.size()) + " bytes"
                        : std::string("recv: ") + std::strerror(err);
      return ex;
    }
    buf.append(chunk, static_cast<size_t>(n));
    if (head_end == std::string::npos) {
      head_end = buf.find("\r\n\r\n");
      if (head_end == std::string::npos) continue;
      std::string head = buf.substr(0, head_end);
      if (head.rfind("HTTP/1.1 200 ", 0) != 0) {
        ex.error = "status line: " + head.substr(0, head.find('\r'));
        return ex;
      }
      size_t cl = head.find("Content-Length: ");
      if (cl == std::string::npos) {
        ex.error = "no Content-Length";
        return ex;
      }
      need = head_end + 4 + std::stoul(head.substr(cl + 16));
      size_t xp = head.find("X-Pid: ");
      if (xp != std::string::npos) ex.pid = head.substr(xp + 7, head.find('\r', xp) - xp - 7);
      ex.server_closes = head.find("Connection: close") != std::string::npos;
    }
    if (buf.size() >= need) {
      ex.outcome = Outcome::kOk;
      return ex;
    }
  }
}

Fd connect_to(const Address& a, std::string* error) {
  Fd fd(::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd.get(), a.sockaddr_ptr(), a.length) != 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    fd.reset();
  }
  return fd;
}

}  // namespace

LoadClient::LoadClient(Address target, int threads) : target_(target) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

LoadClient::~LoadClient() { stop(); }

void LoadClient::stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::map<std::string, long> LoadClient::by_pid() const {
  std::lock_guard lock(mu_);
  return by_pid_;
}

std::vector<std::string> LoadClient::errors() const {
  std::lock_guard lock(mu_);
  return errors_;
}

void LoadClient::run() {
  Fd conn;
  bool reused = false;
  long n = 0;
  std::map<std::string, long> local;
  auto fail = [&](const std::string& e) {
    ++failed_;
    std::lock_guard lock(mu_);
    if (errors_.size() < 20) errors_.push_back(e);
  };
  while (!stop_) {
    bool close = (++n % 16) == 0;
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!conn) {
        std::string err;
        conn = connect_to(target_, &err);
        reused = false;
        if (!conn) {
          fail(err);
          break;
        }
      }
      Exchange ex = exchange(conn.get(), reused, close);
      if (ex.outcome == Outcome::kOk) {
        ++ok_;
        ++local[ex.pid];
        reused = true;
        if (close || ex.server_closes) conn.reset();
        break;
      }
      conn.reset();
      if (ex.outcome == Outcome::kRetryable && attempt == 0) {
        ++retried_;
        continue;
      }
      fail(ex.error);
      break;
    }
  }
  std::lock_guard lock(mu_);
  for (const auto& [pid, count] : local) by_pid_[pid] += count;
}

}  // namespace baton::test

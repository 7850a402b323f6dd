#include "http_worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <queue>
#include <string_view>
#include <unordered_map>

namespace example {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHeader = 16 * 1024;     // larger request heads get 431 and a close
constexpr long kMaxSlowMs = 10 * 60 * 1000;  // /slow?ms= is capped at ten minutes
constexpr int kAcceptBatch = 64;  // accepts per wakeup, so one busy listener can't starve
// Closing a keep-alive connection the moment the drain starts races with the client's next
// request, already on its way on a busy connection: the client sees the connection closed without
// an answer (wrk counts a read error, careful clients retry). So a connection with no request in
// progress is closed only if no request arrives within a grace; one that does arrive is answered
// with "Connection: close". A connection accepted but never used gets longer: its first request is
// almost certainly in flight.
constexpr auto kIdleGrace = std::chrono::milliseconds(250);
constexpr auto kFreshGrace = std::chrono::seconds(2);

// Tag bits in epoll data: listeners and the drain fd are told apart from connections by a tag.
constexpr uint64_t kTagListener = 1ULL << 62;
constexpr uint64_t kTagDrain = 1ULL << 61;

struct Conn {
  int fd = -1;
  uint64_t serial = 0;
  std::string in;
  std::string out;
  size_t out_off = 0;
  bool waiting = false;  // a /slow request is pending on a timer
  bool keep_alive_pending = true;
  bool close_after_write = false;
  bool want_write = false;  // EPOLLOUT registered
  bool slow_close = false;  // the pending /slow response must close the connection
  long served = 0;          // responses generated so far
};

struct Timer {
  Clock::time_point when;
  int fd;
  uint64_t serial;
  bool grace = false;  // the end of kFreshGrace, not a /slow response
  bool operator>(const Timer& o) const { return when > o.when; }
};

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x += 32;
    if (y >= 'A' && y <= 'Z') y += 32;
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A parsed request head.
struct Request {
  std::string_view method, target;
  bool http10 = false;
  bool keep_alive = true;
  size_t content_length = 0;
  bool chunked = false;
  bool bad = false;
};

Request parse_head(std::string_view head) {
  Request r;
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t s1 = line.find(' ');
  size_t s2 = s1 == std::string_view::npos ? s1 : line.find(' ', s1 + 1);
  if (s2 == std::string_view::npos) {
    r.bad = true;
    return r;
  }
  r.method = line.substr(0, s1);
  r.target = line.substr(s1 + 1, s2 - s1 - 1);
  std::string_view version = line.substr(s2 + 1);
  if (version == "HTTP/1.0") {
    r.http10 = true;
    r.keep_alive = false;
  } else if (version != "HTTP/1.1") {
    r.bad = true;
    return r;
  }
  std::string_view rest = eol == std::string_view::npos ? "" : head.substr(eol + 2);
  while (!rest.empty()) {
    size_t e = rest.find("\r\n");
    std::string_view h = rest.substr(0, e);
    rest = e == std::string_view::npos ? "" : rest.substr(e + 2);
    size_t colon = h.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = h.substr(0, colon), value = trim(h.substr(colon + 1));
    if (ieq(name, "connection")) {
      if (ieq(value, "close")) r.keep_alive = false;
      if (ieq(value, "keep-alive")) r.keep_alive = true;
    } else if (ieq(name, "content-length")) {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), r.content_length);
      if (ec != std::errc() || p != value.data() + value.size()) r.bad = true;
    } else if (ieq(name, "transfer-encoding")) {
      r.chunked = true;
    }
  }
  return r;
}

class Worker {
 public:
  Worker(const WorkerConfig& c, const WorkerHooks& hooks) : config_(c), hooks_(hooks) {
    pid_ = std::to_string(::getpid());
    hello_body_ = "hello from generation " + config_.generation + " pid " + pid_ + "\n";
  }
  ~Worker() {
    for (auto& [fd, c] : conns_) ::close(fd);
    if (epfd_ >= 0) ::close(epfd_);
  }

  int run() {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) return errno;
    for (size_t i = 0; i < config_.listeners.size(); ++i) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLEXCLUSIVE;
      ev.data.u64 = kTagListener | i;
      if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, config_.listeners[i], &ev) != 0) return errno;
    }
    epoll_event dev{};
    dev.events = EPOLLIN;
    dev.data.u64 = kTagDrain;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, config_.drain_fd, &dev) != 0) return errno;
    if (hooks_.accepting) hooks_.accepting(hooks_.arg);

    epoll_event events[256];
    while (!(draining_ && conns_.empty())) {
      int timeout = -1;
      if (!timers_.empty()) {
        auto d = std::chrono::ceil<std::chrono::milliseconds>(timers_.top().when - Clock::now());
        timeout = d.count() < 0 ? 0 : static_cast<int>(d.count());
      }
      int n = ::epoll_wait(epfd_, events, 256, timeout);
      if (n < 0 && errno != EINTR) return errno;
      for (int i = 0; i < n; ++i) {
        uint64_t tag = events[i].data.u64;
        if (tag & kTagListener) {
          if (!draining_) accept_from(config_.listeners[tag & ~kTagListener]);
        } else if (tag & kTagDrain) {
          start_drain();
        } else {
          on_conn_event(static_cast<int>(tag & 0xffffffff), events[i].events);
        }
      }
      fire_timers();
    }
    return 0;
  }

 private:
  void start_drain() {
    if (draining_) return;
    draining_ = true;
    for (int l : config_.listeners) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, l, nullptr);
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, config_.drain_fd, nullptr);
    if (hooks_.detached) hooks_.detached(hooks_.arg);
    const auto now = Clock::now();
    for (auto& [fd, c] : conns_) {
      if (c->waiting) {
        c->slow_close = true;
      } else if (c->out_off < c->out.size()) {
        c->close_after_write = true;
      } else if (c->in.empty()) {
        timers_.push({now + (c->served > 0 ? kIdleGrace : kFreshGrace), fd, c->serial, true});
      }
      // else: a partial request is arriving; it is answered with "Connection: close".
    }
  }

  void accept_from(int listener) {
    for (int i = 0; i < kAcceptBatch; ++i) {
      int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        // EAGAIN: another worker or another process took it. Anything else (EMFILE,
        // ECONNABORTED...) concerns one connection; the loop goes on.
        return;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // fails harmlessly on unix
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      c->serial = ++serial_;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = static_cast<uint32_t>(fd);
      if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        continue;
      }
      conns_[fd] = std::move(c);
    }
  }

  void close_conn(int fd) {
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    conns_.erase(fd);
  }

  void on_conn_event(int fd, uint32_t events) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    Conn& c = *it->second;
    if (events & EPOLLOUT) {
      if (!flush(c)) return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      char buf[16384];
      bool eof = false;
      while (true) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n > 0) {
          c.in.append(buf, static_cast<size_t>(n));
          if (static_cast<size_t>(n) < sizeof(buf)) break;
          continue;
        }
        if (n == 0) {
          eof = true;
        } else if (errno == EINTR) {
          continue;
        } else if (errno != EAGAIN) {
          eof = true;
        }
        break;
      }
      process(c);
      if (conns_.count(fd) == 0) return;
      // The peer finished sending. A pending answer still goes out (a half-closed client may
      // read it); with nothing left to answer, the connection ends.
      if (eof && !c.waiting && c.out_off >= c.out.size()) {
        close_conn(fd);
        return;
      }
      if (eof && !c.waiting) c.close_after_write = true;
      if (eof) {
        // Stop EPOLLIN/RDHUP reports, which would spin; keep EPOLLOUT if waiting to write.
        epoll_event ev{};
        ev.events = c.want_write ? static_cast<uint32_t>(EPOLLOUT) : 0u;
        ev.data.u64 = static_cast<uint32_t>(fd);
        ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
        if (c.waiting) c.slow_close = true;
      }
    }
  }

  // Answers every complete request in c.in, in order, until one must wait (/slow).
  void process(Conn& c) {
    while (!c.waiting && !c.close_after_write) {
      size_t end = c.in.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (c.in.size() > kMaxHeader) respond(c, 431, "request header too large\n", false);
        break;
      }
      Request r = parse_head(std::string_view(c.in).substr(0, end));
      size_t total = end + 4 + r.content_length;
      if (r.bad || r.chunked) {
        respond(c, r.chunked ? 501 : 400,
                r.chunked ? "chunked bodies not supported\n" : "bad request\n", false);
        break;
      }
      if (c.in.size() < total) break;  // body still arriving
      bool keep = r.keep_alive && !draining_;
      std::string_view target = r.target;
      std::string_view path = target.substr(0, target.find('?'));
      std::string_view query = path.size() < target.size() ? target.substr(path.size() + 1) : "";
      if (r.method != "GET") {
        bool known = path == "/" || path == "/slow" || path == "/healthz";
        respond(c, known ? 405 : 404, known ? "only GET\n" : "not found\n", keep);
      } else if (path == "/") {
        respond(c, 200, hello_body_, keep);
      } else if (path == "/healthz") {
        respond(c, 200, "ok\n", keep);
      } else if (path == "/slow") {
        long ms = -1;
        if (query.substr(0, 3) == "ms=") {
          std::string_view v = query.substr(3, query.find('&') - 3);
          auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
          if (ec != std::errc() || p != v.data() + v.size() || ms < 0 || ms > kMaxSlowMs) ms = -1;
        }
        if (ms < 0) {
          respond(c, 400, "want /slow?ms=N with 0 <= N <= 600000\n", keep);
        } else {
          c.waiting = true;
          c.slow_close = !keep;
          timers_.push({Clock::now() + std::chrono::milliseconds(ms), c.fd, c.serial});
        }
      } else {
        respond(c, 404, "not found\n", keep);
      }
      c.in.erase(0, total);
    }
    if (conns_.count(c.fd) != 0) flush(c);
  }

  void respond(Conn& c, int status, std::string_view body, bool keep) {
    const char* reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 431 ? "Request Header Fields Too Large"
                                         : "Not Implemented";
    char head[512];
    int n = std::snprintf(head, sizeof(head),
                          "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                          "X-Baton-Generation: %s\r\nX-Pid: %s\r\n%s\r\n",
                          status, reason, body.size(), config_.generation.c_str(), pid_.c_str(),
                          keep ? "" : "Connection: close\r\n");
    c.out.append(head, static_cast<size_t>(n));
    c.out.append(body);
    ++c.served;
    if (!keep) c.close_after_write = true;
  }

  // Writes what it can; false when the connection was closed.
  bool flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        if (!c.want_write) {
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLRDHUP | EPOLLOUT;
          ev.data.u64 = static_cast<uint32_t>(c.fd);
          ::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
          c.want_write = true;
        }
        return true;
      }
      close_conn(c.fd);  // the peer is gone
      return false;
    }
    c.out.clear();
    c.out_off = 0;
    if (c.want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = static_cast<uint32_t>(c.fd);
      ::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_write = false;
    }
    if (c.close_after_write) {
      close_conn(c.fd);
      return false;
    }
    return true;
  }

  void fire_timers() {
    auto now = Clock::now();
    while (!timers_.empty() && timers_.top().when <= now) {
      Timer t = timers_.top();
      timers_.pop();
      auto it = conns_.find(t.fd);
      if (it == conns_.end() || it->second->serial != t.serial) continue;  // connection gone
      Conn& c = *it->second;
      if (t.grace) {
        if (c.in.empty() && !c.waiting && c.out_off >= c.out.size()) close_conn(t.fd);
        continue;
      }
      c.waiting = false;
      respond(c, 200, hello_body_, !c.slow_close && !draining_);
      if (c.close_after_write) {
        flush(c);
      } else {
        process(c);  // pipelined requests behind it, then flush
      }
    }
  }

  const WorkerConfig& config_;
  WorkerHooks hooks_;
  std::string pid_;
  std::string hello_body_;
  int epfd_ = -1;
  bool draining_ = false;
  uint64_t serial_ = 0;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
};

}  // namespace

int run_worker(const WorkerConfig& config, const WorkerHooks& hooks) {
  Worker w(config, hooks);
  return w.run();
}

}  // namespace example

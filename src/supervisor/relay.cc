#include "supervisor/relay.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <string>

#include <fmt/format.h>

#include "common/syscall.h"
#include "supervisor/request_sniff.h"

namespace baton {
namespace {

using Clock = EventLoop::Clock;

// How often the relay looks at its pairs' deadlines, while it has any.
constexpr std::chrono::seconds kSweepEvery{1};
// An upstream connection to the serving generation that has not completed by then is given up.
constexpr std::chrono::seconds kConnectWait{10};
constexpr uint32_t kEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

// One direction: bytes read from `from` wait in `buffer` until written to the other side.
struct Direction {
  std::string buffer;
  bool eof = false;   // `from` said it sends no more
  bool shut = false;  // passed on: the other side was shut for writing
};

// Whether end-of-file read from `fd` is the peer's: a taken-over connection's read side was shut
// (drain_watch.h), so its reads return 0 whenever nothing is waiting, yet the client is still
// there (the connection established) and its next request will be read.
bool peer_left(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return true;
  return info.tcpi_state != TCP_ESTABLISHED;
}

// Sends what `d` holds to `to`; false on an error (EAGAIN is not one).
bool flush(int to, Direction& d) {
  while (!d.buffer.empty()) {
    ssize_t n =
        retry_eintr(::send, to, d.buffer.data(), d.buffer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN;
    d.buffer.erase(0, static_cast<size_t>(n));
  }
  return true;
}

// Moves what `from` has to `to`: straight through, and into `d`'s buffer only what `to` does not
// take at once (then `from` is not read until it drained). At `from`'s end, shuts `to` for
// writing when `pass_eof`. Adds the bytes read to `moved`. False when the pair must end (an
// error). Every call is non-blocking whatever the descriptors' flags: a taken-over connection
// shares its file description with the app, whose flags are not baton's to change.
bool pump(int from, int to, Direction& d, size_t& moved, bool pass_eof = true) {
  if (!flush(to, d)) return false;
  char buf[16384];
  while (d.buffer.empty() && !d.eof) {
    const ssize_t n = retry_eintr(::recv, from, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      moved += static_cast<size_t>(n);
      ssize_t sent =
          retry_eintr(::send, to, buf, static_cast<size_t>(n), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent < 0) {
        if (errno != EAGAIN) return false;
        sent = 0;
      }
      if (sent < n) d.buffer.assign(buf + sent, static_cast<size_t>(n - sent));
      // Read on even after a short read: the peer's end may have come with the bytes, in the
      // same edge, and no other edge would tell of it.
    } else if (n == 0 && peer_left(from)) {
      d.eof = true;
    } else if (n == 0 || errno == EAGAIN) {
      break;
    } else {
      return false;
    }
  }
  if (pass_eof && d.eof && d.buffer.empty() && !d.shut) {
    ::shutdown(to, SHUT_WR);
    d.shut = true;
  }
  return true;
}

std::string local_key(int fd) {
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return {};
  return address_from_sockaddr(Transport::kTcp, reinterpret_cast<sockaddr*>(&local), len)
      .to_string();
}

}  // namespace

struct Relay::Pair {
  enum class Phase {
    kAwaitRequest,  // taken over: nothing relayed until the client's next request is recognised
    kConnecting,    // an upstream connection to the serving generation is being made
    kRelaying,      // bytes flow both ways
    kDetaching,     // the upstream was half-closed so its draining generation lets it go
  };
  Fd client;    // accepted from an orphaned socket, or taken over from an old generation
  Fd upstream;  // to the serving generation (none while awaiting a request)
  Address to;
  bool taken = false;  // taken over (or detached once): its next request is sniffed
  Phase phase = Phase::kConnecting;
  Direction up;                    // client -> upstream
  Direction down;                  // upstream -> client
  bool awaiting_response = false;  // the last bytes moved went upstream
  bool sniffing = false;           // part of a request line has arrived
  std::string upstream_key;        // the upstream's local address, in upstreams_
  Clock::time_point since;         // when the phase (or the half-close) began
  bool half_closed = false;
  // The request went with "Connection: close": the response's head is read into `head` until
  // whole, then passed on saying so too (response_with_connection_close).
  bool rewrite_response = false;
  std::string head;
};

Relay::Relay(EventLoop& loop, Logger log) : loop_(loop), log_(std::move(log)) {}

Relay::~Relay() {
  for (auto& [fd, to] : listeners_) {
    if (!paused_.contains(fd)) loop_.remove(fd);
  }
  for (auto& [raw, pair] : pairs_) {
    loop_.remove(pair->client.get());
    if (pair->upstream) loop_.remove(pair->upstream.get());
  }
  if (sweep_timer_ != 0) loop_.cancel_timer(sweep_timer_);
}

void Relay::take_over(int listener, const Address& to) {
  if (listeners_.contains(listener)) return;
  listeners_[listener] = to;
  // Level-triggered: a connection left queued because of kMaxRelayed is looked at again.
  if (!loop_.add(listener, EPOLLIN, [this, listener](uint32_t) { on_listener(listener); })) {
    listeners_.erase(listener);
    return;
  }
  on_listener(listener);
}

void Relay::release(int listener) {
  if (listeners_.erase(listener) != 0 && paused_.erase(listener) == 0) loop_.remove(listener);
}

void Relay::on_listener(int listener) {
  auto it = listeners_.find(listener);
  if (it == listeners_.end()) return;
  const Address to = it->second;
  while (stranded_now_ < kMaxRelayed) {
    // The member socket is blocking (its file description is the one generations get, so its
    // flags are not baton's to change): accept only what poll says is there. Nobody else
    // accepts on an orphaned socket, so what poll sees stays there.
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 0) != 1 || (p.revents & POLLIN) == 0) return;
    Fd client(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!client) return;
    auto pair = std::make_unique<Pair>();
    pair->client = std::move(client);
    pair->to = to;
    Pair* raw = pair.get();
    if (!loop_.add(raw->client.get(), kEvents, [this, raw](uint32_t) { on_event(raw); })) continue;
    pairs_[raw] = std::move(pair);
    ++stranded_now_;
    ++relayed_total_;
    if (!connect_upstream(raw)) close_pair(raw);  // closing the client tells it at once
  }
  // Full: stop looking until a pair ends, or the loop would spin on the readable listener.
  loop_.remove(listener);
  paused_.insert(listener);
}

void Relay::adopt(Fd client, const Address& to) {
  if (taken_now_ >= kMaxTakenOver) {
    ++counts_.over_cap;
    if (!logged_cap_) {
      log_(
          fmt::format("keep-alive takeover: {} connections held already; more are closed, as "
                      "before baton took any over (counted in status)",
                      kMaxTakenOver));
      logged_cap_ = true;
    }
    return;  // closing baton's copy, the last one, closes the connection
  }
  auto pair = std::make_unique<Pair>();
  pair->client = std::move(client);
  pair->to = to;
  pair->taken = true;
  pair->phase = Pair::Phase::kAwaitRequest;
  pair->since = Clock::now();
  Pair* raw = pair.get();
  if (!loop_.add(raw->client.get(), kEvents, [this, raw](uint32_t) { on_event(raw); })) return;
  pairs_[raw] = std::move(pair);
  ++taken_now_;
  ++counts_.taken_over;
  arm_sweep();
  sniff(raw);  // the request may be waiting already
}

bool Relay::detach(const Address& upstream) {
  auto it = upstreams_.find(upstream.to_string());
  if (it == upstreams_.end()) return false;
  Pair* p = it->second;
  if (p->phase == Pair::Phase::kDetaching) return true;
  if (p->phase != Pair::Phase::kRelaying || p->half_closed || p->awaiting_response ||
      !p->up.buffer.empty() || !p->down.buffer.empty()) {
    return false;
  }
  // The client's next request may be waiting already: it stays in its socket, unread, and goes
  // over the new upstream connection. The app reads end-of-file, as if the client had left;
  // what it still sends (the end of a response) is passed on.
  if (::shutdown(p->upstream.get(), SHUT_WR) != 0) return false;
  p->phase = Pair::Phase::kDetaching;
  p->since = Clock::now();
  if (!p->taken) {
    p->taken = true;
    --stranded_now_;
    ++taken_now_;
  }
  ++counts_.detached;
  arm_sweep();
  return true;
}

size_t Relay::busy() const {
  size_t n = 0;
  for (const auto& [raw, p] : pairs_) {
    const bool waiting = p->phase == Pair::Phase::kAwaitRequest && !p->sniffing;
    const bool idle = p->phase == Pair::Phase::kRelaying && !p->awaiting_response &&
                      p->up.buffer.empty() && p->down.buffer.empty();
    if (!p->taken || (!waiting && !idle)) ++n;
  }
  return n;
}

bool Relay::connect_upstream(Pair* pair, std::string first) {
  Fd upstream(::socket(pair->to.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!upstream || (::connect(upstream.get(), pair->to.sockaddr_ptr(), pair->to.length) != 0 &&
                    errno != EINPROGRESS)) {
    return false;
  }
  if (!loop_.add(upstream.get(), kEvents, [this, pair](uint32_t) { on_event(pair); })) return false;
  pair->upstream = std::move(upstream);
  pair->upstream_key = local_key(pair->upstream.get());
  if (!pair->upstream_key.empty()) upstreams_[pair->upstream_key] = pair;
  pair->phase = Pair::Phase::kConnecting;
  pair->since = Clock::now();
  pair->up = {};
  pair->up.buffer = std::move(first);  // sent once connected (pump flushes it first)
  pair->awaiting_response = !pair->up.buffer.empty();
  pair->rewrite_response = !pair->up.buffer.empty();
  pair->head.clear();
  pair->down = {};
  pair->half_closed = false;
  arm_sweep();
  on_event(pair);
  return true;
}

void Relay::sniff(Pair* pair) {
  char buf[kSniffLimit];
  const ssize_t n = ::recv(pair->client.get(), buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) {
    if (peer_left(pair->client.get())) close_pair(pair);  // the client left
    return;  // nothing waiting (its read side is shut, so reads say 0)
  }
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) close_pair(pair);
    return;
  }
  switch (sniff_request(std::string_view(buf, static_cast<size_t>(n)))) {
    case Sniffed::kNeedMore:
      if (!pair->sniffing) {
        pair->sniffing = true;
        pair->since = Clock::now();
      }
      return;
    case Sniffed::kOther:
      ++counts_.refused;
      if (!logged_refused_) {
        log_(
            "keep-alive takeover: a client sent something other than a plaintext HTTP/1.x "
            "request on a taken-over connection; closed, not relayed (counted in status)");
        logged_refused_ = true;
      }
      if (pair->taken && is_tls_record(std::string_view(buf, static_cast<size_t>(n))) &&
          tls_ports_.insert(pair->to.port()).second) {
        log_(fmt::format(
            "keep-alive takeover: port {} speaks TLS, which baton cannot relay; its idle "
            "connections are closed at a drain from now on, as before takeover",
            pair->to.port()));
      }
      return close_pair(pair);
    case Sniffed::kHttp1: {
      ++counts_.relayed;
      pair->sniffing = false;
      // The request goes with "Connection: close" when its head is all here: the app answers
      // it and ends the connection, and the client's next request opens a connection of its
      // own, straight to the serving generation. The bytes rewritten are taken off the socket
      // (they are all waiting: only this thread reads it); otherwise they are relayed as sent.
      std::string first = with_connection_close(std::string_view(buf, static_cast<size_t>(n)));
      if (!first.empty() &&
          retry_eintr(::recv, pair->client.get(), buf, static_cast<size_t>(n), MSG_DONTWAIT) != n) {
        return close_pair(pair);
      }
      if (!connect_upstream(pair, std::move(first))) close_pair(pair);
      return;
    }
  }
}

void Relay::on_event(Pair* pair) {
  if (!pairs_.contains(pair)) return;
  switch (pair->phase) {
    case Pair::Phase::kAwaitRequest:
      return sniff(pair);
    case Pair::Phase::kDetaching:
      return on_detaching(pair);
    case Pair::Phase::kConnecting: {
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(pair->upstream.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return close_pair(pair);
      sockaddr_storage peer{};
      len = sizeof(peer);
      if (::getpeername(pair->upstream.get(), reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
        return;  // still connecting
      }
      pair->phase = Pair::Phase::kRelaying;
      break;
    }
    case Pair::Phase::kRelaying:
      break;
  }
  size_t up = 0, down = 0;
  const bool up_eof = pair->up.eof;
  if (pair->rewrite_response && !read_response_head(pair)) return close_pair(pair);
  if (!pump(pair->client.get(), pair->upstream.get(), pair->up, up) ||
      (!pair->rewrite_response &&
       !pump(pair->upstream.get(), pair->client.get(), pair->down, down))) {
    return close_pair(pair);
  }
  // The client's side was pumped first: bytes from the app read in the same turn came after
  // those sent to it, so they answer them (a quick app answers before this turn ends; the
  // other order left a pair forever awaiting, never detached, and its generation was killed at
  // the drain deadline).
  if (up > 0 || pair->up.eof != up_eof) pair->awaiting_response = true;
  if (down > 0) pair->awaiting_response = false;
  if (pair->up.shut && pair->down.shut) return close_pair(pair);
  if ((pair->up.shut || pair->down.shut) && !pair->half_closed) {
    pair->half_closed = true;
    pair->since = Clock::now();
  }
}

bool Relay::read_response_head(Pair* pair) {
  char buf[4096];
  while (pair->rewrite_response) {
    const ssize_t n = retry_eintr(::recv, pair->upstream.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN;
    ResponseRewrite r;
    if (n == 0) {  // the app ended before a whole head: what came passes as it is, then its end
      r.done = true;
      r.out = std::move(pair->head);
    } else {
      pair->head.append(buf, static_cast<size_t>(n));
      r = response_with_connection_close(pair->head);
      if (!r.done) continue;
    }
    pair->rewrite_response = false;
    pair->head.clear();
    pair->down.buffer = std::move(r.out);
    if (!pair->down.buffer.empty()) pair->awaiting_response = false;
  }
  return true;
}

void Relay::on_detaching(Pair* pair) {
  // The end of a response may still come: passed on, but not the upstream's end-of-file, and
  // the client's next request waits in its socket until a new upstream connection is made.
  size_t moved = 0;
  if (!pump(pair->upstream.get(), pair->client.get(), pair->down, moved, false)) {
    if (!pair->down.buffer.empty()) return close_pair(pair);
    pair->down.eof = true;  // an error from the old generation ends it like end-of-file
  }
  if (!pair->down.eof || !pair->down.buffer.empty()) return;
  loop_.remove(pair->upstream.get());
  upstreams_.erase(pair->upstream_key);
  pair->upstream.reset();
  pair->upstream_key.clear();
  pair->phase = Pair::Phase::kAwaitRequest;
  pair->since = Clock::now();
  pair->sniffing = false;
  pair->up = {};
  pair->down = {};
  sniff(pair);
}

void Relay::close_pair(Pair* pair) {
  loop_.remove(pair->client.get());
  if (pair->upstream) loop_.remove(pair->upstream.get());
  if (!pair->upstream_key.empty()) upstreams_.erase(pair->upstream_key);
  if (pair->taken) {
    --taken_now_;
  } else {
    --stranded_now_;
  }
  pairs_.erase(pair);
  if (stranded_now_ >= kMaxRelayed) return;
  auto paused = std::move(paused_);
  paused_.clear();
  for (int listener : paused) {
    if (!listeners_.contains(listener)) continue;
    if (!loop_.add(listener, EPOLLIN, [this, listener](uint32_t) { on_listener(listener); })) {
      listeners_.erase(listener);
    }
  }
}

void Relay::arm_sweep() {
  if (sweep_timer_ != 0) return;
  sweep_timer_ = loop_.add_timer(Clock::now() + kSweepEvery, [this] {
    sweep_timer_ = 0;
    sweep();
  });
}

void Relay::sweep() {
  const auto now = Clock::now();
  std::vector<Pair*> expired;
  for (const auto& [raw, p] : pairs_) {
    const auto age = now - p->since;
    switch (p->phase) {
      case Pair::Phase::kAwaitRequest:
        if (p->sniffing && age > kSniffWait) {
          ++counts_.refused;
          expired.push_back(raw);
        } else if (!p->sniffing && age > kTakeoverIdle) {
          ++counts_.idle_closed;
          expired.push_back(raw);
        }
        break;
      case Pair::Phase::kConnecting:
        if (age > kConnectWait) expired.push_back(raw);
        break;
      case Pair::Phase::kRelaying:
        if (p->half_closed && age > kHalfClosedWait) expired.push_back(raw);
        break;
      case Pair::Phase::kDetaching:
        break;  // the old generation's drain deadline bounds it
    }
  }
  for (Pair* p : expired) close_pair(p);
  if (!pairs_.empty()) arm_sweep();
}

}  // namespace baton

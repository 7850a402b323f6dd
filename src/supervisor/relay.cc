#include "supervisor/relay.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <string>

#include "common/syscall.h"

namespace baton {

// One direction: bytes read from `from` wait in `buffer` until written to the other side.
struct Direction {
  std::string buffer;
  bool eof = false;   // `from` said it sends no more
  bool shut = false;  // passed on: the other side was shut for writing
};

struct Relay::Pair {
  Fd client;    // accepted from the orphaned socket
  Fd upstream;  // to the serving generation
  bool connected = false;
  Direction up;    // client -> upstream
  Direction down;  // upstream -> client
};

Relay::Relay(EventLoop& loop) : loop_(loop) {}

Relay::~Relay() {
  for (auto& [fd, to] : listeners_) {
    if (!paused_.contains(fd)) loop_.remove(fd);
  }
  for (auto& [raw, pair] : pairs_) {
    loop_.remove(pair->client.get());
    loop_.remove(pair->upstream.get());
  }
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
  while (pairs_.size() < kMaxRelayed) {
    // The member socket is blocking (its file description is the one generations get, so its
    // flags are not baton's to change): accept only what poll says is there. Nobody else
    // accepts on an orphaned socket, so what poll sees stays there.
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 0) != 1 || (p.revents & POLLIN) == 0) return;
    Fd client(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!client) return;
    Fd upstream(::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!upstream ||
        (::connect(upstream.get(), to.sockaddr_ptr(), to.length) != 0 && errno != EINPROGRESS)) {
      continue;  // closing the client tells it at once
    }
    auto pair = std::make_unique<Pair>();
    pair->client = std::move(client);
    pair->upstream = std::move(upstream);
    Pair* raw = pair.get();
    const uint32_t ev = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    if (!loop_.add(raw->client.get(), ev, [this, raw](uint32_t) { on_event(raw); })) continue;
    if (!loop_.add(raw->upstream.get(), ev, [this, raw](uint32_t) { on_event(raw); })) {
      loop_.remove(raw->client.get());
      continue;
    }
    pairs_[raw] = std::move(pair);
    ++relayed_total_;
    on_event(raw);
  }
  // Full: stop looking until a pair ends, or the loop would spin on the readable listener.
  loop_.remove(listener);
  paused_.insert(listener);
}

namespace {

// Moves what `from` has to `to` through `d`. False when the pair must end (an error).
bool pump(int from, int to, Direction& d) {
  char buf[16384];
  while (!d.eof && d.buffer.size() < kRelayBuffer) {
    ssize_t n = retry_eintr(::recv, from, buf, sizeof(buf), 0);
    if (n > 0) {
      d.buffer.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      d.eof = true;
    } else if (errno == EAGAIN) {
      break;
    } else {
      return false;
    }
  }
  while (!d.buffer.empty()) {
    ssize_t n = retry_eintr(::send, to, d.buffer.data(), d.buffer.size(), MSG_NOSIGNAL);
    if (n > 0) {
      d.buffer.erase(0, static_cast<size_t>(n));
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else {
      return false;
    }
  }
  if (d.eof && d.buffer.empty() && !d.shut) {
    ::shutdown(to, SHUT_WR);
    d.shut = true;
  }
  return true;
}

}  // namespace

void Relay::on_event(Pair* pair) {
  if (!pairs_.contains(pair)) return;
  if (!pair->connected) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(pair->upstream.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return close_pair(pair);
    sockaddr_storage peer{};
    len = sizeof(peer);
    if (::getpeername(pair->upstream.get(), reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
      return;  // still connecting
    }
    pair->connected = true;
  }
  if (!pump(pair->client.get(), pair->upstream.get(), pair->up) ||
      !pump(pair->upstream.get(), pair->client.get(), pair->down)) {
    return close_pair(pair);
  }
  if (pair->up.shut && pair->down.shut) close_pair(pair);
}

void Relay::close_pair(Pair* pair) {
  loop_.remove(pair->client.get());
  loop_.remove(pair->upstream.get());
  pairs_.erase(pair);
  auto paused = std::move(paused_);
  paused_.clear();
  for (int listener : paused) {
    if (!listeners_.contains(listener)) continue;
    if (!loop_.add(listener, EPOLLIN, [this, listener](uint32_t) { on_listener(listener); })) {
      listeners_.erase(listener);
    }
  }
}

}  // namespace baton

// handover_child.cc: the child half of direct handover (handover.h), in the new instance: take
// the listeners from the instance serving the path, then tell it to drain once ready. Protocol:
// lib/handover_protocol.h; packets: lib/handover_transport.h.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "common/syscall.h"
#include "common/unix_socket.h"
#include "lib/handover.h"
#include "lib/handover_protocol.h"
#include "lib/handover_transport.h"

namespace baton::handover {
namespace {

// Connects to the path. Outcomes: connected seqpacket socket; no peer (nullopt in fd); a peer
// that only speaks SOCK_STREAM (legacy: fills cred).
struct Connected {
  Fd fd;
  bool no_peer = false;
  bool wrong_type = false;
  ucred cred{};  // of the peer, when there is one
};

Result<Connected> connect_path(const std::string& path) {
  auto sun = unix_address(path);
  if (!sun) return sun.error();
  Connected c;
  c.fd = Fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!c.fd) return Error::from_errno("socket for handover");
  if (retry_eintr(::connect, c.fd.get(), sun->get(), sun->length) == 0) {
    auto cred = peer_credentials(c.fd.get());
    if (!cred) return cred.error();
    c.cred = *cred;
    return c;
  }
  int err = errno;
  if (err == ENOENT || err == ECONNREFUSED) {
    c.fd.reset();
    c.no_peer = true;
    return c;
  }
  if (err == EPROTOTYPE) {
    // Something listens there with another socket type: not our protocol. Learn who it is.
    Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (s && retry_eintr(::connect, s.get(), sun->get(), sun->length) == 0) {
      if (auto cred = peer_credentials(s.get())) c.cred = *cred;
    }
    c.fd.reset();
    c.wrong_type = true;
    return c;
  }
  return Error(err, fmt::format("connect to handover path {}", path));
}

}  // namespace

Result<Takeover> take_listeners(const std::string& path, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string last_refusal;  // set once the peer proved it speaks the protocol (busy/draining)
  while (true) {
    auto c = connect_path(path);
    if (!c) return c.error();
    Takeover t;
    if (c->no_peer) return t;
    t.peer_pid = c->cred.pid;
    // Only a process of our own user (or root) may give us sockets.
    if (!peer_uid_allowed(c->cred.uid)) {
      return Error(EPERM, fmt::format("handover path {} is served by uid {} (pid {}), not by us",
                                      path, c->cred.uid, c->cred.pid));
    }
    if (c->wrong_type) {
      t.outcome = Takeover::Outcome::kLegacyPeer;
      t.detail = "it listens with a stream socket, not seqpacket";
      return t;
    }
    int fd = c->fd.get();
    auto legacy = [&](std::string why) -> Result<Takeover> {
      if (!last_refusal.empty()) {
        return Error(ETIMEDOUT, fmt::format("handover via {}: old instance pid {} still says '{}' "
                                            "({})",
                                            path, t.peer_pid, last_refusal, why));
      }
      t.outcome = Takeover::Outcome::kLegacyPeer;
      t.detail = std::move(why);
      return std::move(t);
    };
    // A failed send is not the end: a peer that refused us before reading (busy) has queued its
    // answer and closed, and that answer is still there to read.
    auto sent = send_packet(fd, encode(make_hello({kMinVersion, kVersion, ::getpid()})));
    auto readable = wait_readable(fd, time_left(deadline));
    if (!readable) return readable.error();
    if (!*readable) return legacy("no answer to HELLO in time");
    auto p = recv_packet(fd);
    if (!p) return legacy(p.error().what());
    if (p->eof) {
      return legacy(sent ? "it closed the connection after HELLO" : sent.error().what());
    }
    auto m = decode(p->data);
    if (!m) return legacy(m.error().what());
    if (m->type == Type::kRefuse) {
      auto r = parse_refuse(*m);
      if (!r) return r.error();
      if (!r->retry) {
        return legacy(fmt::format("it refused: {} (its versions {}..{})", r->reason, r->min_version,
                                  r->max_version));
      }
      last_refusal = r->reason;
      if (Clock::now() >= deadline) {
        return Error(ETIMEDOUT, fmt::format("handover via {}: old instance pid {} still says "
                                            "'{}'",
                                            path, t.peer_pid, r->reason));
      }
      std::this_thread::sleep_for(std::min(time_left(deadline), std::chrono::milliseconds(50)));
      continue;
    }
    auto offer = parse_offer(*m, p->fds.size());
    if (!offer) {
      return Error(EPROTO, fmt::format("handover via {}: {}", path, offer.error().what()));
    }
    for (size_t i = 0; i < offer->listeners.size(); ++i) {
      auto info =
          describe_listener(p->fds[i].get(), offer->listeners[i].name, ListenerOrigin::kHandover);
      if (!info) return info.error();  // every received descriptor is closed with `p`
      if (info->type != offer->listeners[i].type) {
        return Error(EPROTO, fmt::format("handover: listener {} is not of the type announced",
                                         offer->listeners[i].name));
      }
      t.listeners.push_back({std::move(*info), std::move(p->fds[i])});
    }
    t.outcome = Takeover::Outcome::kTaken;
    t.peer_pid = offer->pid;
    t.connection = std::move(c->fd);
    return t;
  }
}

Result<pid_t> finish_takeover(int connection, std::chrono::milliseconds timeout) {
  if (auto s = send_packet(connection, encode(make_ready())); !s) return s.error();
  auto readable = wait_readable(connection, timeout);
  if (!readable) return readable.error();
  if (!*readable) return Error(ETIMEDOUT, "waiting for DRAINING from the old instance");
  auto p = recv_packet(connection);
  if (!p) return p.error();
  if (p->eof) return Error("the old instance closed the connection instead of DRAINING");
  if (!p->fds.empty()) return Error(EPROTO, "DRAINING came with descriptors");
  auto m = decode(p->data);
  if (!m) return m.error();
  return parse_draining(*m);
}

}  // namespace baton::handover

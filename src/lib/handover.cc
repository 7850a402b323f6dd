// handover.cc: sockets, descriptors and the thread around the pure protocol of
// lib/handover_protocol.h (which describes the wire protocol, version 1).
#include "lib/handover.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "common/syscall.h"
#include "common/unix_socket.h"
#include "lib/handover_protocol.h"

namespace baton::handover {
namespace {

using Clock = std::chrono::steady_clock;

struct UnixAddr {
  sockaddr_un sun{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&sun); }
};

Result<UnixAddr> unix_address(const std::string& path) {
  UnixAddr a;
  auto length = fill_unix_address(path, a.sun);
  if (!length) return Error(fmt::format("handover path '{}': {}", path, length.error().what()));
  a.length = *length;
  return a;
}

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
};

Result<PeerCred> peer_cred(int fd) {
  auto cred = peer_credentials(fd);
  if (!cred) return cred.error();
  return PeerCred{cred->pid, cred->uid};
}

// Only the owner of an instance (or root) may take its sockets, or give us sockets.
bool uid_allowed(uid_t peer) { return peer_uid_allowed(peer); }

std::chrono::milliseconds left(Clock::time_point deadline) {
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return d.count() < 0 ? std::chrono::milliseconds(0) : d;
}

// Waits until `fd` is readable; false on timeout.
Result<bool> wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  int rc = retry_eintr(::poll, &p, 1, static_cast<int>(timeout.count()));
  if (rc < 0) return Error::from_errno("poll");
  return rc > 0;
}

Status send_packet(int fd, const std::string& packet, const std::vector<int>& fds = {}) {
  iovec iov{const_cast<char*>(packet.data()), packet.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  if (retry_eintr(::sendmsg, fd, &msg, MSG_NOSIGNAL) < 0) {
    return Error::from_errno("send handover message");
  }
  return {};
}

struct Packet {
  std::string data;  // empty: EOF
  std::vector<Fd> fds;
  bool eof = false;
};

// Receives one packet and the descriptors that came with it (all owned, CLOEXEC). A truncated
// packet or control block is an error; the descriptors that did arrive are closed.
Result<Packet> recv_packet(int fd) {
  Packet p;
  std::string buf(kMaxPacket + 1, '\0');
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kMaxFds + 1))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = retry_eintr(::recvmsg, fd, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return Error::from_errno("receive handover message");
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        p.fds.emplace_back(received);
      }
    }
  }
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    return Error("handover message or its descriptors truncated");
  }
  if (n == 0) {
    p.eof = true;
    return p;
  }
  buf.resize(static_cast<size_t>(n));
  p.data = std::move(buf);
  return p;
}

// Connects to the path. Outcomes: connected seqpacket socket; no peer (nullopt in fd); a peer
// that only speaks SOCK_STREAM (legacy: fills cred).
struct Connected {
  Fd fd;
  bool no_peer = false;
  bool wrong_type = false;
  PeerCred cred;
};

Result<Connected> connect_path(const std::string& path) {
  auto sun = unix_address(path);
  if (!sun) return sun.error();
  Connected c;
  c.fd = Fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!c.fd) return Error::from_errno("socket for handover");
  if (retry_eintr(::connect, c.fd.get(), sun->get(), sun->length) == 0) {
    auto cred = peer_cred(c.fd.get());
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
      if (auto cred = peer_cred(s.get())) c.cred = *cred;
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
    if (!uid_allowed(c->cred.uid)) {
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
    auto readable = wait_readable(fd, left(deadline));
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
      std::this_thread::sleep_for(std::min(left(deadline), std::chrono::milliseconds(50)));
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

struct HandoverParent::Impl {
  std::string path;
  std::string tmp;  // where the socket is bound until publish() renames it to `path`
  bool published = false;
  Hooks hooks;
  Fd listen_fd;
  Fd stop_fd;  // eventfd: the destructor asks the thread to end
  dev_t dev = 0;
  ino_t ino = 0;
  // Set once a successor was told to go ahead: from then on the path is the successor's to
  // replace, and unlinking it (even after checking the inode) could race with its rename.
  std::atomic<bool> handed_over{false};
  std::thread thread;
};

Result<std::unique_ptr<HandoverParent>> HandoverParent::prepare(const std::string& path,
                                                                Hooks hooks) {
  std::unique_ptr<HandoverParent> parent(new HandoverParent());
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->tmp = fmt::format("{}.{}.new", path, ::getpid());
  impl->hooks = std::move(hooks);
  auto sun = unix_address(impl->tmp);
  if (!sun) return sun.error();
  impl->listen_fd = Fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!impl->listen_fd) return Error::from_errno("socket for handover path");
  ::unlink(impl->tmp.c_str());
  if (::bind(impl->listen_fd.get(), sun->get(), sun->length) != 0) {
    return Error::from_errno(fmt::format("bind handover path {}", impl->tmp));
  }
  // 0600 before listen(): until listen() nobody can connect, so there is no window where another
  // user could (the peer-credential check would refuse them anyway).
  if (::chmod(impl->tmp.c_str(), 0600) != 0 || ::listen(impl->listen_fd.get(), 16) != 0) {
    Error e = Error::from_errno(fmt::format("chmod/listen handover path {}", impl->tmp));
    ::unlink(impl->tmp.c_str());
    return e;
  }
  impl->stop_fd = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl->stop_fd) {
    Error e = Error::from_errno("eventfd");
    ::unlink(impl->tmp.c_str());
    return e;
  }
  parent->impl_ = std::move(impl);
  return parent;
}

Status HandoverParent::publish() {
  Impl& im = *impl_;
  if (im.thread.joinable()) return {};
  // The rename replaces the old instance's socket atomically: the path names the old instance
  // until the very moment it names us, so a third instance never finds it missing.
  if (::rename(im.tmp.c_str(), im.path.c_str()) != 0) {
    return Error::from_errno(fmt::format("rename {} to {}", im.tmp, im.path));
  }
  im.published = true;
  struct stat st {};
  if (::lstat(im.path.c_str(), &st) == 0) {
    im.dev = st.st_dev;
    im.ino = st.st_ino;
  }
  im.thread = std::thread([this] { run(); });
  return {};
}

Result<std::unique_ptr<HandoverParent>> HandoverParent::start(const std::string& path,
                                                              Hooks hooks) {
  auto parent = prepare(path, std::move(hooks));
  if (!parent) return parent.error();
  if (auto s = (*parent)->publish(); !s) return s.error();
  return parent;
}

HandoverParent::~HandoverParent() {
  if (!impl_) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(impl_->stop_fd.get(), &one, sizeof(one));
  if (impl_->thread.joinable()) impl_->thread.join();
  if (!impl_->published) {
    ::unlink(impl_->tmp.c_str());
    return;
  }
  struct stat st {};
  if (!impl_->handed_over && ::lstat(impl_->path.c_str(), &st) == 0 && st.st_dev == impl_->dev &&
      st.st_ino == impl_->ino) {
    ::unlink(impl_->path.c_str());
  }
}

void HandoverParent::run() {
  Impl& im = *impl_;
  const pid_t self = ::getpid();
  Fd conn;
  std::unique_ptr<ParentSession> session;
  // One session at a time, so one peer that stops answering (stopped, stuck, hostile) would
  // block every later handover: each session ends at this deadline whatever its state.
  Clock::time_point session_deadline;
  auto log = [&](const std::string& line) {
    if (!line.empty() && im.hooks.log) im.hooks.log(line);
  };
  auto end_session = [&] {
    if (session && session->offered()) {
      log(fmt::format("handover: pid {} went away before it was ready; still serving",
                      session->peer_pid()));
    }
    session.reset();
    conn.reset();
  };

  while (true) {
    pollfd fds[3] = {
        {im.stop_fd.get(), POLLIN, 0}, {im.listen_fd.get(), POLLIN, 0}, {conn.get(), POLLIN, 0}};
    int timeout_ms = -1;
    if (conn) {
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(session_deadline - Clock::now());
      timeout_ms = static_cast<int>(std::clamp<long long>(ms.count(), 0, 1 << 30));
    }
    int rc = retry_eintr(::poll, fds, conn ? 3 : 2, timeout_ms);
    if (rc < 0) {
      log(Error::from_errno("handover: poll").what());
      return;
    }
    if (fds[0].revents) return;
    if (conn && Clock::now() >= session_deadline) {
      log(
          fmt::format("handover: pid {} did not finish the handover within {} ms; dropped it, "
                      "still serving",
                      session ? session->peer_pid() : 0, im.hooks.session_timeout.count()));
      session.reset();
      conn.reset();
      continue;
    }

    if (conn && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      auto p = recv_packet(conn.get());
      if (!p || p->eof) {
        if (!p) log(fmt::format("handover: {}", p.error().what()));
        end_session();
        continue;
      }
      ParentAction a;
      Status sent;
      // Decided and sent under the lock that keeps the listeners open, so what is described is
      // exactly what is attached, even if this instance binds or closes listeners meanwhile.
      im.hooks.with_listeners([&](const std::vector<Listener>& ls, bool draining) {
        if (!session->offered() && !session->done()) {
          std::vector<OfferedListener> offered;
          offered.reserve(ls.size());
          for (const auto& l : ls) offered.push_back({l.name, l.type, l.address});
          session = std::make_unique<ParentSession>(self, std::move(offered), draining);
        }
        a = session->on_packet(p->data, p->fds.size());
        if (a.reply.empty()) return;
        std::vector<int> raw;
        if (a.attach_fds) {
          for (const auto& l : ls) raw.push_back(l.fd);
        }
        sent = send_packet(conn.get(), a.reply, raw);
      });
      log(a.log);
      if (!sent) log(fmt::format("handover: {}", sent.error().what()));
      if (a.start_drain) {
        im.handed_over = true;
        if (im.hooks.drain) im.hooks.drain();
      }
      if (a.close) {
        session.reset();  // a finished conversation, not an abandoned one
        conn.reset();
      }
    }
    if (fds[1].revents & POLLIN) {
      Fd c(retry_eintr(::accept4, im.listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (c) {
        auto cred = peer_cred(c.get());
        if (!cred || !uid_allowed(cred->uid)) {
          log(fmt::format("handover: refused a connection from uid {}: not our owner",
                          cred ? static_cast<long>(cred->uid) : -1L));
        } else if (conn) {
          // Read its HELLO before answering: closing a unix socket with unread data resets the
          // connection, and the peer would never see the REFUSE. Bounded, and off the serving
          // path.
          auto hello = wait_readable(c.get(), std::chrono::milliseconds(200));
          if (hello.ok() && *hello) {
            (void)recv_packet(c.get());
          }
          (void)send_packet(c.get(), encode(make_refuse({"busy with another handover", true})));
        } else {
          conn = std::move(c);
          session = std::make_unique<ParentSession>(self, std::vector<OfferedListener>{}, false);
          session_deadline = Clock::now() + im.hooks.session_timeout;
        }
      }
    }
  }
}

}  // namespace baton::handover

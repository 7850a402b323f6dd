// handover_parent.cc: the parent half of direct handover (handover.h), in the instance that
// serves: the socket at the handover path, and the thread that answers one new instance at a time
// with the decisions of ParentSession (lib/handover_protocol.h). Packets:
// lib/handover_transport.h.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include <fmt/format.h>

#include "common/syscall.h"
#include "common/unix_socket.h"
#include "lib/handover.h"
#include "lib/handover_protocol.h"
#include "lib/handover_transport.h"

namespace baton::handover {

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
  Clock::time_point session_started;
  bool heard = false;  // the peer has sent its first packet
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
      if (!heard) {
        log(
            fmt::format("handover: a peer said nothing within {} ms of connecting; dropped it, "
                        "still serving",
                        im.hooks.hello_timeout.count()));
      } else {
        log(
            fmt::format("handover: pid {} did not finish the handover within {} ms; dropped "
                        "it, still serving",
                        session ? session->peer_pid() : 0, im.hooks.session_timeout.count()));
      }
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
      if (!heard) {
        heard = true;
        session_deadline = session_started + im.hooks.session_timeout;
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
        // Only the owner of this instance (or root) may take its sockets.
        auto cred = peer_credentials(c.get());
        if (!cred || !peer_uid_allowed(cred->uid)) {
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
          session_started = Clock::now();
          heard = false;
          session_deadline =
              session_started + std::min(im.hooks.hello_timeout, im.hooks.session_timeout);
        }
      }
    }
  }
}

}  // namespace baton::handover

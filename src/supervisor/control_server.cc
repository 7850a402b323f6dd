#include "supervisor/control_server.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/address.h"
#include "common/listener.h"
#include "common/syscall.h"
#include "common/unix_socket.h"
#include "supervisor/control_protocol.h"

namespace baton {

std::optional<nlohmann::json> reload_ack(bool wait, bool answered,
                                         std::optional<int> starting_generation) {
  if (wait || answered) return std::nullopt;
  if (starting_generation) {
    return control_ok(fmt::format("reload started: generation {} starting", *starting_generation));
  }
  return control_ok("reload queued");
}

ControlServer::~ControlServer() {
  for (auto& [fd, client] : clients_) {
    if (client.deadline != 0) loop_.cancel_timer(client.deadline);
    loop_.remove(fd);
  }
  if (accept_paused_ != 0) loop_.cancel_timer(accept_paused_);
  if (fd_) loop_.remove(fd_.get());
  if (!path_.empty()) ::unlink(path_.c_str());
}

void ControlServer::out_of_descriptors(int error) {
  if (!fd_limit_logged_) {
    fd_limit_logged_ = true;
    handler_.log(LogLevel::kWarning,
                 fmt::format("control socket: cannot accept: {}; answering \"{}\" until "
                             "descriptors are free again",
                             std::strerror(error), kOutOfDescriptors));
  }
  const std::string reply = control_error(kOutOfDescriptors).dump() + "\n";
  if (reserve_) {
    reserve_.reset();
    Fd fd(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (fd) {
      [[maybe_unused]] auto n = ::send(fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
    }
    fd.reset();
    reserve_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (fd) return;  // accepted and answered: the caller goes on accepting
  }
  // Nothing could be accepted: stop watching the socket for a while rather than wake at once.
  if (accept_paused_ != 0 || !loop_.modify(fd_.get(), 0).ok()) return;
  accept_paused_ = loop_.add_timer(EventLoop::Clock::now() + kAcceptBackoff, [this] {
    accept_paused_ = 0;
    [[maybe_unused]] auto s = loop_.modify(fd_.get(), EPOLLIN);
  });
}

Status ControlServer::open(const std::string& path) {
  auto addr = parse_address("unix:" + path);
  if (!addr) return Error("bad --control path: " + addr.error().what());
  // The caller holds the lock, so a socket here should be stale; but if the lock file was
  // removed under a running supervisor, that one still answers here: never take its place.
  {
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (probe && (::connect(probe.get(), addr->sockaddr_ptr(), addr->length) == 0 ||
                  errno == EAGAIN || errno == EINPROGRESS)) {
      return Error(
          fmt::format("a supervisor already answers on {} (was its lock file removed?); "
                      "stop it or pass another --control",
                      path));
    }
  }
  ::unlink(path.c_str());
  fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd_) return Error::from_errno("socket");
  // Created with mode 0600 already: no window in which another user can connect.
  mode_t old = ::umask(0177);
  int rc = ::bind(fd_.get(), addr->sockaddr_ptr(), addr->length);
  ::umask(old);
  if (rc != 0) return Error::from_errno("bind control socket " + path);
  path_ = path;
  if (::listen(fd_.get(), 16) != 0) return Error::from_errno("listen on control socket");
  reserve_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  return loop_.add(fd_.get(), EPOLLIN, [this](uint32_t) { on_accept(); });
}

void ControlServer::on_accept() {
  for (;;) {
    Fd fd(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd && (errno == EMFILE || errno == ENFILE)) {
      const int error = errno;
      out_of_descriptors(error);
      if (accept_paused_ != 0) return;
      continue;
    }
    if (!fd) return;
    fd_limit_logged_ = false;
    auto peer = peer_credentials(fd.get());
    const ucred cred = peer ? *peer : ucred{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
    if (!peer || !peer_uid_allowed(cred.uid)) {
      std::string reply =
          control_error(
              fmt::format("permission denied: uid {} may not control this supervisor", cred.uid))
              .dump() +
          "\n";
      [[maybe_unused]] auto n = ::send(fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
      handler_.log(
          LogLevel::kWarning,
          fmt::format("control connection from uid {} (pid {}) refused", cred.uid, cred.pid));
      continue;
    }
    if (clients_.size() >= kMaxControlClients) {
      // An answer rather than a reset: read what it sent (closing over unread data resets the
      // connection), say why, close. The client retries.
      char discard[4096];
      while (::recv(fd.get(), discard, sizeof(discard), MSG_DONTWAIT) > 0) {
      }
      std::string reply = control_error(kTooManyControlClients).dump() + "\n";
      [[maybe_unused]] auto n = ::send(fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
      continue;
    }
    const int raw = fd.get();
    auto added =
        loop_.add(raw, EPOLLIN | EPOLLRDHUP, [this, raw](uint32_t ev) { on_client(raw, ev); });
    if (!added) {
      handler_.log(LogLevel::kWarning, "control connection dropped: " + added.error().what());
      continue;
    }
    auto deadline = loop_.add_timer(EventLoop::Clock::now() + kControlRequestTimeout, [this, raw] {
      auto it = clients_.find(raw);
      if (it == clients_.end()) return;
      it->second.deadline = 0;  // this timer has fired
      send_and_close(raw, control_error(fmt::format("no request within {} s",
                                                    kControlRequestTimeout.count())));
    });
    clients_[raw] = Client{std::move(fd), {}, std::nullopt, deadline};
  }
}

void ControlServer::on_client(int fd, uint32_t events) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  Client& client = it->second;
  char buf[4096];
  ssize_t n = retry_eintr(::recv, fd, buf, sizeof(buf), 0);
  if (n < 0 && errno == EAGAIN) return;
  if (n <= 0 || (client.waiter && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0)) {
    if (client.waiter) {  // a client that hangs up stops waiting; the reload goes on
      handler_.waiter_gone(*client.waiter);
      waiters_.erase(*client.waiter);
    }
    drop(fd);
    return;
  }
  if (client.waiter) return;  // one request per connection: more bytes are ignored
  client.buffer.append(buf, static_cast<size_t>(n));
  auto newline = client.buffer.find('\n');
  if (newline == std::string::npos) {
    if (client.buffer.size() > kMaxControlLine) {
      send_and_close(fd, control_error("request line too long"));
    }
    return;
  }
  handle_request(client, client.buffer.substr(0, newline));
}

void ControlServer::handle_request(Client& client, const std::string& line) {
  const int fd = client.fd.get();
  if (client.deadline != 0) {  // the request is in: a reload may now wait as long as it takes
    loop_.cancel_timer(client.deadline);
    client.deadline = 0;
  }
  auto request = parse_control_request(line);
  if (!request) return send_and_close(fd, control_error(request.error().what()));
  switch (request->command) {
    case ControlRequest::Command::kStatus: {
      auto j = control_ok("status");
      j["status"] = handler_.status();
      return send_and_close(fd, j);
    }
    case ControlRequest::Command::kStop:
      send_and_close(fd, control_ok("stopping: draining every generation"));
      handler_.stop();
      return;
    case ControlRequest::Command::kUpgrade: {
      const WaiterId w = next_waiter_++;
      client.waiter = w;
      waiters_[w] = fd;
      handler_.upgrade(w, *request);  // may answer at once, closing the client
      return;
    }
    case ControlRequest::Command::kReload: {
      const WaiterId w = next_waiter_++;
      client.waiter = w;
      waiters_[w] = fd;
      handler_.reload(
          w, *request);  // may answer at once (refused), closing the client: `client` is gone
      const bool answered = !waiters_.contains(w);
      if (auto ack = reload_ack(request->wait, answered, handler_.starting_generation())) {
        waiters_.erase(w);
        send_and_close(fd, *ack);
      }
      return;
    }
  }
}

void ControlServer::reply(WaiterId waiter, const ReloadOutcome& outcome) {
  auto it = waiters_.find(waiter);
  if (it == waiters_.end()) return;  // not waiting (reload without --wait, or hung up)
  const int fd = it->second;
  waiters_.erase(it);
  nlohmann::json j = outcome.ok ? control_ok(outcome.message) : control_error(outcome.message);
  j["generation"] = outcome.generation;
  if (!outcome.ok) j["output_tail"] = outcome.output_tail;
  send_and_close(fd, j);
}

void ControlServer::answer(WaiterId waiter, const nlohmann::json& reply) {
  auto it = waiters_.find(waiter);
  if (it == waiters_.end()) return;
  const int fd = it->second;
  waiters_.erase(it);
  send_and_close(fd, reply);
}

std::vector<std::pair<WaiterId, int>> ControlServer::waiting() const {
  return {waiters_.begin(), waiters_.end()};
}

Status ControlServer::resume(Fd listener, const std::string& path, WaiterId next_waiter) {
  fd_ = std::move(listener);
  path_ = path;
  next_waiter_ = next_waiter;
  if (auto s = set_nonblocking(fd_.get(), true); !s) return s;
  reserve_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  return loop_.add(fd_.get(), EPOLLIN, [this](uint32_t) { on_accept(); });
}

Status ControlServer::adopt_waiter(Fd client, WaiterId waiter) {
  const int raw = client.get();
  if (auto s = set_nonblocking(raw, true); !s) return s;
  auto added =
      loop_.add(raw, EPOLLIN | EPOLLRDHUP, [this, raw](uint32_t ev) { on_client(raw, ev); });
  if (!added) return added;
  clients_[raw] = Client{std::move(client), {}, waiter, 0};
  waiters_[waiter] = raw;
  return {};
}

void ControlServer::send_and_close(int fd, const nlohmann::json& reply) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  std::string out = reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  // The client is waiting for exactly this reply; a bounded blocking send keeps it whole. Should
  // either step fail, the send below still goes out nonblocking or unbounded: the reply is tried.
  if (auto s = set_nonblocking(fd, false); !s) {
    handler_.log(LogLevel::kWarning, "control reply: " + s.error().what());
  }
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  [[maybe_unused]] auto n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  drop(fd);
}

void ControlServer::drop(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  if (it->second.deadline != 0) loop_.cancel_timer(it->second.deadline);
  loop_.remove(fd);
  clients_.erase(it);
}

}  // namespace baton

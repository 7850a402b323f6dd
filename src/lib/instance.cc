#include "baton/instance.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "baton/fd.h"
#include "baton/notify.h"
#include "common/address.h"
#include "common/listener.h"
#include "lib/handover.h"
#include "lib/listen_env.h"
#include "lib/listener_holder.h"

namespace baton {
namespace {

// Process-wide, because a signal handler can reach nothing else. One Instance at a time owns them.
std::atomic<bool> g_instance_exists{false};
std::atomic<int> g_drain_fd{-1};
std::atomic<bool> g_draining{false};
std::atomic<int64_t> g_drain_asked_ns{0};  // CLOCK_MONOTONIC, the clock of steady_clock
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<int64_t>::is_always_lock_free);

// Async-signal-safe: atomics, clock_gettime and write only.
void trigger_drain() {
  // The time is recorded before the flag is raised, so whoever sees draining() sees the time.
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t unset = 0;
  g_drain_asked_ns.compare_exchange_strong(
      unset, static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec);
  if (g_draining.exchange(true)) return;
  uint64_t one = 1;
  int fd = g_drain_fd.load();
  if (fd >= 0) {
    ssize_t n = ::write(fd, &one, sizeof(one));
    (void)n;  // adding 1 to an eventfd only fails on overflow, after 2^64-2 drains
  }
}

void on_signal(int) {
  int saved = errno;
  trigger_drain();
  errno = saved;
}

void default_log(const std::string& line) { std::fprintf(stderr, "baton: %s\n", line.c_str()); }

}  // namespace

struct Instance::State {
  InstanceOptions options;
  std::string notify_socket;
  Fd drain_fd;
  struct sigaction old_term {};
  struct sigaction old_int {};
  bool signals_installed = false;

  std::mutex mu;  // guards `listeners` (the descriptors stay open while held) and `closed`
  std::vector<OwnedListener> listeners;
  bool closed = false;

  bool takeover_attempted = false;
  bool took_over = false;
  Fd takeover_connection;  // to the old instance, until ready()
  pid_t old_pid = 0;       // a legacy (non-speaking) old instance, when known
  Fd old_pidfd;            // ...pinned when learnt: only this process is ever signalled
  bool terminate_old_at_ready = false;
  Address overlapped;       // the address shared with it by SO_REUSEPORT
  ino_t overlap_inode = 0;  // our socket on it
  bool ready = false;
  std::unique_ptr<handover::HandoverParent> parent;

  void log(const std::string& line) const {
    if (options.log) {
      options.log(line);
    } else {
      default_log(line);
    }
  }
  Status notify(std::string_view state) const {
    if (notify_socket.empty()) return {};
    return notify_to(notify_socket, state);
  }
  Status take_over();
  Result<Fd> bind_with_fallback(const Address& address);
};

Instance::Instance(std::unique_ptr<State> state) : s_(std::move(state)) {}

Result<std::unique_ptr<Instance>> Instance::create(InstanceOptions options) {
  if (g_instance_exists.exchange(true)) {
    return Error("baton::Instance::create: an Instance already exists in this process");
  }
  auto state = std::make_unique<State>();
  state->options = std::move(options);
  if (const char* n = std::getenv("NOTIFY_SOCKET")) state->notify_socket = n;
  ::unsetenv("NOTIFY_SOCKET");
  auto inherited = inherit_listeners_from_env();
  if (!inherited) {
    g_instance_exists = false;
    return inherited.error();
  }
  state->listeners = std::move(*inherited);
  state->drain_fd = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!state->drain_fd) {
    g_instance_exists = false;
    return Error::from_errno("eventfd for drain");
  }
  g_draining = false;
  g_drain_asked_ns = 0;
  g_drain_fd = state->drain_fd.get();
  if (state->options.handle_signals) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGTERM, &sa, &state->old_term);
    ::sigaction(SIGINT, &sa, &state->old_int);
    state->signals_installed = true;
  }
  return std::unique_ptr<Instance>(new Instance(std::move(state)));
}

Instance::~Instance() {
  s_->parent.reset();  // stops the handover thread before the listeners go
  if (s_->signals_installed) {
    ::sigaction(SIGTERM, &s_->old_term, nullptr);
    ::sigaction(SIGINT, &s_->old_int, nullptr);
  }
  g_drain_fd = -1;
  g_instance_exists = false;
}

Status Instance::State::take_over() {
  if (takeover_attempted || options.handover_path.empty()) return {};
  takeover_attempted = true;
  auto t = handover::take_listeners(options.handover_path, options.handover_timeout);
  if (!t) return t.error();
  switch (t->outcome) {
    case handover::Takeover::Outcome::kNoPeer:
      log(fmt::format("handover: no instance serves {}; starting on our own",
                      options.handover_path));
      break;
    case handover::Takeover::Outcome::kLegacyPeer:
      old_pid = t->peer_pid;
      old_pidfd = handover::open_pidfd(old_pid);
      log(
          fmt::format("handover: pid {} serves {} but does not speak handover protocol 1 ({}); "
                      "will fall back when binding",
                      t->peer_pid, options.handover_path, t->detail));
      break;
    case handover::Takeover::Outcome::kTaken: {
      std::lock_guard lock(mu);
      took_over = true;
      takeover_connection = std::move(t->connection);
      std::string names;
      for (auto& l : t->listeners) {
        names += (names.empty() ? "" : ", ") + l.info.name + "=" + l.info.address;
        listeners.push_back(std::move(l));
      }
      log(fmt::format("handover: took {} listener(s) from pid {}: {}", t->listeners.size(),
                      t->peer_pid, names));
      break;
    }
  }
  return {};
}

Result<Fd> Instance::State::bind_with_fallback(const Address& address) {
  auto fd = bind_listener(address, {});
  if (fd || fd.error().code() != EADDRINUSE || options.handover_path.empty() ||
      address.transport == Transport::kUnix) {
    return fd;
  }
  // The address is held by an instance that did not hand it over (it does not speak the
  // protocol). First choice: share the port with it (SO_REUSEPORT), so the port never stops
  // answering; the old instance is told to stop at ready().
  BindOptions reuse;
  reuse.reuse_port = true;
  auto shared = bind_listener(address, reuse);
  if (shared) {
    if (old_pid > 0 && !terminate_old_at_ready) {
      terminate_old_at_ready = true;
      overlapped = address;
      overlap_inode = handover::socket_inode(shared->get());
    }
    log(fmt::format("handover fallback: SO_REUSEPORT overlap on {} with {}", address.to_string(),
                    old_pid > 0
                        ? fmt::format("pid {} (SIGTERM once ready, if it holds the port)", old_pid)
                        : std::string("an unknown old instance (stop it yourself)")));
    return shared;
  }
  if (old_pid <= 0) {
    return Error(EADDRINUSE, fmt::format("bind {}: in use, and no handover peer at {} to take "
                                         "it from",
                                         address.to_string(), options.handover_path));
  }
  // Last resort: terminate-then-bind. Connections arriving until the bind succeeds are refused.
  // Only if the process at the handover path is the one holding the port (listener_holder.h).
  if (auto sent = handover::signal_if_holder(old_pidfd.get(), old_pid, address, SIGTERM); !sent) {
    log(fmt::format("handover fallback: not signalling pid {} at {}: {}", old_pid,
                    options.handover_path, sent.error().what()));
    return Error(EADDRINUSE, fmt::format("bind {}: in use, and pid {} at {} does not hold it",
                                         address.to_string(), old_pid, options.handover_path));
  }
  log(fmt::format("handover fallback: terminate-then-bind on {}: SIGTERM to pid {}",
                  address.to_string(), old_pid));
  const auto deadline = std::chrono::steady_clock::now() + options.handover_timeout;
  int attempts = 0;
  while (true) {
    ++attempts;
    fd = bind_listener(address, {});
    if (fd || fd.error().code() != EADDRINUSE || std::chrono::steady_clock::now() >= deadline) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (fd) {
    log(fmt::format("handover fallback: bound {} after {} attempt(s)", address.to_string(),
                    attempts));
  }
  return fd;
}

Result<std::vector<Listener>> Instance::listeners() {
  if (auto s = s_->take_over(); !s) return s.error();
  std::lock_guard lock(s_->mu);
  std::vector<Listener> out;
  for (const auto& l : s_->listeners) out.push_back(l.info);
  return out;
}

Result<Listener> Instance::listen(std::string_view name, std::string_view address) {
  if (auto s = s_->take_over(); !s) return s.error();
  auto parsed = parse_address(address);
  if (!parsed) return parsed.error();
  {
    std::lock_guard lock(s_->mu);
    if (s_->closed) return Error("listen: the listeners were closed already");
    for (const auto& l : s_->listeners) {
      if (l.info.name == name) return l.info;
    }
    // Port 0 means "any free port": it can only be a fresh bind.
    if (parsed->port() != 0 || parsed->transport == Transport::kUnix) {
      const std::string canonical = parsed->to_string();
      for (const auto& l : s_->listeners) {
        if (l.info.address == canonical) return l.info;
      }
    }
  }
  auto fd = s_->bind_with_fallback(*parsed);
  if (!fd) return fd.error();
  auto info = describe_listener(fd->get(), std::string(name), ListenerOrigin::kBound);
  if (!info) return info.error();
  std::lock_guard lock(s_->mu);
  s_->listeners.push_back({*info, std::move(*fd)});
  return *info;
}

Status Instance::ready() {
  if (s_->ready) return {};
  // In handover mode the successor's socket is bound first (at a private name): a bad path fails
  // here, while the old instance still serves, not after it was told to drain.
  std::unique_ptr<handover::HandoverParent> parent;
  if (!s_->options.handover_path.empty()) {
    if (!s_->takeover_attempted) {
      return Error("ready() in handover mode before listeners() or listen(): nothing was taken");
    }
    handover::HandoverParent::Hooks hooks;
    State* st = s_.get();
    hooks.with_listeners = [st](const auto& fn) {
      std::lock_guard lock(st->mu);
      std::vector<Listener> ls;
      if (!st->closed) {
        for (const auto& l : st->listeners) ls.push_back(l.info);
      }
      fn(ls, g_draining.load() || st->closed);
    };
    hooks.drain = [] { trigger_drain(); };
    hooks.log = [st](const std::string& line) { st->log(line); };
    hooks.session_timeout = s_->options.handover_session_timeout;
    auto prepared = handover::HandoverParent::prepare(s_->options.handover_path, std::move(hooks));
    if (!prepared) return prepared.error();
    parent = std::move(*prepared);
  }
  if (s_->takeover_connection) {
    auto drained =
        handover::finish_takeover(s_->takeover_connection.get(), s_->options.handover_timeout);
    if (drained) {
      s_->log(fmt::format("handover: pid {} acknowledged and drains", *drained));
    } else {
      s_->log(
          fmt::format("handover: no drain acknowledgement from the old instance ({}); both "
                      "accept until it stops",
                      drained.error().what()));
    }
    s_->takeover_connection.reset();
  }
  if (s_->terminate_old_at_ready && s_->old_pid > 0) {
    auto sent = handover::signal_if_holder(s_->old_pidfd.get(), s_->old_pid, s_->overlapped,
                                           SIGTERM, s_->overlap_inode);
    if (sent) {
      s_->log(fmt::format("handover fallback: sent SIGTERM to pid {}", s_->old_pid));
    } else {
      s_->log(
          fmt::format("handover fallback: not signalling pid {} at {}: {}; stop the old "
                      "instance yourself",
                      s_->old_pid, s_->options.handover_path, sent.error().what()));
    }
    s_->terminate_old_at_ready = false;
  }
  if (parent) {
    // Past this point the old instance drains: failing ready() would leave nobody serving, so a
    // path that cannot be published only costs the next handover, and says so.
    if (auto s = parent->publish(); !s) {
      s_->log(fmt::format("handover: cannot serve {} for a successor: {}",
                          s_->options.handover_path, s.error().what()));
    } else {
      s_->parent = std::move(parent);
    }
  }
  s_->ready = true;
  return s_->notify("READY=1");
}

Status Instance::status(std::string_view text) {
  std::string line = "STATUS=" + std::string(text);
  for (size_t i = 7; i < line.size(); ++i) {
    if (line[i] == '\n') line[i] = ' ';
  }
  return s_->notify(line);
}

int Instance::drain_fd() const { return s_->drain_fd.get(); }

bool Instance::draining() const { return g_draining.load(); }

std::chrono::steady_clock::time_point Instance::drain_deadline() const {
  if (!g_draining.load()) return std::chrono::steady_clock::time_point::max();
  auto asked = std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(g_drain_asked_ns.load())));
  return asked + s_->options.drain_timeout;
}

void Instance::request_drain() { trigger_drain(); }

Status Instance::close_listeners() {
  {
    std::lock_guard lock(s_->mu);
    if (s_->closed) return {};
    s_->closed = true;
    s_->listeners.clear();  // closes our copies; never shutdown(): others may share them
  }
  return s_->notify("STOPPING=1");
}

bool Instance::took_over() const { return s_->took_over; }

}  // namespace baton

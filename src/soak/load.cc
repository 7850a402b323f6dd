#include "soak/load.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "baton/fd.h"
#include "common/syscall.h"
#include "soak/http_parser.h"

namespace baton::soak {

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

namespace {

constexpr int64_t kScanEveryNs = 5'000'000;  // how often deadlines are checked
constexpr size_t kReadBuffer = 64 * 1024;

enum class ConnState : uint8_t { kIdle, kConnecting, kSending, kReceiving };

struct Conn {
  Fd fd;
  uint32_t serial = 0;  // bumped per socket: events of a closed socket are recognised and dropped
  ConnState state = ConnState::kIdle;
  bool reused = false;       // this socket already carried a complete response
  bool peer_closed = false;  // EPOLLRDHUP seen: do not reuse
  bool retrying = false;     // the current attempt is the retry
  bool readable = false;     // an input edge came while sending: read once the request is out
  Outcome first;             // outcome of the first attempt when retrying
  int64_t start_ns = 0;      // latency is measured from here
  int64_t deadline_ns = 0;
  size_t sent = 0;
  ResponseParser parser;
};

}  // namespace

struct LoadGenerator::Worker {
  // Shared, read-only during the run.
  const LoadOptions* options = nullptr;
  const std::atomic<bool>* stop = nullptr;
  const std::atomic<int64_t>* window_until_ns = nullptr;
  int index = 0;
  int thread_count = 1;
  int connection_count = 0;
  uint64_t budget = 0;  // requests this thread may start; 0: unlimited
  int64_t start_ns = 0;
  int64_t end_ns = 0;  // 0: no time limit

  // Progress, written by the worker only.
  alignas(64) std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> first_try_failed{0};
  std::atomic<bool> done{false};

  // Worker-private.
  Stats stats;
  std::vector<Conn> conns;
  std::vector<int> idle;
  Fd epfd;
  uint64_t started = 0;
  uint64_t in_flight = 0;
  int64_t interval_ns = 0;  // open loop: between due times of this thread's requests
  int64_t first_due_ns = 0;
  bool stopping = false;
  std::vector<char> buffer;
  int64_t now = 0;

  void run();
  bool may_start() {
    if (stopping) return false;
    if (stop->load(std::memory_order_relaxed) || (end_ns != 0 && now >= end_ns) ||
        (budget != 0 && started >= budget)) {
      stopping = true;
      return false;
    }
    return true;
  }
  void begin(int i, int64_t start);
  void attempt(int i);
  void on_event(int i, uint32_t events);
  void do_send(int i);
  void do_receive(int i, uint32_t events);
  void complete(int i);
  void fail(int i, Outcome outcome);
  void finish(int i, Outcome final_outcome, bool has_response);
  void close_conn(Conn& c);
  void after_request(int i);
  void scan_deadlines();
};

void LoadGenerator::Worker::close_conn(Conn& c) {
  c.fd.reset();  // closing also removes it from the epoll set
  c.reused = false;
  c.peer_closed = false;
  ++c.serial;
}

void LoadGenerator::Worker::begin(int i, int64_t start) {
  Conn& c = conns[i];
  ++started;
  ++in_flight;
  c.start_ns = start;
  c.retrying = false;
  attempt(i);
}

void LoadGenerator::Worker::attempt(int i) {
  Conn& c = conns[i];
  c.sent = 0;
  c.readable = false;
  c.parser.reset();
  if (c.fd && c.peer_closed) close_conn(c);
  if (c.fd) {
    c.state = ConnState::kSending;
    c.deadline_ns = now + options->timeout.count();
    do_send(i);
    return;
  }
  const Address& a = options->address;
  Fd fd(::socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    fail(i, {Kind::kOther, errno});
    return;
  }
  ++stats.connections;
  c.fd = std::move(fd);
  ++c.serial;
  if (a.family() != AF_UNIX) {
    int one = 1;
    ::setsockopt(c.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = (static_cast<uint64_t>(c.serial) << 32) | static_cast<uint32_t>(i);
  if (::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, c.fd.get(), &ev) != 0) {
    int err = errno;
    close_conn(c);
    fail(i, {Kind::kOther, err});
    return;
  }
  // A nonblocking connect is not restarted after EINTR (it goes on in the background, and a
  // second call says EALREADY): EINTR is waited for like EINPROGRESS.
  int rc = ::connect(c.fd.get(), a.sockaddr_ptr(), a.length);
  if (rc == 0) {
    c.state = ConnState::kSending;
    c.deadline_ns = now + options->timeout.count();
    do_send(i);
  } else if (errno == EINPROGRESS || errno == EAGAIN || errno == EINTR) {
    // EAGAIN: a unix socket whose backlog is full; the connect completes when it is accepted.
    c.state = ConnState::kConnecting;
    c.deadline_ns = now + options->connect_timeout.count();
  } else {
    int err = errno;
    close_conn(c);
    fail(i, classify_connect_error(err));
  }
}

void LoadGenerator::Worker::on_event(int i, uint32_t events) {
  Conn& c = conns[i];
  if (events & EPOLLRDHUP) c.peer_closed = true;
  switch (c.state) {
    case ConnState::kIdle:
      // An idle keep-alive connection the server closed: drop it, the next request reconnects.
      if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) close_conn(c);
      break;
    case ConnState::kConnecting: {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) break;
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        close_conn(c);
        fail(i, classify_connect_error(err));
        break;
      }
      if (events & EPOLLHUP) {
        close_conn(c);
        fail(i, classify_connect_error(ECONNREFUSED));
        break;
      }
      c.state = ConnState::kSending;
      c.deadline_ns = now + options->timeout.count();
      do_send(i);
      break;
    }
    case ConnState::kSending:
      if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) c.readable = true;
      if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) do_send(i);
      break;
    case ConnState::kReceiving:
      do_receive(i, events);
      break;
  }
}

void LoadGenerator::Worker::do_send(int i) {
  Conn& c = conns[i];
  const std::string& req = options->request;
  while (c.sent < req.size()) {
    ssize_t n =
        retry_eintr(::send, c.fd.get(), req.data() + c.sent, req.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) return;  // EPOLLOUT (edge) resumes
      int err = errno;
      Outcome o = classify_io_error(err, 0, c.reused);
      close_conn(c);
      fail(i, o);
      return;
    }
    c.sent += static_cast<size_t>(n);
  }
  c.state = ConnState::kReceiving;
  // No read now: the response cannot be there yet, and its arrival raises an edge. (A speculative
  // recv() here would cost one EAGAIN syscall per request.) Only an edge that came while the
  // request was still going out, e.g. the server closing, must be acted on now.
  if (c.readable) {
    c.readable = false;
    do_receive(i, EPOLLIN);
  }
}

void LoadGenerator::Worker::do_receive(int i, uint32_t events) {
  Conn& c = conns[i];
  (void)events;
  for (;;) {
    ssize_t n = retry_eintr(::recv, c.fd.get(), buffer.data(), buffer.size(), 0);
    if (n > 0) {
      stats.bytes_received += static_cast<uint64_t>(n);
      size_t used = 0;
      auto st = c.parser.feed(buffer.data(), static_cast<size_t>(n), &used);
      if (st == ResponseParser::State::kComplete) {
        now = now_ns();
        // Bytes after the response: the server sent something nobody asked for; do not reuse.
        if (used < static_cast<size_t>(n)) c.peer_closed = true;
        complete(i);
        return;
      }
      if (st == ResponseParser::State::kError) {
        close_conn(c);
        fail(i, {Kind::kBadResponse, 0});
        return;
      }
      continue;
    }
    if (n == 0) {
      if (c.parser.finish_eof() == ResponseParser::State::kComplete) {
        c.peer_closed = true;
        complete(i);
        return;
      }
      Outcome o = c.parser.error().starts_with("connection closed")
                      ? classify_eof(c.parser.bytes(), c.reused)
                      : Outcome{Kind::kBadResponse, 0};
      close_conn(c);
      fail(i, o);
      return;
    }
    if (errno == EAGAIN) return;
    int err = errno;
    Outcome o = classify_io_error(err, c.parser.bytes(), c.reused);
    close_conn(c);
    fail(i, o);
    return;
  }
}

void LoadGenerator::Worker::complete(int i) {
  Conn& c = conns[i];
  int status = c.parser.status();
  bool keep = !options->close && c.parser.keep_alive() && !c.peer_closed;
  if (keep) {
    c.reused = true;
    c.state = ConnState::kIdle;
  } else {
    close_conn(c);
  }
  finish(i, classify_status(status), true);
}

void LoadGenerator::Worker::fail(int i, Outcome outcome) {
  Conn& c = conns[i];
  c.state = ConnState::kIdle;
  if (outcome.retryable() && options->retry && !c.retrying) {
    c.retrying = true;
    c.first = outcome;
    attempt(i);  // the socket is closed: the retry uses a fresh connection
    return;
  }
  finish(i, outcome, false);
}

void LoadGenerator::Worker::finish(int i, Outcome final_outcome, bool has_response) {
  Conn& c = conns[i];
  c.state = ConnState::kIdle;
  --in_flight;
  Outcome first = c.retrying ? c.first : final_outcome;
  if (c.retrying) ++stats.retries;
  stats.final_kinds[static_cast<size_t>(final_outcome.kind)]++;
  stats.first_kinds[static_cast<size_t>(first.kind)]++;
  bool ok = final_outcome.kind == Kind::kOk;
  if (final_outcome.kind == Kind::kHttpStatus) stats.final_statuses[final_outcome.detail]++;
  if (final_outcome.kind == Kind::kOther) stats.other_errnos[final_outcome.detail]++;
  uint64_t latency_us = 0;
  if (has_response) {
    int64_t d = now - c.start_ns;
    latency_us = d > 0 ? static_cast<uint64_t>(d / 1000) : 0;
    stats.latency.record(latency_us);
  }
  if (window_until_ns != nullptr && now <= window_until_ns->load(std::memory_order_relaxed)) {
    ++stats.window_requests;
    if (!ok) ++stats.window_failed;
    if (has_response) stats.window_latency.record(latency_us);
  }
  stats.timeline.record(now - start_ns, ok, first.kind == Kind::kOk, has_response, latency_us);
  completed.store(completed.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (!ok) failed.store(failed.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (first.kind != Kind::kOk) {
    first_try_failed.store(first_try_failed.load(std::memory_order_relaxed) + 1,
                           std::memory_order_relaxed);
  }
  c.retrying = false;
  after_request(i);
}

void LoadGenerator::Worker::after_request(int i) {
  // Not started right here: a connect that fails at once would recurse, and a dead server would
  // keep this loop from ever returning to epoll. The run loop starts queued connections.
  idle.push_back(i);
}

void LoadGenerator::Worker::scan_deadlines() {
  for (int i = 0; i < connection_count; ++i) {
    Conn& c = conns[i];
    if (c.state == ConnState::kIdle || now < c.deadline_ns) continue;
    bool connecting = c.state == ConnState::kConnecting;
    close_conn(c);
    fail(i, connecting ? Outcome{Kind::kConnectTimeout, 0} : Outcome{Kind::kResponseTimeout, 0});
  }
}

void LoadGenerator::Worker::run() {
  buffer.resize(kReadBuffer);
  conns.resize(static_cast<size_t>(connection_count));
  epfd = Fd(::epoll_create1(EPOLL_CLOEXEC));
  if (options->rate > 0) {
    double per_thread = options->rate / thread_count;
    interval_ns = std::max<int64_t>(1, static_cast<int64_t>(1e9 / per_thread));
    // Threads interleave their schedules instead of all firing at the same instants.
    first_due_ns = start_ns + interval_ns * index / thread_count;
    for (int i = connection_count - 1; i >= 0; --i) idle.push_back(i);
  }
  for (int i = connection_count - 1; i >= 0; --i) {
    if (interval_ns == 0) idle.push_back(i);
  }
  std::vector<epoll_event> events(static_cast<size_t>(std::max(connection_count, 1)));
  int64_t last_scan = now;
  for (;;) {
    now = now_ns();
    if (interval_ns == 0) {
      // Closed loop: every idle connection starts its next request now.
      std::vector<int> ready;
      ready.swap(idle);
      for (int i : ready) {
        if (may_start())
          begin(i, now);
        else
          idle.push_back(i);
      }
    } else {
      // Open loop: hand every due request to an idle connection.
      while (!idle.empty() && first_due_ns + static_cast<int64_t>(started) * interval_ns <= now &&
             may_start()) {
        int i = idle.back();
        idle.pop_back();
        begin(i, first_due_ns + static_cast<int64_t>(started) * interval_ns);
      }
    }
    may_start();  // notices the end of the run even when no connection is idle
    if (stopping && in_flight == 0) break;
    // Sleep until the next event, deadline scan, due request or end of run.
    int64_t wake = now + kScanEveryNs;
    if (interval_ns == 0 && !idle.empty() && !stopping) wake = now;
    if (interval_ns != 0 && !idle.empty() && !stopping) {
      wake = std::min(wake, first_due_ns + static_cast<int64_t>(started) * interval_ns);
    }
    if (end_ns != 0 && !stopping) wake = std::min(wake, end_ns);
    int64_t wait = std::max<int64_t>(0, wake - now);
    timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
    int n = retry_eintr(::epoll_pwait2, epfd.get(), events.data(), static_cast<int>(events.size()),
                        &ts, nullptr);
    now = now_ns();
    for (int k = 0; k < n; ++k) {
      uint64_t data = events[k].data.u64;
      int i = static_cast<int>(data & 0xffffffffu);
      if (!conns[i].fd || conns[i].serial != static_cast<uint32_t>(data >> 32)) continue;
      on_event(i, events[k].events);
    }
    if (now - last_scan >= kScanEveryNs) {
      scan_deadlines();
      last_scan = now;
    }
  }
  for (auto& c : conns) close_conn(c);
  epfd.reset();
  done.store(true, std::memory_order_release);
}

LoadGenerator::LoadGenerator(LoadOptions options, const std::atomic<int64_t>* window_until_ns)
    : options_(std::move(options)), window_until_ns_(window_until_ns) {}

LoadGenerator::~LoadGenerator() {
  stop();
  join();
}

Status LoadGenerator::start(int64_t start_ns) {
  start_ns_ = start_ns;
  merged_.timeline = Timeline(options_.slice_ns);
  int threads = std::max(1, std::min(options_.threads, options_.connections));
  for (int t = 0; t < threads; ++t) {
    auto w = std::make_unique<Worker>();
    w->options = &options_;
    w->stop = &stop_;
    w->window_until_ns = window_until_ns_;
    w->index = t;
    w->thread_count = threads;
    w->connection_count = options_.connections / threads + (t < options_.connections % threads);
    if (options_.max_requests != 0) {
      w->budget =
          options_.max_requests / threads + (t < static_cast<int>(options_.max_requests % threads));
      if (w->budget == 0) w->connection_count = 0;
    }
    w->start_ns = start_ns;
    w->end_ns = options_.duration.count() > 0 ? start_ns + options_.duration.count() : 0;
    w->stats.timeline = Timeline(options_.slice_ns);
    workers_.push_back(std::move(w));
  }
  for (auto& w : workers_) {
    Worker* p = w.get();
    try {
      threads_.emplace_back([p] { p->run(); });
    } catch (const std::system_error& e) {
      stop();
      return Error(e.code().value(), "starting a load thread");
    }
  }
  return {};
}

void LoadGenerator::stop() { stop_.store(true, std::memory_order_relaxed); }

void LoadGenerator::join() {
  if (joined_) return;
  for (auto& t : threads_) t.join();
  threads_.clear();
  end_ns_ = now_ns();
  for (auto& w : workers_) merged_.merge(w->stats);
  joined_ = true;
}

Progress LoadGenerator::progress() const {
  Progress p;
  bool all_done = true;
  for (const auto& w : workers_) {
    p.completed += w->completed.load(std::memory_order_relaxed);
    p.failed += w->failed.load(std::memory_order_relaxed);
    p.first_try_failed += w->first_try_failed.load(std::memory_order_relaxed);
    all_done &= w->done.load(std::memory_order_acquire);
  }
  p.running = !all_done;
  return p;
}

}  // namespace baton::soak

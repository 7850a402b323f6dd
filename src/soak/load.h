// load.h: the load engine: worker threads, each one epoll loop driving its share of connections.
//
// Each connection carries one request at a time (no pipelining), like a browser or wrk.
//   closed loop (rate == 0): a connection sends its next request as soon as the previous one ends.
//   open loop (rate > 0): request k of a thread is due at start + k / (rate / threads); a due
//     request goes to any idle connection, and its latency is measured from the due time, so a
//     stalled server shows up as latency instead of as fewer requests (no coordinated omission).
// keep-alive (default) reuses a connection until the server closes it; `close` opens a new one per
// request. A request that fails as keepalive_closed (outcome.h) is retried once on a fresh
// connection unless `retry` is off; its latency then covers both attempts.
//
// The run ends when `duration` passes or `max_requests` have been started (or stop() is called):
// no new request starts, and those in flight finish or time out, so every started request gets
// exactly one final outcome.
//
// Thread safety: start(), stop(), progress() and join() may be called from any one controlling
// thread; stats() only after join().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "baton/result.h"
#include "common/address.h"
#include "soak/stats.h"

namespace baton::soak {

struct LoadOptions {
  Address address;
  std::string request;  // the bytes sent for every request
  int connections = 50;
  int threads = 2;
  bool close = false;
  double rate = 0;            // requests per second over all threads; 0: as fast as possible
  uint64_t max_requests = 0;  // 0: no limit
  std::chrono::nanoseconds duration{0};  // 0: no limit
  std::chrono::nanoseconds timeout = std::chrono::seconds(10);
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(3);
  bool retry = true;
  int64_t slice_ns = 100'000'000;
};

// Monotonic clock in nanoseconds.
int64_t now_ns();

struct Progress {
  uint64_t completed = 0;
  uint64_t failed = 0;
  uint64_t first_try_failed = 0;
  bool running = true;
};

class LoadGenerator {
 public:
  // `window_until_ns`: requests completing at or before this monotonic time count in the reload
  // windows (the reloader moves it); may be null.
  LoadGenerator(LoadOptions options, const std::atomic<int64_t>* window_until_ns);
  ~LoadGenerator();

  // Starts the workers; the run's time 0 is `start_ns`.
  Status start(int64_t start_ns);
  // Ends the run early: no new requests; in-flight ones finish or time out.
  void stop();
  void join();
  Progress progress() const;
  // Merged statistics; after join().
  Stats& stats() { return merged_; }
  int64_t start_ns() const { return start_ns_; }
  int64_t end_ns() const { return end_ns_; }

 private:
  struct Worker;
  LoadOptions options_;
  const std::atomic<int64_t>* window_until_ns_;
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  Stats merged_;
  int64_t start_ns_ = 0;
  int64_t end_ns_ = 0;
  bool joined_ = false;
};

}  // namespace baton::soak

// http_worker.h: one event-loop thread of the example HTTP server.
//
// Each worker owns an epoll set holding every listener (EPOLLEXCLUSIVE: one worker woken per
// connection), the drain eventfd, and the connections it accepted. Listeners are nonblocking and
// shared with other processes (the previous/next instance): EAGAIN from accept(2) is normal.
//
// Drain (the drain fd becomes readable): the worker takes the listeners out of its epoll set at
// once and reports it; then it closes idle keep-alive connections (answered at least once),
// answers at most the request in progress on each other connection (with "Connection: close") and
// closes it; it returns when it holds no connection. A connection accepted but not used yet is
// not idle: its first request is probably in flight, so it gets a short grace to arrive.
#pragma once

#include <string>
#include <vector>

namespace example {

struct WorkerConfig {
  std::vector<int> listeners;  // borrowed: stream listeners, nonblocking
  int drain_fd = -1;           // borrowed: readable once drain is asked
  std::string generation;      // X-Baton-Generation
};

// Runs the loop until drained. `detached()` is called once the listeners left this worker's epoll.
// Returns 0, or an errno if the loop could not be set up.
int run_worker(const WorkerConfig& config, void (*detached)(void*), void* arg);

}  // namespace example

// http_worker.h: one event-loop thread of the example HTTP server.
//
// Each worker owns an epoll set holding every listener (EPOLLEXCLUSIVE: one worker woken per
// connection), the drain eventfd, and the connections it accepted. Listeners are nonblocking and
// shared with other processes (the previous/next instance): EAGAIN from accept(2) is normal.
//
// Drain (the drain fd becomes readable): the worker takes the listeners out of its epoll set at
// once and reports it; then it answers at most the request in progress on each connection (with
// "Connection: close") and closes it, and closes idle keep-alive connections: those on which no
// request arrives within a short grace (250 ms; 2 s for a connection never used yet), since on a
// busy connection the next request is usually already on its way. It returns when it holds no
// connection.
#pragma once

#include <string>
#include <vector>

namespace example {

struct WorkerConfig {
  std::vector<int> listeners;  // borrowed: stream listeners, nonblocking
  int drain_fd = -1;           // borrowed: readable once drain is asked
  std::string generation;      // X-Baton-Generation
};

// Progress reports from a worker, called on the worker's thread.
struct WorkerHooks {
  void (*accepting)(void* arg) = nullptr;  // the listeners are in the epoll set: ready to serve
  void (*detached)(void* arg) = nullptr;   // the listeners left the epoll set: drain started
  void* arg = nullptr;
};

// Runs the loop until drained. Returns 0, or an errno if the loop could not be set up (then
// neither hook was called).
int run_worker(const WorkerConfig& config, const WorkerHooks& hooks);

}  // namespace example

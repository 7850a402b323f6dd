// metrics.h: `baton run --metrics ADDR`: the supervisor's counters as Prometheus text.
//
// Protocol: HTTP/1.0 or 1.1 over TCP, one request per connection, the server closes after the
// answer. `GET /metrics` gets 200 with text/plain; version=0.0.4; any other path 404; anything
// else 400 or 405. Limits: 8 KiB of request head, 16 connections at once, 5 s for a client to send
// its request; past those the connection is closed without an answer. A connection arriving when
// 16 are open closes the oldest of them instead of being turned away: a scraper, which sends its
// request at once, is answered however many slow or silent clients (slowloris) keep connecting.
//
// The text (render_metrics) is built from the core's observers and the shell's facts (the same
// the status shows, status_json.h) and nothing else, so a unit test checks it without sockets.
// Metric names, all prefixed baton_:
//   reloads_total{result="ok"|"failed"}   reloads_coalesced_total   crashes_total
//   drain_kills_total   generations_started_total   serving_generation
//   build_info{version} 1
//   generations{state="starting"|"serving"|"held"|"draining"}
//   ready_seconds (histogram: a generation's start to proven ready)
//   reload_seconds (histogram: a reload's request to its end)
//   listener_info{listener, address, mode="steered"|"shared"} 1, one per listener
//   per live generation, labels {generation="ID", state="starting"|"serving"|"held"|"draining"}:
//     generation_share_ratio (0 to 1: its share of new connections, as steered now)
//     generation_accept_queue (connections waiting in its own sockets' accept queues)
//     generation_connections (connections its processes hold on the listeners' ports)
//   The share needs a steered listener, the other two a steered TCP one (and a look into /proc
//   that worked): a generation's series is absent otherwise, not 0.
// Cardinality: listeners are fixed at start; only live generations are shown (one starting, one
// serving, at most CoreOptions::max_draining held or draining), so an exited generation's series
// end with it.
// And the supervisor process's own, unprefixed as every Prometheus client names them
// (process_stats.h): process_start_time_seconds, process_cpu_seconds_total,
// process_resident_memory_bytes, process_open_fds.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"
#include "supervisor/event_loop.h"
#include "supervisor/process_stats.h"
#include "supervisor/status_json.h"
#include "supervisor/supervisor_core.h"

namespace baton {

// The exposition text for the supervisor's state now. `version` is baton's own; of `facts`, only
// `listeners` and `traffic` are read.
std::string render_metrics(const SupervisorCore& core, std::string_view version,
                           const ProcessStats& process, const SupervisorFacts& facts);

// The answer to one request head ("GET /metrics HTTP/1.1\r\n..."): a whole HTTP response.
// `body` is called only for GET /metrics.
std::string metrics_response(std::string_view request_head,
                             const std::function<std::string()>& body);

class MetricsServer {
 public:
  // Binds `address` and serves on `loop` until destroyed. `body` gives the text at each request.
  static Result<std::unique_ptr<MetricsServer>> open(const Address& address, EventLoop& loop,
                                                     std::function<std::string()> body);
  // The listener of the supervisor this one was upgraded from (upgrade_state.h).
  static Result<std::unique_ptr<MetricsServer>> adopt(Fd listener, EventLoop& loop,
                                                      std::function<std::string()> body);
  int fd() const { return listener_.get(); }
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  const Address& address() const { return address_; }

 private:
  struct Client {
    Fd fd;
    std::string head;
    EventLoop::TimerId timer = 0;
    std::uint64_t order = 0;  // accepted as the order-th connection: the lowest is the oldest
  };
  MetricsServer(EventLoop& loop, std::function<std::string()> body)
      : loop_(loop), body_(std::move(body)) {}
  void on_accept();
  void on_readable(int fd);
  void close_client(int fd);

  EventLoop& loop_;
  std::function<std::string()> body_;
  Fd listener_;
  Address address_;
  std::map<int, Client> clients_;
  std::uint64_t accepted_ = 0;
};

}  // namespace baton

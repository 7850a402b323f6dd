#include "supervisor/metrics.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "common/listener.h"
#include "common/syscall.h"

namespace baton {
namespace {

constexpr size_t kMaxRequestHead = 8192;
constexpr size_t kMaxClients = 16;
constexpr std::chrono::seconds kRequestTimeout{5};

void counter(std::string& out, const char* name, const char* help) {
  out += fmt::format("# HELP baton_{} {}\n# TYPE baton_{} counter\n", name, help, name);
}

void gauge(std::string& out, const char* name, const char* help) {
  out += fmt::format("# HELP baton_{} {}\n# TYPE baton_{} gauge\n", name, help, name);
}

void histogram(std::string& out, const char* name, const char* help, const DurationHistogram& h) {
  out += fmt::format("# HELP baton_{} {}\n# TYPE baton_{} histogram\n", name, help, name);
  std::uint64_t cumulative = 0;
  for (size_t i = 0; i < DurationHistogram::kBoundsSeconds.size(); ++i) {
    cumulative += h.buckets[i];
    out += fmt::format("baton_{}_bucket{{le=\"{}\"}} {}\n", name,
                       DurationHistogram::kBoundsSeconds[i], cumulative);
  }
  out += fmt::format("baton_{}_bucket{{le=\"+Inf\"}} {}\n", name, h.count);
  out += fmt::format("baton_{}_sum {}\nbaton_{}_count {}\n", name, h.sum_seconds, name, h.count);
}

// A label value as the exposition format wants it: backslash, double quote and newline escaped.
std::string label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// Listeners, and the share, accept queue and connections of each live generation.
void traffic(std::string& out, const SupervisorCore& core, const SupervisorFacts& facts) {
  gauge(out, "listener_info",
        "One per listener: its address, and whether baton steers new connections between the "
        "generations' own sockets (steered) or all share one socket (shared).");
  for (const auto& l : facts.listeners) {
    out +=
        fmt::format("baton_listener_info{{listener=\"{}\",address=\"{}\",mode=\"{}\"}} 1\n",
                    label_value(l.name), label_value(l.address), l.steered ? "steered" : "shared");
  }
  counter(out, "listener_foreign_members_total",
          "Times baton found a socket it does not hold in a steered listener's SO_REUSEPORT group "
          "when it was to add a member, and so refused to start a generation.");
  for (const auto& l : facts.listeners) {
    if (!l.steered) continue;
    out += fmt::format("baton_listener_foreign_members_total{{listener=\"{}\"}} {}\n",
                       label_value(l.name), l.strangers_found);
  }
  struct Live {
    std::string labels;
    const SupervisorFacts::Traffic* t;
  };
  std::vector<Live> live;
  for (const auto& g : core.generations()) {
    if (g.state == GenerationState::kExited) continue;
    auto it = facts.traffic.find(g.id);
    if (it == facts.traffic.end()) continue;
    live.push_back(
        {fmt::format("{{generation=\"{}\",state=\"{}\"}}", g.id, to_string(g.state)), &it->second});
  }
  gauge(out, "generation_share_ratio",
        "A live generation's share of new connections as baton steers them now (0 to 1).");
  for (const auto& g : live) {
    out += fmt::format("baton_generation_share_ratio{} {}\n", g.labels,
                       static_cast<double>(g.t->share_percent) / 100.0);
  }
  gauge(out, "generation_accept_queue",
        "Connections waiting in a live generation's own sockets' accept queues.");
  for (const auto& g : live) {
    if (g.t->accept_queue) {
      out += fmt::format("baton_generation_accept_queue{} {}\n", g.labels, *g.t->accept_queue);
    }
  }
  gauge(out, "generation_connections",
        "TCP connections a live generation's processes hold on the listeners' ports.");
  for (const auto& g : live) {
    if (g.t->connections) {
      out += fmt::format("baton_generation_connections{} {}\n", g.labels, *g.t->connections);
    }
  }
}

// The process_* families every Prometheus client exports; an unknown figure has no sample.
void process_metrics(std::string& out, const ProcessStats& p) {
  auto family = [&out](const char* name, const char* type, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    if (value) out += fmt::format("{} {}\n", name, *value);
  };
  family("process_start_time_seconds", "gauge",
         "Start time of the supervisor process since the Unix epoch, in seconds.",
         p.start_time_seconds);
  family("process_cpu_seconds_total", "counter",
         "User and system CPU time of the supervisor process, in seconds.", p.cpu_seconds);
  family("process_resident_memory_bytes", "gauge", "Resident memory of the supervisor process.",
         p.resident_bytes);
  family("process_open_fds", "gauge", "Open file descriptors of the supervisor process.",
         p.open_fds);
}

std::string response(int code, const char* reason, const std::string& content_type,
                     const std::string& body) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
      code, reason, content_type, body.size(), body);
}

}  // namespace

std::string render_metrics(const SupervisorCore& core, std::string_view version,
                           const ProcessStats& process, const SupervisorFacts& facts) {
  const Counters& c = core.counters();
  std::string out;
  counter(out, "reloads_total",
          "Reloads that ended, by result (failed: the old generation kept serving).");
  out += fmt::format("baton_reloads_total{{result=\"ok\"}} {}\n", c.reloads_ok);
  out += fmt::format("baton_reloads_total{{result=\"failed\"}} {}\n", c.reloads_failed);
  counter(out, "reloads_coalesced_total", "Reload requests served by a reload already queued.");
  out += fmt::format("baton_reloads_coalesced_total {}\n", c.reloads_coalesced);
  counter(out, "crashes_total", "Serving generations that exited on their own.");
  out += fmt::format("baton_crashes_total {}\n", c.crashes);
  counter(out, "drain_kills_total", "Draining generations killed at the drain deadline.");
  out += fmt::format("baton_drain_kills_total {}\n", c.drain_kills);
  counter(out, "generations_started_total", "Generations started.");
  out += fmt::format("baton_generations_started_total {}\n", c.generations_started);
  const Generation* serving = core.serving();
  gauge(out, "serving_generation", "The generation that serves now (0: none).");
  out += fmt::format("baton_serving_generation {}\n", serving != nullptr ? serving->id : 0);
  gauge(out, "generations", "Generations by state.");
  for (auto state : {GenerationState::kStarting, GenerationState::kServing, GenerationState::kHeld,
                     GenerationState::kDraining}) {
    int n = 0;
    for (const auto& g : core.generations()) n += g.state == state ? 1 : 0;
    out += fmt::format("baton_generations{{state=\"{}\"}} {}\n", to_string(state), n);
  }
  histogram(out, "ready_seconds", "From a generation's start to its proof of readiness.",
            c.ready_time);
  histogram(out, "reload_seconds", "From a reload's request to its end.", c.reload_time);
  traffic(out, core, facts);
  gauge(out, "build_info", "Always 1: the version of the running baton.");
  out += fmt::format("baton_build_info{{version=\"{}\"}} 1\n", label_value(version));
  process_metrics(out, process);
  const TakeoverCounts& t = facts.takeover;
  counter(out, "keepalive_taken_over_total",
          "Idle keep-alive connections of old generations baton took over instead of closing.");
  out += fmt::format("baton_keepalive_taken_over_total {}\n", t.taken_over);
  counter(out, "keepalive_relayed_total",
          "Requests on taken-over connections relayed to the serving generation.");
  out += fmt::format("baton_keepalive_relayed_total {}\n", t.relayed);
  counter(out, "keepalive_closed_total",
          "Taken-over connections baton closed, by reason: refused (not plaintext HTTP/1.x), "
          "idle (no request in time), over_cap (too many held), tls_port (idle at a drain, "
          "not taken over: the port speaks TLS).");
  out += fmt::format("baton_keepalive_closed_total{{reason=\"refused\"}} {}\n", t.refused);
  out += fmt::format("baton_keepalive_closed_total{{reason=\"idle\"}} {}\n", t.idle_closed);
  out += fmt::format("baton_keepalive_closed_total{{reason=\"over_cap\"}} {}\n", t.over_cap);
  out += fmt::format("baton_keepalive_closed_total{{reason=\"tls_port\"}} {}\n", t.closed_at_drain);
  gauge(out, "keepalive_held", "Taken-over connections baton holds now.");
  out += fmt::format("baton_keepalive_held {}\n", t.held_now);
  return out;
}

std::string metrics_response(std::string_view head, const std::function<std::string()>& body) {
  const auto line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || !line.substr(sp2 + 1).starts_with("HTTP/1.")) {
    return response(400, "Bad Request", "text/plain", "bad request\n");
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  if (method != "GET") return response(405, "Method Not Allowed", "text/plain", "GET only\n");
  if (path != "/metrics") return response(404, "Not Found", "text/plain", "see /metrics\n");
  return response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", body());
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::open(const Address& address, EventLoop& loop,
                                                           std::function<std::string()> body) {
  std::unique_ptr<MetricsServer> server(new MetricsServer(loop, std::move(body)));
  auto fd = bind_listener(address, BindOptions{});
  if (!fd) return Error(fmt::format("--metrics: {}", fd.error().what()));
  auto bound = bound_address(fd->get(), Transport::kTcp);
  server->address_ = bound ? *bound : address;
  server->listener_ = std::move(fd).value();
  if (auto s = set_nonblocking(server->listener_.get(), true); !s) return s.error();
  MetricsServer* raw = server.get();
  if (auto s = loop.add(raw->listener_.get(), EPOLLIN, [raw](uint32_t) { raw->on_accept(); }); !s) {
    return s.error();
  }
  return server;
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::adopt(Fd listener, EventLoop& loop,
                                                            std::function<std::string()> body) {
  std::unique_ptr<MetricsServer> server(new MetricsServer(loop, std::move(body)));
  auto bound = bound_address(listener.get(), Transport::kTcp);
  if (!bound) return bound.error();
  server->address_ = *bound;
  server->listener_ = std::move(listener);
  MetricsServer* raw = server.get();
  if (auto s = loop.add(raw->listener_.get(), EPOLLIN, [raw](uint32_t) { raw->on_accept(); }); !s) {
    return s.error();
  }
  return server;
}

MetricsServer::~MetricsServer() {
  while (!clients_.empty()) close_client(clients_.begin()->first);
  if (listener_) loop_.remove(listener_.get());
}

void MetricsServer::on_accept() {
  for (;;) {
    Fd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) return;
    if (clients_.size() >= kMaxClients) {
      // The oldest connection, which has had the longest to send its request, makes room.
      auto oldest = std::min_element(clients_.begin(), clients_.end(), [](auto& a, auto& b) {
        return a.second.order < b.second.order;
      });
      close_client(oldest->first);
    }
    const int raw = fd.get();
    Client& c = clients_[raw];
    c.fd = std::move(fd);
    c.order = ++accepted_;
    c.timer = loop_.add_timer(EventLoop::Clock::now() + kRequestTimeout, [this, raw] {
      if (auto it = clients_.find(raw); it != clients_.end()) it->second.timer = 0;
      close_client(raw);
    });
    if (!loop_.add(raw, EPOLLIN | EPOLLRDHUP, [this, raw](uint32_t) { on_readable(raw); })) {
      if (c.timer != 0) loop_.cancel_timer(c.timer);
      clients_.erase(raw);  // not watched: nothing to remove from the loop
    }
  }
}

void MetricsServer::on_readable(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  Client& c = it->second;
  char buf[4096];
  ssize_t n = retry_eintr(::recv, fd, buf, sizeof(buf), 0);
  if (n < 0 && errno == EAGAIN) return;
  if (n <= 0) return close_client(fd);
  c.head.append(buf, static_cast<size_t>(n));
  if (c.head.find("\r\n\r\n") == std::string::npos) {
    if (c.head.size() > kMaxRequestHead) close_client(fd);
    return;
  }
  std::string out = metrics_response(c.head, body_);
  // A few KiB into a fresh socket: a bounded blocking send keeps the answer whole.
  if (!set_nonblocking(fd, false)) return close_client(fd);
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  [[maybe_unused]] auto sent = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  close_client(fd);
}

void MetricsServer::close_client(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  if (it->second.timer != 0) loop_.cancel_timer(it->second.timer);
  loop_.remove(fd);
  clients_.erase(it);
}

}  // namespace baton

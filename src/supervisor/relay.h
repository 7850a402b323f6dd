// relay.h: connections baton carries itself, byte for byte, to the serving generation.
//
// Two kinds reach it:
//   - stranded: a TCP connection is bound to a member socket at its SYN. When the generation of
//     that member exits and its slot is not where new connections go (a rollback after
//     --hold-old, or a serving generation that crashed while another was starting), connections
//     already queued there would wait for a generation that never comes. baton accepts them
//     itself (take_over) and relays each at once.
//   - taken over: an old generation's idle keep-alive connection (drain_watch.h). baton keeps its
//     copy while the app closes its own, so the client never sees the connection close. When the
//     client sends its next request, the bytes waiting are looked at (request_sniff.h): a
//     plaintext HTTP/1.x request is relayed; anything else (TLS, another protocol) is closed and
//     counted, never relayed. A client that leaves is let go. The relayed request goes with
//     "Connection: close" when its head is all there (with_connection_close): the app answers
//     and ends the connection, and the client's next connection goes to the app straight.
// Each relayed connection goes to a new connection to the same listener, which the steering
// program sends to the serving generation. Half-closes are passed on; a pair ends when both
// directions have ended or either side fails.
//
// A request relayed as sent keeps its connection relayed. At the next reload the serving
// generation becomes an old one and holds the far end of those upstream connections. The drain
// watch then asks the relay to detach them (detach): once the pair has no request outstanding
// (nothing buffered, the last bytes went to the client; the client's next request may wait in its
// socket, unread), baton half-closes the upstream connection (the app reads end-of-file, as if the
// client had left, and closes it), and the client's next request goes over a new upstream
// connection. So a taken-over client survives every later reload, with one hop, never a chain.
//
// Bounds: kMaxRelayed stranded pairs at once (more stay queued), kMaxTakenOver taken-over ones
// (more are closed, as baton did before it took any over, and counted), kRelayBuffer bytes per
// direction; a taken-over connection waits kTakeoverIdle for its next request, kSniffWait for the
// rest of a request line once it began, kHalfClosedWait after one direction has ended.
// Used from the supervisor's one thread; the event loop must outlive the relay.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "baton/fd.h"
#include "common/address.h"
#include "supervisor/event_loop.h"
#include "supervisor/takeover_counts.h"

namespace baton {

constexpr size_t kMaxRelayed = 1024;
constexpr size_t kMaxTakenOver = 16384;
constexpr size_t kRelayBuffer = 64 * 1024;
// A taken-over connection whose client sends nothing for this long is closed (a FIN, as the app
// would have sent). It is the end of a response the app meant to end with the connection
// ("Connection: close", HTTP/1.0) when the app only close()d its descriptor, which baton's copy
// keeps open, and a client reading to that end waits for it: so it is short. (An app that shuts
// its write side sends that end itself, under --adopt too: the preload lets it through.) A
// keep-alive client idle for longer races this FIN with its next request: 10 s was tried, and a
// client reading to the end with a 10 s timeout failed (1 in 67k requests).
constexpr std::chrono::seconds kTakeoverIdle{1};
constexpr std::chrono::seconds kSniffWait{10};
constexpr std::chrono::seconds kHalfClosedWait{30};

class Relay {
 public:
  using Logger = std::function<void(const std::string&)>;
  Relay(EventLoop& loop, Logger log);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Accepts what is queued on `listener` (borrowed; a member socket nobody accepts on) and what
  // arrives later, relaying each to `to`, until release(listener).
  void take_over(int listener, const Address& to);
  // A generation holds `listener` again: baton stops accepting on it.
  void release(int listener);

  // A keep-alive connection taken over from an old generation, which no longer holds it: `client`
  // is baton's only descriptor of it. Its next request, once recognised, is relayed to `to`.
  void adopt(Fd client, const Address& to);
  // A draining generation holds the far end of a relayed upstream connection whose own (local)
  // address is `upstream`. True when that pair is detaching (now or already): the caller waits
  // for the app to close its end. False when it is not baton's or not idle yet.
  bool detach(const Address& upstream);
  // Whether `peer` is the local address of one of baton's upstream connections.
  bool is_upstream(const Address& peer) const { return upstreams_.contains(peer.to_string()); }

  // Whether a client of the listener on `port` answered a takeover in TLS, which baton cannot
  // relay: the drain watch then closes that port's idle connections at a drain instead of taking
  // them over (a FIN while idle, which clients see before their next request).
  bool closes_on(std::uint16_t port) const { return tls_ports_.contains(port); }
  void count_closed_at_drain(size_t n) { counts_.closed_at_drain += n; }

  // Pairs an exec of baton would cut: every stranded one, and the taken-over ones in the middle
  // of an exchange (connecting, detaching, bytes buffered or a response awaited). Idle
  // taken-over connections are not counted: an exec closes them, as a drain did before baton
  // took any over.
  size_t busy() const;
  size_t active() const { return pairs_.size(); }
  size_t relayed_total() const { return relayed_total_; }
  TakeoverCounts takeover() const {
    TakeoverCounts c = counts_;
    c.held_now = taken_now_;
    return c;
  }
  // Taken-over connections held now, waiting for a request or relayed.
  size_t taken_over_now() const { return taken_now_; }

 private:
  struct Pair;
  void on_listener(int listener);
  void on_event(Pair* pair);
  void sniff(Pair* pair);
  // Connects `pair` to the serving generation; `first` (may be empty) goes before anything else.
  bool connect_upstream(Pair* pair, std::string first = {});
  void on_detaching(Pair* pair);
  // Reads a rewritten request's response head; false on an error of the upstream connection.
  bool read_response_head(Pair* pair);
  void close_pair(Pair* pair);
  void arm_sweep();
  void sweep();
  EventLoop& loop_;
  Logger log_;
  std::map<int, Address> listeners_;  // borrowed fd -> where its connections go
  std::set<int> paused_;              // of those, not watched while kMaxRelayed pairs run
  std::map<Pair*, std::unique_ptr<Pair>> pairs_;
  std::map<std::string, Pair*> upstreams_;  // upstream local address -> its pair
  size_t relayed_total_ = 0;
  size_t stranded_now_ = 0;
  size_t taken_now_ = 0;
  TakeoverCounts counts_;
  EventLoop::TimerId sweep_timer_ = 0;
  bool logged_cap_ = false;
  bool logged_refused_ = false;
  std::set<std::uint16_t> tls_ports_;  // listeners' ports (at most one per listener)
};

}  // namespace baton

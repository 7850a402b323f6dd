// relay.h: nothing stranded: connections queued on a socket no generation will accept.
//
// A TCP connection is bound to a member socket at its SYN. When the generation of that member
// exits and its slot is not where new connections go (a rollback after --hold-old, or a serving
// generation that crashed while another was starting), connections already queued there would
// wait for a generation that never comes. baton accepts them itself and relays each one, byte for
// byte in both directions, to a new connection to the same listener, which the steering program
// sends to the serving generation. Half-closes are passed on; a relayed pair ends when both
// directions have ended or either side fails.
//
// Bounds: kMaxRelayed pairs at once (more stay queued), kRelayBuffer bytes per direction.
// Used from the supervisor's one thread; the event loop must outlive the relay.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <set>

#include "baton/fd.h"
#include "common/address.h"
#include "supervisor/event_loop.h"

namespace baton {

constexpr size_t kMaxRelayed = 1024;
constexpr size_t kRelayBuffer = 64 * 1024;

class Relay {
 public:
  explicit Relay(EventLoop& loop);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Accepts what is queued on `listener` (borrowed; a member socket nobody accepts on) and what
  // arrives later, relaying each to `to`, until release(listener).
  void take_over(int listener, const Address& to);
  // A generation holds `listener` again: baton stops accepting on it.
  void release(int listener);
  size_t active() const { return pairs_.size(); }
  size_t relayed_total() const { return relayed_total_; }

 private:
  struct Pair;
  void on_listener(int listener);
  void on_event(Pair* pair);
  void close_pair(Pair* pair);
  EventLoop& loop_;
  std::map<int, Address> listeners_;  // borrowed fd -> where its connections go
  std::set<int> paused_;              // of those, not watched while kMaxRelayed pairs run
  std::map<Pair*, std::unique_ptr<Pair>> pairs_;
  size_t relayed_total_ = 0;
};

}  // namespace baton

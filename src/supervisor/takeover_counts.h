// takeover_counts.h: what became of the idle keep-alive connections baton took over from old
// generations (relay.h, drain_watch.h), as status and /metrics show it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace baton {

struct TakeoverCounts {
  std::uint64_t taken_over = 0;       // idle keep-alive connections kept open across a drain
  std::uint64_t relayed = 0;          // requests that began a relayed exchange (client to serving)
  std::uint64_t refused = 0;          // closed: the client sent something not HTTP/1.x (TLS...)
  std::uint64_t idle_closed = 0;      // closed after kTakeoverIdle without a request
  std::uint64_t over_cap = 0;         // closed at once: kMaxTakenOver were held already
  std::uint64_t detached = 0;         // relayed connections moved off a draining generation
  std::uint64_t closed_at_drain = 0;  // idle ones closed, not taken over: their port speaks TLS
  std::size_t held_now = 0;           // taken-over connections held now (waiting or relayed)
};

}  // namespace baton

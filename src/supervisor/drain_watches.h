// drain_watches.h: the supervisor's watches over its quiescing generations.
//
// The core asks, every drain poll, whether a quiescing generation is quiet (SupervisorOs::
// check_quiet); this answers it with a GenerationWatch (drain_watch.h) over the generation's own
// TCP sockets from the ListenerSet. A generation that shares a stream listener with the others
// (a unix socket, or a listener steering could not apply to) keeps taking new connections, so it
// cannot be watched: kUnwatchable, and the core signals it at once. UDP sockets are not watched
// (no connections to wait for).
//
// The idle keep-alive connections a watch takes over are handed to the relay (relay.h) as soon as
// the generation no longer holds them, and those still held when a watch ends (an error, a
// generation killed at its deadline) once the generation is gone.
//
// Not thread-safe: owned by the supervisor's loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "supervisor/drain_watch.h"
#include "supervisor/listener_set.h"
#include "supervisor/relay.h"
#include "supervisor/supervisor_core.h"

namespace baton {

class DrainWatches {
 public:
  using Logger = std::function<void(const std::string&)>;
  DrainWatches(Relay& relay, Logger log) : relay_(relay), log_(std::move(log)) {}

  // Looks at generation `g` once (taking over the idle keep-alive connections found). Logs one
  // line when it becomes quiet after taking some over, or when it cannot be looked at.
  QuietCheck check(const ListenerSet& listeners, const Generation& g);
  // Generation `id` has exited: what a watch of it still held goes to the relay.
  void gone(const ListenerSet& listeners, int id);

 private:
  struct Watch {
    GenerationWatch watch;
    size_t idle_taken = 0;
    size_t detached = 0;
    std::uint64_t last_look = 0;
  };
  void hand_over(const ListenerSet& listeners, std::vector<TakenConnection> taken);
  void stop_watching(std::map<int, Watch>::iterator it);
  Relay& relay_;
  Logger log_;
  // By generation id, while it quiesces. The core looks at every quiescing generation at each
  // poll, so a watch not used for kStaleLooks looks belongs to a generation that exited or was
  // killed meanwhile, and is dropped: no hook from the shell needed, and the map stays bounded.
  static constexpr std::uint64_t kStaleLooks = 1024;
  std::map<int, Watch> watches_;
  // Taken-over copies of watches that ended before their generation: by generation id.
  std::map<int, std::vector<TakenConnection>> leftover_;
  std::uint64_t looks_ = 0;
};

}  // namespace baton

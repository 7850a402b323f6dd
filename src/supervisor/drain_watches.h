// drain_watches.h: the supervisor's watches over its quiescing generations.
//
// The core asks, every drain poll, whether a quiescing generation is quiet (SupervisorOs::
// check_quiet); this answers it with a GenerationWatch (drain_watch.h) over the generation's own
// TCP sockets from the ListenerSet. A generation that shares a stream listener with the others
// (a unix socket, or a listener steering could not apply to) keeps taking new connections, so it
// cannot be watched: kUnwatchable, and the core signals it at once. UDP sockets are not watched
// (no connections to wait for).
//
// Not thread-safe: owned by the supervisor's loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "supervisor/drain_watch.h"
#include "supervisor/listener_set.h"
#include "supervisor/supervisor_core.h"

namespace baton {

class DrainWatches {
 public:
  using Logger = std::function<void(const std::string&)>;
  explicit DrainWatches(Logger log) : log_(std::move(log)) {}

  // Looks at generation `g` once (closing the idle keep-alive connections found). Logs one line
  // when it becomes quiet after closing some, or when it cannot be looked at.
  QuietCheck check(const ListenerSet& listeners, const Generation& g);

 private:
  struct Watch {
    GenerationWatch watch;
    size_t idle_closed = 0;
    std::uint64_t last_look = 0;
  };
  Logger log_;
  // By generation id, while it quiesces. The core looks at every quiescing generation at each
  // poll, so a watch not used for kStaleLooks looks belongs to a generation that exited or was
  // killed meanwhile, and is dropped: no hook from the shell needed, and the map stays bounded.
  static constexpr std::uint64_t kStaleLooks = 1024;
  std::map<int, Watch> watches_;
  std::uint64_t looks_ = 0;
};

}  // namespace baton

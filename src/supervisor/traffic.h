// traffic.h: where new connections go, for the supervisor: the listeners it owns (listener_set),
// the relay for connections stranded on a socket nobody accepts on (relay), and the drain watch
// over old generations (drain_watches). One object, so the shell tells it of a generation's life
// (assigned, switched to, gone) and it keeps the three consistent: a slot that loses its
// generation has its queue relayed at once; a slot given to a new generation stops being relayed.
//
// Not thread-safe: owned by the supervisor's loop, which must outlive it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "baton/result.h"
#include "common/listener.h"
#include "supervisor/drain_watches.h"
#include "supervisor/event_loop.h"
#include "supervisor/listener_set.h"
#include "supervisor/relay.h"
#include "supervisor/supervisor_core.h"

namespace baton {

// What `baton status` shows of one live generation's traffic.
struct TrafficFigures {
  int share_percent = 0;  // of new connections, as the steering program sends them now
  std::optional<std::uint32_t> accept_queue;  // its own TCP sockets; unknown if not looked at
  std::optional<size_t> connections;          // held by its processes on the listeners' ports
};

class Traffic {
 public:
  using Logger = std::function<void(const std::string&)>;
  // Binds the listeners (taking the service manager's sockets for those it passed).
  static Result<std::unique_ptr<Traffic>> bind(const std::vector<ListenSpec>& specs,
                                               const BindOptions& options, EventLoop& loop,
                                               Logger log);
  // The listeners of a supervisor this one was upgraded from (ListenerSet::resume); what waits
  // on a slot no generation holds is relayed again at once.
  static std::unique_ptr<Traffic> resume(ListenerSet listeners, EventLoop& loop, Logger log);
  Traffic(const Traffic&) = delete;
  Traffic& operator=(const Traffic&) = delete;

  ListenerSet& listeners() { return listeners_; }
  const ListenerSet& listeners() const { return listeners_; }

  // Generation `id` gets a slot: the sockets it gets at fd 3 onward, in listener order (borrowed).
  Result<std::vector<int>> assign(int id);
  // A generation that was assigned a slot but never started gives it back.
  void unassign(int id) { listeners_.release(id); }
  // New connections go to `id`; the old program stays attached when replacing it fails.
  Status switch_to(int id);
  // `percent` of new connections (by flow) to `id`, the rest where they go now.
  Status canary(int id, int percent) { return listeners_.canary(id, percent); }
  // Generation `id`'s main process was reaped: its slot is free, and what waits in it is relayed
  // to the serving generation until a later generation takes the slot.
  void gone(int id);
  // For the core's drain (--drain=watch): is quiescing generation `g` quiet yet?
  QuietCheck check_quiet(const Generation& g) { return drains_.check(listeners_, g); }
  // Generation `id` (main process `pid`) now; nullopt when it has no slot or nothing is steered.
  // Reads /proc and sock_diag (bounded, as the drain watch does); closes nothing.
  std::optional<TrafficFigures> figures(int id, pid_t pid) const;
  // One line per listener, for the log at start-up.
  std::vector<std::string> describe() const;
  // Connections baton relays itself now in the middle of an exchange (relay.h): an upgrade waits
  // for them to end. Idle taken-over connections are not counted: an upgrade closes them.
  size_t relayed_now() const { return relay_.busy(); }
  // The keep-alive takeover's counts, and the taken-over connections baton holds now.
  TakeoverCounts takeover() const { return relay_.takeover(); }

 private:
  Traffic(ListenerSet listeners, EventLoop& loop, Logger log)
      : listeners_(std::move(listeners)), relay_(loop, log), drains_(relay_, std::move(log)) {}
  void relay_orphans();

  ListenerSet listeners_;
  Relay relay_;          // declared after listeners_: destroyed first, while the sockets are open
  DrainWatches drains_;  // hands what it takes over to relay_
};

}  // namespace baton

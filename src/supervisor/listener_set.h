// listener_set.h: the listeners baton owns, and which generation's socket takes new connections.
//
// Each TCP or UDP listener is a SteeringGroup (steering_group.h), one member per generation slot;
// a unix stream listener, or one whose program could not be attached (a seccomp filter, an old
// kernel), is one socket shared by every generation, as before steering. Slots are shared by all
// listeners: generation slot i gets member i of every steered listener.
//
// Who receives new connections (the target slot):
//   - the serving generation's slot, from switch_to() on;
//   - while no live generation holds the target slot (first start, or the serving generation
//     crashed), the slot of the generation started next, which reuses the target slot when it
//     is free, so connections waiting there are taken by it;
//   - a starting generation's slot otherwise receives only baton's own probe connections,
//     matched by the source address and port registered with add_probe().
// Not thread-safe: owned by the supervisor's loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"
#include "common/listener.h"
#include "supervisor/steering.h"
#include "supervisor/steering_group.h"

namespace baton {

struct UpgradeState;

struct OwnedListener {
  std::string name;
  Address address;                     // as bound (the real port when given port 0)
  std::optional<SteeringGroup> group;  // steered
  Fd shared;                           // not steered: one socket for every generation
  std::string unix_path;               // removed at exit
  bool activated = false;  // inherited from baton's service manager (activation.h): member 0 of
                           // the group when it has SO_REUSEPORT (steering_group.h), else shared;
                           // its socket file, if any, is the manager's: never unlinked
  bool steered() const { return group.has_value(); }
};

// The steering rule for a probe connection from `source` (an IP address and its port) to
// `slot`. Error: not an IP address.
Result<SteeringPlan::Probe> probe_rule(const Address& source, int slot);

class ListenerSet {
 public:
  using Logger = std::function<void(const std::string&)>;
  // Binds every listener (unnamed ones are named listen0, listen1... by position). A listener
  // whose program cannot be attached falls back to a shared socket, with one line to `log`.
  // `inherited`, when not empty, has one entry per spec: a socket the service manager passed
  // (activation.h), bound instead of one of baton's. A TCP or UDP one made with SO_REUSEPORT
  // (ReusePort=yes) becomes member 0 of the listener's group (SteeringGroup::adopt); any other,
  // or one baton cannot join (another user's), is the listener's shared socket, with one line to
  // `log` for a steerable address.
  static Result<ListenerSet> bind(const std::vector<ListenSpec>& specs, const BindOptions& options,
                                  const Logger& log,
                                  std::vector<std::optional<Fd>>* inherited = nullptr);
  ListenerSet(ListenerSet&&) = default;
  ListenerSet& operator=(ListenerSet&&) = default;
  ~ListenerSet();

  const std::vector<OwnedListener>& listeners() const { return listeners_; }

  // Gives generation `id` a slot; returns the sockets it gets at fd 3 onward, in listener order
  // (borrowed: the set keeps them open).
  Result<std::vector<int>> assign(int id);
  // Generation `id` exited: its slot is free for a later generation.
  void release(int id);
  std::optional<int> slot_of(int id) const;
  // The socket generation `id` has for listener `index` (-1 when it has none).
  int socket_of(int id, size_t index) const;

  // New connections go to generation `id`'s slot (ending a canary).
  Status switch_to(int id);
  // `percent` of new connections (by flow) go to generation `id`'s slot, the rest where they went
  // (the target). Ends with switch_to(), or when that generation is released.
  Status canary(int id, int percent);
  std::optional<SteeringPlan::Canary> canary() const { return canary_; }
  // A connection from `source` (an IP address and port) goes to generation `id`'s slot
  // (readiness probes).
  Status add_probe(const Address& source, int id);
  Status remove_probe(const Address& source);

  std::optional<int> target_slot() const { return target_; }
  // Slots no live generation holds and new connections do not go to: what is queued on their
  // sockets waits for nobody (relay.h takes it over).
  std::vector<int> orphan_slots() const;
  bool any_steered() const;

  // Across an in-place upgrade (upgrade_state.h): what the set holds, by descriptor number (it
  // keeps them open), into `state`; and the set rebuilt in the successor from the descriptors
  // `state` names (checked already), with the program attached again.
  void carry(UpgradeState& state) const;
  static Result<ListenerSet> resume(const UpgradeState& state, const BindOptions& options);

 private:
  ListenerSet() = default;
  Status apply();
  std::vector<OwnedListener> listeners_;
  std::vector<SlotUse> slots_;
  std::map<int, int> slot_by_generation_;  // live generations only
  std::optional<int> target_;
  std::optional<SteeringPlan::Canary> canary_;
  std::vector<SteeringPlan::Probe> probes_;
  std::vector<sock_filter> attached_;
};

}  // namespace baton

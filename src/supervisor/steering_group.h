// steering_group.h: the SO_REUSEPORT group of one listener, held by the supervisor.
//
// Member i is generation slot i's socket (see steering.h for the invariant). Members are created
// CLOEXEC and blocking, like every listener baton binds; they are closed only when the group is
// destroyed, that is when the supervisor exits. Not thread-safe; the supervisor's loop owns it.
//
// Kernel facts this relies on (checked on Linux 6.18 by tests/e2e/steering_socket_test.cc):
//   - a TCP socket joins the group at listen(2), a UDP socket at bind(2), at the end of the
//     group's array, so bind-and-listen order is index order;
//   - `ret #i` of the attached program sends the new connection (or datagram) to member i; an
//     index past the end falls back to the kernel's hash over all members;
//   - closing member i (not the last) moves the last member into index i: indices shift, which
//     is why members are never closed while running;
//   - attaching again replaces the program in one step (no moment without one).
// Any process with baton's uid can join the group too (SO_REUSEPORT, same address, listen): its
// socket is appended like a member, and a member appended after it would not be at the index
// baton counts. So a member is appended only while the group holds no socket but baton's, looked
// at before and after (group_members.h); otherwise the addition is refused and counted. A
// stranger that joins while no member is added is harmless: it sits past every index a program
// returns, and when it leaves, the kernel fills its index with one past it (never one of baton's).
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <vector>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"
#include "common/listener.h"

namespace baton {

// True when a listener of this transport can be steered (TCP or UDP over IPv4 or IPv6).
bool steerable(const Address& address);

class SteeringGroup {
 public:
  // Binds member 0 of a group for `address`. Fails with EADDRINUSE when anything else holds the
  // address, even another SO_REUSEPORT group of the same user: a plain bind is tried first.
  // A port of 0 is resolved to the port the kernel picked; address() reports it.
  static Result<SteeringGroup> open(const Address& address, const BindOptions& options);
  // Makes `inherited`, a socket bound (and, for TCP, listening) by baton's service manager with
  // SO_REUSEPORT (systemd's ReusePort=yes), member 0 of a group, with `program` attached. It is
  // member 0 because it is alone in its group when baton starts: it listened first, and members
  // of an earlier baton that closed never moved it (closing member i refills index i only).
  // Member 1 is bound at once, after the program is attached (so it takes nothing the program
  // does not send it), as the proof that baton can join: that needs the uid of the socket's
  // creator, and a manager running as root with baton as another user gets EADDRINUSE here,
  // not at the first reload. Errors: EINVAL for a socket without SO_REUSEPORT or not listening,
  // EADDRINUSE, or the attach's. On error `inherited` is left to the caller, to share it as
  // before steering; on success it is moved from. `bound` is its address (bound_address()).
  static Result<SteeringGroup> adopt(Fd& inherited, const Address& bound,
                                     const BindOptions& options,
                                     const std::vector<sock_filter>& program);

  // The group of a supervisor this one was upgraded from: its members, in slot order, passed
  // across the exec (upgrade_state.h). The attached program stays attached.
  static SteeringGroup resume(const Address& address, const BindOptions& options,
                              std::vector<Fd> members) {
    BindOptions member = options;
    member.reuse_port = true;
    SteeringGroup group(address, member);
    group.members_ = std::move(members);
    return group;
  }

  int size() const { return static_cast<int>(members_.size()); }
  // Member socket of `slot` (borrowed; the group keeps it open), or -1 past the end.
  int member(int slot) const;
  // Appends members until there are at least `slots`. Refused (an Error naming the socket) while
  // the group holds a socket that is not one of its members: the new member's index would be
  // wrong. A new member that a stranger joined beside is closed again before anything is steered
  // to it. Where the kernel lists no sockets of this protocol (no udp_diag), the group is not
  // looked at.
  Status grow(int slots);
  // How many times grow() found a socket in the group that is not one of its members.
  int strangers_found() const { return strangers_found_; }
  // Attaches `program`, replacing the one attached before, if any, in one step.
  Status steer(const std::vector<sock_filter>& program);
  const Address& address() const { return address_; }

 private:
  // Attaches `program` to the group of socket `fd` (bound to `address`, for the message).
  static Status attach(int fd, const Address& address, const std::vector<sock_filter>& program);
  SteeringGroup(Address address, BindOptions options) : address_(address), options_(options) {}
  // Binds one member and appends it (grow() with the checks around it).
  Status add_member();
  // An Error when the group holds a socket whose inode is not in `ours`.
  Status check_alone(const std::vector<std::uint64_t>& ours);
  Address address_;
  BindOptions options_;
  std::vector<Fd> members_;
  int strangers_found_ = 0;
};

}  // namespace baton

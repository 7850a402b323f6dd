// group_members.h: which sockets share a listener's address, as the kernel lists them
// (sock_diag), so that a steering group (steering_group.h) can tell its own members from a
// socket it does not hold.
//
// Why: any process with baton's uid may bind SO_REUSEPORT to a listener's address and listen.
// The kernel then appends its socket to the group, after baton's members; baton's next member
// lands one index later than baton counts, and a program's `ret #i` would reach the stranger.
// A member is therefore added only when the group, looked at before and after the addition, holds
// no socket but baton's (SteeringGroup::grow): then the new member is at the index baton counts.
//
// The dump (TCP: listening sockets; UDP: every socket) is of one family on the listener's port;
// a record counts when its local address, port and family are the listener's and it is bound to
// no device (a socket bound to a device is in a group of its own). The records are untrusted in
// form only (the kernel writes them): lengths are checked and counts bounded.
//
// Not thread-safe: one call at a time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "baton/result.h"
#include "common/address.h"

namespace baton {

// Most sockets read from one dump; a group is refused a member when its address holds more.
inline constexpr size_t kMaxGroupSockets = 4096;

// One recv() of a sock_diag dump: appends to `inodes` the socket inodes of the records bound to
// `bound` (an IPv4 or IPv6 address with its port), at most `limit` in all. Returns true when the
// dump is complete (NLMSG_DONE), false when more datagrams follow; an Error for NLMSG_ERROR or a
// record that does not fit its own length.
Result<bool> parse_group_datagram(std::span<const std::uint8_t> data, const Address& bound,
                                  std::vector<std::uint64_t>& inodes, size_t limit);

// The inodes of every socket bound to `bound` (TCP: listening; UDP: any state). Errors: the
// netlink socket's or the kernel's (ENOENT when the kernel has no sock_diag for the protocol),
// EOVERFLOW past kMaxGroupSockets.
Result<std::vector<std::uint64_t>> sockets_bound_to(const Address& bound);

// The inode of socket `fd`, 0 when fstat fails.
std::uint64_t socket_inode(int fd);

// The inodes in `seen` that are not in `ours`.
std::vector<std::uint64_t> strangers(std::span<const std::uint64_t> seen,
                                     std::span<const std::uint64_t> ours);

}  // namespace baton

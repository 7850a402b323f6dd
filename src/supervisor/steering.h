// steering.h: which generation receives each new connection, decided by baton.
//
// Every TCP or UDP listener is a SO_REUSEPORT group of member sockets, all bound to the same
// address and all held by the supervisor; generation slot i owns member i of every group (its
// copy, given to it at fd 3 onward, is that same socket). A classic BPF program attached with
// SO_ATTACH_REUSEPORT_CBPF returns the index of the member that takes each new connection (or,
// for UDP, each datagram of a flow with no connected socket). The invariant, kept here:
//   a member is never closed while the supervisor runs and members are only ever appended, and
//   only while the group holds no socket but baton's (steering_group.h), so member i stays at
//   index i for the supervisor's life; every program returns an index that
//   exists; a starting generation's slot is returned only for baton's own probe connections
//   (matched by source address and port, both bound before connecting) or when no other
//   generation serves.
// docs/steering.md has the reasoning. This file holds the pure decisions (which slot, which
// program) and is unit-tested without sockets; steering_group.h holds the sockets.
#pragma once

#include <linux/filter.h>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace baton {

// What the program should do.
struct SteeringPlan {
  int serving_slot = 0;  // every new connection not matched below (always a member index)
  struct Canary {
    int slot = 0;
    int percent = 0;  // 0-100: new flows whose source port % 100 < percent go to `slot`
  };
  std::optional<Canary> canary;
  // Baton's own probe connection, bound before connecting: matched by its source port and its
  // source address, so that a client elsewhere (127.0.0.2, say) sending from the same port does
  // not reach the unproven generation.
  struct Probe {
    std::uint16_t source_port = 0;
    int slot = 0;
    bool ipv6 = false;
    std::array<std::uint8_t, 16> source_address{};  // network order; the first 4 for IPv4
  };
  std::vector<Probe> probes;  // checked before the canary
};

// Upper bound on probes in one program (each costs at most 13 instructions; cBPF allows 4096).
constexpr int kMaxSteeringProbes = 64;

// The classic BPF program for `plan`. Source ports and addresses are read from the network
// header (a probe matches only a packet of its IP version, port and address) through
// SKF_NET_OFF (IPv4 with options and IPv6 handled; an IPv6 packet with extension headers before
// TCP/UDP reads a wrong port and so goes to the serving slot, never to an index that does not
// exist). Every path ends in `ret` of a slot named in the plan.
std::vector<sock_filter> steering_program(const SteeringPlan& plan);

// One generation slot as the slot chooser sees it.
struct SlotUse {
  bool in_use = false;  // a live generation (starting, serving, draining) holds it
};

// The slot for a generation about to start: the slot `target` (where new connections go now)
// when its generation has exited, so that connections queued there are taken at once by the
// successor; else the lowest free slot; else a new one appended (slots.size()).
int choose_slot(const std::vector<SlotUse>& slots, std::optional<int> target);

}  // namespace baton

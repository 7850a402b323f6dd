#include "supervisor/steering.h"

#include <algorithm>

namespace baton {
namespace {

sock_filter stmt(std::uint16_t code, std::uint32_t k) { return sock_filter{code, 0, 0, k}; }
sock_filter jump(std::uint16_t code, std::uint32_t k, std::uint8_t jt, std::uint8_t jf) {
  return sock_filter{code, jt, jf, k};
}

// SKF_NET_OFF is negative; the instruction field is its two's complement.
constexpr std::uint32_t net(int offset) { return static_cast<std::uint32_t>(SKF_NET_OFF + offset); }

// Leaves the source port of the TCP segment or UDP datagram in A. The program runs with the
// packet's data at the transport payload, so the port is read relative to the network header.
void load_source_port(std::vector<sock_filter>& p) {
  p.push_back(stmt(BPF_LD | BPF_B | BPF_ABS, net(0)));    // A = version and IHL
  p.push_back(stmt(BPF_ALU | BPF_RSH | BPF_K, 4));        // A = IP version
  p.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, 6, 3, 0));  // IPv6: skip the IPv4 part
  p.push_back(stmt(BPF_LDX | BPF_B | BPF_MSH, net(0)));   // X = IPv4 header length
  p.push_back(stmt(BPF_LD | BPF_H | BPF_IND, net(0)));    // A = port at X past the header
  p.push_back(stmt(BPF_JMP | BPF_JA, 1));
  p.push_back(stmt(BPF_LD | BPF_H | BPF_ABS, net(40)));  // A = port past the fixed header
}

// Scratch memory the program keeps what it read in.
constexpr std::uint32_t kPortCell = 0;     // M[0]: the source port
constexpr std::uint32_t kVersionCell = 1;  // M[1]: the IP version

// The instructions that return `probe.slot` for a packet from the probe's address and port, and
// fall through to what follows them for any other.
std::vector<sock_filter> probe_match(const SteeringPlan::Probe& probe) {
  std::vector<sock_filter> b;
  std::vector<size_t> misses;  // conditional jumps whose false branch leaves the block
  const auto expect = [&](std::uint32_t value) {
    misses.push_back(b.size());
    b.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, value, 0, 0));
  };
  b.push_back(stmt(BPF_LD | BPF_MEM, kPortCell));
  expect(probe.source_port);
  b.push_back(stmt(BPF_LD | BPF_MEM, kVersionCell));
  expect(probe.ipv6 ? 6 : 4);
  const int words = probe.ipv6 ? 4 : 1;
  const int offset = probe.ipv6 ? 8 : 12;  // the source address in the IPv6 or IPv4 header
  for (int w = 0; w < words; ++w) {
    std::uint32_t word = 0;
    for (int i = 0; i < 4; ++i) word = (word << 8) | probe.source_address[4 * w + i];
    b.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, net(offset + 4 * w)));  // in network order, as
    expect(word);                                                      // the word is built
  }
  b.push_back(stmt(BPF_RET | BPF_K, static_cast<std::uint32_t>(std::max(probe.slot, 0))));
  for (size_t at : misses) b[at].jf = static_cast<std::uint8_t>(b.size() - (at + 1));
  return b;
}

}  // namespace

std::vector<sock_filter> steering_program(const SteeringPlan& plan) {
  std::vector<sock_filter> p;
  const auto ret = [&](int slot) {
    p.push_back(stmt(BPF_RET | BPF_K, static_cast<std::uint32_t>(std::max(slot, 0))));
  };
  const bool canary = plan.canary && plan.canary->percent > 0;
  const size_t probes = std::min(plan.probes.size(), static_cast<size_t>(kMaxSteeringProbes));
  if (probes > 0 || canary) {
    if (probes > 0) {
      p.push_back(stmt(BPF_LD | BPF_B | BPF_ABS, net(0)));  // A = version and IHL
      p.push_back(stmt(BPF_ALU | BPF_RSH | BPF_K, 4));      // A = IP version
      p.push_back(stmt(BPF_ST, kVersionCell));
    }
    load_source_port(p);
    if (probes > 0) p.push_back(stmt(BPF_ST, kPortCell));
    for (size_t i = 0; i < probes; ++i) {
      const auto block = probe_match(plan.probes[i]);
      p.insert(p.end(), block.begin(), block.end());
    }
    if (probes > 0) p.push_back(stmt(BPF_LD | BPF_MEM, kPortCell));
    if (canary) {
      if (plan.canary->percent >= 100) {
        ret(plan.canary->slot);
        return p;
      }
      p.push_back(stmt(BPF_ALU | BPF_MOD | BPF_K, 100));
      p.push_back(
          jump(BPF_JMP | BPF_JGE | BPF_K, static_cast<std::uint32_t>(plan.canary->percent), 1, 0));
      ret(plan.canary->slot);
    }
  }
  ret(plan.serving_slot);
  return p;
}

int choose_slot(const std::vector<SlotUse>& slots, std::optional<int> target) {
  if (target && *target >= 0 && *target < static_cast<int>(slots.size()) &&
      !slots[static_cast<size_t>(*target)].in_use) {
    return *target;
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    if (!slots[i].in_use) return static_cast<int>(i);
  }
  return static_cast<int>(slots.size());
}

}  // namespace baton

// The steering decisions without sockets: the BPF program is run here by a small interpreter of
// the instructions it uses, on hand-made IPv4 and IPv6 headers; tests/e2e/steering_socket_test.cc
// runs the same programs in the kernel.
#include "supervisor/steering.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace baton {
namespace {

// Runs `prog` on a packet whose network header is `net`; returns the `ret` value.
std::uint32_t run(const std::vector<sock_filter>& prog, const std::vector<std::uint8_t>& net) {
  std::uint32_t a = 0, x = 0;
  std::array<std::uint32_t, BPF_MEMWORDS> mem{};
  auto at = [&](std::int64_t offset, int size) -> std::uint32_t {
    std::int64_t i = offset - SKF_NET_OFF;
    if (offset >= 0 || i < 0 || i + size > static_cast<std::int64_t>(net.size())) {
      throw std::out_of_range("load outside the network header");
    }
    std::uint32_t v = 0;
    for (int b = 0; b < size; ++b) v = (v << 8) | net[static_cast<size_t>(i + b)];
    return v;
  };
  for (size_t pc = 0; pc < prog.size(); ++pc) {
    const sock_filter& f = prog[pc];
    const auto k = static_cast<std::int32_t>(f.k);
    switch (f.code) {
      case BPF_LD | BPF_B | BPF_ABS:
        a = at(k, 1);
        break;
      case BPF_LD | BPF_H | BPF_ABS:
        a = at(k, 2);
        break;
      case BPF_LD | BPF_W | BPF_ABS:
        a = at(k, 4);
        break;
      case BPF_LD | BPF_MEM:
        a = mem.at(f.k);
        break;
      case BPF_ST:
        mem.at(f.k) = a;
        break;
      case BPF_LD | BPF_H | BPF_IND:
        a = at(static_cast<std::int64_t>(k) + x, 2);
        break;
      case BPF_LDX | BPF_B | BPF_MSH:
        x = 4 * (at(k, 1) & 0xf);
        break;
      case BPF_ALU | BPF_RSH | BPF_K:
        a >>= f.k;
        break;
      case BPF_ALU | BPF_MOD | BPF_K:
        a %= f.k;
        break;
      case BPF_JMP | BPF_JA:
        pc += f.k;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        pc += a == f.k ? f.jt : f.jf;
        break;
      case BPF_JMP | BPF_JGE | BPF_K:
        pc += a >= f.k ? f.jt : f.jf;
        break;
      case BPF_RET | BPF_K:
        return f.k;
      default:
        throw std::invalid_argument("instruction the interpreter does not know");
    }
  }
  throw std::logic_error("fell off the end of the program");
}

constexpr std::array<std::uint8_t, 4> kLoopback4 = {127, 0, 0, 1};

std::vector<std::uint8_t> ipv4(std::uint16_t source_port, int options_words = 0,
                               std::array<std::uint8_t, 4> source = kLoopback4) {
  std::vector<std::uint8_t> p(static_cast<size_t>(20 + 4 * options_words + 4), 0);
  p[0] = static_cast<std::uint8_t>(0x40 | (5 + options_words));
  for (size_t i = 0; i < 4; ++i) p[12 + i] = source[i];
  size_t t = static_cast<size_t>(20 + 4 * options_words);
  p[t] = static_cast<std::uint8_t>(source_port >> 8);
  p[t + 1] = static_cast<std::uint8_t>(source_port & 0xff);
  p[t + 2] = 0x1f;  // destination port: must not be read as the source
  p[t + 3] = 0x90;
  return p;
}

std::vector<std::uint8_t> ipv6(std::uint16_t source_port, std::uint8_t last_source_byte = 1) {
  std::vector<std::uint8_t> p(44, 0);
  p[0] = 0x60;
  p[8 + 15] = last_source_byte;  // ::1 by default
  p[40] = static_cast<std::uint8_t>(source_port >> 8);
  p[41] = static_cast<std::uint8_t>(source_port & 0xff);
  return p;
}

// A probe from 127.0.0.1 (or ::1) at `port`, to `slot`.
SteeringPlan::Probe probe4(std::uint16_t port, int slot) {
  SteeringPlan::Probe p{port, slot, false, {}};
  for (size_t i = 0; i < 4; ++i) p.source_address[i] = kLoopback4[i];
  return p;
}
SteeringPlan::Probe probe6(std::uint16_t port, int slot) {
  SteeringPlan::Probe p{port, slot, true, {}};
  p.source_address[15] = 1;
  return p;
}

TEST(SteeringProgram, PlainPlanReturnsTheServingSlotWithoutReadingThePacket) {
  auto prog = steering_program(SteeringPlan{3, std::nullopt, {}});
  ASSERT_EQ(prog.size(), 1u);
  EXPECT_EQ(run(prog, {}), 3u);
}

TEST(SteeringProgram, ProbeSourcePortGoesToTheProbedSlotOnIpv4AndIpv6) {
  SteeringPlan plan{0, std::nullopt, {probe4(40001, 2), probe6(40001, 3), probe4(40003, 1)}};
  auto prog = steering_program(plan);
  EXPECT_EQ(run(prog, ipv4(40001)), 2u);
  EXPECT_EQ(run(prog, ipv4(40003)), 1u);
  EXPECT_EQ(run(prog, ipv4(40002)), 0u);
  EXPECT_EQ(run(prog, ipv6(40001)), 3u);
  EXPECT_EQ(run(prog, ipv6(40003)), 0u) << "an IPv4 probe's port, from an IPv6 address";
  EXPECT_EQ(run(prog, ipv6(8080)), 0u);
}

// Finding 9 of the review: a client on another loopback address, sending from the probe's port,
// must not reach the unproven generation.
TEST(SteeringProgram, ProbePortFromAnotherAddressGoesToTheServingSlot) {
  SteeringPlan plan{0, std::nullopt, {probe4(40001, 2), probe6(40002, 3)}};
  auto prog = steering_program(plan);
  EXPECT_EQ(run(prog, ipv4(40001, 0, {127, 0, 0, 2})), 0u);
  EXPECT_EQ(run(prog, ipv4(40001, 0, {10, 0, 0, 1})), 0u);
  EXPECT_EQ(run(prog, ipv4(40001, 2, {127, 0, 0, 2})), 0u);
  EXPECT_EQ(run(prog, ipv4(40001, 2)), 2u);
  EXPECT_EQ(run(prog, ipv6(40002, 2)), 0u);
  EXPECT_EQ(run(prog, ipv6(40002)), 3u);
}

TEST(SteeringProgram, Ipv4OptionsDoNotMoveThePortRead) {
  auto prog = steering_program(SteeringPlan{0, std::nullopt, {probe4(5555, 1)}});
  EXPECT_EQ(run(prog, ipv4(5555, 3)), 1u);
  EXPECT_EQ(run(prog, ipv4(5556, 3)), 0u);
}

TEST(SteeringProgram, CanarySendsItsShareBySourcePortModulo100) {
  auto prog = steering_program(SteeringPlan{0, SteeringPlan::Canary{4, 20}, {}});
  int canary = 0;
  for (std::uint16_t port = 32768; port < 32768 + 1000; ++port) {
    std::uint32_t slot = run(prog, port % 2 ? ipv4(port) : ipv6(port));
    ASSERT_TRUE(slot == 0 || slot == 4) << slot;
    canary += slot == 4 ? 1 : 0;
    EXPECT_EQ(slot == 4, port % 100 < 20) << port;
  }
  EXPECT_EQ(canary, 200);
}

TEST(SteeringProgram, CanaryOfZeroOrHundredPercentIsAllOrNothing) {
  auto none = steering_program(SteeringPlan{1, SteeringPlan::Canary{2, 0}, {}});
  auto all = steering_program(SteeringPlan{1, SteeringPlan::Canary{2, 100}, {}});
  for (std::uint16_t port : {0, 1, 19, 20, 99, 65535}) {
    EXPECT_EQ(run(none, ipv4(port)), 1u);
    EXPECT_EQ(run(all, ipv4(port)), 2u);
  }
}

TEST(SteeringProgram, ProbesWinOverTheCanary) {
  auto prog = steering_program(SteeringPlan{0, SteeringPlan::Canary{1, 100}, {probe4(1234, 2)}});
  EXPECT_EQ(run(prog, ipv4(1234)), 2u);
  EXPECT_EQ(run(prog, ipv4(1235)), 1u);
}

TEST(SteeringProgram, EveryPathReturnsASlotOfThePlan) {
  SteeringPlan plan{0, SteeringPlan::Canary{1, 37}, {probe4(7, 2), probe6(8, 3)}};
  auto prog = steering_program(plan);
  for (const auto& f : prog) {
    if (BPF_CLASS(f.code) == BPF_RET) {
      EXPECT_LE(f.k, 3u);
    }
  }
  for (std::uint32_t port = 0; port < 65536; port += 7) {
    EXPECT_LE(run(prog, ipv6(static_cast<std::uint16_t>(port))), 3u);
  }
}

TEST(ChooseSlot, SuccessorOfACrashedGenerationTakesItsSlotSoQueuedConnectionsAreAccepted) {
  std::vector<SlotUse> slots{{true}, {false}, {false}};
  EXPECT_EQ(choose_slot(slots, 2), 2);
}

TEST(ChooseSlot, NeverTheSlotOfALiveGeneration) {
  std::vector<SlotUse> slots{{true}, {false}, {true}};
  EXPECT_EQ(choose_slot(slots, 0), 1);
  EXPECT_EQ(choose_slot(slots, std::nullopt), 1);
}

TEST(ChooseSlot, GrowsByAppendingWhenEverySlotIsLive) {
  std::vector<SlotUse> slots{{true}, {true}};
  EXPECT_EQ(choose_slot(slots, 1), 2);
  EXPECT_EQ(choose_slot({}, std::nullopt), 0);
}

TEST(ChooseSlot, IgnoresATargetPastTheEnd) {
  std::vector<SlotUse> slots{{true}, {false}};
  EXPECT_EQ(choose_slot(slots, 5), 1);
  EXPECT_EQ(choose_slot(slots, -1), 1);
}

}  // namespace
}  // namespace baton

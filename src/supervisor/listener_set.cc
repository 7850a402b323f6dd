#include "supervisor/listener_set.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "supervisor/upgrade_state.h"

namespace baton {

Result<ListenerSet> ListenerSet::bind(const std::vector<ListenSpec>& specs,
                                      const BindOptions& options, const Logger& log,
                                      std::vector<std::optional<Fd>>* inherited) {
  ListenerSet set;
  int index = 0;
  for (const auto& spec : specs) {
    OwnedListener l;
    l.name = spec.name.empty() ? fmt::format("listen{}", index) : spec.name;
    const size_t i = static_cast<size_t>(index);
    if (inherited != nullptr && i < inherited->size() && (*inherited)[i]) {
      Fd& fd = *(*inherited)[i];
      auto bound = bound_address(fd.get(), spec.address.transport);
      l.address = bound ? *bound : spec.address;
      l.activated = true;
      if (steerable(l.address)) {
        // With ReusePort=yes the manager's socket can be member 0 of a steering group; else it
        // stays one socket shared by every generation (adopt leaves it to us on any error).
        auto group = SteeringGroup::adopt(fd, l.address, options, steering_program(SteeringPlan{}));
        if (group) {
          l.group = std::move(group).value();
          set.listeners_.push_back(std::move(l));
          ++index;
          continue;
        }
        log(
            fmt::format("{}: the service manager's socket cannot be steered ({}); it is shared by "
                        "every generation",
                        l.name, group.error().what()));
      }
      l.shared = std::move(fd);
      set.listeners_.push_back(std::move(l));
      ++index;
      continue;
    }
    l.unix_path = spec.address.unix_path();
    if (steerable(spec.address)) {
      auto group = SteeringGroup::open(spec.address, options);
      if (!group) return group.error();
      l.address = group->address();
      // Slot 0 takes every new connection until the first generation is assigned one.
      if (auto s = group->steer(steering_program(SteeringPlan{})); !s) {
        log(fmt::format("{}: {}; falling back to one socket shared by every generation", l.name,
                        s.error().what()));
        l.shared.reset(::fcntl(group->member(0), F_DUPFD_CLOEXEC, 0));
        if (!l.shared) return Error::from_errno("dup");
      } else {
        l.group = std::move(group).value();
      }
    } else {
      auto fd = bind_listener(spec.address, options);
      if (!fd) return fd.error();
      auto bound = bound_address(fd->get(), spec.address.transport);
      l.address = bound ? *bound : spec.address;
      l.shared = std::move(fd).value();
    }
    set.listeners_.push_back(std::move(l));
    ++index;
  }
  return set;
}

void ListenerSet::carry(UpgradeState& state) const {
  for (const auto& l : listeners_) {
    CarriedListener c;
    c.name = l.name;
    c.address = l.address.to_string();
    c.activated = l.activated;
    c.unix_path = l.unix_path;
    if (l.group) {
      for (int i = 0; i < l.group->size(); ++i) c.members.push_back(l.group->member(i));
    }
    c.shared = l.shared.get();
    state.listeners.push_back(std::move(c));
  }
  for (const auto& slot : slots_) state.slots_in_use.push_back(slot.in_use);
  state.slot_by_generation = slot_by_generation_;
  state.target_slot = target_;
}

Result<ListenerSet> ListenerSet::resume(const UpgradeState& state, const BindOptions& options) {
  ListenerSet set;
  for (const auto& c : state.listeners) {
    OwnedListener l;
    l.name = c.name;
    auto address = parse_address(c.address);
    if (!address) return Error(EINVAL, "listener " + c.name + ": " + address.error().what());
    l.address = *address;
    l.activated = c.activated;
    l.unix_path = c.unix_path;
    if (!c.members.empty()) {
      std::vector<Fd> members;
      for (int fd : c.members) members.emplace_back(fd);
      l.group = SteeringGroup::resume(l.address, options, std::move(members));
    } else {
      l.shared.reset(c.shared);
    }
    set.listeners_.push_back(std::move(l));
  }
  for (bool in_use : state.slots_in_use) set.slots_.push_back(SlotUse{in_use});
  set.slot_by_generation_ = state.slot_by_generation;
  set.target_ = state.target_slot;
  if (auto s = set.apply(); !s) return s.error();
  return set;
}

ListenerSet::~ListenerSet() {
  for (auto& l : listeners_) {
    if (!l.unix_path.empty()) ::unlink(l.unix_path.c_str());
  }
}

bool ListenerSet::any_steered() const {
  return std::any_of(listeners_.begin(), listeners_.end(),
                     [](const OwnedListener& l) { return l.steered(); });
}

Result<std::vector<int>> ListenerSet::assign(int id) {
  const int slot = choose_slot(slots_, target_);
  for (auto& l : listeners_) {
    if (l.group) {
      if (auto s = l.group->grow(slot + 1); !s) return s.error();
    }
  }
  if (slot >= static_cast<int>(slots_.size())) slots_.resize(static_cast<size_t>(slot) + 1);
  slots_[static_cast<size_t>(slot)].in_use = true;
  slot_by_generation_[id] = slot;
  // Nothing live holds the target: this generation is the only one that can take what comes.
  const bool target_live = target_ && std::any_of(slot_by_generation_.begin(),
                                                  slot_by_generation_.end(), [&](const auto& kv) {
                                                    return kv.first != id && kv.second == *target_;
                                                  });
  if (!target_live) target_ = slot;
  if (auto s = apply(); !s) return s.error();
  std::vector<int> fds;
  for (size_t i = 0; i < listeners_.size(); ++i) fds.push_back(socket_of(id, i));
  return fds;
}

void ListenerSet::release(int id) {
  auto it = slot_by_generation_.find(id);
  if (it == slot_by_generation_.end()) return;
  slots_[static_cast<size_t>(it->second)].in_use = false;
  std::erase_if(probes_, [&](const SteeringPlan::Probe& p) { return p.slot == it->second; });
  if (canary_ && canary_->slot == it->second) canary_.reset();  // a canary that died gets nothing
  slot_by_generation_.erase(it);
  // The target stays on a freed slot: the next generation reuses it and takes what waits there.
  [[maybe_unused]] auto s = apply();  // the probes of the gone generation; a failure keeps the old
}

std::vector<int> ListenerSet::orphan_slots() const {
  std::vector<int> out;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i].in_use && target_ != static_cast<int>(i)) out.push_back(static_cast<int>(i));
  }
  return out;
}

std::optional<int> ListenerSet::slot_of(int id) const {
  auto it = slot_by_generation_.find(id);
  if (it == slot_by_generation_.end()) return std::nullopt;
  return it->second;
}

int ListenerSet::socket_of(int id, size_t index) const {
  if (index >= listeners_.size()) return -1;
  const OwnedListener& l = listeners_[index];
  if (!l.group) return l.shared.get();
  auto slot = slot_of(id);
  return slot ? l.group->member(*slot) : -1;
}

Status ListenerSet::switch_to(int id) {
  auto slot = slot_of(id);
  if (!slot) return Error(ENOENT, fmt::format("generation {} has no slot", id));
  target_ = *slot;
  canary_.reset();
  return apply();
}

Status ListenerSet::canary(int id, int percent) {
  auto slot = slot_of(id);
  if (!slot) return Error(ENOENT, fmt::format("generation {} has no slot", id));
  if (percent < 1 || percent > 99) return Error(EINVAL, "a canary share is 1-99%");
  canary_ = SteeringPlan::Canary{*slot, percent};
  return apply();
}

Result<SteeringPlan::Probe> probe_rule(const Address& source, int slot) {
  SteeringPlan::Probe p;
  p.source_port = static_cast<std::uint16_t>(source.port());
  p.slot = slot;
  if (source.family() == AF_INET) {
    std::memcpy(p.source_address.data(),
                &reinterpret_cast<const sockaddr_in*>(&source.storage)->sin_addr, 4);
  } else if (source.family() == AF_INET6) {
    p.ipv6 = true;
    std::memcpy(p.source_address.data(),
                &reinterpret_cast<const sockaddr_in6*>(&source.storage)->sin6_addr, 16);
  } else {
    return Error(EINVAL, "a probe comes from an IP address: " + source.to_string());
  }
  return p;
}

Status ListenerSet::add_probe(const Address& source, int id) {
  auto slot = slot_of(id);
  if (!slot) return Error(ENOENT, fmt::format("generation {} has no slot", id));
  if (static_cast<int>(probes_.size()) >= kMaxSteeringProbes) {
    return Error(EBUSY, "too many probe connections at once");
  }
  auto rule = probe_rule(source, *slot);
  if (!rule) return rule.error();
  probes_.push_back(*rule);
  return apply();
}

Status ListenerSet::remove_probe(const Address& source) {
  auto rule = probe_rule(source, 0);
  if (!rule) return rule.error();
  std::erase_if(probes_, [&](const SteeringPlan::Probe& p) {
    return p.source_port == rule->source_port && p.ipv6 == rule->ipv6 &&
           p.source_address == rule->source_address;
  });
  return apply();
}

Status ListenerSet::apply() {
  SteeringPlan plan;
  plan.serving_slot = target_.value_or(0);
  plan.probes = probes_;
  plan.canary = canary_;
  auto program = steering_program(plan);
  const bool same =
      program.size() == attached_.size() &&
      std::equal(program.begin(), program.end(), attached_.begin(),
                 [](const sock_filter& a, const sock_filter& b) {
                   return a.code == b.code && a.jt == b.jt && a.jf == b.jf && a.k == b.k;
                 });
  if (same) return {};
  for (auto& l : listeners_) {
    if (!l.group) continue;
    if (auto s = l.group->steer(program); !s) return s;
  }
  attached_ = std::move(program);
  return {};
}

}  // namespace baton

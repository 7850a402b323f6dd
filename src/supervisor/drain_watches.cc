#include "supervisor/drain_watches.h"

#include <fmt/format.h>

#include "supervisor/accept_probe.h"

namespace baton {

QuietCheck DrainWatches::check(const ListenerSet& listeners, const Generation& g) {
  ++looks_;
  for (auto it = watches_.begin(); it != watches_.end();) {
    auto next = std::next(it);
    if (it->first != g.id && looks_ - it->second.last_look > kStaleLooks) stop_watching(it);
    it = next;
  }
  auto it = watches_.find(g.id);
  if (it == watches_.end()) {
    std::vector<int> own;
    const auto& all = listeners.listeners();
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i].address.transport == Transport::kUdp) continue;
      const int fd = all[i].steered() ? listeners.socket_of(g.id, i) : -1;
      if (fd < 0) return QuietCheck::kUnwatchable;  // shared with the generations after it
      own.push_back(fd);
    }
    it = watches_.emplace(g.id, Watch{GenerationWatch(g.pid, std::move(own)), 0, 0, 0}).first;
  }
  it->second.last_look = looks_;
  auto result = it->second.watch.check(
      [this](const Address& remote) -> std::optional<bool> {
        if (!relay_.is_upstream(remote)) return std::nullopt;
        return relay_.detach(remote);
      },
      [this](std::uint16_t port) { return relay_.closes_on(port); });
  if (!result) {
    log_(fmt::format("generation {}: cannot watch it drain: {}", g.id, result.error().what()));
    stop_watching(it);
    return QuietCheck::kUnwatchable;
  }
  if (result->idle_closed > 0) relay_.count_closed_at_drain(result->idle_closed);
  it->second.idle_taken += result->idle_taken;
  it->second.detached += result->detached;
  hand_over(listeners, std::move(result->taken));
  if (!result->quiet) return QuietCheck::kBusy;
  if (it->second.idle_taken > 0 || it->second.detached > 0) {
    log_(fmt::format("generation {} quiet after baton took over {} idle keep-alive connection{}{}",
                     g.id, it->second.idle_taken, it->second.idle_taken == 1 ? "" : "s",
                     it->second.detached > 0
                         ? fmt::format(" and moved {} relayed one{}", it->second.detached,
                                       it->second.detached == 1 ? "" : "s")
                         : ""));
  }
  stop_watching(it);
  return QuietCheck::kQuiet;
}

void DrainWatches::gone(const ListenerSet& listeners, int id) {
  if (auto it = watches_.find(id); it != watches_.end()) stop_watching(it);
  auto left = leftover_.find(id);
  if (left == leftover_.end()) return;
  auto taken = std::move(left->second);
  leftover_.erase(left);
  hand_over(listeners, std::move(taken));
}

void DrainWatches::stop_watching(std::map<int, Watch>::iterator it) {
  auto held = it->second.watch.release_all();
  if (!held.empty()) {
    auto& left = leftover_[it->first];
    for (auto& t : held) left.push_back(std::move(t));
  }
  watches_.erase(it);
}

void DrainWatches::hand_over(const ListenerSet& listeners, std::vector<TakenConnection> taken) {
  for (auto& t : taken) {
    for (const auto& l : listeners.listeners()) {
      if (l.address.transport != Transport::kTcp || l.address.port() != t.local_port) continue;
      relay_.adopt(std::move(t.fd), connect_address(l.address));
      break;
    }
  }
}

}  // namespace baton

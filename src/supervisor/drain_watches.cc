#include "supervisor/drain_watches.h"

#include <fmt/format.h>

namespace baton {

QuietCheck DrainWatches::check(const ListenerSet& listeners, const Generation& g) {
  ++looks_;
  std::erase_if(watches_, [&](const auto& entry) {
    return entry.first != g.id && looks_ - entry.second.last_look > kStaleLooks;
  });
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
    it = watches_.emplace(g.id, Watch{GenerationWatch(g.pid, std::move(own)), 0, 0}).first;
  }
  it->second.last_look = looks_;
  auto result = it->second.watch.check();
  if (!result) {
    log_(fmt::format("generation {}: cannot watch it drain: {}", g.id, result.error().what()));
    watches_.erase(it);
    return QuietCheck::kUnwatchable;
  }
  it->second.idle_closed += result->idle_closed;
  if (!result->quiet) return QuietCheck::kBusy;
  if (it->second.idle_closed > 0) {
    log_(fmt::format("generation {} quiet after baton closed {} idle keep-alive connection{}", g.id,
                     it->second.idle_closed, it->second.idle_closed == 1 ? "" : "s"));
  }
  watches_.erase(it);
  return QuietCheck::kQuiet;
}

}  // namespace baton

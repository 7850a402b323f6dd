#include "supervisor/listener_watch.h"

#include <algorithm>

#include "supervisor/drain_watch.h"
#include "supervisor/group_members.h"

namespace baton {

std::map<std::string, std::uint32_t> ListenerWatch::look(int generation, pid_t pid,
                                                         const std::vector<Socket>& sockets,
                                                         Clock::time_point now) {
  if (generation != generation_) {
    generation_ = generation;
    queued_.clear();
    searched_.clear();
    reported_.clear();
  }
  std::map<std::string, std::uint32_t> found;
  for (const auto& s : sockets) {
    auto queue = accept_queue_length(s.fd);
    const std::uint32_t now_queued = queue ? *queue : 0;
    const std::uint32_t before = queued_[s.name];
    queued_[s.name] = now_queued;
    // Under load a queue is often non-empty for a moment; one that stays so is worth a look.
    if (now_queued == 0 || before == 0 || reported_.contains(s.name)) continue;
    auto last = searched_.find(s.name);
    if (last != searched_.end() && now - last->second < kListenerRecheck) continue;
    searched_[s.name] = now;
    auto held = held_sockets(pid);
    if (!held) continue;  // the generation is going: nothing to say
    const std::uint64_t inode = socket_inode(s.fd);
    const bool holds = std::any_of(held->begin(), held->end(),
                                   [&](const HeldSocket& h) { return h.inode == inode; });
    if (holds) continue;
    reported_.insert(s.name);
    found[s.name] = now_queued;
  }
  return found;
}

}  // namespace baton

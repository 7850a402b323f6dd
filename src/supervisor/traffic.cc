#include "supervisor/traffic.h"

#include <fmt/format.h>

#include "supervisor/accept_probe.h"
#include "supervisor/activation.h"
#include "supervisor/drain_watch.h"

namespace baton {

Result<std::unique_ptr<Traffic>> Traffic::bind(const std::vector<ListenSpec>& specs,
                                               const BindOptions& options, EventLoop& loop,
                                               Logger log) {
  auto activated = take_activated_listeners(specs);
  if (!activated) return activated.error();
  auto set = ListenerSet::bind(specs, options, log, &*activated);
  if (!set) return set.error();
  return std::unique_ptr<Traffic>(new Traffic(std::move(set).value(), loop, std::move(log)));
}

std::unique_ptr<Traffic> Traffic::resume(ListenerSet listeners, EventLoop& loop, Logger log) {
  std::unique_ptr<Traffic> traffic(new Traffic(std::move(listeners), loop, std::move(log)));
  traffic->relay_orphans();
  return traffic;
}

Result<std::vector<int>> Traffic::assign(int id) {
  auto sockets = listeners_.assign(id);
  if (!sockets) return sockets.error();
  for (int fd : *sockets) relay_.release(fd);  // the slot's own generation takes what waits
  return sockets;
}

Status Traffic::switch_to(int id) {
  if (auto s = listeners_.switch_to(id); !s) return s;
  // The handshake race: a connection steered to the old generation's socket just before the
  // switch waits in its accept queue. The drain watch (--drain=watch) signals the old generation
  // only once that queue is empty; the queue of a slot whose generation is gone is relayed.
  relay_orphans();
  return {};
}

void Traffic::gone(int id) {
  drains_.gone(listeners_, id);
  listeners_.release(id);
  relay_orphans();
}

void Traffic::relay_orphans() {
  for (int slot : listeners_.orphan_slots()) {
    for (const auto& l : listeners_.listeners()) {
      if (!l.steered() || l.address.transport != Transport::kTcp) continue;
      relay_.take_over(l.group->member(slot), connect_address(l.address));
    }
  }
}

std::optional<TrafficFigures> Traffic::figures(int id, pid_t pid) const {
  auto slot = listeners_.slot_of(id);
  if (!slot || !listeners_.any_steered()) return std::nullopt;
  TrafficFigures f;
  const auto canary = listeners_.canary();
  if (canary && canary->slot == *slot) {
    f.share_percent = canary->percent;
  } else if (listeners_.target_slot() == *slot) {
    f.share_percent = canary ? 100 - canary->percent : 100;
  }
  std::vector<int> fds;
  for (const auto& l : listeners_.listeners()) {
    if (l.steered() && l.address.transport == Transport::kTcp)
      fds.push_back(l.group->member(*slot));
  }
  if (fds.empty() || pid <= 0) return f;
  GenerationWatch watch(pid, std::move(fds));
  if (auto looked = watch.count()) {
    f.accept_queue = looked->accept_queue;
    f.connections = looked->connections;
  }
  return f;
}

std::vector<std::string> Traffic::describe() const {
  std::vector<std::string> out;
  const auto& all = listeners_.listeners();
  for (size_t i = 0; i < all.size(); ++i) {
    out.push_back(fmt::format("listening on {}={} (fd {}, {}{})", all[i].name,
                              all[i].address.to_string(), 3 + i,
                              all[i].steered() ? "steered" : "shared",
                              all[i].activated ? ", from the service manager" : ""));
  }
  return out;
}

}  // namespace baton

// supervisor_core_groups.cc: the part of SupervisorCore (supervisor_core.h) about a generation's
// process group as a whole: the rest of a signalled group that outlives its main process
// (--drain-signal-group), and the warning about a main process that is a shell running the
// server as its child.
#include <fmt/format.h>

#include <vector>

#include "supervisor/supervisor_core.h"

namespace baton {

bool SupervisorCore::keep_group_draining(Generation& g, int wait_status) {
  // Only a group that was told to drain: a quiescing generation has had no signal yet, and what
  // is left of a killed one is being killed.
  if (!options_.drain_signal_group || g.state != GenerationState::kDraining || g.quiescing ||
      g.killed || !os_.group_has_members(g)) {
    return false;
  }
  g.group_lingers = true;
  g.wait_status = wait_status;
  os_.log(fmt::format(
      "generation {} (pid {}): its main process is gone; the rest of its process group has the "
      "drain signal too and is waited for",
      g.id, g.pid));
  return true;
}

void SupervisorCore::settle_lingering_groups() {
  std::vector<int> done;  // ended() prunes generations_: collect first
  for (const auto& g : generations_) {
    if (g.group_lingers && !os_.group_has_members(g)) done.push_back(g.id);
  }
  for (int id : done) {
    Generation* g = find_mutable(id);
    if (g == nullptr) continue;
    os_.log(fmt::format("generation {} (pid {}): its process group has ended", g->id, g->pid));
    ended(*g, g->wait_status.value_or(0), /*kill_rest=*/false);
  }
}

void SupervisorCore::warn_about_wrapper(const Generation& g) {
  // With the group signalled the server hears the drain signal whatever its parent does.
  if (warned_wrapper_ || options_.drain_signal_group) return;
  std::string warning = os_.wrapper_warning(g);
  if (warning.empty()) return;
  warned_wrapper_ = true;
  os_.log(LogLevel::kWarning, warning);
}

}  // namespace baton

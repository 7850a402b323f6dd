#include "supervisor/status_json.h"

#include <sys/wait.h>

#include "supervisor/control_protocol.h"

namespace baton {
namespace {

double to_seconds(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::duration<double>>(d).count();
}

}  // namespace

nlohmann::json status_json(const SupervisorFacts& facts, const SupervisorCore& core, TimePoint now,
                           std::chrono::system_clock::time_point wall_now) {
  auto wall = [&](TimePoint t) {
    auto sys = wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(now - t);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(sys.time_since_epoch());
    return static_cast<double>(ms.count()) / 1000.0;
  };
  nlohmann::json j;
  j["version"] = kControlProtocolVersion;
  j["supervisor"] = {{"pid", facts.pid},
                     {"uptime_s", to_seconds(now - facts.started_at)},
                     {"command", facts.command},
                     {"readiness", facts.readiness},
                     {"control", facts.control_path},
                     {"config", facts.config_file},
                     {"working_dir", facts.working_dir},
                     {"metrics", facts.metrics_address},
                     {"stopping", core.stopping()},
                     {"output_dropped_lines", facts.output_dropped_lines}};
  j["listeners"] = nlohmann::json::array();
  for (const auto& l : facts.listeners) {
    j["listeners"].push_back({{"name", l.name},
                              {"address", l.address},
                              {"fd", l.fd},
                              {"steering", l.steered ? "steered" : "shared"}});
    if (l.steered) j["listeners"].back()["foreign_members"] = l.strangers_found;
  }
  const Generation* serving = core.serving();
  j["serving_generation"] = serving != nullptr ? serving->id : 0;
  j["generations"] = nlohmann::json::array();
  for (const auto& g : core.generations()) {
    nlohmann::json e = {{"generation", g.id},
                        {"pid", g.pid},
                        {"state", to_string(g.state)},
                        {"started_at", wall(g.started_at)}};
    if (g.ready_at) e["ready_after_s"] = to_seconds(*g.ready_at - g.started_at);
    if (g.drain_started_at) e["drain_started_at"] = wall(*g.drain_started_at);
    if (g.exited_at) e["exited_at"] = wall(*g.exited_at);
    if (g.wait_status) {
      if (WIFEXITED(*g.wait_status)) e["exit_status"] = WEXITSTATUS(*g.wait_status);
      if (WIFSIGNALED(*g.wait_status)) e["exit_signal"] = WTERMSIG(*g.wait_status);
    }
    if (g.killed) e["killed"] = true;
    if (g.quiescing) e["quiescing"] = true;  // draining, watched, not signalled yet
    if (!g.status_text.empty()) e["status_text"] = g.status_text;
    if (auto it = facts.generation_dropped_lines.find(g.id);
        it != facts.generation_dropped_lines.end()) {
      e["output_dropped_lines"] = it->second;
    }
    if (auto it = facts.slots.find(g.id); it != facts.slots.end()) e["slot"] = it->second;
    if (auto it = facts.traffic.find(g.id); it != facts.traffic.end()) {
      e["share_percent"] = it->second.share_percent;
      if (it->second.accept_queue) e["accept_queue"] = *it->second.accept_queue;
      if (it->second.connections) e["connections"] = *it->second.connections;
    }
    j["generations"].push_back(e);
  }
  auto reload_json = [&](const std::optional<ReloadRecord>& r) -> nlohmann::json {
    if (!r) return nullptr;
    nlohmann::json e = {{"id", r->id},
                        {"result", r->in_progress ? "in-progress" : (r->ok ? "ok" : "failed")},
                        {"reason", r->message},
                        {"requested_at", wall(r->requested_at)}};
    if (r->finished_at) e["duration_s"] = to_seconds(*r->finished_at - r->requested_at);
    return e;
  };
  j["last_reload"] = reload_json(core.last_reload());
  j["last_failed_reload"] = reload_json(core.last_failed_reload());
  const Counters& c = core.counters();
  j["counters"] = {{"reloads_ok", c.reloads_ok},
                   {"reloads_failed", c.reloads_failed},
                   {"reloads_coalesced", c.reloads_coalesced},
                   {"crashes", c.crashes},
                   {"drain_kills", c.drain_kills},
                   {"generations_started", c.generations_started}};
  const TakeoverCounts& t = facts.takeover;
  j["keepalive"] = {
      {"taken_over", t.taken_over},           {"relayed", t.relayed},   {"refused", t.refused},
      {"idle_closed", t.idle_closed},         {"over_cap", t.over_cap}, {"detached", t.detached},
      {"closed_at_drain", t.closed_at_drain}, {"held_now", t.held_now}};
  return j;
}

}  // namespace baton

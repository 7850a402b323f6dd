// `baton check`'s summary of the settings it read: one aligned line per setting that is used.
#include <signal.h>

#include <cstring>

#include <fmt/format.h>

#include "cli/config.h"
#include "common/duration.h"

namespace baton::cli {

std::vector<std::string> describe_config(const SupervisorConfig& c) {
  std::vector<std::string> lines;
  if (!c.config_file.empty()) lines.push_back("config         " + c.config_file);
  int index = 0;
  for (const auto& l : c.listens) {
    lines.push_back(fmt::format("listen         {}={}",
                                l.name.empty() ? fmt::format("listen{}", index) : l.name,
                                l.address.to_string()));
    ++index;
  }
  std::string argv;
  for (const auto& a : c.command) argv += (argv.empty() ? "" : " ") + a;
  lines.push_back("command        " + argv);
  if (!c.working_dir.empty()) lines.push_back("chdir          " + c.working_dir);
  if (c.run_as) {
    lines.push_back(fmt::format("user           {} (uid {}, gid {})", c.run_as->name, c.run_as->uid,
                                c.run_as->gid));
  }
  if (!c.env.empty()) {
    std::string names;
    for (const auto& [k, v] : c.env) names += (names.empty() ? "" : " ") + k;
    lines.push_back(fmt::format("env            {} variables: {}", c.env.size(), names));
  }
  const char* sig = sigabbrev_np(c.core.drain_signal);
  lines.push_back(fmt::format("ready          {} within {}", c.readiness.to_string(),
                              duration_to_string(c.core.ready_timeout)));
  lines.push_back(fmt::format("drain          {}, SIG{}{}, kill after {}, at most {} draining",
                              c.core.drain_mode == DrainMode::kWatch ? "watch" : "signal",
                              sig != nullptr ? sig : "?",
                              c.core.drain_signal_group ? " to the process group" : "",
                              duration_to_string(c.core.drain_timeout), c.core.max_draining));
  if (c.core.hold_old.count() > 0) {
    lines.push_back("hold-old       " + duration_to_string(c.core.hold_old));
  }
  lines.push_back("control        " + c.control_path);
  if (c.metrics) lines.push_back("metrics        http://" + c.metrics->to_string() + "/metrics");
  if (!c.adopt_library.empty()) lines.push_back("adopt          " + c.adopt_library);
  if (c.prefix_output) lines.emplace_back("output         each app line after \"[gen N] \"");
  return lines;
}

}  // namespace baton::cli

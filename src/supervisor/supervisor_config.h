// supervisor_config.h: the settings `baton run` hands the supervisor (SupervisorConfig), and what
// a reload takes of them. Below both supervisor.h and upgrade_settings.h, which carries them
// across an in-place upgrade, so that neither includes the other.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "baton/result.h"
#include "common/address.h"
#include "common/listener.h"
#include "supervisor/readiness.h"
#include "supervisor/spawner.h"
#include "supervisor/supervisor_core.h"

namespace baton {

struct SupervisorConfig {
  std::vector<ListenSpec> listens;  // unnamed ones are named listen0, listen1... by position
  BindOptions bind;
  std::vector<std::string> command;  // argv; argv[0] resolved to a path
  ReadinessSpec readiness;
  CoreOptions core;
  std::string control_path;
  std::string adopt_library;  // non-empty: `--adopt`, preloaded into every generation
  std::string working_dir;    // each generation starts here, the path resolved again at each spawn
  std::map<std::string, std::string> env;  // added to each generation's environment
  std::optional<RunAs> run_as;             // `--user`: generations run as this user
  std::optional<Address> metrics;          // `--metrics`: Prometheus text at /metrics
  std::string config_file;                 // `--config`, for status ("" when none)
  std::vector<std::string> self_argv;      // baton's own command line, executed again by `upgrade`
  std::string self_version;                // baton's version, told to a successor and the log
  bool prefix_output = false;  // `--prefix-output`: each app line starts "[gen N] " (log.h)
  // When set, called before each reload's generation is spawned: the settings read and checked
  // again (config file, env file). The reload takes from the result what may change between
  // generations (take_reloadable).
  // An error fails that reload with its message, and the serving generation stays.
  std::function<Result<SupervisorConfig>()> reload_config;
};

// What a reload takes from the settings read again: command, environment, working directory,
// readiness, ready and drain timeouts, prefix_output, into `config` and the core's `options`:
// the settings whose entry in common/run_settings.h says `reload_applies` (upgrade_state_test
// holds the two together).
// The rest (listeners, control socket, user...) stays as baton started: held, or bound, for the
// supervisor's life.
void take_reloadable(const SupervisorConfig& fresh, SupervisorConfig& config, CoreOptions& options);

}  // namespace baton

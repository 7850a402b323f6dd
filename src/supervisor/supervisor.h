// supervisor.h: `baton run`: owns the listeners and runs generation after generation of the app.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

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
  bool prefix_output = false;  // `--prefix-output`: each app line starts "[gen N] " (log.h)
  // When set, called before each reload's generation is spawned: the settings read and checked
  // again (config file, env file). The reload takes from the result what may change between
  // generations: command, environment, working directory, readiness, ready and drain timeouts,
  // prefix_output.
  // An error fails that reload with its message, and the serving generation stays.
  std::function<Result<SupervisorConfig>()> reload_config;
};

// Runs the supervisor until it is stopped; returns the process exit status. Errors in setting up
// (port in use, control socket taken...) are printed as one line and give a non-zero status with
// nothing left bound.
int run_supervisor(const SupervisorConfig& config);

}  // namespace baton

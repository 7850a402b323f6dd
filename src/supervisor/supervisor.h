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
// readiness, ready and drain timeouts, prefix_output, into `config` and the core's `options`.
// The rest (listeners, control socket, user...) stays as baton started: held, or bound, for the
// supervisor's life.
void take_reloadable(const SupervisorConfig& fresh, SupervisorConfig& config, CoreOptions& options);

// Runs the supervisor until it is stopped; returns the process exit status. Errors in setting up
// (port in use, control socket taken...) are printed as one line and give a non-zero status with
// nothing left bound.
// When $BATON_RESUME_FD is set (the supervisor has just executed itself in place: `baton
// upgrade`), it resumes from the state in that memfd instead (upgrade_state.h); when that fails,
// one line and status 1 (nothing can be given back: the predecessor is gone). It then runs with
// the settings the state carries (upgrade_settings.h): of `config` it takes only self_argv,
// self_version and, when its predecessor had one, reload_config. So the caller reads no config
// file when resuming_after_upgrade() (a file edited since baton started must not change it).
int run_supervisor(const SupervisorConfig& config);

// $BATON_RESUME_FD is set: run_supervisor will resume, not start.
bool resuming_after_upgrade();

// `baton upgrade-check`, run by a supervisor in the binary it is about to execute: reads the
// state at fd 3 and prints one JSON line, {"baton_upgrade_check":2,"ok":true,"version":...},
// when this binary can resume it (status 0); else one line on stderr and status 1. Of `config`
// only self_version is read: the settings are the state's, as on resume.
int upgrade_check(const SupervisorConfig& config, int state_fd);

}  // namespace baton

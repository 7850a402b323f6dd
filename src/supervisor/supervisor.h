// supervisor.h: `baton run`: owns the listeners and runs generation after generation of the app.
#pragma once

#include "supervisor/supervisor_config.h"

namespace baton {

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

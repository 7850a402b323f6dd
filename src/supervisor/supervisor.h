// supervisor.h: `baton run`: owns the listeners and runs generation after generation of the app.
#pragma once

#include <string>
#include <vector>

#include "common/address.h"
#include "common/listener.h"
#include "supervisor/readiness.h"
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
};

// Runs the supervisor until it is stopped; returns the process exit status. Errors in setting up
// (port in use, control socket taken...) are printed as one line and give a non-zero status with
// nothing left bound.
int run_supervisor(const SupervisorConfig& config);

}  // namespace baton

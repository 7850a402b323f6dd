#include "supervisor/supervisor_config.h"

namespace baton {

void take_reloadable(const SupervisorConfig& fresh, SupervisorConfig& config,
                     CoreOptions& options) {
  config.command = fresh.command;
  config.env = fresh.env;
  config.working_dir = fresh.working_dir;
  config.readiness = fresh.readiness;
  config.prefix_output = fresh.prefix_output;
  options.ready_timeout = fresh.core.ready_timeout;
  options.drain_timeout = fresh.core.drain_timeout;
  options.readiness = fresh.core.readiness;
}

}  // namespace baton

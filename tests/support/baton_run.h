// baton_run.h: a `baton run` under test, driven through its control socket as an operator would.
//
// The supervisor runs as a Process (harness.h): killed with its process group when the test ends,
// passed or not; its generations go with it (baton never orphans them). Every wait is bounded.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness.h"

namespace baton::test {

class Baton {
 public:
  // Starts `baton run --control DIR/CONTROL_NAME RUN_ARGS... [-- APP...]` ("--" only when `app`
  // is not empty: a config file may name the app instead), with the baton binary at `binary`
  // (default: the build's; the control commands always use the build's).
  Baton(const TempDir& dir, const std::vector<std::string>& run_args,
        const std::vector<std::string>& app, const SpawnOptions& options = {},
        const std::string& control_name = "control.sock", const std::string& binary = "");

  Process& process() { return *process_; }
  const std::string& control() const { return control_; }

  // Runs `baton ARGS... --control CONTROL` to completion.
  CommandResult ctl(std::vector<std::string> args, std::chrono::milliseconds timeout = 120s);

  // `baton status --json`, parsed; null when the command failed or printed no JSON.
  nlohmann::json status(std::chrono::milliseconds timeout = 60s);

  // Waits until generation `generation` (any, when 0) serves; returns the status then, or null
  // when it did not within `timeout`.
  nlohmann::json wait_serving(int generation = 0, std::chrono::milliseconds timeout = 30s);
  // The same, returning the first listener's address ("" on timeout).
  std::string wait_address(std::chrono::milliseconds timeout = 30s);
  // The same, returning the serving generation's main pid (0 on timeout).
  int wait_serving_pid(int generation = 0, std::chrono::milliseconds timeout = 30s);

  // Whether the first listener is steered (each generation its own socket): only then can baton
  // watch an old generation drain. With a shared socket it is signalled at once (docs/drain.md).
  bool steered();

  // Asks baton to stop, as a service manager does: SIGTERM, then a second SIGTERM (which kills
  // what still drains) if it has not exited within `each` of the first; true once it has exited.
  bool stop(std::chrono::milliseconds each = 10s);

 private:
  std::string control_;
  std::optional<Process> process_;
};

// The main pid of the serving generation in a status (-1 when there is none).
int serving_pid(const nlohmann::json& status);

}  // namespace baton::test

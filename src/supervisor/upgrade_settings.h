// upgrade_settings.h: the settings a supervisor runs with, as they cross an in-place upgrade
// (upgrade_state.h, the state's "settings" object).
//
// What crosses is the effective values (durations in milliseconds, the signal's number, the
// command with argv[0] resolved, the environment with the env file merged in, the user's ids),
// not the config file's text: the settings a supervisor runs with are those checked at its
// start plus what each reload has taken since (supervisor.h, reload_config), which no file on
// disk holds; and a successor that checked a file again at resume (env file, command, user,
// directory) could fail, after the exec, where there is no way back. A baton that adds a setting
// reads a state without it as a start without that key reads the file: the setting's default,
// which is how its predecessor (that had no such setting) ran; so adding one is no incompatible
// change (upgrade_state.h), and an older baton ignores a field it does not know.
//
// Carried: listens, bind, command, readiness, core (but drain_poll and the restart backoff, which
// are baton's own and no setting), adopt_library, working_dir, env, run_as, config_file,
// prefix_output. Not carried: control_path and the metrics address (the state carries their
// sockets), self_argv and self_version (the successor's own), reload_config (the successor builds
// it from the same command line; `reread_at_reload` says whether there was one). Each setting's
// key in the state and its bounds are its entry's in common/run_settings.h.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "supervisor/supervisor_config.h"

namespace baton {

// Bounds on what the settings may list.
constexpr size_t kMaxCarriedArgs = 4096;
constexpr size_t kMaxCarriedEnv = 8192;  // --env and the env file's 4096
constexpr size_t kMaxCarriedGroups = 65536;

struct CarriedSettings {
  SupervisorConfig config;        // the carried fields above; the rest stay default
  bool reread_at_reload = false;  // reloads read the config file (or env file) again
};

nlohmann::json encode_run_settings(const CarriedSettings& settings);
// Checks every field (type, range, count); throws checked::Bad (checked_json.h).
CarriedSettings decode_run_settings(const nlohmann::json& j);

// Where two sets of settings differ, by the names the config file gives them (`ready-timeout`,
// `command`...), in the order of the state's keys; split into what a reload takes
// (take_reloadable, supervisor_config.h) and what only a restart of baton applies. After an upgrade
// the supervisor compares what it runs with to what the files say now, so that an operator who
// edited the config file and upgraded hears that the upgrade did not apply the edit
// (docs/upgrade.md).
struct SettingsDifference {
  std::vector<std::string> reload_applies;
  std::vector<std::string> restart_applies;
  bool empty() const { return reload_applies.empty() && restart_applies.empty(); }
};
SettingsDifference settings_difference(const CarriedSettings& running, const CarriedSettings& file);

}  // namespace baton

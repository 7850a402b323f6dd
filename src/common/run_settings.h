// run_settings.h: every setting of `baton run`, written once.
//
// One entry of run_settings() per setting: its name (the flag without "--", and the config file's
// key), what kind of value it holds, its default, its bounds, its help, whether a reload applies
// it, and its key in the upgrade state. The rest is derived from the table: the flags of `run`
// and `check` (cli/run_flags.cc), the reading of the config file, the overlay of the flags over
// the file and the bounds of the check (cli/config.cc), and the names and bounds of the settings
// that cross an in-place upgrade (supervisor/upgrade_settings.cc). A unit test holds the man page
// and docs/configuration.md to it (tests/unit/run_settings_test.cc), and another holds
// take_reloadable (supervisor/supervisor_config.h) to `reload`.
//
// Adding a setting: a member of RunSettings (no initializer: the default is the entry's), its
// entry in run_settings.cc, then its use: its check in check_run_settings, its field in
// SupervisorConfig, its line in the two docs.
//
// Below both src/cli and src/supervisor: it knows their values only as the user spells them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace baton {

// Everything `run` takes, as the user spelt it (checked by cli's check_run_settings). A
// default-constructed one holds every setting's default.
struct RunSettings {
  RunSettings();
  std::vector<std::string> listen;
  std::string ready;
  std::string ready_timeout;
  std::string drain_timeout;
  std::string drain_signal;
  bool drain_signal_group;
  std::string drain;  // watch | signal
  std::string hold_old;
  int max_draining;
  int backlog;
  bool ipv6_only;
  std::string unix_mode;
  std::string control;
  bool adopt;
  std::string chdir;
  std::string env_file;
  std::vector<std::string> env;  // NAME=VALUE
  std::string user;              // USER[:GROUP]
  std::string metrics;           // ADDR for /metrics
  bool prefix_output;            // "[gen N] " before each app line
  std::vector<std::string> command;
};

struct RunSetting {
  enum class Kind {
    kText,      // a string
    kDuration,  // a duration (common/duration.h); in the file a string or a number of seconds
    kInteger,
    kSwitch,   // a flag without a value; in the file true or false
    kList,     // a repeatable flag; in the file a string or an array of strings
    kEnv,      // as kList; in the file also a table { NAME = "value" }
    kCommand,  // the words after `--`; in the file an array of strings
  };
  using Field = std::variant<std::string RunSettings::*, int RunSettings::*, bool RunSettings::*,
                             std::vector<std::string> RunSettings::*>;

  std::string_view name;
  Kind kind = Kind::kText;
  Field field;
  // As the user writes it ("60s", "4", "false"); "" for none (an empty list, or a default that
  // depends on the machine, which `help` then says).
  std::string_view default_value;
  std::string_view value_name;  // in --help and the man page: DURATION, N, SPEC...
  // Bounds, inclusive, of an integer, a duration (in milliseconds) or another number the value
  // spells (a signal's, a mode's); both 0: none.
  std::int64_t min = 0;
  std::int64_t max = 0;
  bool reload_applies = false;  // a reload takes the new value (else only a restart of baton)
  std::string_view state_key;   // its key in the upgrade state's settings; "" if not carried
  std::string_view help;        // --help's text
};

// Every setting, in the order of --help.
const std::vector<RunSetting>& run_settings();
// The entry of `name`; a name not in the table is a programming error (aborts).
const RunSetting& run_setting(std::string_view name);
// The entry whose state key is `key`; nullptr if none.
const RunSetting* run_setting_by_state_key(std::string_view key);

}  // namespace baton

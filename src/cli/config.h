// config.h: the settings of `baton run`, from its flags and a TOML file, and the one check of
// all of them together: what `baton check` prints, what `run` starts with, and what every reload
// reads again.
//
// The file's keys are the names of run's flags without the leading dashes; every flag has one:
//   listen = ["http=127.0.0.1:8080", "unix:/run/app.sock"]
//   command = ["./server", "--port", "8080"]
//   ready = "http:/healthz"          ready-timeout = "30s"     drain-timeout = "30s"
//   drain-signal = "TERM"            drain = "watch"           max-draining = 4
//   drain-signal-group = false
//   backlog = 4096
//   ipv6-only = false                unix-mode = "0660"        control = "/run/app/control.sock"
//   adopt = false                    chdir = "/srv/app/current"
//   env-file = "/etc/app/env"        env = { LOG_LEVEL = "info" }   (or ["LOG_LEVEL=info"])
//   user = "app:app"                 metrics = "127.0.0.1:9100"
//   prefix-output = false
// Durations take the one duration syntax (common/duration.h) as a string, or a number of
// seconds. A flag given on the command line replaces the file's key (lists too: they are not
// merged). Unknown keys are problems: a typo must not pass silently.
//
// Files from outside are untrusted: the config and env files must be regular files of at most
// 1 MiB, not writable by other users (and, when baton runs as root, owned by root).
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "baton/result.h"
#include "supervisor/supervisor_config.h"

namespace baton::cli {

// Everything `run` takes, as the user spelt it (checked by check_run_settings).
struct RunSettings {
  std::vector<std::string> listen;
  std::string ready = "auto";
  std::string ready_timeout = "60s";
  std::string drain_timeout = "30s";
  std::string drain_signal = "TERM";
  bool drain_signal_group = false;  // the drain signal to the generation's whole process group
  std::string drain = "watch";      // watch | signal
  int max_draining = 4;
  std::string hold_old = "0s";  // --hold-old
  int backlog = 4096;
  bool ipv6_only = false;
  std::string unix_mode = "0666";
  std::string control;
  bool adopt = false;
  std::string chdir;
  std::string env_file;
  std::vector<std::string> env;  // KEY=VALUE
  std::string user;              // USER[:GROUP]
  std::string metrics;           // ADDR for /metrics
  bool prefix_output = false;    // "[gen N] " before each app line
  std::vector<std::string> command;
};

// Setting names, as keys of the file and flags (without "--"); "command" for the positional.
using KeySet = std::set<std::string>;
const std::vector<std::string>& run_setting_keys();

// Where the settings of one `run` come from: a file (optional) and the flags given.
struct RunSource {
  std::string config_path;  // "" when no --config
  RunSettings flags;        // what the command line said...
  KeySet given;             // ...for these keys only
};

// Reads a config file into `settings` (over what is there). Problems go to `problems`, one line
// each, prefixed "FILE:LINE: " when the line is known.
void read_config_file(const std::string& path, RunSettings& settings,
                      std::vector<std::string>& problems);

// `top`'s values for `keys` replace `base`'s.
void overlay(RunSettings& base, const RunSettings& top, const KeySet& keys);

// Checks the settings `s` as `run` would use them and fills `c`; returns the problems, one line
// each (empty: all is well). Reads the env file; resolves the command (in `chdir` when it is a
// relative path), the user and group, and the adoption library; binds nothing.
std::vector<std::string> check_run_settings(const RunSettings& s, SupervisorConfig& c);

// The defaults, the file, the flags, then the check: the whole of what `run` and `check` do
// before starting anything. On problems, `out` is not to be used. When there is a config file or
// an env file, out.reload_config is settings_reader(source).
std::vector<std::string> load_run_config(const RunSource& source, SupervisorConfig& out);

// What a reload calls (SupervisorConfig::reload_config): load_run_config(source) again, its
// problems as one error. Reads nothing until called.
std::function<Result<SupervisorConfig>()> settings_reader(const RunSource& source);

// The summary `baton check` prints: one line per setting that matters.
std::vector<std::string> describe_config(const SupervisorConfig& config);

// Reads an env file: KEY=VALUE lines; blank lines and lines starting with '#' are skipped; an
// optional "export " before KEY and one pair of matching quotes around VALUE are removed. At most
// 4096 variables.
Result<std::vector<std::pair<std::string, std::string>>> read_env_file(const std::string& path);

// Parses an env file's text (the pure part of read_env_file); `source` names it in errors.
Result<std::vector<std::pair<std::string, std::string>>> parse_env_text(std::string_view text,
                                                                        const std::string& source);

}  // namespace baton::cli

// config.h: the settings of `baton run`, from its flags and a TOML file, and the one check of
// all of them together: what `baton check` prints, what `run` starts with, and what every reload
// reads again.
//
// The settings, their defaults and bounds are those of the table in common/run_settings.h; the
// file's keys are the names of run's flags without the leading dashes (docs/configuration.md):
//   listen = ["http=127.0.0.1:8080", "unix:/run/app.sock"]
//   command = ["./server", "--port", "8080"]
//   ready = "http:/healthz"          env = { LOG_LEVEL = "info" }   (or ["LOG_LEVEL=info"])
// Durations take the one duration syntax (common/duration.h) as a string, or a number of
// seconds. A flag given on the command line replaces the file's key (lists too: they are not
// merged). Unknown keys are problems: a typo must not pass silently.
//
// Files from outside are untrusted: the config and env files must be regular files of at most
// 1 MiB, not writable by other users (and, when baton runs as root, owned by root).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "baton/result.h"
#include "common/run_settings.h"
#include "supervisor/supervisor_config.h"

namespace baton::cli {

// Setting names, as keys of the file and flags (without "--"); "command" for the positional.
using KeySet = std::set<std::string>;

// Where the settings of one `run` come from: a file (optional) and the flags given.
struct RunSource {
  std::string config_path;  // "" when no --config
  RunSettings flags;        // what the command line said...
  KeySet given;             // ...for these keys only
};

// Where a config file gave each key: its line, for the problems of the check (load_run_config).
struct FileKeys {
  std::map<std::string, long> line;  // every key read, by its line (0 when unknown)
  std::set<std::string> unread;      // keys given but not read (of the wrong type): a problem each
};

// Reads a config file into `settings` (over what is there). Problems go to `problems`, one line
// each, prefixed "FILE:LINE: " when the line is known; an unknown key with the nearest known one.
// nullopt when the file could not be read or is no TOML: then every syntax error is told, and
// the problems of the keys on the lines around them, but the settings are not to be used.
std::optional<FileKeys> read_config_file(const std::string& path, RunSettings& settings,
                                         std::vector<std::string>& problems);

// `top`'s values for `keys` replace `base`'s.
void overlay(RunSettings& base, const RunSettings& top, const KeySet& keys);

// Checks the settings `s` as `run` would use them and fills `c`; returns the problems, one line
// each (empty: all is well). Reads the env file; resolves the command (in `chdir` when it is a
// relative path), the user and group, and the adoption library; binds nothing.
std::vector<std::string> check_run_settings(const RunSettings& s, SupervisorConfig& c);

// The defaults, the file, the flags, then the check: the whole of what `run` and `check` do
// before starting anything. Every problem is told: the file's, then the check's; a problem of a
// value the file gave carries the file's name and line. On problems, `out` is not to be used. When
// there is a config file or an env file, out.reload_config is settings_reader(source).
std::vector<std::string> load_run_config(const RunSource& source, SupervisorConfig& out);

// What a reload calls (SupervisorConfig::reload_config): load_run_config(source) again, its
// problems as one error. Reads nothing until called.
std::function<Result<SupervisorConfig>()> settings_reader(const RunSource& source);

// The summary `baton check` prints: one line per setting that matters.
std::vector<std::string> describe_config(const SupervisorConfig& config);

// An environment variable's name: letters, digits and '_', not starting with a digit.
bool valid_env_name(std::string_view name);

// Reads an env file: KEY=VALUE lines; blank lines and lines starting with '#' are skipped; an
// optional "export " before KEY and one pair of matching quotes around VALUE are removed. At most
// 4096 variables.
Result<std::vector<std::pair<std::string, std::string>>> read_env_file(const std::string& path);

// Parses an env file's text (the pure part of read_env_file); `source` names it in errors.
Result<std::vector<std::pair<std::string, std::string>>> parse_env_text(std::string_view text,
                                                                        const std::string& source);

}  // namespace baton::cli

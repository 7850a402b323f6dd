#include "supervisor/upgrade_settings.h"

#include <signal.h>

#include <utility>

#include <fmt/format.h>

#include "common/listen_fds.h"
#include "supervisor/checked_json.h"

namespace baton {
namespace {

using json = nlohmann::json;
using namespace checked;

constexpr std::int64_t kMaxDurationMs = 24LL * 3600 * 1000;  // what config.cc accepts
constexpr std::int64_t kMaxHoldMs = 3600LL * 1000;
constexpr std::int64_t kMaxId = 0xfffffffeLL;  // uid_t and gid_t; (uid_t)-1 means "none"

// The delay is carried in milliseconds (ReadinessSpec::to_string() rounds it); the rest is
// checked as `--ready` is.
ReadinessSpec decode_readiness(const json& j) {
  const std::string kind = text(j, "kind");
  const std::string argument = c_text(j, "argument");
  const auto delay = std::chrono::milliseconds(integer(j, "delay_ms", 0, kMaxDurationMs));
  if (kind == ReadinessSpec::kind_name(ReadinessSpec::Kind::kDelay)) {
    if (!argument.empty()) throw Bad{"readiness delay takes no argument"};
    ReadinessSpec spec;
    spec.kind = ReadinessSpec::Kind::kDelay;
    spec.delay = delay;
    return spec;
  }
  auto spec = parse_readiness(argument.empty() ? kind : kind + ":" + argument);
  if (!spec) throw Bad{"readiness: " + spec.error().what()};
  return *spec;
}

std::vector<std::string> decode_strings(const json& j, const char* key, size_t max) {
  std::vector<std::string> out;
  for (const auto& v : array(j, key, max)) {
    if (!v.is_string() || v.get<std::string>().find('\0') != std::string::npos) {
      throw Bad{fmt::format("\"{}\" holds something other than a string", key)};
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::optional<RunAs> decode_user(const json& j) {
  const json& u = field(j, "user");
  if (u.is_null()) return std::nullopt;
  RunAs r;
  r.uid = static_cast<uid_t>(integer(u, "uid", 0, kMaxId));
  r.gid = static_cast<gid_t>(integer(u, "gid", 0, kMaxId));
  r.name = c_text(u, "name");
  for (const auto& g : array(u, "groups", kMaxCarriedGroups)) {
    if (!g.is_number_unsigned() || g.get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxId)) {
      throw Bad{"a supplementary group is not a group id"};
    }
    r.groups.push_back(static_cast<gid_t>(g.get<std::uint64_t>()));
  }
  return r;
}

}  // namespace

json encode_run_settings(const CarriedSettings& settings) {
  const SupervisorConfig& c = settings.config;
  json listens = json::array();
  for (const auto& l : c.listens) {
    listens.push_back({{"name", l.name}, {"address", l.address.to_string()}});
  }
  json user = nullptr;
  if (c.run_as) {
    user = {{"uid", c.run_as->uid},
            {"gid", c.run_as->gid},
            {"name", c.run_as->name},
            {"groups", c.run_as->groups}};
  }
  const CoreOptions& o = c.core;
  return {{"listen", listens},
          {"backlog", c.bind.backlog},
          {"ipv6_only", c.bind.ipv6_only},
          {"unix_mode", c.bind.unix_mode},
          {"command", c.command},
          {"chdir", c.working_dir},
          {"env", c.env},
          {"readiness",
           {{"kind", ReadinessSpec::kind_name(c.readiness.kind)},
            {"argument", c.readiness.argument},
            {"delay_ms", c.readiness.delay.count()}}},
          {"ready_timeout_ms", o.ready_timeout.count()},
          {"drain_timeout_ms", o.drain_timeout.count()},
          {"drain_signal", o.drain_signal},
          {"drain_signal_group", o.drain_signal_group},
          {"drain", o.drain_mode == DrainMode::kSignal ? "signal" : "watch"},
          {"max_draining", o.max_draining},
          {"hold_old_ms", o.hold_old.count()},
          {"adopt_library", c.adopt_library},
          {"user", user},
          {"config", c.config_file},
          {"prefix_output", c.prefix_output},
          {"reread_at_reload", settings.reread_at_reload}};
}

CarriedSettings decode_run_settings(const json& j) {
  CarriedSettings out;
  SupervisorConfig& c = out.config;
  for (const auto& l : array(j, "listen", kMaxListeners)) {
    ListenSpec spec;
    spec.name = c_text(l, "name");
    if (!spec.name.empty() && !valid_listener_name(spec.name)) {
      throw Bad{fmt::format("listener name '{}' is not valid", spec.name)};
    }
    auto address = parse_address(c_text(l, "address"));
    if (!address) throw Bad{"a listen address does not parse"};
    spec.address = *address;
    c.listens.push_back(std::move(spec));
  }
  c.bind.backlog = small(j, "backlog", 1, 1 << 20);
  c.bind.ipv6_only = flag(j, "ipv6_only");
  c.bind.unix_mode = static_cast<mode_t>(small(j, "unix_mode", 0, 0777));
  c.command = decode_strings(j, "command", kMaxCarriedArgs);
  if (c.command.empty() || c.command[0].empty()) throw Bad{"the command is empty"};
  c.working_dir = c_text(j, "chdir");
  if (!c.working_dir.empty() && c.working_dir.front() != '/') {
    throw Bad{"the working directory is not an absolute path"};
  }
  const json& env = field(j, "env");
  if (!env.is_object() || env.size() > kMaxCarriedEnv) throw Bad{"\"env\" is not a short object"};
  for (auto it = env.begin(); it != env.end(); ++it) {
    const std::string& name = it.key();
    const json& value = it.value();
    if (name.empty() || name.find_first_of(std::string("=\0", 2)) != std::string::npos ||
        !value.is_string() || value.get<std::string>().find('\0') != std::string::npos) {
      throw Bad{"an environment variable is not NAME=VALUE"};
    }
    c.env[name] = value.get<std::string>();
  }
  c.readiness = decode_readiness(field(j, "readiness"));
  CoreOptions& o = c.core;
  o.ready_timeout = Duration(integer(j, "ready_timeout_ms", 1, kMaxDurationMs));
  o.drain_timeout = Duration(integer(j, "drain_timeout_ms", 0, kMaxDurationMs));
  o.drain_signal = small(j, "drain_signal", 1, NSIG - 1);
  o.drain_signal_group = flag(j, "drain_signal_group");
  const std::string drain = text(j, "drain");
  if (drain != "watch" && drain != "signal") throw Bad{"\"drain\" is neither watch nor signal"};
  o.drain_mode = drain == "signal" ? DrainMode::kSignal : DrainMode::kWatch;
  o.max_draining = small(j, "max_draining", 1, 64);
  o.hold_old = Duration(integer(j, "hold_old_ms", 0, kMaxHoldMs));
  o.readiness = c.readiness.to_string();
  c.adopt_library = c_text(j, "adopt_library");
  c.run_as = decode_user(j);
  c.config_file = c_text(j, "config");
  c.prefix_output = flag(j, "prefix_output");
  out.reread_at_reload = flag(j, "reread_at_reload");
  return out;
}

SettingsDifference settings_difference(const CarriedSettings& running,
                                       const CarriedSettings& file) {
  // The encoder's keys by the config file's names; a key not listed is told by its own.
  static constexpr std::pair<const char*, const char*> kNames[] = {
      {"ipv6_only", "ipv6-only"},
      {"unix_mode", "unix-mode"},
      {"readiness", "ready"},
      {"ready_timeout_ms", "ready-timeout"},
      {"drain_timeout_ms", "drain-timeout"},
      {"drain_signal", "drain-signal"},
      {"drain_signal_group", "drain-signal-group"},
      {"max_draining", "max-draining"},
      {"hold_old_ms", "hold-old"},
      {"adopt_library", "adopt"},
      {"prefix_output", "prefix-output"}};
  // What a reload would make of the running settings: a difference it removes is the reload's.
  CarriedSettings reloaded = running;
  take_reloadable(file.config, reloaded.config, reloaded.config.core);
  const json now = encode_run_settings(running);
  const json after_reload = encode_run_settings(reloaded);
  const json wanted = encode_run_settings(file);
  SettingsDifference out;
  for (const auto& [key, value] : now.items()) {
    // "config" and "reread_at_reload" say where settings come from, not what they are.
    if (key == "config" || key == "reread_at_reload" || value == wanted.value(key, json())) {
      continue;
    }
    std::string name = key;
    for (const auto& [k, n] : kNames) {
      if (key == k) name = n;
    }
    (value != after_reload.value(key, json()) ? out.reload_applies : out.restart_applies)
        .push_back(std::move(name));
  }
  return out;
}

}  // namespace baton

#include "supervisor/upgrade_settings.h"

#include <signal.h>

#include <utility>

#include <fmt/format.h>

#include "common/listen_fds.h"
#include "common/run_settings.h"
#include "supervisor/checked_json.h"

namespace baton {
namespace {

using json = nlohmann::json;
using namespace checked;

constexpr std::int64_t kMaxDurationMs = 24LL * 3600 * 1000;  // a readiness delay's
constexpr std::int64_t kMaxId = 0xfffffffeLL;  // uid_t and gid_t; (uid_t)-1 means "none"

// A setting's key in the state, and a number of it within its bounds, from the table of
// common/run_settings.h: what a successor accepts is what a start accepts.
std::string key(std::string_view name) { return std::string(run_setting(name).state_key); }

std::int64_t bounded(const json& j, std::string_view name) {
  const RunSetting& setting = run_setting(name);
  return integer(j, key(name).c_str(), setting.min, setting.max);
}

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
  const json& u = field(j, key("user").c_str());
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
  json out = {{"config", c.config_file}, {"reread_at_reload", settings.reread_at_reload}};
  out[key("listen")] = listens;
  out[key("backlog")] = c.bind.backlog;
  out[key("ipv6-only")] = c.bind.ipv6_only;
  out[key("unix-mode")] = c.bind.unix_mode;
  out[key("command")] = c.command;
  out[key("chdir")] = c.working_dir;
  out[key("env")] = c.env;
  out[key("ready")] = {{"kind", ReadinessSpec::kind_name(c.readiness.kind)},
                       {"argument", c.readiness.argument},
                       {"delay_ms", c.readiness.delay.count()}};
  out[key("ready-timeout")] = o.ready_timeout.count();
  out[key("drain-timeout")] = o.drain_timeout.count();
  out[key("drain-signal")] = o.drain_signal;
  out[key("drain-signal-group")] = o.drain_signal_group;
  out[key("drain")] = o.drain_mode == DrainMode::kSignal ? "signal" : "watch";
  out[key("max-draining")] = o.max_draining;
  out[key("hold-old")] = o.hold_old.count();
  out[key("adopt")] = c.adopt_library;
  out[key("user")] = user;
  out[key("prefix-output")] = c.prefix_output;
  return out;
}

CarriedSettings decode_run_settings(const json& j) {
  CarriedSettings out;
  SupervisorConfig& c = out.config;
  for (const auto& l : array(j, key("listen").c_str(), kMaxListeners)) {
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
  c.bind.backlog = static_cast<int>(bounded(j, "backlog"));
  c.bind.ipv6_only = flag(j, key("ipv6-only").c_str());
  c.bind.unix_mode = static_cast<mode_t>(bounded(j, "unix-mode"));
  c.command = decode_strings(j, key("command").c_str(), kMaxCarriedArgs);
  if (c.command.empty() || c.command[0].empty()) throw Bad{"the command is empty"};
  c.working_dir = c_text(j, key("chdir").c_str());
  if (!c.working_dir.empty() && c.working_dir.front() != '/') {
    throw Bad{"the working directory is not an absolute path"};
  }
  const json& env = field(j, key("env").c_str());
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
  c.readiness = decode_readiness(field(j, key("ready").c_str()));
  CoreOptions& o = c.core;
  o.ready_timeout = Duration(bounded(j, "ready-timeout"));
  o.drain_timeout = Duration(bounded(j, "drain-timeout"));
  o.drain_signal = static_cast<int>(bounded(j, "drain-signal"));
  o.drain_signal_group = flag(j, key("drain-signal-group").c_str());
  const std::string drain = text(j, key("drain").c_str());
  if (drain != "watch" && drain != "signal") throw Bad{"\"drain\" is neither watch nor signal"};
  o.drain_mode = drain == "signal" ? DrainMode::kSignal : DrainMode::kWatch;
  o.max_draining = static_cast<int>(bounded(j, "max-draining"));
  o.hold_old = Duration(bounded(j, "hold-old"));
  o.readiness = c.readiness.to_string();
  c.adopt_library = c_text(j, key("adopt").c_str());
  c.run_as = decode_user(j);
  c.config_file = c_text(j, "config");
  c.prefix_output = flag(j, key("prefix-output").c_str());
  out.reread_at_reload = flag(j, "reread_at_reload");
  return out;
}

SettingsDifference settings_difference(const CarriedSettings& running,
                                       const CarriedSettings& file) {
  // What a reload would make of the running settings: a difference it removes is the reload's.
  CarriedSettings reloaded = running;
  take_reloadable(file.config, reloaded.config, reloaded.config.core);
  const json now = encode_run_settings(running);
  const json after_reload = encode_run_settings(reloaded);
  const json wanted = encode_run_settings(file);
  SettingsDifference out;
  for (const auto& [state_key, value] : now.items()) {
    // "config" and "reread_at_reload" say where settings come from, not what they are.
    if (state_key == "config" || state_key == "reread_at_reload" ||
        value == wanted.value(state_key, json())) {
      continue;
    }
    const RunSetting* setting = run_setting_by_state_key(state_key);
    std::string name = setting != nullptr ? std::string(setting->name) : state_key;
    (value != after_reload.value(state_key, json()) ? out.reload_applies : out.restart_applies)
        .push_back(std::move(name));
  }
  return out;
}

}  // namespace baton

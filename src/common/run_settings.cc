#include "common/run_settings.h"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <type_traits>

namespace baton {
namespace {

using Kind = RunSetting::Kind;
constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;
constexpr std::int64_t kHourMs = 3600LL * 1000;

}  // namespace

// A function's static, not a global: RunSettings' constructor reads it, whenever it runs.
const std::vector<RunSetting>& run_settings() {
  // clang-format off
  static const std::vector<RunSetting> kSettings = {
      {.name = "listen", .kind = Kind::kList, .field = &RunSettings::listen,
       .value_name = "[NAME=]ADDRESS", .state_key = "listen",
       .help = "[NAME=]ADDRESS to listen on, repeatable: 8080, 127.0.0.1:8080, [::1]:8080, "
               "unix:/path, udp:HOST:PORT"},
      {.name = "ready", .kind = Kind::kText, .field = &RunSettings::ready, .default_value = "auto",
       .value_name = "SPEC", .reload_applies = true, .state_key = "readiness",
       .help = "how a new generation proves it is ready: auto (an app that speaks sd_notify: "
               "READY=1 and accepting baton's probe connection on its own socket; else the "
               "accept), notify "
               "(READY=1 on NOTIFY_SOCKET), accept (accepting baton's probe connection), http:PATH "
               "(2xx from that generation), exec:CMD (exits 0), delay:DURATION (alive that long; "
               "weakest)"},
      {.name = "ready-timeout", .kind = Kind::kDuration, .field = &RunSettings::ready_timeout,
       .default_value = "60s", .value_name = "DURATION", .min = 1, .max = kDayMs,
       .reload_applies = true, .state_key = "ready_timeout_ms",
       .help = "how long a new generation has to prove it is ready (30s, 2m, 500ms, plain "
               "seconds), else the reload fails and it is drained and stopped"},
      {.name = "drain-timeout", .kind = Kind::kDuration, .field = &RunSettings::drain_timeout,
       .default_value = "30s", .value_name = "DURATION", .min = 0, .max = kDayMs,
       .reload_applies = true, .state_key = "drain_timeout_ms",
       .help = "how long an old generation has to finish, counted from the switch (watch and "
               "drain signal together), then its process group is killed"},
      {.name = "drain-signal", .kind = Kind::kText, .field = &RunSettings::drain_signal,
       .default_value = "TERM", .value_name = "SIGNAL", .min = 1, .max = NSIG - 1,
       .state_key = "drain_signal", .help = "signal that tells an old generation to drain"},
      {.name = "drain-signal-group", .kind = Kind::kSwitch,
       .field = &RunSettings::drain_signal_group, .default_value = "false",
       .state_key = "drain_signal_group",
       .help = "send the drain signal to the generation's whole process group, not only its main "
               "process: for a wrapper (a shell script without exec) that runs the server as its "
               "child. The group is then waited for until it is empty"},
      {.name = "drain", .kind = Kind::kText, .field = &RunSettings::drain, .default_value = "watch",
       .value_name = "MODE", .state_key = "drain",
       .help = "how an old generation drains after the switch. watch: baton watches it from "
               "outside (accept queue, connections from /proc and sock_diag), closes its idle "
               "keep-alive connections, and sends the drain signal only once it holds nothing, for "
               "apps that die on SIGTERM; a generation whose listeners are shared with the new one "
               "cannot be watched and is signalled at once. signal: the drain signal at once, for "
               "apps that drain well themselves. --drain-timeout bounds both"},
      {.name = "hold-old", .kind = Kind::kDuration, .field = &RunSettings::hold_old,
       .default_value = "0s", .value_name = "DURATION", .min = 0, .max = kHourMs,
       .state_key = "hold_old_ms",
       .help = "how long the replaced generation is held after the switch: no new connection, no "
               "signal; if the new generation exits meanwhile, new connections go back to the old "
               "one at once and the reload fails (reload --wait exits 1). 0s: no hold"},
      {.name = "max-draining", .kind = Kind::kInteger, .field = &RunSettings::max_draining,
       .default_value = "4", .value_name = "N", .min = 1, .max = 64, .state_key = "max_draining",
       .help = "reloads are refused while this many old generations still drain (1-64)"},
      {.name = "backlog", .kind = Kind::kInteger, .field = &RunSettings::backlog,
       .default_value = "4096", .value_name = "N", .min = 1, .max = 1 << 20,
       .state_key = "backlog", .help = "listen(2) backlog of stream listeners"},
      {.name = "ipv6-only", .kind = Kind::kSwitch, .field = &RunSettings::ipv6_only,
       .default_value = "false", .state_key = "ipv6_only",
       .help = "set IPV6_V6ONLY: [::] listeners take IPv6 only (default: IPv4 too)"},
      {.name = "unix-mode", .kind = Kind::kText, .field = &RunSettings::unix_mode,
       .default_value = "0666", .value_name = "MODE", .min = 0, .max = 0777,
       .state_key = "unix_mode", .help = "permissions of unix socket listeners"},
      {.name = "control", .kind = Kind::kText, .field = &RunSettings::control,
       .value_name = "PATH",
       .help = "control socket path (default: $BATON_CONTROL, else "
               "$RUNTIME_DIRECTORY/control.sock, else /run/baton/control.sock for root, else "
               "$XDG_RUNTIME_DIR/baton/control.sock, else /tmp/baton-UID/control.sock)"},
      {.name = "adopt", .kind = Kind::kSwitch, .field = &RunSettings::adopt,
       .default_value = "false", .state_key = "adopt_library",
       .help = "for apps that bind their port themselves: preload libbaton_adopt.so so their "
               "bind() of a --listen address takes baton's socket instead"},
      {.name = "chdir", .kind = Kind::kText, .field = &RunSettings::chdir, .value_name = "DIR",
       .reload_applies = true, .state_key = "chdir",
       .help = "absolute directory each generation starts in, looked up again at each spawn (so a "
               "flipped current -> releases/N link takes the next reload there)"},
      // Not carried by itself: the upgrade state carries the environment it made ("env").
      {.name = "env-file", .kind = Kind::kText, .field = &RunSettings::env_file,
       .value_name = "FILE", .reload_applies = true,
       .help = "NAME=VALUE lines added to each generation's environment, read again at each "
               "reload"},
      {.name = "env", .kind = Kind::kEnv, .field = &RunSettings::env, .value_name = "NAME=VALUE",
       .reload_applies = true, .state_key = "env",
       .help = "NAME=VALUE added to each generation's environment, repeatable"},
      {.name = "user", .kind = Kind::kText, .field = &RunSettings::user,
       .value_name = "USER[:GROUP]", .state_key = "user",
       .help = "run generations as USER[:GROUP]; baton binds the listeners (privileged ports too) "
               "first, as root"},
      {.name = "metrics", .kind = Kind::kText, .field = &RunSettings::metrics,
       .value_name = "ADDRESS",
       .help = "serve Prometheus metrics at http://ADDRESS/metrics (e.g. 127.0.0.1:9100)"},
      {.name = "prefix-output", .kind = Kind::kSwitch, .field = &RunSettings::prefix_output,
       .default_value = "false", .reload_applies = true, .state_key = "prefix_output",
       .help = "start each line the app writes with its generation, \"[gen 3] \" (baton's own "
               "lines carry a time, or a journal priority, and a level either way)"},
      {.name = "command", .kind = Kind::kCommand, .field = &RunSettings::command,
       .value_name = "-- COMMAND [ARGS...]", .reload_applies = true, .state_key = "command",
       .help = "the server to run, after --"},
  };
  // clang-format on
  return kSettings;
}

namespace {

// A default as the member's type holds it. The table is the program's own: a default that does
// not parse is a programming error, caught by any test that makes a RunSettings.
void set_default(RunSettings& s, const RunSetting& setting) {
  const std::string text(setting.default_value);
  std::visit(
      [&](auto member) {
        using T = std::remove_reference_t<decltype(s.*member)>;
        if constexpr (std::is_same_v<T, std::string>) {
          s.*member = text;
        } else if constexpr (std::is_same_v<T, bool>) {
          if (text != "false" && text != "true") std::abort();
          s.*member = text == "true";
        } else if constexpr (std::is_same_v<T, int>) {
          char* end = nullptr;
          s.*member = static_cast<int>(std::strtol(text.c_str(), &end, 10));
          if (text.empty() || *end != '\0') std::abort();
        } else {
          if (!text.empty()) std::abort();
          s.*member = {};
        }
      },
      setting.field);
}

}  // namespace

RunSettings::RunSettings() {
  for (const auto& setting : run_settings()) set_default(*this, setting);
}

const RunSetting& run_setting(std::string_view name) {
  for (const auto& s : run_settings()) {
    if (s.name == name) return s;
  }
  std::fprintf(stderr, "baton: no run setting '%.*s'\n", static_cast<int>(name.size()),
               name.data());
  std::abort();
}

const RunSetting* run_setting_by_state_key(std::string_view key) {
  for (const auto& s : run_settings()) {
    if (!s.state_key.empty() && s.state_key == key) return &s;
  }
  return nullptr;
}

}  // namespace baton

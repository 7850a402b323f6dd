// check_run_settings (config.h): every setting of `run` checked as run will use it, with the
// bounds of the table (common/run_settings.h), into the supervisor's config.
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "adopt/check.h"
#include "cli/config.h"
#include "common/duration.h"
#include "supervisor/control_protocol.h"
#include "supervisor/spawner.h"
#include "supervisor/steering_group.h"

namespace baton::cli {
namespace {

constexpr size_t kMaxUserGroups = 256;

using Problems = std::vector<std::string>;

// A duration setting, within the table's bounds; nullopt after a problem.
std::optional<std::chrono::milliseconds> checked_duration(const RunSettings& s,
                                                          std::string_view name,
                                                          Problems& problems) {
  const RunSetting& setting = run_setting(name);
  const std::string& text = s.*std::get<std::string RunSettings::*>(setting.field);
  auto d = parse_duration_ms(text, /*allow_zero=*/setting.min == 0);
  if (!d) {
    problems.push_back(fmt::format("{}: {}", name, d.error().what()));
    return std::nullopt;
  }
  if (d->count() > setting.max) {
    problems.push_back(fmt::format("{}: at most {}", name,
                                   duration_to_string(std::chrono::milliseconds(setting.max))));
    return std::nullopt;
  }
  return *d;
}

// An integer setting, within the table's bounds (the value is kept either way).
int checked_integer(const RunSettings& s, std::string_view name, Problems& problems) {
  const RunSetting& setting = run_setting(name);
  const int value = s.*std::get<int RunSettings::*>(setting.field);
  if (value < setting.min || value > setting.max) {
    problems.push_back(
        fmt::format("{}: {} is not in {}..{}", name, value, setting.min, setting.max));
  }
  return value;
}

Result<int> parse_signal(std::string name) {
  const std::string given = name;
  if (name.starts_with("SIG")) name = name.substr(3);
  for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const RunSetting& setting = run_setting("drain-signal");
  for (auto sig = setting.min; sig <= setting.max; ++sig) {
    const char* abbrev = sigabbrev_np(static_cast<int>(sig));
    if (abbrev != nullptr && name == abbrev) return static_cast<int>(sig);
  }
  char* end = nullptr;
  long n = std::strtol(name.c_str(), &end, 10);
  if (!name.empty() && *end == '\0' && n >= setting.min && n <= setting.max) {
    return static_cast<int>(n);
  }
  return Error(
      fmt::format("drain-signal: bad signal '{}': use a name such as TERM, QUIT, USR2", given));
}

// The preload library of `--adopt`: $BATON_ADOPT_LIBRARY, else next to this binary as installed
// (bin/../lib/<multiarch>/baton/) or as built (build/bin/../lib/...).
Result<std::string> find_adopt_library() {
  if (const char* env = std::getenv("BATON_ADOPT_LIBRARY"); env != nullptr && *env != '\0') {
    if (::access(env, R_OK) != 0)
      return Error::from_errno(fmt::format("BATON_ADOPT_LIBRARY={}", env));
    return std::string(env);
  }
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto candidate = exe.parent_path().parent_path() / BATON_ADOPT_RELATIVE_PATH;
    if (std::filesystem::exists(candidate, ec)) return candidate.lexically_normal().string();
  }
  return Error(
      fmt::format("adopt: libbaton_adopt.so not found next to baton ({}); set "
                  "BATON_ADOPT_LIBRARY",
                  BATON_ADOPT_RELATIVE_PATH));
}

// USER[:GROUP], by name or number. The generation gets the user's supplementary groups too.
Result<RunAs> resolve_user(const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string user = spec.substr(0, colon);
  const std::string group = colon == std::string::npos ? "" : spec.substr(colon + 1);
  RunAs r;
  if (user.empty() || (colon != std::string::npos && group.empty())) {
    return Error(fmt::format("user: bad '{}': USER or USER:GROUP", spec));
  }
  // A name, or else a number that fits an id (never thrown on: this is outside input).
  auto id_of = [](const std::string& text) -> std::optional<unsigned> {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
  };
  const passwd* pw = ::getpwnam(user.c_str());
  if (pw == nullptr && id_of(user)) pw = ::getpwuid(static_cast<uid_t>(*id_of(user)));
  if (pw == nullptr) return Error(fmt::format("user: no such user '{}'", user));
  r.uid = pw->pw_uid;
  r.gid = pw->pw_gid;
  r.name = pw->pw_name;
  if (!group.empty()) {
    const struct group* gr = ::getgrnam(group.c_str());
    if (gr == nullptr && id_of(group)) gr = ::getgrgid(static_cast<gid_t>(*id_of(group)));
    if (gr == nullptr) return Error(fmt::format("user: no such group '{}'", group));
    r.gid = gr->gr_gid;
  }
  int n = static_cast<int>(kMaxUserGroups);
  std::vector<gid_t> groups(kMaxUserGroups);
  if (::getgrouplist(r.name.c_str(), r.gid, groups.data(), &n) < 0) n = 0;
  groups.resize(static_cast<size_t>(n));
  if (groups.empty()) groups.push_back(r.gid);
  r.groups = std::move(groups);
  if (::geteuid() != 0 && (r.uid != ::geteuid() || r.gid != ::getegid())) {
    return Error(
        fmt::format("user: running generations as '{}' needs baton to start as root", spec));
  }
  return r;
}

void check_listeners(const RunSettings& s, SupervisorConfig& c, Problems& problems) {
  if (s.listen.empty())
    problems.emplace_back("listen: give at least one address, e.g. --listen 8080");
  // kMaxListeners (common/listen_fds.h) caps what a generation receives; one is kept for the http
  // readiness listener.
  if (s.listen.size() >= static_cast<size_t>(kMaxListeners)) {
    problems.push_back(fmt::format("listen: at most {}", kMaxListeners - 1));
  }
  for (const auto& text : s.listen) {
    auto spec = parse_listen_spec(text);
    if (!spec) {
      problems.push_back("listen: " + spec.error().what());
      continue;
    }
    for (const auto& other : c.listens) {
      if (!spec->name.empty() && other.name == spec->name) {
        problems.push_back(fmt::format("listen: name '{}' given twice", spec->name));
      }
    }
    c.listens.push_back(std::move(spec).value());
  }
}

// chdir and command: a relative command is found in the working directory.
void check_command(const RunSettings& s, SupervisorConfig& c, Problems& problems) {
  if (!s.chdir.empty()) {
    struct stat st {};
    if (s.chdir.front() != '/')
      problems.push_back(fmt::format("chdir: '{}' is not an absolute path", s.chdir));
    else if (::stat(s.chdir.c_str(), &st) != 0)
      problems.push_back(Error::from_errno("chdir: " + s.chdir).what());
    else if (!S_ISDIR(st.st_mode))
      problems.push_back(fmt::format("chdir: {} is not a directory", s.chdir));
    c.working_dir = s.chdir;
  }
  if (s.command.empty()) {
    problems.emplace_back("command: missing the command to run: baton run [options] -- COMMAND");
  } else if (!c.working_dir.empty() && s.command[0].find('/') != std::string::npos &&
             s.command[0].front() != '/') {
    // Relative to the working directory, looked up again at each spawn (a release flip moves it).
    auto resolved = resolve_command(c.working_dir + "/" + s.command[0]);
    if (!resolved) problems.push_back("command: " + resolved.error().what());
    c.command = s.command;
  } else {
    auto resolved = resolve_command(s.command[0]);
    if (!resolved) problems.push_back("command: " + resolved.error().what());
    c.command = s.command;
    if (resolved) c.command[0] = *resolved;
  }
}

// A generation's way in and out: readiness, the timeouts, the drain, the hold.
void check_lifecycle(const RunSettings& s, SupervisorConfig& c, Problems& problems) {
  auto readiness = parse_readiness(s.ready);
  if (!readiness)
    problems.push_back(readiness.error().what());
  else
    c.readiness = *readiness;
  if (auto d = checked_duration(s, "ready-timeout", problems)) c.core.ready_timeout = *d;
  if (auto d = checked_duration(s, "drain-timeout", problems)) c.core.drain_timeout = *d;
  auto signal = parse_signal(s.drain_signal);
  if (!signal)
    problems.push_back(signal.error().what());
  else
    c.core.drain_signal = *signal;
  if (s.drain != "watch" && s.drain != "signal") {
    problems.push_back(fmt::format("drain: bad mode '{}': use watch or signal", s.drain));
  }
  c.core.drain_mode = s.drain == "signal" ? DrainMode::kSignal : DrainMode::kWatch;
  c.core.drain_signal_group = s.drain_signal_group;
  c.core.max_draining = checked_integer(s, "max-draining", problems);
  if (auto hold_old = checked_duration(s, "hold-old", problems)) {
    if (hold_old->count() > 0 &&
        std::none_of(c.listens.begin(), c.listens.end(),
                     [](const ListenSpec& l) { return steerable(l.address); })) {
      problems.emplace_back(
          "hold-old needs a TCP or UDP listener: unix listeners are shared, so new "
          "connections cannot be kept from the old generation or sent back to it");
    } else {
      c.core.hold_old = *hold_old;
    }
  }
  c.core.readiness = c.readiness.to_string();
}

// The sockets baton binds: listeners' options, and its own control socket.
void check_sockets(const RunSettings& s, SupervisorConfig& c, Problems& problems) {
  c.bind.backlog = checked_integer(s, "backlog", problems);
  c.bind.ipv6_only = s.ipv6_only;
  char* end = nullptr;
  long mode = std::strtol(s.unix_mode.c_str(), &end, 8);
  if (s.unix_mode.empty() || *end != '\0' || mode < run_setting("unix-mode").min ||
      mode > run_setting("unix-mode").max) {
    problems.push_back(
        fmt::format("unix-mode: bad mode '{}': an octal mode such as 0660", s.unix_mode));
  }
  c.bind.unix_mode = static_cast<mode_t>(mode);

  c.control_path = s.control.empty() ? default_control_path() : s.control;
  // The notify socket's path is the control path plus ".notify": both must fit in sun_path.
  if (c.control_path.size() + 7 >= sizeof(sockaddr_un::sun_path)) {
    problems.push_back(fmt::format("control: path too long for a unix socket ({} bytes): {}",
                                   c.control_path.size(), c.control_path));
  }
}

void check_environment(const RunSettings& s, SupervisorConfig& c, Problems& problems) {
  for (const auto& kv : s.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || !valid_env_name(kv.substr(0, eq))) {
      problems.push_back(fmt::format("env: '{}' is not NAME=VALUE", escape_control_chars(kv)));
      continue;
    }
    if (kv.find('\0') != std::string::npos) {  // the environment would cut the value there
      problems.push_back(fmt::format("env: {}: a value cannot hold a NUL byte", kv.substr(0, eq)));
      continue;
    }
    c.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (!s.env_file.empty()) {
    auto vars = read_env_file(s.env_file);
    if (!vars) {
      problems.push_back("env-file: " + vars.error().what());
    } else {
      // Explicit env settings win over the file's.
      for (auto& [k, v] : *vars) c.env.emplace(k, v);
    }
  }
  c.prefix_output = s.prefix_output;
}

// Who the generations run as, what serves baton's metrics, and what is preloaded into them.
void check_user_metrics_adopt(const RunSettings& s, SupervisorConfig& c, Problems& problems) {
  if (!s.user.empty()) {
    auto as = resolve_user(s.user);
    if (!as)
      problems.push_back(as.error().what());
    else
      c.run_as = *as;
  }
  if (!s.metrics.empty()) {
    // A bare port is loopback's: the counters name the app's listeners and generations, and
    // serving them on every interface must be asked for (0.0.0.0:PORT).
    const bool bare_port = s.metrics.find_first_not_of("0123456789") == std::string::npos;
    auto addr = parse_address(bare_port ? "127.0.0.1:" + s.metrics : s.metrics);
    if (!addr || addr->transport != Transport::kTcp) {
      problems.push_back(fmt::format(
          "metrics: bad address '{}': a TCP address such as 127.0.0.1:9100", s.metrics));
    } else {
      c.metrics = *addr;
    }
  }
  if (s.adopt) {
    auto lib = find_adopt_library();
    if (!lib)
      problems.push_back(lib.error().what());
    else if (auto st = adopt::check_adopt_library(*lib); !st)
      problems.push_back("adopt: " + st.error().what());
    else
      c.adopt_library = *lib;
    if (!c.command.empty() && c.command[0].front() == '/') {
      if (auto st = adopt::check_adoptable(c.command[0]); !st)
        problems.push_back("adopt: " + st.error().what());
    }
  }
}

}  // namespace

std::vector<std::string> check_run_settings(const RunSettings& s, SupervisorConfig& c) {
  Problems problems;
  check_listeners(s, c, problems);
  check_command(s, c, problems);
  check_lifecycle(s, c, problems);
  check_sockets(s, c, problems);
  check_environment(s, c, problems);
  check_user_metrics_adopt(s, c, problems);
  return problems;
}

}  // namespace baton::cli

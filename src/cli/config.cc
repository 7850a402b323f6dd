#include "cli/config.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "adopt/check.h"
#include "baton/fd.h"
#include "common/duration.h"
#include "common/syscall.h"
#include "supervisor/control_protocol.h"
#include "supervisor/spawner.h"
#include "supervisor/steering_group.h"

namespace baton::cli {
namespace {

constexpr off_t kMaxFileBytes = 1 << 20;
constexpr size_t kMaxEnvVars = 4096;
constexpr size_t kMaxUserGroups = 256;

// A file from outside that decides what runs: a regular file of bounded size that no other user
// could have written. The checks and the read are on one open descriptor, so the file checked is
// the file read (a symlink, as Kubernetes mounts a ConfigMap, is followed once, at open).
Result<std::string> read_trusted_file(const std::string& path, const char* what) {
  const std::string name = fmt::format("{} {}", what, path);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return Error::from_errno(name);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::from_errno(name);
  if (!S_ISREG(st.st_mode)) return Error(name + ": not a regular file");
  if (st.st_size > kMaxFileBytes)
    return Error(fmt::format("{}: larger than {} bytes", name, kMaxFileBytes));
  if ((st.st_mode & S_IWOTH) != 0 || (::geteuid() == 0 && (st.st_mode & S_IWGRP) != 0)) {
    return Error(fmt::format("{}: writable by other users (mode {:04o}); chmod go-w it", name,
                             st.st_mode & 07777));
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return Error(
        fmt::format("{}: owned by uid {}, neither baton's user nor root", name, st.st_uid));
  }
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = retry_eintr(::read, fd.get(), buf, sizeof(buf));
    if (n < 0) return Error::from_errno("read " + name);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > static_cast<size_t>(kMaxFileBytes)) {
      return Error(fmt::format("{}: larger than {} bytes", name, kMaxFileBytes));
    }
  }
  return text;
}

Result<int> parse_signal(std::string name) {
  const std::string given = name;
  if (name.starts_with("SIG")) name = name.substr(3);
  for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = sigabbrev_np(sig);
    if (abbrev != nullptr && name == abbrev) return sig;
  }
  char* end = nullptr;
  long n = std::strtol(name.c_str(), &end, 10);
  if (!name.empty() && *end == '\0' && n > 0 && n < NSIG) return static_cast<int>(n);
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

bool valid_env_name(std::string_view name) {
  if (name.empty() || name.size() > 256 || std::isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
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

// ---- the file ----

std::string where(const std::string& path, const toml::node& node) {
  const auto line = node.source().begin.line;
  return line > 0 ? fmt::format("{}:{}: ", path, line) : path + ": ";
}

// Reads one key's value into the field it names; false (with a problem) on a type mismatch.
class KeyReader {
 public:
  KeyReader(const std::string& path, std::vector<std::string>& problems)
      : path_(path), problems_(problems) {}

  void text(const std::string& key, const toml::node& v, std::string& out) {
    if (auto s = v.value<std::string>())
      out = *s;
    else
      wrong(key, v, "a string");
  }
  void duration(const std::string& key, const toml::node& v, std::string& out) {
    if (auto s = v.value<std::string>())
      out = *s;
    else if (v.is_integer())
      out = std::to_string(v.value<int64_t>().value_or(0));
    else if (v.is_floating_point())
      out = fmt::format("{}", v.value<double>().value_or(0));
    else
      wrong(key, v, "a duration such as \"30s\" or a number of seconds");
  }
  void integer(const std::string& key, const toml::node& v, int& out) {
    auto i = v.value_exact<int64_t>();
    if (!i || *i < INT32_MIN || *i > INT32_MAX) return wrong(key, v, "an integer");
    out = static_cast<int>(*i);
  }
  void boolean(const std::string& key, const toml::node& v, bool& out) {
    if (auto b = v.value_exact<bool>())
      out = *b;
    else
      wrong(key, v, "true or false");
  }
  void strings(const std::string& key, const toml::node& v, std::vector<std::string>& out) {
    if (auto s = v.value<std::string>(); s && key != "command") {
      out = {*s};
      return;
    }
    const toml::array* a = v.as_array();
    if (a == nullptr)
      return wrong(key, v,
                   key == "command" ? "an array of strings" : "a string or an array of strings");
    std::vector<std::string> values;
    for (const auto& item : *a) {
      auto s = item.value<std::string>();
      if (!s) return wrong(key, item, "strings only");
      values.push_back(*s);
    }
    out = std::move(values);
  }
  void environment(const std::string& key, const toml::node& v, std::vector<std::string>& out) {
    if (const toml::table* t = v.as_table()) {
      std::vector<std::string> values;
      for (const auto& [name, value] : *t) {
        auto s = value.value<std::string>();
        if (!s) return wrong(key + "." + std::string(name.str()), value, "a string");
        values.push_back(std::string(name.str()) + "=" + *s);
      }
      out = std::move(values);
      return;
    }
    strings(key, v, out);
  }

 private:
  void wrong(const std::string& key, const toml::node& v, const char* expected) {
    problems_.push_back(fmt::format("{}{}: expected {}", where(path_, v), key, expected));
  }
  const std::string& path_;
  std::vector<std::string>& problems_;
};

std::string config_error_line(const std::vector<std::string>& problems) {
  std::string joined;
  for (const auto& p : problems) joined += (joined.empty() ? "" : "; ") + p;
  return joined;
}

}  // namespace

const std::vector<std::string>& run_setting_keys() {
  static const std::vector<std::string> keys = {
      "listen",        "ready",         "ready-timeout",
      "drain-timeout", "drain-signal",  "drain-signal-group",
      "drain",         "max-draining",  "hold-old",
      "backlog",       "ipv6-only",     "unix-mode",
      "control",       "adopt",         "chdir",
      "env-file",      "env",           "user",
      "metrics",       "prefix-output", "command"};
  return keys;
}

void read_config_file(const std::string& path, RunSettings& s, std::vector<std::string>& problems) {
  auto text = read_trusted_file(path, "config");
  if (!text) {
    problems.push_back(text.error().what());
    return;
  }
  toml::table table;
  try {
    table = toml::parse(*text, path);
  } catch (const toml::parse_error& e) {
    problems.push_back(
        fmt::format("{}:{}: not valid TOML: {}", path, e.source().begin.line, e.description()));
    return;
  }
  // toml++ keeps keys sorted; the problems are told in the file's order.
  std::vector<std::string> found;
  KeyReader r(path, found);
  for (const auto& [k, v] : table) {
    const std::string key(k.str());
    if (key == "listen")
      r.strings(key, v, s.listen);
    else if (key == "ready")
      r.text(key, v, s.ready);
    else if (key == "ready-timeout")
      r.duration(key, v, s.ready_timeout);
    else if (key == "drain-timeout")
      r.duration(key, v, s.drain_timeout);
    else if (key == "drain-signal")
      r.text(key, v, s.drain_signal);
    else if (key == "drain-signal-group")
      r.boolean(key, v, s.drain_signal_group);
    else if (key == "drain")
      r.text(key, v, s.drain);
    else if (key == "hold-old")
      r.duration(key, v, s.hold_old);
    else if (key == "max-draining")
      r.integer(key, v, s.max_draining);
    else if (key == "backlog")
      r.integer(key, v, s.backlog);
    else if (key == "ipv6-only")
      r.boolean(key, v, s.ipv6_only);
    else if (key == "unix-mode")
      r.text(key, v, s.unix_mode);
    else if (key == "control")
      r.text(key, v, s.control);
    else if (key == "adopt")
      r.boolean(key, v, s.adopt);
    else if (key == "chdir")
      r.text(key, v, s.chdir);
    else if (key == "env-file")
      r.text(key, v, s.env_file);
    else if (key == "env")
      r.environment(key, v, s.env);
    else if (key == "user")
      r.text(key, v, s.user);
    else if (key == "metrics")
      r.text(key, v, s.metrics);
    else if (key == "prefix-output")
      r.boolean(key, v, s.prefix_output);
    else if (key == "command")
      r.strings(key, v, s.command);
    else
      found.push_back(fmt::format("{}unknown key '{}'", where(path, v), key));
  }
  auto line_of = [&](const std::string& p) {
    return std::strtol(p.c_str() + std::min(p.size(), path.size() + 1), nullptr, 10);
  };
  std::stable_sort(found.begin(), found.end(),
                   [&](const auto& a, const auto& b) { return line_of(a) < line_of(b); });
  problems.insert(problems.end(), found.begin(), found.end());
}

void overlay(RunSettings& base, const RunSettings& top, const KeySet& keys) {
  auto take = [&](const char* key, auto member) {
    if (keys.contains(key)) base.*member = top.*member;
  };
  take("listen", &RunSettings::listen);
  take("ready", &RunSettings::ready);
  take("ready-timeout", &RunSettings::ready_timeout);
  take("drain-timeout", &RunSettings::drain_timeout);
  take("drain-signal", &RunSettings::drain_signal);
  take("drain-signal-group", &RunSettings::drain_signal_group);
  take("drain", &RunSettings::drain);
  take("hold-old", &RunSettings::hold_old);
  take("max-draining", &RunSettings::max_draining);
  take("backlog", &RunSettings::backlog);
  take("ipv6-only", &RunSettings::ipv6_only);
  take("unix-mode", &RunSettings::unix_mode);
  take("control", &RunSettings::control);
  take("adopt", &RunSettings::adopt);
  take("chdir", &RunSettings::chdir);
  take("env-file", &RunSettings::env_file);
  take("env", &RunSettings::env);
  take("user", &RunSettings::user);
  take("metrics", &RunSettings::metrics);
  take("prefix-output", &RunSettings::prefix_output);
  take("command", &RunSettings::command);
}

std::vector<std::string> check_run_settings(const RunSettings& s, SupervisorConfig& c) {
  std::vector<std::string> problems;
  auto problem = [&](std::string line) { problems.push_back(std::move(line)); };

  if (s.listen.empty()) problem("listen: give at least one address, e.g. --listen 8080");
  // kMaxListeners (common/listen_fds.h) caps what a generation receives; one is kept for the http
  // readiness listener.
  if (s.listen.size() >= static_cast<size_t>(kMaxListeners)) {
    problem(fmt::format("listen: at most {}", kMaxListeners - 1));
  }
  for (const auto& text : s.listen) {
    auto spec = parse_listen_spec(text);
    if (!spec) {
      problem("listen: " + spec.error().what());
      continue;
    }
    for (const auto& other : c.listens) {
      if (!spec->name.empty() && other.name == spec->name) {
        problem(fmt::format("listen: name '{}' given twice", spec->name));
      }
    }
    c.listens.push_back(std::move(spec).value());
  }

  if (!s.chdir.empty()) {
    struct stat st {};
    if (s.chdir.front() != '/')
      problem(fmt::format("chdir: '{}' is not an absolute path", s.chdir));
    else if (::stat(s.chdir.c_str(), &st) != 0)
      problem(Error::from_errno("chdir: " + s.chdir).what());
    else if (!S_ISDIR(st.st_mode))
      problem(fmt::format("chdir: {} is not a directory", s.chdir));
    c.working_dir = s.chdir;
  }
  if (s.command.empty()) {
    problem("command: missing the command to run: baton run [options] -- COMMAND");
  } else if (!c.working_dir.empty() && s.command[0].find('/') != std::string::npos &&
             s.command[0].front() != '/') {
    // Relative to the working directory, looked up again at each spawn (a release flip moves it).
    auto resolved = resolve_command(c.working_dir + "/" + s.command[0]);
    if (!resolved) problem("command: " + resolved.error().what());
    c.command = s.command;
  } else {
    auto resolved = resolve_command(s.command[0]);
    if (!resolved) problem("command: " + resolved.error().what());
    c.command = s.command;
    if (resolved) c.command[0] = *resolved;
  }

  auto readiness = parse_readiness(s.ready);
  if (!readiness)
    problem(readiness.error().what());
  else
    c.readiness = *readiness;
  auto ready_timeout = parse_duration_ms(s.ready_timeout);
  if (!ready_timeout)
    problem("ready-timeout: " + ready_timeout.error().what());
  else if (*ready_timeout > std::chrono::hours(24))
    problem("ready-timeout: at most 24h");
  else
    c.core.ready_timeout = *ready_timeout;
  auto drain_timeout = parse_duration_ms(s.drain_timeout, /*allow_zero=*/true);
  if (!drain_timeout)
    problem("drain-timeout: " + drain_timeout.error().what());
  else if (*drain_timeout > std::chrono::hours(24))
    problem("drain-timeout: at most 24h");
  else
    c.core.drain_timeout = *drain_timeout;
  auto signal = parse_signal(s.drain_signal);
  if (!signal)
    problem(signal.error().what());
  else
    c.core.drain_signal = *signal;
  if (s.drain != "watch" && s.drain != "signal") {
    problem(fmt::format("drain: bad mode '{}': use watch or signal", s.drain));
  }
  c.core.drain_mode = s.drain == "signal" ? DrainMode::kSignal : DrainMode::kWatch;
  c.core.drain_signal_group = s.drain_signal_group;
  if (s.max_draining < 1 || s.max_draining > 64) {
    problem(fmt::format("max-draining: {} is not in 1..64", s.max_draining));
  }
  c.core.max_draining = s.max_draining;
  auto hold_old = parse_duration_ms(s.hold_old, /*allow_zero=*/true);
  if (!hold_old) {
    problem("hold-old: " + hold_old.error().what());
  } else if (*hold_old > std::chrono::hours(1)) {
    problem("hold-old: at most 1h");
  } else if (hold_old->count() > 0 &&
             std::none_of(c.listens.begin(), c.listens.end(),
                          [](const ListenSpec& l) { return steerable(l.address); })) {
    problem(
        "hold-old needs a TCP or UDP listener: unix listeners are shared, so new "
        "connections cannot be kept from the old generation or sent back to it");
  } else {
    c.core.hold_old = *hold_old;
  }
  c.core.readiness = c.readiness.to_string();

  if (s.backlog < 1 || s.backlog > (1 << 20)) {
    problem(fmt::format("backlog: {} is not in 1..{}", s.backlog, 1 << 20));
  }
  c.bind.backlog = s.backlog;
  c.bind.ipv6_only = s.ipv6_only;
  c.prefix_output = s.prefix_output;
  char* end = nullptr;
  long mode = std::strtol(s.unix_mode.c_str(), &end, 8);
  if (s.unix_mode.empty() || *end != '\0' || mode < 0 || mode > 0777) {
    problem(fmt::format("unix-mode: bad mode '{}': an octal mode such as 0660", s.unix_mode));
  }
  c.bind.unix_mode = static_cast<mode_t>(mode);

  c.control_path = s.control.empty() ? default_control_path() : s.control;
  // The notify socket's path is the control path plus ".notify": both must fit in sun_path.
  if (c.control_path.size() + 7 >= sizeof(sockaddr_un::sun_path)) {
    problem(fmt::format("control: path too long for a unix socket ({} bytes): {}",
                        c.control_path.size(), c.control_path));
  }

  for (const auto& kv : s.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || !valid_env_name(kv.substr(0, eq))) {
      problem(fmt::format("env: '{}' is not NAME=VALUE", kv));
      continue;
    }
    c.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (!s.env_file.empty()) {
    auto vars = read_env_file(s.env_file);
    if (!vars)
      problem("env-file: " + vars.error().what());
    else {
      // Explicit env settings win over the file's.
      for (auto& [k, v] : *vars) c.env.emplace(k, v);
    }
  }

  if (!s.user.empty()) {
    auto as = resolve_user(s.user);
    if (!as)
      problem(as.error().what());
    else
      c.run_as = *as;
  }
  if (!s.metrics.empty()) {
    auto addr = parse_address(s.metrics);
    if (!addr || addr->transport != Transport::kTcp) {
      problem(fmt::format("metrics: bad address '{}': a TCP address such as 127.0.0.1:9100",
                          s.metrics));
    } else {
      c.metrics = *addr;
    }
  }

  if (s.adopt) {
    auto lib = find_adopt_library();
    if (!lib)
      problem(lib.error().what());
    else if (auto st = adopt::check_adopt_library(*lib); !st)
      problem("adopt: " + st.error().what());
    else
      c.adopt_library = *lib;
    if (!c.command.empty() && c.command[0].front() == '/') {
      if (auto st = adopt::check_adoptable(c.command[0]); !st)
        problem("adopt: " + st.error().what());
    }
  }
  return problems;
}

std::vector<std::string> load_run_config(const RunSource& source, SupervisorConfig& out) {
  RunSettings settings;
  std::vector<std::string> problems;
  if (!source.config_path.empty()) read_config_file(source.config_path, settings, problems);
  if (!problems.empty()) return problems;
  overlay(settings, source.flags, source.given);
  out = SupervisorConfig{};
  out.config_file = source.config_path;
  problems = check_run_settings(settings, out);
  if (!problems.empty()) return problems;
  // What may change between reloads is read again before each one.
  if (!source.config_path.empty() || !settings.env_file.empty()) {
    out.reload_config = settings_reader(source);
  }
  return problems;
}

std::function<Result<SupervisorConfig>()> settings_reader(const RunSource& source) {
  return [source]() -> Result<SupervisorConfig> {
    SupervisorConfig fresh;
    auto problems = load_run_config(source, fresh);
    if (!problems.empty()) {
      return Error(fmt::format("{} no longer checks: {}",
                               source.config_path.empty() ? "the settings" : source.config_path,
                               config_error_line(problems)));
    }
    return fresh;
  };
}

Result<std::vector<std::pair<std::string, std::string>>> parse_env_text(std::string_view text,
                                                                        const std::string& source) {
  std::vector<std::pair<std::string, std::string>> vars;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    if (line.starts_with("export ")) line.remove_prefix(7);
    auto eq = line.find('=');
    if (eq == std::string_view::npos || !valid_env_name(line.substr(0, eq))) {
      return Error(fmt::format("{}:{}: expected NAME=VALUE", source, line_no));
    }
    std::string_view value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    if (vars.size() >= kMaxEnvVars) {
      return Error(fmt::format("{}: more than {} variables", source, kMaxEnvVars));
    }
    vars.emplace_back(std::string(line.substr(0, eq)), std::string(value));
  }
  return vars;
}

Result<std::vector<std::pair<std::string, std::string>>> read_env_file(const std::string& path) {
  auto text = read_trusted_file(path, "env file");
  if (!text) return text.error();
  return parse_env_text(*text, path);
}

}  // namespace baton::cli

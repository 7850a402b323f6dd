#include "cli/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <variant>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "baton/fd.h"
#include "cli/suggest.h"
#include "common/syscall.h"
#include "supervisor/control_protocol.h"

namespace baton::cli {
namespace {

constexpr off_t kMaxFileBytes = 1 << 20;
constexpr size_t kMaxEnvVars = 4096;

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

  // The value of `setting`'s key into its field of `s`, as its kind reads it.
  void read(const RunSetting& setting, const toml::node& v, RunSettings& s) {
    using Kind = RunSetting::Kind;
    const std::string key(setting.name);
    auto& field = setting.field;
    switch (setting.kind) {
      case Kind::kText:
        return text(key, v, s.*std::get<std::string RunSettings::*>(field));
      case Kind::kDuration:
        return duration(key, v, s.*std::get<std::string RunSettings::*>(field));
      case Kind::kInteger:
        return integer(key, v, s.*std::get<int RunSettings::*>(field));
      case Kind::kSwitch:
        return boolean(key, v, s.*std::get<bool RunSettings::*>(field));
      case Kind::kList:
      case Kind::kCommand:
        return strings(key, v, setting.kind == Kind::kCommand,
                       s.*std::get<std::vector<std::string> RunSettings::*>(field));
      case Kind::kEnv:
        return environment(key, v, s.*std::get<std::vector<std::string> RunSettings::*>(field));
    }
  }

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
  // `array_only`: one string is not a list of one (a command's words are never split).
  void strings(const std::string& key, const toml::node& v, bool array_only,
               std::vector<std::string>& out) {
    if (auto s = v.value<std::string>(); s && !array_only) {
      out = {*s};
      return;
    }
    const toml::array* a = v.as_array();
    if (a == nullptr)
      return wrong(key, v, array_only ? "an array of strings" : "a string or an array of strings");
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
    strings(key, v, false, out);
  }

 private:
  void wrong(const std::string& key, const toml::node& v, const char* expected) {
    problems_.push_back(fmt::format("{}{}: expected {}", where(path_, v), key, expected));
  }
  const std::string& path_;
  std::vector<std::string>& problems_;
};

// The file as TOML, with every syntax error it holds told: the parser stops at the first, so the
// line of each is blanked and the rest parsed again (a bounded number of times). `damaged`: there
// was one, and the table is what is left of the file without those lines. nullopt when nothing
// parses.
std::optional<toml::table> parse_toml(const std::string& path, std::string text,
                                      std::vector<std::string>& problems, bool& damaged) {
  constexpr int kMaxSyntaxErrors = 20;
  damaged = false;
  for (int attempt = 0; attempt < kMaxSyntaxErrors; ++attempt) {
    try {
      return toml::parse(text, path);
    } catch (const toml::parse_error& e) {
      damaged = true;
      const auto line = e.source().begin.line;
      // toml++ quotes the byte it stopped at as it is, a newline too: one line, shown escaped.
      problems.push_back(fmt::format("{}:{}: not valid TOML: {}", path, line,
                                     escape_control_chars(e.description())));
      // Blank the line (keeping the count of lines, so later errors keep their numbers).
      size_t start = 0;
      for (toml::source_index n = 1; n < line && start != std::string::npos; ++n) {
        start = text.find('\n', start);
        if (start != std::string::npos) ++start;
      }
      if (line == 0 || start == std::string::npos || start >= text.size()) return std::nullopt;
      const size_t end = std::min(text.find('\n', start), text.size());
      if (text.find_first_not_of(' ', start) >= end) return std::nullopt;  // no progress
      text.replace(start, end - start, "");
    }
  }
  return std::nullopt;
}

std::vector<std::string> setting_names() {
  std::vector<std::string> names;
  for (const auto& setting : run_settings()) names.emplace_back(setting.name);
  return names;
}

// The setting a problem of the check is about: it starts with the name ("ready-timeout: ...",
// "hold-old needs ...") or, as the readiness parser says it, "bad --ready ...". "" for none.
std::string setting_of(const std::string& problem) {
  std::string best;
  for (const auto& setting : run_settings()) {
    const std::string name(setting.name);
    const bool named = problem.starts_with(name + ":") || problem.starts_with(name + " ") ||
                       problem.starts_with("bad --" + name + " ");
    if (named && name.size() > best.size()) best = name;
  }
  return best;
}

// A problem of a value the file gave, as the file's: "FILE:LINE: NAME: ...", where the check
// alone would say "bad --NAME ..." as of a flag.
std::string in_file(const std::string& path, long line, const std::string& name,
                    std::string problem) {
  const std::string as_flag = "bad --" + name + " ";
  if (problem.starts_with(as_flag)) problem = name + ": bad " + problem.substr(as_flag.size());
  return line > 0 ? fmt::format("{}:{}: {}", path, line, problem)
                  : fmt::format("{}: {}", path, problem);
}

std::string config_error_line(const std::vector<std::string>& problems) {
  std::string joined;
  for (const auto& p : problems) joined += (joined.empty() ? "" : "; ") + p;
  return joined;
}

}  // namespace

bool valid_env_name(std::string_view name) {
  if (name.empty() || name.size() > 256 || std::isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::optional<FileKeys> read_config_file(const std::string& path, RunSettings& s,
                                         std::vector<std::string>& problems) {
  auto text = read_trusted_file(path, "config");
  if (!text) {
    problems.push_back(text.error().what());
    return std::nullopt;
  }
  bool damaged = false;
  auto table = parse_toml(path, *text, problems, damaged);
  if (!table) return std::nullopt;
  // toml++ keeps keys sorted; the problems are told in the file's order.
  std::vector<std::string> found;
  FileKeys keys;
  KeyReader r(path, found);
  for (const auto& [k, v] : *table) {
    const std::string key(k.str());
    const auto& settings = run_settings();
    auto setting = std::find_if(settings.begin(), settings.end(),
                                [&](const RunSetting& one) { return one.name == key; });
    if (setting == settings.end()) {
      found.push_back(fmt::format("{}unknown key '{}'{}", where(path, v), key,
                                  did_you_mean(key, setting_names())));
      continue;
    }
    const size_t before = found.size();
    r.read(*setting, v, s);
    if (found.size() == before)
      keys.line[key] = v.source().begin.line;
    else
      keys.unread.insert(key);
  }
  auto line_of = [&](const std::string& p) {
    return std::strtol(p.c_str() + std::min(p.size(), path.size() + 1), nullptr, 10);
  };
  std::stable_sort(found.begin(), found.end(),
                   [&](const auto& a, const auto& b) { return line_of(a) < line_of(b); });
  problems.insert(problems.end(), found.begin(), found.end());
  if (damaged) return std::nullopt;  // its keys are told about, but it is no file to run with
  return keys;
}

void overlay(RunSettings& base, const RunSettings& top, const KeySet& keys) {
  for (const auto& setting : run_settings()) {
    if (!keys.contains(std::string(setting.name))) continue;
    std::visit([&](auto member) { base.*member = top.*member; }, setting.field);
  }
}

std::vector<std::string> load_run_config(const RunSource& source, SupervisorConfig& out) {
  RunSettings settings;
  std::vector<std::string> problems;
  std::optional<FileKeys> file;
  if (!source.config_path.empty()) {
    file = read_config_file(source.config_path, settings, problems);
    // Nothing was read: the check would only add the problems of the settings' absence.
    if (!file) return problems;
  }
  overlay(settings, source.flags, source.given);
  out = SupervisorConfig{};
  out.config_file = source.config_path;
  for (auto& problem : check_run_settings(settings, out)) {
    const std::string name = setting_of(problem);
    const bool from_file = file && !name.empty() && !source.given.contains(name);
    // A key the file gave of the wrong type is told once, by the file's problem.
    if (from_file && file->unread.contains(name)) continue;
    if (from_file && file->line.contains(name)) {
      problem = in_file(source.config_path, file->line.at(name), name, problem);
    }
    problems.push_back(std::move(problem));
  }
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
    if (value.find('\0') != std::string_view::npos) {
      return Error(
          fmt::format("{}:{}: a NUL byte in the value of {}", source, line_no, line.substr(0, eq)));
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

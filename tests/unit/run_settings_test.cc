// Unit tests of the settings table (common/run_settings.h): that `run`'s flags are the table's,
// that its defaults are the supervisor's, and that the man page and docs/configuration.md list
// every flag and key with the binary's default. A flag added without its docs fails here.
#include "common/run_settings.h"

#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <CLI/CLI.hpp>

#include "cli/config.h"
#include "cli/run_flags.h"

namespace baton::cli {
namespace {

std::string read_doc(const std::string& relative) {
  std::ifstream in(std::string(BATON_SOURCE_DIR) + "/" + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// What `baton run` takes on its command line, by name ("ready", "command"), as registered:
// the binary's own flags, not the table's word for them.
struct Flag {
  std::string value_name;  // "" for a switch
  std::string default_value;
};
std::map<std::string, Flag> run_flags() {
  CLI::App app;
  RunSource source;
  add_run_flags(&app, source);
  std::map<std::string, Flag> flags;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_single_name() == "help") continue;
    flags[opt->get_single_name()] = {opt->get_type_name(), opt->get_default_str()};
  }
  return flags;
}

// Troff escapes every '-' the reader must type.
std::string troff(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '-' ? std::string("\\-") : std::string(1, c);
  return out;
}

TEST(RunSettings, EveryFlagOfRunIsASettingOfTheTableAndBack) {
  auto flags = run_flags();
  ASSERT_EQ(flags.count("config"), 1u);
  flags.erase("config");  // where the settings come from, not one of them
  for (const auto& setting : run_settings()) {
    const std::string name(setting.name);
    auto flag = flags.find(name);
    ASSERT_NE(flag, flags.end()) << name;
    EXPECT_EQ(flag->second.value_name,
              setting.kind == RunSetting::Kind::kSwitch ? "" : std::string(setting.value_name))
        << name;
    if (setting.kind != RunSetting::Kind::kSwitch) {
      EXPECT_EQ(flag->second.default_value, setting.default_value) << name;
    }
    flags.erase(flag);
  }
  for (const auto& [name, flag] : flags) ADD_FAILURE() << "--" << name << " is in no table entry";
}

TEST(RunSettings, TheDefaultsAreTheSupervisorsOwn) {
  RunSettings s;
  s.listen = {"127.0.0.1:0"};
  s.command = {"true"};
  SupervisorConfig c;
  auto problems = check_run_settings(s, c);
  ASSERT_TRUE(problems.empty()) << problems[0];
  const CoreOptions core;
  EXPECT_EQ(c.core.ready_timeout, core.ready_timeout);
  EXPECT_EQ(c.core.drain_timeout, core.drain_timeout);
  EXPECT_EQ(c.core.drain_signal, core.drain_signal);
  EXPECT_EQ(c.core.drain_signal_group, core.drain_signal_group);
  EXPECT_EQ(c.core.drain_mode, core.drain_mode);
  EXPECT_EQ(c.core.max_draining, core.max_draining);
  EXPECT_EQ(c.core.hold_old, core.hold_old);
  EXPECT_EQ(c.bind.unix_mode, BindOptions{}.unix_mode);
  EXPECT_EQ(c.bind.ipv6_only, BindOptions{}.ipv6_only);
  EXPECT_EQ(c.readiness.kind, ReadinessSpec{}.kind);
}

TEST(RunSettings, ABoundOfTheTableIsWhatTheCheckEnforces) {
  for (const auto& setting : run_settings()) {
    if (setting.kind != RunSetting::Kind::kInteger && setting.kind != RunSetting::Kind::kDuration) {
      continue;
    }
    RunSettings s;
    s.listen = {"127.0.0.1:0"};
    s.command = {"true"};
    std::string over;
    std::visit(
        [&](auto member) {
          using T = std::remove_reference_t<decltype(s.*member)>;
          if constexpr (std::is_same_v<T, int>) {
            s.*member = static_cast<int>(setting.max) + 1;
          } else if constexpr (std::is_same_v<T, std::string>) {
            s.*member = std::to_string(setting.max + 1) + "ms";
          }
        },
        setting.field);
    SupervisorConfig c;
    auto problems = check_run_settings(s, c);
    ASSERT_EQ(problems.size(), 1u) << setting.name;
    EXPECT_EQ(problems[0].rfind(std::string(setting.name) + ": ", 0), 0u) << problems[0];
  }
}

// The paragraph of `--name` in the man page's `baton run` section: from its .TP line to the next.
std::string man_paragraph(const std::string& man, const std::string& name) {
  const auto run = man.find(".SS baton run");
  const auto end = man.find(".SS", run + 1);
  for (const char* macro : {"\n.BI ", "\n.B "}) {
    const std::string head = macro + troff("--" + name);
    auto at = man.find(head, run);
    while (at != std::string::npos && at < end) {
      const char after = man[at + head.size()];
      if (after == '\n' || after == ' ') {
        const auto next = man.find("\n.TP", at + 1);
        return man.substr(at + 1, std::min(next, man.find("\n.PP", at + 1)) - at - 1);
      }
      at = man.find(head, at + 1);
    }
  }
  return "";
}

// Every flag of run is the table's (above), so the docs are held to the table.
TEST(RunSettingsDocs, TheManPageHasEveryFlagOfRunWithItsValueAndDefault) {
  const std::string man = read_doc("docs/man/baton.1");
  ASSERT_FALSE(man.empty());
  EXPECT_FALSE(man_paragraph(man, "config").empty()) << "the man page has no --config";
  for (const auto& setting : run_settings()) {
    if (setting.kind == RunSetting::Kind::kCommand) continue;  // the words after --: the synopsis
    const std::string name(setting.name);
    const std::string paragraph = man_paragraph(man, name);
    ASSERT_FALSE(paragraph.empty()) << "the man page has no paragraph for --" << name;
    const std::string first_line = paragraph.substr(0, paragraph.find('\n'));
    if (!setting.value_name.empty()) {
      EXPECT_NE(first_line.find("\" " + troff(std::string(setting.value_name)) + "\""),
                std::string::npos)
          << "--" << name << " takes " << setting.value_name << ": " << first_line;
    }
    // A switch is off unless given: the man page need not say so.
    if (!setting.default_value.empty() && setting.kind != RunSetting::Kind::kSwitch) {
      EXPECT_NE(paragraph.find("default " + troff(std::string(setting.default_value))),
                std::string::npos)
          << "--" << name << " defaults to " << setting.default_value << ":\n"
          << paragraph;
    }
  }
}

// The rows of configuration.md's key table: key -> the default column.
std::map<std::string, std::string> key_table(const std::string& doc) {
  std::map<std::string, std::string> rows;
  std::istringstream lines(doc.substr(doc.find("## Keys")));
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.starts_with("| `")) continue;
    const std::string key = line.substr(3, line.find('`', 3) - 3);
    std::string last = line.substr(0, line.size() - 1);  // the closing '|'
    last = last.substr(last.rfind('|') + 1);
    std::string bare;
    for (char c : last) {
      if (c != '`') bare += c;
    }
    rows[key] = bare.substr(bare.find_first_not_of(' '));
  }
  return rows;
}

TEST(RunSettingsDocs, ConfigurationMdHasEveryKeyWithItsDefault) {
  auto rows = key_table(read_doc("docs/configuration.md"));
  ASSERT_FALSE(rows.empty());
  for (const auto& setting : run_settings()) {
    const std::string name(setting.name);
    auto row = rows.find(name);
    ASSERT_NE(row, rows.end()) << "docs/configuration.md has no row for " << name;
    EXPECT_TRUE(row->second.starts_with(setting.default_value))
        << name << " defaults to " << setting.default_value << ", the docs say " << row->second;
    rows.erase(row);
  }
  for (const auto& [key, row] : rows) ADD_FAILURE() << "`" << key << "` is no setting of run";
}

// The shell completions offer every flag of run (bash's list, zsh's specs).
TEST(RunSettingsDocs, TheCompletionsOfferEveryFlagOfRun) {
  for (const char* file : {"contrib/completions/baton.bash", "contrib/completions/_baton"}) {
    const std::string text = read_doc(file);
    ASSERT_FALSE(text.empty()) << file;
    for (const auto& [name, flag] : run_flags()) {
      if (name == "command") continue;
      const std::string word = "--" + name;
      bool found = false;
      for (auto at = text.find(word); at != std::string::npos && !found;
           at = text.find(word, at + 1)) {
        const char after = at + word.size() < text.size() ? text[at + word.size()] : ' ';
        found = after != '-' && std::isalnum(static_cast<unsigned char>(after)) == 0;
      }
      EXPECT_TRUE(found) << file << " does not offer " << word;
    }
  }
}

}  // namespace
}  // namespace baton::cli

#include "cli/run_flags.h"

#include <variant>

namespace baton::cli {
namespace {

// One setting of the table (common/run_settings.h) as a flag, or as the positional command.
void add_setting_flag(CLI::App* cmd, const RunSetting& setting, RunSettings& f) {
  using Kind = RunSetting::Kind;
  const std::string help(setting.help);
  const std::string flag =
      setting.kind == Kind::kCommand ? std::string(setting.name) : "--" + std::string(setting.name);
  CLI::Option* opt = std::visit(
      [&](auto member) -> CLI::Option* {
        auto& value = f.*member;
        if constexpr (std::is_same_v<std::remove_reference_t<decltype(value)>, bool>) {
          return cmd->add_flag(flag, value, help);
        } else {
          return cmd->add_option(flag, value, help);
        }
      },
      setting.field);
  if (!setting.value_name.empty()) opt->type_name(std::string(setting.value_name));
  if (setting.kind != Kind::kSwitch && !setting.default_value.empty()) opt->capture_default_str();
  // A repeatable flag takes one value each time: else CLI11 reads "[::1]:80" as a list and drops
  // the brackets.
  if (setting.kind == Kind::kList || setting.kind == Kind::kEnv) opt->allow_extra_args(false);
}

}  // namespace

void add_run_flags(CLI::App* cmd, RunSource& source) {
  cmd->add_option("--config", source.config_path,
                  "TOML file with any of these settings as keys (listen, ready, command, ...); "
                  "flags given here override it. Read again at each reload.")
      ->type_name("FILE");
  for (const auto& setting : run_settings()) add_setting_flag(cmd, setting, source.flags);
  cmd->positionals_at_end();
}

void collect_given(CLI::App* cmd, RunSource& source, const std::vector<std::string>& after_dashes) {
  source.given.clear();
  if (!after_dashes.empty()) {
    if (!source.flags.command.empty()) {
      throw CLI::ValidationError("command", "give the command once: after --");
    }
    source.flags.command = after_dashes;
  }
  for (const auto& setting : run_settings()) {
    const std::string key(setting.name);
    const CLI::Option* opt =
        cmd->get_option_no_throw(setting.kind == RunSetting::Kind::kCommand ? key : "--" + key);
    if (opt != nullptr && opt->count() > 0) source.given.insert(key);
  }
  if (!after_dashes.empty()) source.given.insert("command");
}

}  // namespace baton::cli

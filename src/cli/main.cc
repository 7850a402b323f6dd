// baton: restart or upgrade any network server with zero failed requests.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/help_format.h"
#include "cli/suggest.h"

namespace baton::cli {
std::vector<std::string>& words_after_dashes() {
  static std::vector<std::string> words;
  return words;
}
std::vector<std::string>& original_argv() {
  static std::vector<std::string> words;
  return words;
}
bool& upgrade_check_mode() {
  static bool on = false;
  return on;
}
}  // namespace baton::cli

namespace {

// "; did you mean --listen?" for the first unknown flag CLI11 names in `message` (after "not
// expected: "), among `cmd`'s own; "" when none is near.
std::string nearest_flag(const CLI::App& cmd, const std::string& message) {
  std::vector<std::string> flags;
  for (const CLI::Option* opt : cmd.get_options()) {
    for (const auto& name : opt->get_lnames()) flags.push_back("--" + name);
  }
  const auto colon = message.rfind(": ");
  std::string_view words(message);
  words.remove_prefix(colon == std::string::npos ? words.size() : colon + 2);
  while (!words.empty()) {
    const auto end = std::min(words.find(' '), words.size());
    std::string_view word = words.substr(0, end);
    words.remove_prefix(end == words.size() ? end : end + 1);
    if (!word.starts_with("--")) continue;
    word = word.substr(0, word.find('='));
    const std::string near = baton::cli::nearest(word, flags);
    if (!near.empty()) return "; did you mean " + near + "?";
  }
  return "";
}

int dispatch(int argc, char** argv) {
  // Started with any of fds 0-2 closed, the next file baton opens (its lock file, a socket)
  // would take that number, and log lines would go into it: /dev/null holds the place first.
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      int held = ::open("/dev/null", O_RDWR);  // the lowest free number: `fd` itself
      if (held > 2) ::close(held);
    }
  }
  // `baton upgrade-check run ...`: a supervisor asks this binary whether it can resume its state
  // (supervisor_upgrade.cc). Not a command of its own: the rest is the supervisor's command line.
  std::vector<char*> args(argv, argv + argc);
  if (argc > 2 && std::string_view(argv[1]) == "upgrade-check") {
    baton::cli::upgrade_check_mode() = true;
    args.erase(args.begin() + 1);
    --argc;
    argv = args.data();
  }
  baton::cli::original_argv().assign(argv, argv + argc);
  CLI::App app{
      "baton: restart or upgrade a network server with zero failed requests.\n"
      "\n"
      "  baton run --listen 8080 -- ./server     supervise ./server, owning port 8080\n"
      "  baton check --config app.toml           check a config file, start nothing\n"
      "  baton reload --wait                     start a new generation, drain the old one\n"
      "  baton status                            what runs, what is draining, last reload\n"
      "  baton upgrade --wait                    execute a new baton binary in place\n"
      "  baton soak --url http://127.0.0.1:8080/ --reloads 100   prove it under load\n",
      "baton"};
  app.require_subcommand(1);
  app.formatter(baton::cli::wrapping_formatter(baton::cli::help_width()));  // commands inherit it
  app.set_version_flag("--version", std::string(BATON_VERSION));
  baton::cli::Action action;
  // Each command's flags are defined only when that command is named: a control command starts
  // once per `baton reload` or `baton status`, and defining every command's flags is a fifth of
  // its start-up. `baton --help` and anything else that is not a known command gets them all.
  using Adder = void (*)(CLI::App&, baton::cli::Action&);
  static constexpr std::pair<std::string_view, Adder> kCommands[] = {
      {"run", baton::cli::add_run_command},         {"check", baton::cli::add_check_command},
      {"reload", baton::cli::add_control_commands}, {"status", baton::cli::add_control_commands},
      {"stop", baton::cli::add_control_commands},   {"upgrade", baton::cli::add_control_commands},
      {"soak", baton::cli::add_soak_command}};
  Adder named = nullptr;
  for (const auto& [name, add] : kCommands) {
    if (argc > 1 && name == argv[1]) named = add;
  }
  if (named != nullptr) {
    named(app, action);
  } else {
    for (Adder add : {baton::cli::add_run_command, baton::cli::add_check_command,
                      baton::cli::add_control_commands, baton::cli::add_soak_command}) {
      add(app, action);
    }
  }

  // An unknown word where the command goes gets its own message, not CLI11's "A subcommand is
  // required" with a hint to run "baton WORD --help".
  const bool first_is_word = argc > 1 && argv[1][0] != '-';
  bool known = false;
  std::string names;
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
    known = known || (first_is_word && sub->get_name() == argv[1]);
  }
  if (first_is_word && !known) {
    std::fprintf(stderr,
                 "baton: unknown command '%s' (commands: %s)\nRun 'baton --help' for usage.\n",
                 argv[1], names.c_str());
    return 2;
  }
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) != "--") continue;
    baton::cli::words_after_dashes().assign(argv + i + 1, argv + argc);
    argc = i;
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::string hint;
    if (known && dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
      hint = nearest_flag(*app.get_subcommand(argv[1]), e.what());
    }
    std::fprintf(stderr, "baton: %s%s\nRun 'baton %s--help' for usage.\n", e.what(), hint.c_str(),
                 known ? (std::string(argv[1]) + " ").c_str() : "");
    return 2;
  }
  return action ? action() : 2;
}

}  // namespace

// What throws past a command (an allocation that failed, a library's exception baton did not
// expect) ends baton with one line and status 70 (EX_SOFTWARE), not an abort.
int main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "baton: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "baton: internal error: unknown exception\n");
  }
  return 70;
}

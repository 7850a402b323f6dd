// `baton check`: everything `baton run` would check, without starting anything (like nginx -t).
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/run_flags.h"
#include "common/syscall.h"

namespace baton::cli {
namespace {

// With --user: can that user enter the working directory and execute the command, as a
// generation will? Asked of the kernel, in a child that becomes the user (setgroups, setgid,
// setuid, as the spawner does), so modes, ACLs and noexec mounts all count. "" when it can.
std::string check_as_user(const SupervisorConfig& config) {
  const RunAs& as = *config.run_as;
  if (as.uid == ::geteuid() && as.gid == ::getegid()) return "";  // what the checks above did
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::from_errno("pipe").what();
  Fd read_end(fds[0]), write_end(fds[1]);
  const std::string who = fmt::format("user {}", as.name);
  const std::string& command = config.command.front();
  const pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork").what();
  if (pid == 0) {
    std::string problem;
    if (::setgroups(as.groups.size(), as.groups.data()) != 0 || ::setgid(as.gid) != 0 ||
        ::setuid(as.uid) != 0) {
      problem = Error::from_errno("cannot check as " + who).what();
    } else if (!config.working_dir.empty() && ::chdir(config.working_dir.c_str()) != 0) {
      problem = Error::from_errno(who + " cannot enter chdir " + config.working_dir).what();
    } else if (::access(command.c_str(), X_OK) != 0) {
      // A relative command is relative to chdir, entered just above, as at each spawn.
      problem = Error::from_errno(who + " cannot execute the command " + command).what();
    }
    (void)!::write(write_end.get(), problem.data(), problem.size());
    ::_exit(0);
  }
  write_end.reset();
  std::string problem;
  char buf[512];
  for (ssize_t n; (n = retry_eintr(::read, read_end.get(), buf, sizeof buf)) > 0;) {
    problem.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  retry_eintr(::waitpid, pid, &status, 0);
  return problem;
}

int check(const RunSource& source) {
  SupervisorConfig config;
  auto problems = load_run_config(source, config);
  if (problems.empty() && config.run_as && !config.command.empty()) {
    if (auto p = check_as_user(config); !p.empty()) problems.push_back(p);
  }
  for (const auto& p : problems) std::fprintf(stderr, "baton check: %s\n", p.c_str());
  if (!problems.empty()) return 2;
  for (const auto& line : describe_config(config)) std::printf("%s\n", line.c_str());
  std::printf("ok\n");
  return 0;
}

}  // namespace

void add_check_command(CLI::App& app, Action& action) {
  auto source = std::make_shared<RunSource>();
  CLI::App* cmd = app.add_subcommand(
      "check", "Check a config file (and the flags of run) the way run would, start nothing");
  cmd->footer(
      "Takes --config FILE and every flag of 'baton run'. Checks addresses, the command (found\n"
      "and executable), readiness, durations, the working directory, the env file, the user\n"
      "(and that it can enter the working directory and execute the command).\n"
      "Binds nothing and starts nothing.\n"
      "\n"
      "Exit status: 0 with a summary when all is well; 2 with one line per problem.");
  add_run_flags(cmd, *source);
  cmd->callback([&action, source, cmd] {
    collect_given(cmd, *source, words_after_dashes());
    action = [source] { return check(*source); };
  });
}

}  // namespace baton::cli

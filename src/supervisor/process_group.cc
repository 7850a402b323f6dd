#include "supervisor/process_group.h"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include <fmt/format.h>

#include "supervisor/drain_watch.h"  // parse_children, read_small

namespace baton {

Status signal_process_group(pid_t pgid, int sig) {
  if (pgid <= 1) return Error(EINVAL, fmt::format("no process group {}", pgid));
  if (::kill(-pgid, sig) != 0) return Error::from_errno(fmt::format("kill -{}", pgid));
  return {};
}

bool process_group_has_members(pid_t pgid) {
  // Signal 0 checks existence only; EPERM means a member exists that we may not signal.
  return pgid > 1 && (::kill(-pgid, 0) == 0 || errno == EPERM);
}

Status become_child_subreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    return Error::from_errno("prctl PR_SET_CHILD_SUBREAPER");
  }
  return {};
}

Result<ProcessShape> inspect_process(pid_t pid) {
  ProcessShape shape;
  std::array<char, 4096> exe{};
  const std::string link = fmt::format("/proc/{}/exe", pid);
  ssize_t n = ::readlink(link.c_str(), exe.data(), exe.size() - 1);
  if (n < 0) return Error::from_errno("readlink " + link);
  std::string_view path(exe.data(), static_cast<size_t>(n));
  constexpr std::string_view kDeleted = " (deleted)";  // an upgraded binary still running
  if (path.ends_with(kDeleted)) path.remove_suffix(kDeleted.size());
  auto slash = path.rfind('/');
  shape.program = std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));

  const std::string tasks = fmt::format("/proc/{}/task", pid);
  DIR* d = ::opendir(tasks.c_str());
  if (d == nullptr) return Error::from_errno("opendir " + tasks);
  size_t threads = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (++threads > kMaxCountedChildren || shape.children >= kMaxCountedChildren) break;
    auto children = parse_children(read_small(tasks + "/" + e->d_name + "/children"),
                                   kMaxCountedChildren - shape.children);
    shape.children += children.size();
  }
  ::closedir(d);
  return shape;
}

bool is_shell(std::string_view program) {
  for (std::string_view shell : {"sh", "dash", "bash", "ash", "ksh", "mksh", "zsh", "busybox"}) {
    if (program == shell) return true;
  }
  return false;
}

std::string shell_wrapper_warning(int id, pid_t pid, const ProcessShape& shape) {
  if (!is_shell(shape.program) || shape.children == 0) return {};
  return fmt::format(
      "warning: generation {} (pid {}) is a shell ({}) with {} child process{}: the drain signal "
      "reaches the shell only, and the server under it is killed with its process group. Start "
      "the server with `exec` (exec ./server, or sh -c 'exec ./server'), or give "
      "--drain-signal-group to signal the whole group",
      id, pid, shape.program, shape.children, shape.children == 1 ? "" : "es");
}

}  // namespace baton

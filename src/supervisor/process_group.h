// process_group.h: a generation seen as the process group it runs in (spawner.h: a session and
// group of its own, whose id is its main pid): signalling the whole group, telling whether any
// member is left, and noticing a main process that is a shell running the server as its child.
//
// Why the shell matters: the drain signal goes to the main process only (unless
// --drain-signal-group). A wrapper that starts the server without `exec` (`sh -c 'app & wait'`, a
// script whose last line is `app`) takes the signal itself, so the server never hears it: the
// shell dies or waits, and the server is killed with the rest of the group. shell_wrapper_warning()
// words the hint; the supervisor core says it once (supervisor_core.h).
//
// Orphans: with --drain-signal-group the supervisor makes itself the reaper of its descendants'
// orphans (become_child_subreaper), so the members a generation's main process leaves behind
// stay its children until it reaps them. A process group's id cannot be reused while any member
// exists, zombies included, so signalling a group whose leader is gone never reaches a stranger's.
//
// Single-threaded use, like the rest of the supervisor; everything from /proc is bounded.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "baton/result.h"

namespace baton {

// kill(-pgid, sig).
Status signal_process_group(pid_t pgid, int sig);

// Some process (a zombie not yet reaped too) is still in group `pgid`.
bool process_group_has_members(pid_t pgid);

// PR_SET_CHILD_SUBREAPER on the calling process.
Status become_child_subreaper();

// What the supervisor looks at in a generation's main process.
struct ProcessShape {
  std::string program;  // the file name of /proc/PID/exe ("dash", "bash", "python3.11")
  size_t children = 0;  // its live children (/proc/PID/task/*/children), at most kMaxCounted
};
constexpr size_t kMaxCountedChildren = 1024;

// Reads the shape of process `pid`; an Error when it is gone or /proc cannot be read.
Result<ProcessShape> inspect_process(pid_t pid);

// A POSIX shell, by its program's file name: sh, dash, bash, ash, ksh, mksh, zsh, busybox.
bool is_shell(std::string_view program);

// The warning for generation `id` whose main process `pid` has `shape`: "" unless it is a shell
// with children.
std::string shell_wrapper_warning(int id, pid_t pid, const ProcessShape& shape);

}  // namespace baton

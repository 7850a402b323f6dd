// orphan_guard.h: the app's processes end with the supervisor, however the supervisor ends.
//
// Each generation's main process is SIGKILLed by the kernel when the supervisor dies
// (PR_SET_PDEATHSIG, see spawner.h), but that setting does not reach the processes it forks: a
// pre-forking server's workers would keep the listeners bound until they notice their parent is
// gone (gunicorn's take up to 15 s), and the next supervisor could not bind.
//
// So the supervisor forks one small process at start, the guard, in a process group of its own
// (a signal to the supervisor's group does not reach it). It holds the read end of a pipe; the
// supervisor tells it each generation's process group as it starts and as it ends: when its main
// process is reaped, or, for a group that lives on after it (--drain-signal-group), when the
// last member is reaped or the group is killed at the drain deadline. When the pipe reaches EOF
// (the supervisor exited, normally or not), the guard SIGKILLs every process group still
// registered and exits. After a normal stop none is registered.
//
// The app, when it runs as baton's own user, can kill the guard. The supervisor reaps it as its
// child, logs it, starts a new guard and tells it every group it watches (Supervisor::guard_gone);
// only a kill of both the guard and the supervisor in the moment between is not covered.
//
// The wire is the pipe: records of one int32, +pgid (watch) or -pgid (forget), native order.
// A process group id cannot be reused while any member lives, zombies included, and a registered
// group's members are not all reaped by the supervisor before it is forgotten; a group that
// empties in the moment between the supervisor's death and the guard's kill is the one window
// left (a pid would have to be reused for a new group leader within it).
//
// Single-threaded use, like the rest of the supervisor.
#pragma once

#include <sys/types.h>

#include "baton/fd.h"
#include "baton/result.h"

namespace baton {

class OrphanGuard {
 public:
  // Groups the guard keeps at once; more are not watched (and logged by the caller).
  static constexpr int kMaxGroups = 4096;

  // Forks the guard. Call before any other thread exists.
  static Result<OrphanGuard> start();

  OrphanGuard() = default;
  // The guard of the supervisor this one was upgraded from (same pid, so still our child): its
  // pipe's write end, passed across the exec, and its pid.
  static OrphanGuard resume(Fd pipe, pid_t pid) {
    OrphanGuard g;
    g.pipe_ = std::move(pipe);
    g.pid_ = pid;
    return g;
  }
  int fd() const { return pipe_.get(); }
  // Telling the guard never blocks the supervisor: if its pipe is full, the record is dropped
  // and false returned.
  bool watch(pid_t pgid) { return send(pgid); }
  bool forget(pid_t pgid) { return send(-pgid); }
  pid_t pid() const { return pid_; }

 private:
  bool send(int record);
  Fd pipe_;  // write end, nonblocking, CLOEXEC
  pid_t pid_ = -1;
};

}  // namespace baton

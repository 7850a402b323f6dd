// spawner.h: starting one generation of the app.
//
// The child gets, and only gets: fd 0 from /dev/null, fds 1 and 2 as pipes read by the supervisor
// (passed through to its own stdout and stderr), and the listeners from fd 3 on, in order. It
// runs in a session and process group of its own (so a generation is killed as a whole, and no
// process outside it can join its group: the notify socket's test of identity), with the signal
// mask and dispositions reset, is SIGKILLed by the kernel if the supervisor dies (never
// orphaned), and has this environment, on top of the supervisor's:
//   LISTEN_FDS=N  LISTEN_PID=<its own pid>  LISTEN_FDNAMES=a:b  (systemd's socket activation)
//   SERVER_STARTER_PORT=127.0.0.1:8100=3;...                    (Server::Starter's)
//   BATON_GENERATION=N   NOTIFY_SOCKET=path (for sd_notify readiness)
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/listen_fds.h"  // kMaxListeners: what one child can be given (fds 3 on)

namespace baton {

// Whom a generation runs as (`--user`): set in the child before exec, after the listeners are
// in place (baton bound them, privileged ports included, before dropping anything).
// Raises baton's own soft limit on open descriptors to its hard limit: each connection taken over
// from an old generation costs one (relay.h). The generations are started with the limit baton
// had before, so an app sees the limit its manager gave.
void raise_descriptor_limit();
// Puts the limit back to the one baton was given, before baton execs itself (baton upgrade): the
// new image raises it again, and its apps get the limit the first image was given, not the raised
// one. After a failed exec, raise_descriptor_limit() again.
void restore_descriptor_limit();

struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (the user's, from the group database)
  std::string name;
};

struct SpawnRequest {
  std::vector<std::string> argv;  // argv[0] resolved to a path, or relative to working_dir
  std::string working_dir;        // "" for baton's own; else chdir'ed into (symlinks resolved now)
  std::optional<RunAs> run_as;    // unset: baton's own user
  std::vector<int> listener_fds;  // become fds 3, 4, ...
  std::map<std::string, std::string> env;  // set (overriding) in the child
  std::vector<std::string> unset_env;      // removed from the child's environment
  // Where the child's stdout and stderr go: pipes the caller reads (a generation's output), or
  // both to the supervisor's own stderr (a readiness command: its output is for the operator).
  enum class Output { kPipes, kSupervisorStderr };
  Output output = Output::kPipes;
  bool listen_pid = true;  // sets LISTEN_PID (socket activation); off for a readiness command
  // One of listener_fds, open on the program to run: executed through that descriptor
  // (execveat, AT_EMPTY_PATH), not looked up again by argv[0]'s path. -1: argv[0]'s path.
  int exec_fd = -1;
};

struct SpawnedProcess {
  pid_t pid = -1;
  Fd stdout_pipe;  // read ends, nonblocking (Output::kPipes only)
  Fd stderr_pipe;
};

// Starts the child (vfork-style: it shares the caller's memory until it execs, the caller waiting)
// and execs. Fails (with the exec errno) if the exec itself fails. Blocks every signal of the
// calling thread for the moment of the clone.
Result<SpawnedProcess> spawn_process(const SpawnRequest& request);

// In a child between fork (or clone) and exec: every signal back to its default disposition,
// then nothing blocked, so nothing of the supervisor's signal handling reaches the program it
// runs. Async-signal-safe, and safe in a child that shares the supervisor's memory.
void reset_signals_in_child();

// Finds `command` the way execvp would (PATH search when it has no '/'); checks it can run. The
// error names the program, not the setting ("/srv/app: Permission denied"): callers say which
// setting it came from.
Result<std::string> resolve_command(const std::string& command);

}  // namespace baton

// preload_env.h: what libbaton_adopt.so leaves to the programs its process runs.
//
// At load, the adopting process (pid = LISTEN_PID, BATON_ADOPT=1) keeps its inherited listeners
// and adoption variables to itself: the held descriptors become FD_CLOEXEC and LISTEN_PID,
// LISTEN_FDS, LISTEN_FDNAMES, BATON_ADOPT and BATON_ADOPT_READY leave the environment, so
// helpers it forks and execs inherit neither. One case must still hand them on: a wrapper that
// exec()s the real server in its own pid (a shell script's `exec`, the pyenv shim, the java
// launcher). So exec by that same pid through execve, execv, execvp or execvpe gets the variables
// back in the new program's environment and the descriptors without FD_CLOEXEC (restored when
// the exec fails). execl*, fexecve and posix_spawn are not interposed: by another pid they need
// nothing, and a wrapper using them in its own pid hands on nothing (the server then binds alone).
//
// No allocation: the variables are kept in a fixed pool, the exec environment is built in a fixed
// array (an environment of more than kMaxExecEnv entries is passed as it is). Not thread-safe
// against concurrent exec calls in one process (there is one exec array).
#pragma once

#include <sys/types.h>

namespace baton::adopt {

// Called once by the library's constructor of the adopting process, after it read the variables:
// marks fds [first, first + count) FD_CLOEXEC and moves the variables out of the environment.
void keep_adoption_to_ourselves(pid_t adopter, int first, int count);

}  // namespace baton::adopt

// preload_adopt.h: what the interposed bind() and unlink() of libbaton_adopt.so do with an address
// that names a listener baton holds (the behaviour is described in preload.cc; which listener
// answers which address is decided by match.h). Safe from any thread: they read the state the
// constructor wrote (preload_state.h).
#pragma once

#include <sys/socket.h>

namespace baton::adopt {

// bind(fd, addr, len) by the app: when `addr` names a held listener, dup3()s it onto `fd` (the
// app's CLOEXEC choice kept, its O_NONBLOCK choice applied), logs and notifies the adoption, and
// at the first adoption of a stream socket starts readiness (preload_readiness.h). Returns 1 when
// `fd` adopted a held socket, 0 when the bind should go to the kernel (a port baton does not hold
// logs one line), -1 on error (errno set).
int try_adopt(int fd, const sockaddr* addr, socklen_t len);

// `path` (relative to the working directory, as the kernel resolves it) is the file of a unix
// socket baton holds: unlinking it would strand the next generation.
bool is_held_unix_path(const char* path);

}  // namespace baton::adopt

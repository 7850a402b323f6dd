// unix_socket.h: the helpers every component needs around unix sockets: an address from a path,
// and who is at the other end. Part of libbaton too (compiled into it), so no other baton code.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <string_view>

#include "baton/result.h"

namespace baton {

// Fills `out` with the unix socket address `path`: a filesystem path, or "@name" for the Linux
// abstract namespace (the '@' becomes the leading NUL). Returns the length to pass to bind(2),
// connect(2) or sendto(2). Fails, with a reason and no errno, when `path` is empty, holds a NUL
// byte, or does not fit sun_path (at most 107 bytes).
Result<socklen_t> fill_unix_address(std::string_view path, sockaddr_un& out);

// The credentials (pid, uid, gid) of the process at the other end of the connected unix socket
// `fd`, as they were when it connected (SO_PEERCRED).
Result<ucred> peer_credentials(int fd);

// Whether a peer of user `uid` may act on what this process owns: the same effective user, or
// root. The one rule of the control socket and of the handover socket.
bool peer_uid_allowed(uid_t uid);

}  // namespace baton

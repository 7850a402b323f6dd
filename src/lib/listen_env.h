// listen_env.h: reading the listeners a process inherits through its environment.
//
// Two conventions are spoken:
//  - systemd socket activation (also the baton supervisor): LISTEN_PID=<our pid>, LISTEN_FDS=<n>,
//    LISTEN_FDNAMES=<name>:<name>..., descriptors 3 .. 3+n-1. LISTEN_PID naming another process
//    means the variables were meant for an ancestor: they are ignored. Names default to "unknown"
//    when LISTEN_FDNAMES is unset, as in systemd.
//  - Server::Starter: SERVER_STARTER_PORT=<addr>=<fd>;<addr>=<fd>..., the key being "port",
//    "host:port" or a unix socket path. Read only when LISTEN_FDS is absent.
// Every count and number a user controls is capped and checked: a malformed value is an Error
// naming the variable, never a guess.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "baton/fd.h"
#include "baton/instance.h"
#include "baton/result.h"
#include "common/listen_fds.h"

namespace baton {

// Pure parse of a SERVER_STARTER_PORT value.
Result<std::vector<ListenFdEntry>> parse_server_starter_port(std::string_view value);

// A listener and the descriptor that owns it.
struct OwnedListener {
  Listener info;  // info.fd == fd.get()
  Fd fd;
};

// Describes an open socket: type, bound address. Sets CLOEXEC and O_NONBLOCK on it. Errors when
// `fd` is not an open socket.
Result<Listener> describe_listener(int fd, std::string name, ListenerOrigin origin);

// Reads the environment (LISTEN_* first, else SERVER_STARTER_PORT), validates and takes ownership
// of every descriptor named, then unsets the variables. Not thread-safe (setenv/unsetenv).
Result<std::vector<OwnedListener>> inherit_listeners_from_env();

}  // namespace baton

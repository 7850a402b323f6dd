// activation.h: baton itself started by socket activation (systemd, systemd-socket-activate).
//
// When baton's own environment has LISTEN_PID=<baton's pid> and LISTEN_FDS=N, descriptors 3 ..
// 3+N-1 are listeners its manager bound. Each is matched to one --listen entry: by name, when
// LISTEN_FDNAMES gives it the entry's name (`--listen web=...` and FileDescriptorName=web), else
// by address (the socket's bound address and type equal the entry's, e.g. ListenStream=
// 127.0.0.1:8080 and --listen 127.0.0.1:8080). baton binds nothing for a matched entry and
// never unlinks a matched unix socket's file (it is the manager's). An inherited descriptor that
// matches no entry, or is not a socket, is an error: baton's manager and its command line
// disagree, and guessing would serve the wrong port.
//
// The variables are removed from the environment once read (what baton starts gets its own).
#pragma once

#include <optional>
#include <vector>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"

namespace baton {

// One slot per entry of `specs`: the inherited listener matched to it, if any. Descriptors taken
// are CLOEXEC. On error every inherited descriptor is closed.
Result<std::vector<std::optional<Fd>>> take_activated_listeners(
    const std::vector<ListenSpec>& specs);

}  // namespace baton

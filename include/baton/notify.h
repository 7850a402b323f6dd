// baton/notify.h: the service notification protocol (systemd's sd_notify), usable on its own.
//
// A state is one or more "KEY=VALUE" lines, e.g. "READY=1", "STATUS=warming caches",
// "STOPPING=1", sent as one datagram to the unix socket named by NOTIFY_SOCKET: a path, or
// "@name" for an abstract socket. Both systemd (Type=notify) and the baton supervisor listen there.
// Most servers use Instance::ready()/status()/close_listeners() instead, which call these.
//
// Thread safety: every function may be called from any thread.
#pragma once

#include <string>
#include <string_view>

#include "baton/result.h"

namespace baton {

// Sends `state` to `socket_name` (a NOTIFY_SOCKET value). Errors: the name is empty, too long for
// a unix socket address, or not absolute/abstract; sendto(2) failed (e.g. ECONNREFUSED when
// nobody listens).
Status notify_to(std::string_view socket_name, std::string_view state);

// Sends `state` to $NOTIFY_SOCKET; succeeds without sending when the variable is unset. Does not
// unset it (Instance::create() does).
Status notify(std::string_view state);

}  // namespace baton

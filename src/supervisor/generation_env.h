// generation_env.h: how a generation is told which sockets it got (the sd_listen_fds protocol,
// and Server::Starter's, for apps written for it).
//
// The listeners are at fd 3 onward in listener order, then, when there is one, baton's private
// readiness listener (named kProbeListenerName). Pure: unit-tested.
#pragma once

#include <pwd.h>

#include <map>
#include <string>
#include <vector>

#include "supervisor/listener_set.h"

namespace baton {

// LISTEN_FDS, LISTEN_FDNAMES and SERVER_STARTER_PORT. Server::Starter spells a TCP listener as
// host:port (the port alone for the wildcard), a unix one as its path, each "=fd", separated by
// ';'; it has no UDP listeners, so those are left out of its variable.
std::map<std::string, std::string> listen_env(const std::vector<OwnedListener>& listeners,
                                              bool with_probe_listener);

// Under --user, the variables that describe the user, as login(1) and systemd's User= set them:
// HOME, USER, LOGNAME, SHELL, from the user database entry `pw` (null: the user is gone from
// the database; then USER and LOGNAME from `name` alone, HOME=/ and SHELL=/bin/sh). Without
// them the app would see baton's own (HOME=/root, say).
std::map<std::string, std::string> user_env(const std::string& name, const passwd* pw);

}  // namespace baton

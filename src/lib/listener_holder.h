// listener_holder.h: before the legacy handover fallback signals a process, prove that it holds
// the contested listener.
//
// The fallback learns a pid from whoever answers at the handover path (SO_PEERCRED). That is not
// proof that the process holds the port the new instance wants: any process of the same uid can
// listen at a path the server can reach. So, before any signal:
//   1. the sockets bound to the contested port are read from /proc/net/{tcp,tcp6} (LISTEN state)
//      or /proc/net/{udp,udp6}: their inodes;
//   2. one of them must be among the process's descriptors (/proc/PID/fd/N -> "socket:[INODE]");
//   3. the signal goes through a pidfd opened when the pid was learnt, so a pid that died and was
//      reused meanwhile is never signalled (pidfd_send_signal fails with ESRCH).
// When the proof fails, nothing is signalled; the caller logs one line.
#pragma once

#include <sys/types.h>

#include <string_view>
#include <vector>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"

namespace baton::handover {

// The inodes of the sockets bound to local port `port` in one /proc/net table ("tcp", "tcp6",
// "udp", "udp6" share a format); with `listen_only`, only those in LISTEN state. Pure.
std::vector<ino_t> sockets_on_port(std::string_view table, int port, bool listen_only);

// A pidfd for `pid`, or an invalid Fd when the process is gone.
Fd open_pidfd(pid_t pid);

// Sends `sig` to the process behind `pidfd` (`pid`) only if it holds a socket bound to the port
// of `address` (TCP: listening), other than the one with inode `exclude` (ours, after an
// SO_REUSEPORT overlap; 0: none). Errors say why nothing was sent: no such socket in the process,
// the process is gone, /proc unreadable.
Status signal_if_holder(int pidfd, pid_t pid, const Address& address, int sig, ino_t exclude = 0);

// The inode of a socket descriptor (0 on error).
ino_t socket_inode(int fd);

}  // namespace baton::handover

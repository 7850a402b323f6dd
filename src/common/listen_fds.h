// listen_fds.h: systemd's socket-activation variables, parsed (pure, no I/O).
//
// LISTEN_PID=<pid>, LISTEN_FDS=<n>, LISTEN_FDNAMES=<name>:<name>...: descriptors 3 .. 3+n-1.
// LISTEN_PID naming another process means the variables were meant for an ancestor: they are
// ignored. Names default to "unknown" when LISTEN_FDNAMES is unset, as in systemd. Read by
// libbaton (an app under baton or systemd) and by `baton run` itself (baton under systemd).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "baton/result.h"

namespace baton {

// The most listening sockets one process is handed (LISTEN_FDS, from fd 3). The one cap of baton:
// on what the supervisor passes to a generation (its readiness listener included), so on --listen,
// and on what libbaton accepts from LISTEN_FDS / SERVER_STARTER_PORT / a handover.
inline constexpr int kMaxListeners = 128;
inline constexpr int kListenFdsStart = 3;

// One descriptor the environment says we hold, by number, with its name.
struct ListenFdEntry {
  std::string name;
  int fd = -1;
};

// Pure parse of the systemd variables (each may be null = unset). Returns the entries (empty when
// LISTEN_FDS is unset, or LISTEN_PID is another process).
Result<std::vector<ListenFdEntry>> parse_listen_fds_env(const char* listen_pid,
                                                        const char* listen_fds,
                                                        const char* listen_fdnames, pid_t self);

// A whole decimal number in [min, max], no sign, no spaces, no leading junk.
bool parse_decimal(std::string_view text, long long min, long long max, long long* out);
// systemd's rule for descriptor names: 1..255 printable ASCII characters, no ':'.
bool valid_fd_name(std::string_view name);
// `s` cut at every `sep` (an empty `s` gives one empty piece).
std::vector<std::string_view> split(std::string_view s, char sep);

}  // namespace baton

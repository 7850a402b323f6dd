// preload_state.h: what libbaton_adopt.so knows about the listeners baton handed its process,
// and how it speaks: a log line on stderr, a datagram to the supervisor (protocol in preload.cc).
//
// The state is written by the library's constructor only (preload.cc), while the process is
// single-threaded, and read-only afterwards, so every thread may read it without a lock. A
// process that does not adopt (g_active false) has no held sockets and the interposed functions
// pass every call through.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>

#include "adopt/match.h"

namespace baton::adopt {

// The same bound as kMaxListeners (src/common/listen_fds.h; not included: this library has no C++
// runtime): baton never passes more, so a larger LISTEN_FDS is refused rather than walked.
constexpr int kMaxHeld = 128;
constexpr int kProtocolVersion = 1;
constexpr const char kProbeName[] = "baton-probe";

enum class ReadyMode { kNone, kHttp, kAccept, kBind };

extern HeldSocket g_held[kMaxHeld];
extern int g_held_count;
extern bool g_active;    // this process adopts (BATON_ADOPT=1, LISTEN_PID is us)
extern bool g_has_unix;  // some held socket is a unix path (unlink protection)
extern char g_notify_path[sizeof(sockaddr_un::sun_path)];
extern socklen_t g_notify_len;  // 0: no NOTIFY_SOCKET
extern ReadyMode g_ready_mode;  // BATON_ADOPT_READY (default http:/)
extern char g_ready_path[512];  // its PATH
extern int g_supervisor_probe;  // index of the held "baton-probe" listener, or -1

// One line on stderr, "baton-adopt[PID]: ...", in one write (lines of threads do not interleave).
void log_line(const char* format, ...) __attribute__((format(printf, 1, 2)));
// One datagram to NOTIFY_SOCKET (nothing without one); a failure to send is logged.
void notify(const char* format, ...) __attribute__((format(printf, 1, 2)));

const char* held_name(const HeldSocket& h);  // its LISTEN_FDNAMES entry, "-" when unnamed
char* held_address(const HeldSocket& h, char* out, size_t size);  // "127.0.0.1:8080"
void held_summary(char* out, size_t size);  // "http=127.0.0.1:8080, 127.0.0.1:8081" or "nothing"

// The held socket `fd` refers to (under any fd number, via any dup), or -1. Sockets are told apart
// by inode, so fd numbers that the app closes and reuses never confuse us.
int held_index_of(int fd);
bool is_adopted(int fd);         // a held socket other than the supervisor's probe listener
bool is_adopted_stream(int fd);  // ... of type SOCK_STREAM

}  // namespace baton::adopt

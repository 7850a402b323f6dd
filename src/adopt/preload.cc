// preload.cc: libbaton_adopt.so, which lets an app that binds its own port run under baton.
//
// `baton run --adopt` starts the app with LD_PRELOAD=libbaton_adopt.so, BATON_ADOPT=1 and the
// listeners baton holds from fd 3 (LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES). Inside the app:
//
//   bind(fd, ADDR)   ADDR matching a listener baton holds (rules in match.h): the held listener is
//                    dup3()ed onto the app's fd number, keeping the app's CLOEXEC choice and
//                    applying its O_NONBLOCK choice; bind returns 0. So every generation of the app
//                    accepts from the one kernel socket baton owns, and connections queued while
//                    one generation leaves are taken by the next. Options the app set on its own
//                    socket before bind (SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY) went with that
//                    socket: baton's listener is bound already. Any other bind is untouched; a bind
//                    of an IP port baton does not hold logs one warning line.
//   listen(fd)       on an adopted socket: success, without touching it (it listens already, and
//                    the app's backlog, e.g. Python's 5, must not shrink baton's).
//   shutdown(fd)     on an adopted socket: success, without touching it. On Linux, shutdown() of a
//                    listening socket stops it listening for every process that shares it.
//                    Also success without touching it: SHUT_WR or SHUT_RDWR of a connection baton
//                    is taking over (its read side shut from outside while the peer is still
//                    there, docs/drain.md) after the app read end-of-file from it, so that no FIN
//                    reaches a client baton keeps.
//   read(fd) ...     read, readv, recv, recvfrom, recvmsg and their _chk forms: passed through;
//                    an end-of-file is noted (one bit per descriptor, cleared by accept()) for
//                    shutdown() above.
//   close(fd)        not interposed: the app's fd is a duplicate, so close() drops only this
//                    process's reference; baton and the other generation keep the socket.
//   getsockname(fd)  not interposed: the app's fd is baton's socket, so it reports baton's address.
//   unlink(PATH)     of a unix socket path baton holds: success, without removing it (libuv, for
//                    one, unlinks its socket file on close, which would strand the next
//                    generation).
//
// Readiness: proof that THIS process serves, although it shares its public socket with the old
// generation. With NOTIFY_SOCKET set, at its first adoption the library opens a private loopback
// listener and routes it into the app's own accept path: epoll_ctl() on the adopted fd is mirrored
// onto the private listener (same events, same epoll_data), poll()/ppoll() on the adopted fd also
// wait on it, and accept()/accept4() on the adopted fd returns a pending private connection first.
// A thread of the library then sends `GET PATH` through the private listener; only this process
// can accept it, so a 2xx/3xx answer proves this generation's event loop, accept call, HTTP parser
// and handler work. The library then sends READY=1 and stops routing. BATON_ADOPT_READY selects:
//   http:PATH (default http:/)  as above;
//   accept                      READY=1 once the app accepted a private connection (any protocol);
//   bind                        READY=1 at the first adoption (proves nothing about serving);
//   none                        the library never sends READY=1.
// When the supervisor passes its own probe listener (named "baton-probe", for `--ready http:PATH`)
// the library routes that one instead, for the whole life of the process, and sends no READY=1:
// the supervisor's own probe then reaches this generation's accept path.
//
// Notify protocol, version 1: datagrams to NOTIFY_SOCKET, KEY=VALUE lines, as sd_notify:
//   BATON_ADOPT_LOADED=1, BATON_ADOPT_PROTOCOL=1   at load (the supervisor learns the preload ran)
//   BATON_ADOPTED=NAME ADDRESS                      each adoption (NAME "-" when unnamed)
//   BATON_ADOPT_PASSTHROUGH=ADDRESS                 the app bound an IP port baton does not hold
//   BATON_ADOPT_ERROR=MESSAGE                       a configuration error (bad BATON_ADOPT_READY)
//   READY=1                                         the probe above succeeded
//   STATUS=baton-adopt: ...                         a human-readable line with each of the above
//
// Which processes adopt: only the one whose pid is LISTEN_PID, with BATON_ADOPT=1, and LISTEN_FDS
// at most kMaxHeld (anything more was not written by baton: one line, and nothing is adopted).
// At load that process keeps its listeners and variables to itself (preload_env.h): the held
// descriptors become CLOEXEC and the variables leave the environment, so helpers it forks and
// execs inherit neither; an exec in its own pid (a wrapper exec()ing the real server: a shell
// script, the pyenv shim) hands both on, so the server adopts. A child forked without exec shares
// the parent's state, so a pre-fork server's workers accept the adopted socket like the master.
//
// The library uses no C++ runtime (no exceptions, no allocation, no static guards) so it loads
// into any process without bringing libstdc++ along.
//
// The library, file by file: preload.cc (this file: the constructor, which reads what baton
// passed), preload_state.h (what it holds, and its log and notify output), preload_interpose.h
// (the C library's own functions, and the interposed ones), preload_adopt.h (bind and unlink of
// a held address), preload_readiness.h (the probe and the routing of its listener), preload_env.h
// (what the process's children inherit), match.h (which held listener answers which address).
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "adopt/match.h"
#include "adopt/preload_env.h"
#include "adopt/preload_interpose.h"
#include "adopt/preload_state.h"

namespace baton::adopt {
namespace {

bool parse_int(const char* s, long* out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

void parse_ready_mode() {
  const char* mode = getenv("BATON_ADOPT_READY");
  if (mode == nullptr || *mode == '\0') return;  // default: http:/
  if (strcmp(mode, "none") == 0) {
    g_ready_mode = ReadyMode::kNone;
  } else if (strcmp(mode, "accept") == 0) {
    g_ready_mode = ReadyMode::kAccept;
  } else if (strcmp(mode, "bind") == 0) {
    g_ready_mode = ReadyMode::kBind;
  } else if (strncmp(mode, "http:", 5) == 0 && mode[5] == '/' &&
             strlen(mode + 5) < sizeof(g_ready_path) && strpbrk(mode, " \r\n") == nullptr) {
    g_ready_mode = ReadyMode::kHttp;
    strcpy(g_ready_path, mode + 5);
  } else {
    g_ready_mode = ReadyMode::kNone;
    log_line(
        "BATON_ADOPT_READY=%s is not http:/PATH, accept, bind or none; "
        "this generation will not declare itself ready",
        mode);
    notify(
        "BATON_ADOPT_ERROR=BATON_ADOPT_READY=%s is not http:/PATH, accept, bind or none\n"
        "STATUS=baton-adopt: bad BATON_ADOPT_READY",
        mode);
  }
}

void record_held(int fd, const char* name, size_t name_len) {
  if (g_held_count >= kMaxHeld) {
    log_line("more than %d inherited listeners; fd %d and above are not adopted", kMaxHeld, fd);
    return;
  }
  HeldSocket h;
  h.fd = fd;
  struct stat st;
  socklen_t optlen = sizeof(h.type);
  h.addr_len = sizeof(h.addr);
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
      getsockopt(fd, SOL_SOCKET, SO_TYPE, &h.type, &optlen) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&h.addr), &h.addr_len) != 0) {
    log_line("inherited fd %d is not a socket; ignoring it", fd);
    return;
  }
  h.dev = st.st_dev;
  h.ino = st.st_ino;
  if (h.addr.ss_family == AF_INET6) {
    int v6only = 0;
    optlen = sizeof(v6only);
    if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen) == 0) h.v6only = v6only != 0;
  }
  if (h.addr.ss_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&h.addr);
    if (h.addr_len > offsetof(sockaddr_un, sun_path) && un->sun_path[0] != '\0') g_has_unix = true;
  }
  if (name_len >= sizeof(h.name)) name_len = sizeof(h.name) - 1;
  memcpy(h.name, name, name_len);
  h.name[name_len] = '\0';
  h.probe = strcmp(h.name, kProbeName) == 0;
  g_held[g_held_count++] = h;
}

}  // namespace

__attribute__((constructor)) void baton_adopt_init() {
  resolve_real_functions();  // now, while single-threaded

  const char* adopt = getenv("BATON_ADOPT");
  if (adopt == nullptr || strcmp(adopt, "1") != 0) return;
  long pid = 0, count = 0;
  if (!parse_int(getenv("LISTEN_PID"), &pid) || pid != getpid()) return;  // not ours: inert
  if (!parse_int(getenv("LISTEN_FDS"), &count) || count <= 0) return;

  const char* notify_socket = getenv("NOTIFY_SOCKET");
  if (notify_socket != nullptr && (notify_socket[0] == '/' || notify_socket[0] == '@')) {
    size_t n = strlen(notify_socket);
    if (n < sizeof(g_notify_path)) {
      memcpy(g_notify_path, notify_socket, n);
      if (g_notify_path[0] == '@') g_notify_path[0] = '\0';
      g_notify_len = static_cast<socklen_t>(n);
    }
  }
  if (count > kMaxHeld) {
    log_line("LISTEN_FDS=%ld: more than %d descriptors, not from baton; adopting nothing", count,
             kMaxHeld);
    notify("BATON_ADOPT_ERROR=LISTEN_FDS=%ld is more than %d\nSTATUS=baton-adopt: bad LISTEN_FDS",
           count, kMaxHeld);
    return;
  }

  const char* names = getenv("LISTEN_FDNAMES");
  for (long i = 0; i < count; ++i) {
    const char* name = "";
    size_t name_len = 0;
    if (names != nullptr) {
      name = names;
      const char* colon = strchr(names, ':');
      name_len = colon != nullptr ? static_cast<size_t>(colon - names) : strlen(names);
      names = colon != nullptr ? colon + 1 : nullptr;
    }
    record_held(3 + static_cast<int>(i), name, name_len);
  }
  if (g_held_count == 0) return;
  for (int i = 0; i < g_held_count; ++i) {
    if (!g_held[i].probe) continue;
    g_supervisor_probe = i;
    // The routed accept must never block on it. Only this generation accepts on this listener
    // (the supervisor connects to it), so setting O_NONBLOCK on the shared description is safe.
    int fl = fcntl(g_held[i].fd, F_GETFL);
    if (fl >= 0) fcntl(g_held[i].fd, F_SETFL, fl | O_NONBLOCK);
  }
  parse_ready_mode();
  g_active = true;
  keep_adoption_to_ourselves(getpid(), 3, static_cast<int>(count));

  char summary[512];
  held_summary(summary, sizeof(summary));
  notify("BATON_ADOPT_LOADED=1\nBATON_ADOPT_PROTOCOL=%d\nSTATUS=baton-adopt: loaded, holding %s",
         kProtocolVersion, summary);
}

}  // namespace baton::adopt

// app_support.h: what the test apps (testapp, badapp, plainapp) share.
//
// They speak the socket-activation conventions by hand, on purpose independently of libbaton and
// src/common, so the supervisor is tested against a second implementation of LISTEN_FDS and
// sd_notify: what is written here follows the systemd documentation, not baton's code.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace baton::testapps {

// A listener inherited through LISTEN_FDS: fd 3 onward, named by LISTEN_FDNAMES ("" when unnamed).
struct Listener {
  int fd = -1;
  std::string name;
};

// At most this many inherited listeners are taken.
inline constexpr int kMaxListeners = 64;

// The listeners passed to this process; nullopt when LISTEN_PID is not this process or LISTEN_FDS
// is missing.
std::optional<std::vector<Listener>> inherited_listeners();

// Sets O_NONBLOCK on each listener; false (errno set) when fcntl fails. An app that waits in poll()
// and then accepts needs it: another process may share the socket (a unix listener under `baton
// run` is shared by every generation; so is a TCP one that baton cannot steer), take the
// connection between that poll() and the accept(), and a blocking accept() then waits for the next
// connection (accept(2), NOTES), deaf to everything else the app should do meanwhile. Non-blocking,
// the loser's accept() fails with EAGAIN. O_NONBLOCK lives on the open file description, shared
// with the supervisor and the other generations, as libbaton's listeners set it (docs/library.md);
// Linux does not pass it on to accepted connections.
bool make_nonblocking(const std::vector<Listener>& listeners);

// Sends one sd_notify datagram ("READY=1\nSTATUS=serving") to $NOTIFY_SOCKET: a path, or "@name"
// in the abstract namespace. Does nothing when it is unset; a failure is ignored, as sd_notify's
// callers do.
void notify(const char* text);

// Reads from the connected socket `conn` until `pending` holds a whole request head (up to the
// blank line), and returns it, leaving what followed in `pending`. nullopt when the client left or
// sent more than 64 KiB without a blank line.
std::optional<std::string> read_request_head(int conn, std::string& pending);

// The path of a request head ("GET /slow?ms=5 HTTP/1.1..." -> "/slow?ms=5"); "/" when malformed.
std::string request_path(const std::string& head);

// The value of $BATON_GENERATION, or `fallback` when unset.
std::string generation(const char* fallback);

}  // namespace baton::testapps

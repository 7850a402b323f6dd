// baton/instance.h: the client library's whole lifecycle API, for one running server process.
//
// A server built on baton runs the same way in development (alone, binding its own addresses),
// under the baton supervisor or systemd (sockets inherited through LISTEN_FDS), and in direct
// handover mode (sockets taken from the previous instance of itself over a unix socket, with no
// supervisor at all). The verbs, in the order a server calls them:
//
//   auto inst = baton::Instance::create(options);   // early: drain signal handler, environment
//   ... expensive initialisation ...
//   inst->listeners() / inst->listen("http", "127.0.0.1:8080")   // sockets: inherited, taken, or
//   bound
//   ... start accepting on them (nonblocking + epoll) ...
//   inst->ready();                        // READY=1; in handover mode the old instance now drains
//   inst->status("42 connections");       // optional STATUS= text
//   wait until inst->drain_fd() is readable (SIGTERM, or the next instance took over)
//   stop accepting, inst->close_listeners();   // STOPPING=1, our copies closed
//   finish in-flight work before inst->drain_deadline(), exit.
//
// Invariant of direct handover: at most two instances hold the listeners, at most one of them is
// not ready, and the old one stops accepting only after the new one accepts. If the new instance
// dies at any point before ready() has returned, the old one never stopped accepting.
//
// Listening sockets: every listener the library hands out is CLOEXEC and O_NONBLOCK. O_NONBLOCK
// belongs to the open file description, which is shared with the other processes holding the same
// socket (the previous or next instance, the supervisor), so a server must accept from an event
// loop (epoll) and treat EAGAIN from accept(2) as "another process won the race", never block in
// accept. The library never calls shutdown(2) on a listener: that would break it for every process
// sharing it; draining means closing our own descriptors only.
//
// Errors are values (baton::Result); nothing is thrown. Thread safety: one Instance per process
// (create() refuses a second one). drain_fd(), draining() and drain_deadline() may be called from
// any thread at any time; every other member is meant for the thread that created the Instance.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "baton/result.h"

namespace baton {

struct InstanceOptions {
  // Direct handover: the unix socket path over which this instance takes the listeners of the
  // instance already running (if any) and, once ready, offers its own to the next one. Empty (the
  // default): no direct handover. The socket is created with mode 0600, and the peer's uid is
  // checked on both sides: only the owner of the old instance (or root) may take its sockets.
  std::string handover_path;
  // Bound on each step of a handover as the new instance (connect, offer, acknowledgement), and on
  // the retries of the terminate-then-bind fallback. Default 10 s.
  std::chrono::milliseconds handover_timeout{10000};
  // Bound on one handover session as the old instance: from a new instance's connection to its
  // READY. The old instance answers one new instance at a time, so a peer that stops midway
  // (stuck, stopped, or hostile) would block every later handover; at this deadline it is
  // dropped, this instance keeps serving, and the next new instance is answered. A new instance
  // that calls ready() later than this after listeners() finds no acknowledgement (both then
  // accept until the old one is stopped). Default 60 s. A peer that sends nothing at all (a new
  // instance says HELLO as soon as it connects) is dropped after 5 s, or this bound if shorter.
  std::chrono::milliseconds handover_session_timeout{60000};
  // How long a drain may take once asked; drain_deadline() is the moment of the ask plus this.
  // Default 30 s. The library does not enforce it: the server decides what to do when it passes.
  std::chrono::milliseconds drain_timeout{30000};
  // Turn SIGTERM and SIGINT into a drain request (a handler that only writes to drain_fd()).
  // Default on. Off: the server handles signals itself and calls request_drain().
  bool handle_signals = true;
  // Receives one line per lifecycle event (handover taken, fallback used, drain asked...). Called
  // from the creating thread or the library's handover thread. Default: "baton: LINE" on stderr.
  std::function<void(const std::string& line)> log;
};

// Where a listener came from.
enum class ListenerOrigin {
  kInherited,  // LISTEN_FDS (baton supervisor, systemd) or SERVER_STARTER_PORT
  kHandover,   // taken from the previous instance over the handover socket
  kBound,      // bound by this process (run alone, or a fallback)
};

// One listening socket. The descriptor is owned by the Instance: it stays valid until
// close_listeners() or the Instance's destruction. Do not close it yourself.
struct Listener {
  std::string name;  // LISTEN_FDNAMES entry, SERVER_STARTER_PORT key, or the name given to listen()
  std::string address;  // e.g. "127.0.0.1:8080", "[::1]:80", "unix:/run/app.sock", "udp:..."
  int fd = -1;          // borrowed; CLOEXEC, O_NONBLOCK
  int type = 0;         // SOCK_STREAM or SOCK_DGRAM
  ListenerOrigin origin = ListenerOrigin::kBound;
};

class Instance {
 public:
  // Verb 1: create. Reads and then unsets LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES,
  // SERVER_STARTER_PORT and NOTIFY_SOCKET (so children do not inherit them), takes ownership of
  // the inherited descriptors, and installs the SIGTERM/SIGINT handler. Talks to no other process.
  // Call it early, before starting threads (it changes the environment).
  // Errors: a malformed LISTEN_* / SERVER_STARTER_PORT value (the message names the variable), an
  // inherited descriptor that is not open, an Instance already existing in this process.
  // The inherited environment is ignored (not an error) when LISTEN_PID names another process.
  static Result<std::unique_ptr<Instance>> create(InstanceOptions options = {});
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  // Verb 2: listeners. Every listener this instance holds. The first call (or the first listen())
  // in handover mode connects to handover_path and takes the running instance's listeners; call it
  // only once initialised, as the old instance keeps serving until ready(). If nobody answers
  // there, nothing is taken. If a process answers but does not speak the protocol (an older
  // build), its pid is remembered for the fallback described at listen().
  // Errors: the handover peer is another user, breaks the protocol, or does not answer in time.
  Result<std::vector<Listener>> listeners();

  // Verb 2b: listen. The listener called `name` if one was inherited or taken over; else one whose
  // address equals `address`; else a fresh bind of `address` (see common address spellings:
  // "8080", "127.0.0.1:8080", "[::1]:8080", "unix:/path", "udp:host:port"), recorded under `name`.
  // Fallback when the bind finds the address in use and an older instance holds it: first an
  // SO_REUSEPORT bind beside it (works if the old socket has SO_REUSEPORT; the old instance is sent
  // SIGTERM at ready()), else, if the old instance's pid is known, terminate-then-bind: SIGTERM,
  // then retry the bind until handover_timeout. Each fallback logs one line saying which was used.
  // The old instance is signalled only if it holds a socket on the contested port (checked through
  // /proc, signalled through a pidfd): an unrelated process at handover_path is never signalled.
  Result<Listener> listen(std::string_view name, std::string_view address);

  // Verb 3: ready. Tells the world this instance serves: in handover mode, tells the old instance
  // to drain (and waits for its acknowledgement), then starts offering its listeners on
  // handover_path; then sends READY=1 to NOTIFY_SOCKET when set. Call it once accepting.
  // Errors (all before the old instance is told anything, so it keeps serving): the handover
  // socket cannot be bound next to handover_path; handover mode but listeners()/listen() never
  // called. Also an error: sending READY=1 failed (the handover has happened by then). Logged, not
  // errors: a missing acknowledgement from the old instance (both accept until it stops), and a
  // failure to rename our socket over handover_path (only the next handover is lost).
  Status ready();

  // Verb 4: status. Sends STATUS=text to NOTIFY_SOCKET (no-op when unset). Newlines are replaced.
  Status status(std::string_view text);

  // Verb 5: drain. drain_fd() becomes readable (and stays readable; never read from it) once a
  // drain is asked: SIGTERM/SIGINT, a new instance's handover, or request_drain(). It is an eventfd
  // owned by the Instance, suitable for epoll from any number of threads.
  int drain_fd() const;
  bool draining() const;
  // The moment the drain must be finished by: time of the ask + drain_timeout (time_point::max()
  // while no drain was asked).
  std::chrono::steady_clock::time_point drain_deadline() const;
  void request_drain();

  // Verb 6: stop. Sends STOPPING=1 and closes this process's copies of every listener. Remove the
  // listeners from your epoll sets first: a closed descriptor whose socket lives on in another
  // process stays registered in epoll. Idempotent.
  Status close_listeners();

  // True when this instance took its listeners from a previous instance over handover_path.
  bool took_over() const;

 private:
  struct State;
  explicit Instance(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace baton

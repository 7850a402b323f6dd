// handover.h: the I/O halves of direct handover (protocol: lib/handover_protocol.h).
//
// The child half (take_listeners, finish_takeover) runs in the new instance, on the thread that
// calls Instance::listeners()/ready(). The parent half (HandoverParent) runs on its own thread in
// the instance that serves, answering one new instance at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "baton/fd.h"
#include "baton/instance.h"
#include "baton/result.h"
#include "lib/listen_env.h"

namespace baton::handover {

struct Takeover {
  enum class Outcome {
    kNoPeer,      // nobody serves the path: run alone
    kTaken,       // listeners received; `connection` stays open until finish_takeover()
    kLegacyPeer,  // a process of our uid serves the path but does not speak protocol v1
  };
  Outcome outcome = Outcome::kNoPeer;
  std::vector<OwnedListener> listeners;
  Fd connection;
  pid_t peer_pid = 0;  // from SO_PEERCRED; 0 when unknown
  std::string detail;  // why the peer counts as legacy
};

// Connects to `path` and asks for the listeners. Bounded by `timeout` overall, retrying while the
// old instance answers "busy/draining, retry". Errors: the peer belongs to another user, or it
// speaks the protocol but breaks it, or a system call failed.
Result<Takeover> take_listeners(const std::string& path, std::chrono::milliseconds timeout);

// Sends READY on the connection of a Takeover and waits (bounded) for DRAINING; returns the pid
// that now drains.
Result<pid_t> finish_takeover(int connection, std::chrono::milliseconds timeout);

// The parent half: serves `path` on a thread until destroyed.
class HandoverParent {
 public:
  struct Hooks {
    // Runs `fn` with the listeners held open (a lock held around the call), and whether this
    // instance drains already.
    std::function<void(const std::function<void(const std::vector<Listener>&, bool)>& fn)>
        with_listeners;
    std::function<void()> drain;  // the new instance is ready
    std::function<void(const std::string&)> log;
    // Bound on one session, from the new instance's connection to its READY: a peer still
    // connected at the deadline is dropped (see InstanceOptions::handover_session_timeout).
    std::chrono::milliseconds session_timeout{60000};
    // Bound on a peer's silence before its first packet: a new instance sends HELLO as soon as
    // it connects, so a connection that says nothing this long is dropped at once rather than
    // holding the one session (and every later handover) until session_timeout.
    std::chrono::milliseconds hello_timeout{5000};
  };
  // Binds the socket, mode 0600, at a private name next to `path` ("PATH.PID.new"); nothing is
  // visible at `path` yet. Fails early (before the old instance is told to drain) on a bad path.
  static Result<std::unique_ptr<HandoverParent>> prepare(const std::string& path, Hooks hooks);
  // Renames the socket over `path` (atomically replacing the old instance's) and starts answering
  // on a thread. Idempotent.
  Status publish();
  // prepare() then publish().
  static Result<std::unique_ptr<HandoverParent>> start(const std::string& path, Hooks hooks);
  // Stops the thread; unlinks `path` only if no successor was handed the listeners and the path
  // still names our socket (or the private name, if never published).
  ~HandoverParent();

 private:
  HandoverParent() = default;
  void run();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton::handover

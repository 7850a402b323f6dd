// manager_notify.h: baton telling its own service manager what it does (sd_notify, sending side).
//
// When baton itself is started with $NOTIFY_SOCKET (systemd's Type=notify or notify-reload), it
// sends, each as its own datagram (systemd's protocol: newline-separated KEY=VALUE):
//   READY=1, MAINPID=<baton's pid>, STATUS=...  once the first generation is proven ready
//   RELOADING=1, MONOTONIC_USEC=<now>           when a reload starts (also one refused at once)
//   READY=1                                     when that reload ends, succeeded or rolled back
//   STOPPING=1                                  when baton starts to stop
//   STATUS=<the serving generation...>          whenever that line changes
// Nothing is sent before the first READY=1 except STATUS= and STOPPING=1: to the manager a reload
// exists only once the service is up.
// With $WATCHDOG_USEC (systemd's WatchdogSec=) and $WATCHDOG_PID absent or naming baton, baton
// also sends WATCHDOG=1 every half of that time, from a timer of its event loop: the pings stop
// when the loop does (a callback that never returns, a stopped process), and the manager then
// acts (systemd: kills and, with Restart=, restarts). Both variables are removed from the
// environment, as NOTIFY_SOCKET is, and handed again to the binary of an in-place upgrade.
//
// ManagerNotifier decides what to send from successive snapshots of the supervisor's state
// (ManagerView), taken after each batch of events, so the core stays free of I/O and of this
// protocol; it is pure and unit-tested. ManagerSocket sends, never blocking: a datagram the
// manager's socket cannot take at once is dropped (systemd's own client does the same).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"

namespace baton {

struct ManagerView {
  int serving_generation = 0;  // 0: none
  int serving_pid = 0;
  int starting_generation = 0;  // 0: none
  int reload_id = 0;            // of the last reload started (0: none yet)
  bool reload_in_progress = false;
  std::uint64_t reloads_ended = 0;  // reloads that succeeded or failed, refused ones included
  bool stopping = false;
};

class ManagerNotifier {
 public:
  explicit ManagerNotifier(pid_t main_pid) : main_pid_(main_pid) {}
  // The datagrams to send, in order, for the change from the previous view to `now`.
  // `monotonic_usec` is CLOCK_MONOTONIC now, in microseconds (for RELOADING=1).
  std::vector<std::string> update(const ManagerView& now, std::uint64_t monotonic_usec);

  static std::string status_line(const ManagerView& view);

  // What was told so far, carried across an in-place upgrade (upgrade_state.h) so the successor
  // neither says READY=1 again nor takes a reload under way for a new one. STATUS= is said again.
  struct Carried {
    ManagerView last;
    bool ready_sent = false;
    bool stopping_sent = false;
  };
  Carried carried() const { return {last_, ready_sent_, stopping_sent_}; }
  void resume(const Carried& c) {
    last_ = c.last;
    ready_sent_ = c.ready_sent;
    stopping_sent_ = c.stopping_sent;
  }

 private:
  pid_t main_pid_;
  ManagerView last_;
  bool ready_sent_ = false;
  bool stopping_sent_ = false;
  std::string status_sent_;
};

class ManagerSocket {
 public:
  // Reads $NOTIFY_SOCKET (a path, or @name for an abstract socket) and removes it from the
  // environment, so that nothing baton starts mistakes it for its own manager. nullopt when it
  // is unset or empty; an error when it cannot be used.
  static Result<std::optional<ManagerSocket>> from_environment();
  // The socket of a supervisor this one was upgraded from, and the name it was read from.
  static Result<ManagerSocket> adopt(Fd fd, const std::string& name);
  int fd() const { return fd_.get(); }
  // Sends one datagram; false when it could not be sent now.
  bool send(const std::string& datagram);
  const std::string& name() const { return name_; }

 private:
  ManagerSocket(Fd fd, Address address, std::string name)
      : fd_(std::move(fd)), address_(address), name_(std::move(name)) {}
  Fd fd_;
  Address address_;
  std::string name_;
};

// The manager's watchdog timeout from the values of $WATCHDOG_USEC and $WATCHDOG_PID (null when
// unset): nullopt when there is none for process `self` (no or an empty WATCHDOG_USEC, or a
// WATCHDOG_PID naming another process); an error for a value that is not a positive number.
// Timeouts over kMaxWatchdog are taken as kMaxWatchdog. Pure.
constexpr std::chrono::microseconds kMaxWatchdog = std::chrono::hours(24);
Result<std::optional<std::chrono::microseconds>> parse_watchdog(const char* usec, const char* pid,
                                                                pid_t self);
// parse_watchdog() of this process's environment, and both variables removed from it.
Result<std::optional<std::chrono::microseconds>> watchdog_from_environment();
// How often to send WATCHDOG=1 for a timeout: half of it (sd_watchdog_enabled(3) advises so),
// and never more often than every millisecond.
std::chrono::microseconds watchdog_interval(std::chrono::microseconds timeout);

// CLOCK_MONOTONIC now, in microseconds.
std::uint64_t monotonic_usec();

}  // namespace baton

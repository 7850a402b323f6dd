// upgrade_state.h: what a supervisor hands its successor across an in-place upgrade
// (`baton upgrade`: the baton binary at its path executed again, in the same pid, so the
// generations stay its children). docs/upgrade.md has the reasoning.
//
// Format, version kUpgradeStateVersion: one JSON object, at most kMaxUpgradeState bytes, in a
// sealed memfd. The successor finds the memfd's number in $BATON_RESUME_FD; the pre-flight check
// (`baton upgrade-check`, run before the exec) reads a copy at fd 3. Every descriptor the state
// names is open in the successor under the same number (CLOEXEC is cleared on exactly these, for
// the exec only); passed_fds() says what each one must be (a socket of which family and type, a
// pipe, the lock file), the successor checks that before it adopts any, and closes every other
// descriptor above 2. Times are steady_clock (CLOCK_MONOTONIC) nanoseconds, which an exec does
// not reset. Strings are UTF-8 (invalid bytes replaced).
// Versioning: any incompatible change bumps kUpgradeStateVersion; a state of a version the new
// binary does not read fails its pre-flight check, before the exec, and nothing changes.
//   1  the first.
//   2  "settings": the settings the supervisor runs with (upgrade_settings.h). The successor runs
//      with these and reads no config file; a version 1 state has none, so it is refused.
//
// Pure: encoding, decoding and the list of descriptors; the system calls are in
// supervisor_upgrade.cc. The decoder takes bytes from outside the process image and checks every
// field, count and cross-reference; it never throws.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "baton/result.h"
#include "supervisor/manager_notify.h"
#include "supervisor/supervisor_core.h"
#include "supervisor/upgrade_settings.h"

namespace baton {

constexpr int kUpgradeStateVersion = 2;
constexpr size_t kMaxUpgradeState = 4 << 20;
// Bounds on what one state may list (far above what a supervisor holds).
constexpr size_t kMaxCarriedGenerations = 1024;
constexpr size_t kMaxCarriedSlots = 1024;
constexpr size_t kMaxCarriedWaiters = 1024;
constexpr int kMaxCarriedFd = 1 << 20;

// One listener: a steered one's members (slot i's socket at index i), or a shared socket.
struct CarriedListener {
  std::string name;
  std::string address;  // Address::to_string() of the bound address
  bool activated = false;
  std::string unix_path;     // removed when the supervisor ends ("" for none)
  std::vector<int> members;  // steered
  int shared = -1;           // not steered
};

// The shell's part of a live generation (the core's is in CoreSnapshot).
struct CarriedGeneration {
  int id = 0;
  int out_fd = -1;  // read ends of its stdout and stderr pipes (-1: already at EOF)
  int err_fd = -1;
  bool adopt_loaded = false;
  bool adopted = false;
};

// A control client waiting for an answer: a reload's outcome, or the upgrade's own.
struct CarriedWaiter {
  std::uint64_t id = 0;
  int fd = -1;
};

struct UpgradeState {
  int version = kUpgradeStateVersion;
  std::string from_version;  // the baton version that wrote it
  std::string binary;        // the path executed
  std::int64_t started_at_ns = 0;
  CoreSnapshot core;
  CarriedSettings settings;  // what the supervisor runs with: never read again from a file
  // listeners (listener_set.h)
  std::vector<CarriedListener> listeners;
  std::vector<bool> slots_in_use;
  std::map<int, int> slot_by_generation;
  std::optional<int> target_slot;
  std::vector<CarriedGeneration> generations;
  // the supervisor's own sockets and files
  int lock_fd = -1;
  int control_fd = -1;
  std::string control_path;
  std::vector<CarriedWaiter> waiters;  // reloads waited for (their ids are in core.completing)
  std::uint64_t next_waiter = 1;
  std::optional<CarriedWaiter> upgrade_waiter;  // `upgrade --wait`: the successor answers it
  int notify_fd = -1;
  std::string notify_path;
  int manager_fd = -1;  // baton's own manager ($NOTIFY_SOCKET), if any
  std::string manager_name;
  ManagerNotifier::Carried manager;
  int metrics_fd = -1;
  int guard_fd = -1;  // the orphan guard's pipe (orphan_guard.h), and its pid
  int guard_pid = -1;
  bool spoke_notify = false;
  int ignored_notify = 0;
  std::uint64_t signal_mask = 0;               // bit n-1: signal n was blocked when baton started
  std::map<int, std::uint64_t> dropped_lines;  // by source, stdout and stderr together
  std::uint64_t dropped_lines_total = 0;
};

// What a passed descriptor must be.
struct PassedFd {
  enum class Kind { kSocket, kPipe, kLockFile };
  int fd = -1;
  Kind kind = Kind::kSocket;
  int family = AF_UNSPEC;  // sockets: AF_UNIX, AF_INET...; AF_UNSPEC: AF_INET or AF_INET6
  int type = SOCK_STREAM;
  bool listening = false;  // a stream socket that must be listening
  std::string what;        // for messages: "listener http member 1", "control socket"
};

// Every descriptor `state` names, once each, in a stable order.
std::vector<PassedFd> passed_fds(const UpgradeState& state);

std::string encode_upgrade_state(const UpgradeState& state);
// Parses and checks `bytes`: the version, every type and range, the counts against the bounds
// above, the cross-references (slots, generations), and that no descriptor is named twice.
Result<UpgradeState> decode_upgrade_state(std::string_view bytes);

// The pre-flight check's answer (`baton upgrade-check`'s first line of output, written by
// whatever sits at the binary's path): {"baton_upgrade_check":kUpgradeStateVersion,"ok":true,
// "version":"..."}. Returns the new binary's version. Error (EPROTO): anything else, each field's
// type checked before it is read.
Result<std::string> parse_upgrade_check_answer(std::string_view line);

}  // namespace baton

// control_protocol.h: the control socket protocol between `baton reload|status|stop` and a
// running supervisor. Described here once; version 1.
//
// Transport: a unix stream socket (`baton run --control PATH`), mode 0600. The supervisor checks
// the peer's credentials (SO_PEERCRED): only its own uid and root are served; anyone else gets
// an error reply and the connection closes.
// Framing: the client speaks first, one request: one JSON object on one line ending in "\n",
// at most kMaxControlLine bytes. The supervisor answers with one JSON object on one line and
// closes the connection. A line that is not such an object is answered with ok:false.
// Requests:
//   {"baton":1,"command":"reload","wait":false}  answered at once: the reload was started, or
//                                                 refused (supervisor stopping, drain limit)
//   {"baton":1,"command":"reload","wait":true}   answered when it is over: the new generation
//                                                 serves and the old one has drained, or it failed
//   {"baton":1,"command":"reload","wait":true,"canary":{"percent":20,"window_ms":60000}}
//                                                 a canary reload: percent 1-99, window 1 ms-24 h
//                                                 (refused while another reload runs)
//   {"baton":1,"command":"status"}               answered at once with {"status": {...}}
//   {"baton":1,"command":"stop"}                 answered at once; the supervisor then drains
//   {"baton":1,"command":"upgrade","wait":false} answered once the binary at the supervisor's path
//                                                 passed its pre-flight check (or failed it); the
//                                                 supervisor then executes it in place
//   {"baton":1,"command":"upgrade","wait":true}  the connection crosses the exec and the upgraded
//                                                 supervisor answers it from its loop
//                                                 (docs/upgrade.md)
// Replies: {"baton":1,"ok":true|false, "message"|"error": "one line", ...}; a failed reload also
// carries "output_tail" (the new generation's last output) and "generation" (the one serving).
// Versioning: "baton" is the protocol version. A supervisor answers a request of another version
// with ok:false naming the versions it speaks; any incompatible change bumps it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "baton/result.h"

namespace baton {

constexpr int kControlProtocolVersion = 1;
constexpr size_t kMaxControlLine = 64 * 1024;
// The error a supervisor answers when it serves as many control clients as it may; the client
// retries until its own timeout.
inline constexpr const char* kTooManyControlClients = "too many control clients";

constexpr std::chrono::milliseconds kMaxCanaryWindow{24 * 3600 * 1000};

struct ControlRequest {
  enum class Command { kReload, kStatus, kStop, kUpgrade };
  Command command = Command::kStatus;
  bool wait = false;
  std::optional<int> canary_percent;           // reload --canary
  std::chrono::milliseconds canary_window{0};  // reload --canary-for
};

// Parses one request line (without the newline).
Result<ControlRequest> parse_control_request(std::string_view line);
std::string format_control_request(const ControlRequest& request);

nlohmann::json control_error(const std::string& message);
nlohmann::json control_ok(const std::string& message);

// The client side: connects to `path`, sends `request`, returns the reply, all within `timeout`.
// The peer must run as the caller's effective uid or as root (SO_PEERCRED); another user's
// socket at that path is refused before anything is sent.
// Errors say what to do: no supervisor at that path, permission, another user's socket, timeout.
Result<nlohmann::json> control_call(const std::string& path, const ControlRequest& request,
                                    std::chrono::milliseconds timeout);

// `text` (an app's STATUS=, say) made safe to print on a terminal: C0 and C1 control characters
// (ESC, CSI, BEL, newlines...) and backslashes become \xNN / \uNNNN / \\; the rest (UTF-8
// included) is kept.
std::string escape_control_chars(std::string_view text);

// The control socket path used when --control is not given, first that applies:
//   $BATON_CONTROL
//   $RUNTIME_DIRECTORY/control.sock     (systemd's RuntimeDirectory=; the first if several)
//   /run/baton/control.sock             (root)
//   $XDG_RUNTIME_DIR/baton/control.sock
//   /tmp/baton-UID/control.sock
// A unit with RuntimeDirectory= needs no --control: ExecStart and ExecReload see the same one.
std::string default_control_path();
// The same, from the given variables (null or empty: unset) and effective uid. Pure.
std::string default_control_path(const char* baton_control, const char* runtime_directory,
                                 const char* xdg_runtime_dir, uid_t euid);

}  // namespace baton

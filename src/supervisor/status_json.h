// status_json.h: the supervisor's status, as `baton status --json` prints it and the control
// protocol's "status" reply carries it (control_protocol.h). docs/status.md describes the same
// schema for operators; `baton status`, `baton soak` and the tests read it: fields are only ever
// added, never renamed or removed, without bumping kControlProtocolVersion.
//
// Times: "..._at" are wall-clock Unix times in seconds (fractional, millisecond precision);
// "..._s" are durations in seconds (fractional), measured on the monotonic clock.
//
//   version             int     the control protocol version (kControlProtocolVersion)
//   supervisor          object
//     pid               int     the supervisor's pid
//     uptime_s          number  time since the supervisor started
//     command           [str]   the app's argv, argv[0] resolved to a path
//     readiness         string  how readiness is proven: "auto", "notify", "accept", "http:/path",
//     "exec:CMD",
//                               "delay:SECONDS"
//     control           string  the control socket path
//     config            string  the config file (--config), "" when none
//     working_dir       string  the directory generations start in (--chdir), "" for baton's own
//     metrics           string  the address serving /metrics (--metrics), "" when none
//     stopping          bool    a stop was asked: every generation drains, then baton exits
//     output_dropped_lines int  lines of the apps' output (and baton's own) dropped because
//                               baton's stdout or stderr was not read fast enough (see
//                               output_sink.h: 1 MiB is kept per generation)
//   listeners           [object] the sockets baton holds, in the order the app receives them
//     name              string  its LISTEN_FDNAMES name (listen0, listen1... when unnamed)
//     address           string  as bound (the real port when 0 was asked), e.g. "127.0.0.1:8080",
//                               "[::1]:80", "unix:/run/app.sock", "udp:127.0.0.1:53"
//     fd                int     the descriptor the app receives it as (3, 4, ...)
//     steering          string  "steered": each generation has its own socket and baton picks the
//                               one that receives each new connection (docs/steering.md);
//                               "shared": one socket for every generation (unix sockets, or the
//                               program could not be attached)
//     foreign_members   int     (steered) times baton found a socket it does not hold in the
//                               listener's SO_REUSEPORT group (another process of its uid bound
//                               the address) when it was to add a member, and so refused to
//                               start a generation (docs/security.md)
//   serving_generation  int     the id of the generation serving, 0 when none does
//   generations         [object] the generations not yet forgotten, oldest first (every live one,
//                               and the last few that exited)
//     generation        int     its id: 1, 2, 3... (BATON_GENERATION)
//     pid               int     its main process
//     state             string  "starting", "serving", "held" (--hold-old: replaced,
//                               not signalled, serves again if its successor fails), "draining"
//                               or "exited"
//     started_at        number  when it was started
//     ready_after_s     number  (once ready) from start to the proof of readiness
//     drain_started_at  number  (once draining) when its drain began
//     exited_at         number  (once exited) when its main process was reaped
//     exit_status       int     (exited normally) its exit code
//     exit_signal       int     (killed by a signal) the signal number
//     killed            bool    (only when true) baton SIGKILLed it: failed start, drain
//                               deadline, or stop
//     status_text       string  (when sent) the app's last STATUS= line
//     output_dropped_lines int  (only when some were) lines of its output dropped
//     slot              int     (live generations) its slot: its socket of every steered
//                               listener is member `slot` of that listener's group
//     share_percent     int     (live, steered) the share of new connections the steering
//                               program sends it now: 100 serving, 0 starting or draining, the
//                               canary's split in a canary window
//     accept_queue      int     (live, steered TCP) connections waiting in its own sockets'
//                               accept queues
//     connections       int     (live, steered TCP) connections its processes hold on the
//                               listeners' ports (as the drain watch counts them)
//   last_reload         object or null (no reload yet)
//     id                int     1, 2, 3... counting reloads that started a generation
//     result            string  "in-progress", "ok" or "failed"
//     reason            string  one line: what happened ("" while in progress)
//     requested_at      number  when its generation was started
//     duration_s        number  (once over) from start to the end (old generation drained, or
//                               failure)
//   last_failed_reload  object or null (none failed yet): the last reload that failed, same
//                               fields as last_reload; kept however many succeed after it
//   counters            object  since the supervisor started
//     reloads_ok, reloads_failed, reloads_coalesced (asked while one was in progress and served
//     by the next), crashes (a serving generation exited on its own), drain_kills (a draining
//     generation killed at the drain deadline), generations_started: all int
//   keepalive           object  idle keep-alive connections of old generations that baton took
//                               over instead of closing (docs/drain.md), since it started
//     taken_over        int     kept open across a drain
//     relayed           int     requests on them relayed to the serving generation (each one
//                               that began an upstream connection)
//     refused           int     closed: their client sent something not plaintext HTTP/1.x
//                               (TLS, another protocol), or began a request line and stopped
//     idle_closed       int     closed after 1 s with no request
//     over_cap          int     closed at once: 16384 were held already
//     detached          int     relayed connections moved off a generation that drained
//     closed_at_drain   int     idle ones closed at a drain, not taken over: their port speaks
//                               TLS (a refused client sent a TLS record)
//     held_now          int     taken-over connections held now
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "supervisor/supervisor_core.h"
#include "supervisor/takeover_counts.h"

namespace baton {

// What the shell knows of itself, for the "supervisor" and "listeners" parts.
struct SupervisorFacts {
  struct Listener {
    std::string name;
    std::string address;
    int fd = -1;
    bool steered = false;
    int strangers_found = 0;  // SteeringGroup::strangers_found()
  };
  pid_t pid = 0;
  TimePoint started_at{};
  std::vector<std::string> command;
  std::string readiness;
  std::string control_path;
  std::string config_file;
  std::string working_dir;
  std::string metrics_address;
  std::vector<Listener> listeners;
  std::uint64_t output_dropped_lines = 0;
  std::map<int, std::uint64_t> generation_dropped_lines;  // by generation id, when not 0
  std::map<int, int> slots;  // generation id -> its slot in the steered listeners (live ones)
  struct Traffic {
    int share_percent = 0;
    std::optional<std::uint32_t> accept_queue;  // unknown when it could not be looked at
    std::optional<size_t> connections;
  };
  std::map<int, Traffic> traffic;  // by generation id (live ones, when a listener is steered)
  TakeoverCounts takeover;
};

// The status object. `now` and `wall_now` are the same instant on the monotonic and the wall
// clock; the core's monotonic times are turned into wall times through them. No I/O.
nlohmann::json status_json(const SupervisorFacts& facts, const SupervisorCore& core, TimePoint now,
                           std::chrono::system_clock::time_point wall_now);

}  // namespace baton

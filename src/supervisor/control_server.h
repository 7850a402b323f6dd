// control_server.h: the supervisor's end of the control socket (the protocol is described once,
// in control_protocol.h).
//
// It accepts connections on the unix socket, serves only peers of the supervisor's own uid or
// root (SO_PEERCRED), reads one request line per connection, and answers through its Handler;
// a reload with "wait":true is answered later, by reply(). At most kMaxControlClients
// connections are open at once; one more is answered kTooManyControlClients (control_protocol.h)
// and closed, and the client retries. Each client has kControlRequestTimeout to send its request
// line, so silent connections cannot hold the slots; a client waiting for a reload has no limit.
// At the process's descriptor limit (accept fails with EMFILE or ENFILE, and the connection would
// stay queued, waking the loop again at once), a reserve descriptor held for this is closed so
// that one connection can be accepted, answered kOutOfDescriptors and closed, and the reserve
// taken again; where even that fails, accepting pauses for kAcceptBackoff. Logged once per
// episode.
//
// What to answer at once to a reload is decided by reload_ack() below, a pure function, so that
// decision is unit-tested without sockets. Used from the supervisor's one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "baton/fd.h"
#include "baton/result.h"
#include "supervisor/control_protocol.h"
#include "supervisor/event_loop.h"
#include "supervisor/supervisor_core.h"

namespace baton {

constexpr size_t kMaxControlClients = 64;
constexpr std::chrono::seconds kControlRequestTimeout{3};

// The answer due at once to a reload request, after the core has taken it in:
//   answered  the core replied already (refused: stopping, drain limit)  -> none
//   wait      the client waits for the outcome, sent by reply() later     -> none
//   else      "reload started: generation N starting" (N: the starting generation, if any),
//             or "reload queued" (none starting: it waits behind one in progress)
std::optional<nlohmann::json> reload_ack(bool wait, bool answered,
                                         std::optional<int> starting_generation);

// What a client is answered when the supervisor is at its descriptor limit.
inline constexpr const char* kOutOfDescriptors =
    "the supervisor is out of file descriptors (its RLIMIT_NOFILE); try again";
// How long accepting pauses when not even the reserve descriptor helps.
inline constexpr std::chrono::seconds kAcceptBackoff{1};

class ControlServer {
 public:
  // What the server asks of the supervisor.
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual nlohmann::json status() = 0;  // the "status" object (status_json.h)
    virtual void stop() = 0;              // begin draining every generation
    // May reply() to `waiter` at once. `request` carries the reload's options (a canary).
    virtual void reload(WaiterId waiter, const ControlRequest& request) = 0;
    virtual std::optional<int> starting_generation() = 0;
    virtual void waiter_gone(WaiterId waiter) = 0;  // its client hung up; the reload goes on
    // `baton upgrade`: answered through answer(`waiter`, ...), at once or later.
    virtual void upgrade(WaiterId waiter, const ControlRequest& request) = 0;
    virtual void log(LogLevel level, const std::string& line) = 0;
    void log(const std::string& line) { log(LogLevel::kInfo, line); }
  };

  ControlServer(EventLoop& loop, Handler& handler) : loop_(loop), handler_(handler) {}
  ~ControlServer();  // closes every connection; removes the socket file if open() bound it
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds `path` (mode 0600 from the start; a file already there is taken as stale: the caller
  // holds the path's lock) and starts accepting.
  Status open(const std::string& path);

  // Answers the client waiting on `waiter`, if it still does.
  void reply(WaiterId waiter, const ReloadOutcome& outcome);
  // The same with any reply object (an upgrade's).
  void answer(WaiterId waiter, const nlohmann::json& reply);

  // Across an in-place upgrade (upgrade_state.h): the listening socket, the clients waiting for
  // an answer (waiter id and descriptor; the server keeps them open), the next waiter id; and
  // their adoption by the successor, in place of open().
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  std::vector<std::pair<WaiterId, int>> waiting() const;
  WaiterId next_waiter() const { return next_waiter_; }
  Status resume(Fd listener, const std::string& path, WaiterId next_waiter);
  Status adopt_waiter(Fd client, WaiterId waiter);

 private:
  struct Client {
    Fd fd;
    std::string buffer;
    std::optional<WaiterId> waiter;
    EventLoop::TimerId deadline = 0;  // for the request line; 0 once it arrived
  };

  void on_accept();
  // Accept failed with `error`: answer what waits without a descriptor of our own, or pause.
  void out_of_descriptors(int error);
  void on_client(int fd, uint32_t events);
  void handle_request(Client& client, const std::string& line);
  void send_and_close(int fd, const nlohmann::json& reply);
  void drop(int fd);  // forgets the client: its deadline, its loop entry, its descriptor

  EventLoop& loop_;
  Handler& handler_;
  std::string path_;  // non-empty once bound
  Fd fd_;
  Fd reserve_;                    // /dev/null, given up to accept one connection at the fd limit
  bool fd_limit_logged_ = false;  // this episode at the limit was logged
  EventLoop::TimerId accept_paused_ = 0;
  std::map<int, Client> clients_;    // by fd
  std::map<WaiterId, int> waiters_;  // waiter -> client fd
  WaiterId next_waiter_ = 1;
};

}  // namespace baton

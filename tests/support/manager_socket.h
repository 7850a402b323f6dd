// manager_socket.h: a test playing baton's service manager: the socket baton gets as
// $NOTIFY_SOCKET, and what baton sends to it (READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1...).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "baton/fd.h"
#include "harness.h"

namespace baton::test {

class ManagerSocket {
 public:
  // Binds a datagram socket at `path` that receives each sender's credentials.
  explicit ManagerSocket(std::string path);
  bool bound() const { return fd_.valid(); }
  const std::string& path() const { return path_; }

  struct Datagram {
    std::string text;
    pid_t sender = -1;
  };
  // The next datagram that is not only a STATUS= line, within `timeout`; nullopt when none came.
  // With `skip_watchdog`, WATCHDOG=1 pings are passed over too (counted in watchdog_pings()).
  std::optional<Datagram> next(std::chrono::milliseconds timeout = 30s, bool skip_watchdog = true);
  // Waits up to `timeout` for the next WATCHDOG=1 datagram; other datagrams are kept in seen().
  std::optional<Datagram> next_watchdog(std::chrono::milliseconds timeout);
  // Every datagram received so far, STATUS= lines and pings included.
  const std::vector<std::string>& seen() const { return seen_; }
  int watchdog_pings() const { return watchdog_pings_; }

 private:
  std::optional<Datagram> receive(std::chrono::milliseconds timeout);
  std::string path_;
  Fd fd_;
  std::vector<std::string> seen_;
  int watchdog_pings_ = 0;
};

}  // namespace baton::test

// notify_listener.h: the receiving end of NOTIFY_SOCKET for end-to-end tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "supervisor/notify_socket.h"

namespace baton::test {

// NOTIFY_SOCKET for the apps a test starts: the supervisor's own NotifySocket
// (src/supervisor/notify_socket.h), so a test sees each datagram as `baton run` would, with what
// the tests add around it: waiting for a message, and the history of who sent what.
class NotifyListener {
 public:
  explicit NotifyListener(const std::string& path);
  const std::string& path() const { return socket_.path(); }
  // Waits for a message from `pid` that says `line`, one of the lines the supervisor reads
  // ("READY=1", "BATON_ADOPTED=http 127.0.0.1:80"...). Other messages are kept in history().
  bool wait_for(pid_t pid, const std::string& line, std::chrono::milliseconds timeout);
  // Receives whatever arrives within `timeout` into history().
  void drain(std::chrono::milliseconds timeout);
  // True when `pid` sent a message saying `line` (among those received so far).
  bool received(pid_t pid, const std::string& line) const;
  const std::vector<ReceivedNotify>& history() const { return history_; }

 private:
  // Waits up to `timeout` for datagrams and moves them into history(); false when none came.
  bool receive(std::chrono::milliseconds timeout);
  baton::NotifySocket socket_;
  std::vector<ReceivedNotify> history_;
};

}  // namespace baton::test

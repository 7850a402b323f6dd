// notify_socket.h: the receiving end of the sd_notify protocol (NOTIFY_SOCKET).
//
// Protocol (systemd's, spoken by every sd_notify client): the app sends datagrams to the unix
// socket named by $NOTIFY_SOCKET, each a newline-separated list of KEY=VALUE assignments, e.g.
// "READY=1\nSTATUS=Serving 12 clients". baton reads READY=1, STOPPING=1, STATUS=..., MAINPID is
// ignored. The kernel attaches the sender's credentials (SO_PASSCRED): a datagram counts only for
// the generation whose process group the sending pid belongs to, so no generation (nor any other
// local process) can speak for another. Datagrams larger than kMaxDatagram, or carrying file
// descriptors, are dropped (the descriptors closed).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "baton/fd.h"
#include "baton/result.h"

namespace baton {

constexpr size_t kMaxNotifyDatagram = 4096;

struct NotifyMessage {
  bool ready = false;
  bool stopping = false;
  std::optional<std::string> status;
  // From libbaton_adopt.so (`--adopt`; protocol in src/adopt/preload.cc).
  bool adopt_loaded = false;                     // BATON_ADOPT_LOADED=1
  std::optional<std::string> adopted;            // BATON_ADOPTED=NAME ADDRESS
  std::optional<std::string> adopt_passthrough;  // BATON_ADOPT_PASSTHROUGH=ADDRESS
  std::optional<std::string> adopt_error;        // BATON_ADOPT_ERROR=MESSAGE
};

// Parses one datagram's text. Unknown keys are ignored, as systemd does.
NotifyMessage parse_notify(std::string_view text);

struct ReceivedNotify {
  pid_t pid = -1;  // the sender, as the kernel vouches
  NotifyMessage message;
};

class NotifySocket {
 public:
  // Binds a datagram socket at `path` (replacing a stale file), nonblocking, with SO_PASSCRED.
  static Result<NotifySocket> bind(const std::string& path);
  // The socket of the supervisor this one was upgraded from, already bound at `path`.
  static NotifySocket adopt(Fd fd, std::string path) {
    return NotifySocket(std::move(fd), std::move(path));
  }
  NotifySocket(NotifySocket&&) = default;
  NotifySocket& operator=(NotifySocket&&) = default;
  ~NotifySocket();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // One datagram, or nullopt when none is waiting (or it was dropped).
  std::optional<ReceivedNotify> receive();

 private:
  NotifySocket(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Fd fd_;
  std::string path_;
};

}  // namespace baton

// listener_watch.h: notices a serving generation that no longer holds one of its TCP listening
// sockets: the app closed it (by mistake, or a library did). baton still holds its copy, so the
// kernel keeps completing handshakes into its accept queue, where they wait for nobody until
// their clients time out; nothing else would say so.
//
// The look is cheap when nothing is wrong: one TCP_INFO per listener (the accept-queue length).
// Only a queue found non-empty at two looks in a row leads to the dearer one, the socket
// descriptors of the generation's processes in /proc (drain_watch.h: held_sockets), at most once
// per kListenerRecheck per socket; a socket no process of the generation holds is reported once.
// Everything read from /proc is bounded as the drain watch bounds it.
//
// Not thread-safe: the supervisor's loop calls it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace baton {

inline constexpr std::chrono::seconds kListenerWatchInterval{1};
inline constexpr std::chrono::seconds kListenerRecheck{10};

class ListenerWatch {
 public:
  struct Socket {
    std::string name;  // the listener's
    int fd = -1;       // the generation's socket of it (baton's copy; borrowed)
  };
  using Clock = std::chrono::steady_clock;

  // Looks at generation `generation` (main process `pid`) once. Returns the names of its sockets
  // found, for the first time, held by none of its processes while connections wait on them,
  // with the number waiting. A new generation starts the watch over.
  std::map<std::string, std::uint32_t> look(int generation, pid_t pid,
                                            const std::vector<Socket>& sockets,
                                            Clock::time_point now);

 private:
  int generation_ = 0;
  std::map<std::string, std::uint32_t> queued_;        // by name: the queue at the last look
  std::map<std::string, Clock::time_point> searched_;  // by name: the last /proc look
  std::set<std::string> reported_;
};

}  // namespace baton

// adopt_support.h: what the adoption tests need besides the harness: a stand-in for the part of
// `baton run --adopt` that hands listeners to generations (so the library is tested on its own),
// a notify socket that knows who sent what, a load generator that counts failures, and the three
// real runtimes' servers.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "baton/fd.h"
#include "common/address.h"
#include "harness.h"

namespace baton::test::adopt {

std::string launch_binary();   // tests/apps/adopt/launch.cc
std::string testapp_binary();  // tests/apps/adopt/testapp.cc
std::string static_binary();   // tests/apps/adopt/static_app.cc

// A server of a real runtime that binds its own port: argv for PORT and HOST, and the word its
// responses start with ("python pid=...").
struct Runtime {
  std::string name;     // python, node, java
  std::string missing;  // why it cannot run here ("" when it can)
  std::vector<std::string> (*argv)(int port, const std::string& host);
};
Runtime python_runtime();
Runtime node_runtime();
Runtime java_runtime();

// A listening socket the test holds, as baton would, inheritable (not CLOEXEC) so that launched
// generations get it.
struct HeldListener {
  Fd fd;
  Address address;
  int port() const { return address.port(); }
};
HeldListener hold_listener(const std::string& spec);

// A port that was free a moment ago (for apps that bind it themselves).
int free_port();

struct NotifyMessage {
  pid_t pid = 0;  // from SCM_CREDENTIALS
  std::string text;
};

// NOTIFY_SOCKET for the generations: a unix datagram socket receiving with sender credentials.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path);
  const std::string& path() const { return path_; }
  // Waits for a message from `pid` with the line `line` (e.g. "READY=1"). Other messages are
  // kept in history().
  bool wait_for(pid_t pid, const std::string& line, std::chrono::milliseconds timeout);
  // Receives whatever arrives within `timeout` into history().
  void drain(std::chrono::milliseconds timeout);
  // True when `pid` sent a message containing `line` (among those received so far).
  bool received(pid_t pid, const std::string& line) const;
  const std::vector<NotifyMessage>& history() const { return history_; }

 private:
  std::optional<NotifyMessage> receive(std::chrono::milliseconds timeout);
  std::string path_;
  Fd fd_;
  std::vector<NotifyMessage> history_;
};

// Starts one generation of `argv` through the launcher, with `held` as its LISTEN_FDS (named),
// the preload library, and NOTIFY_SOCKET.
Process start_generation(const std::vector<std::pair<const HeldListener*, std::string>>& held,
                         const std::vector<std::string>& argv, const std::string& notify_path,
                         int generation, const SpawnOptions& extra = {});

// Client threads sending GET / (a new connection each, Connection: close) until stopped; every
// request that does not get a 200 whose body starts with `expect_prefix` is a failure.
class LoadGenerator {
 public:
  LoadGenerator(Address target, std::string expect_prefix, int threads);
  ~LoadGenerator();
  void stop();
  long ok() const { return ok_; }
  long failed() const { return failed_; }
  std::set<std::string> bodies() const;       // distinct bodies ("python pid=42")
  std::vector<std::string> failures() const;  // the first few failure messages
  // Waits until `n` more requests succeeded (bounded).
  bool wait_for_successes(long n, std::chrono::milliseconds timeout);

 private:
  void run();
  Address target_;
  std::string expect_;
  std::atomic<bool> stop_{false};
  std::atomic<long> ok_{0};
  std::atomic<long> failed_{0};
  mutable std::mutex mu_;
  std::set<std::string> bodies_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

// The backlog of the listening TCP socket on `port` as `ss` reports it (Send-Q), or -1 when `ss`
// is unavailable.
int listen_backlog(int port);

}  // namespace baton::test::adopt

// adopt_support.h: what the adoption tests need besides the harness and the load client: a
// stand-in for the part of `baton run --adopt` that hands listeners to generations (so the
// library is tested on its own), and the three real runtimes'
// servers.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "baton/fd.h"
#include "common/address.h"
#include "harness.h"
#include "load_client.h"
#include "notify_listener.h"

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
// A file of tests/apps/adopt (server.py, tls_client.py...).
std::string app_path(const std::string& file);
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

// A loopback TCP port reserved for an app that binds it itself: a socket bound to 127.0.0.1:0
// with SO_REUSEADDR and never listening. Linux lets another SO_REUSEADDR socket bind and listen
// on the port while this one is held (every runtime here sets SO_REUSEADDR, as servers do), but
// neither bind(port 0) nor an outgoing connect picks a port that is bound, so no other process
// takes it in the meantime. Connects to it are refused while nobody listens.
class ReservedPort {
 public:
  ReservedPort();
  int port() const { return port_; }
  void release() { fd_.reset(); }

 private:
  Fd fd_;
  int port_ = 0;
};

// Starts one generation of `argv` through the launcher, with `held` as its LISTEN_FDS (named),
// the preload library, and NOTIFY_SOCKET.
Process start_generation(const std::vector<std::pair<const HeldListener*, std::string>>& held,
                         const std::vector<std::string>& argv, const std::string& notify_path,
                         int generation, const SpawnOptions& extra = {});

// The backlog of the listening TCP socket on `port` as `ss` reports it (Send-Q), or -1 when `ss`
// is unavailable.
int listen_backlog(int port);

}  // namespace baton::test::adopt

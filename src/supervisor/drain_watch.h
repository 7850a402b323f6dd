// drain_watch.h: watching an old generation drain, from outside, with no help from the app.
//
// After the switch an old generation gets no new connection, yet it may still hold some: queued
// in its own listener's accept queue, in flight, or idle keep-alive connections it would keep
// open for ever. baton looks at them the way `ss` does:
//   - the accept-queue length of each listener the generation owns, from TCP_INFO on baton's copy
//     (on a listening socket the kernel reports the accept queue in tcpi_unacked);
//   - the TCP connections its processes hold: the socket inodes found in /proc/PID/fd of its
//     main process and of that process's descendants in its process group, matched against a
//     NETLINK_SOCK_DIAG dump (IPv4 and IPv6, with tcp_info) of the sockets on the listeners'
//     local ports. Connections the app opened itself (to a database, say) have other local ports
//     and are not counted.
// An idle keep-alive connection (see is_idle_keepalive) is taken over, never closed under its
// client: baton takes a copy of the app's descriptor with pidfd_getfd and calls shutdown(SHUT_RD)
// on it. The app's next read returns end-of-file, exactly as if the client had left, and its write
// side still works, so a response being written still reaches the client. The app then closes its
// descriptor, but baton's copy keeps the connection open: no FIN reaches the client. Once no
// process of the generation holds it any more, the copy is handed to the caller (DrainCheck::
// taken), which relays the client's next request to the serving generation (relay.h). Until
// then baton never reads from it: the app may still be reading a request that came meanwhile.
// A connection whose client is baton itself (a relayed connection, whose upstream end is
// baton's) is not taken over but detached by the relay (UpstreamCheck).
// A generation is quiet when its accept queues are empty and it holds no connection on them: then
// the drain signal can end it with nothing lost.
//
// Everything read from /proc and netlink is untrusted: every count and size is bounded (the
// limits below), malformed records are skipped, and a descriptor copy is used only after its
// inode has been checked against the one listed, so a reused pid or descriptor number is never
// acted on. pidfd_getfd needs ptrace access to the app, which the supervisor (its parent, same
// uid) has.
//
// Not thread-safe; the supervisor uses it from its event loop.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <vector>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"

namespace baton {

// Bounds on what one look at a generation reads.
inline constexpr size_t kDrainMaxProcesses = 1024;  // processes of one generation
inline constexpr size_t kDrainMaxFdsPerProcess = 65536;
inline constexpr size_t kDrainMaxSockets = 65536;      // socket descriptors of one generation
inline constexpr size_t kDrainMaxConnections = 65536;  // sockets in one sock_diag dump
inline constexpr size_t kDrainMaxPorts = 64;           // distinct listener ports

// One TCP socket as sock_diag reports it.
struct TcpConnection {
  std::uint64_t inode = 0;
  std::uint8_t state = 0;  // TCP_ESTABLISHED, TCP_CLOSE_WAIT... (netinet/tcp.h)
  std::uint16_t local_port = 0;
  std::uint16_t remote_port = 0;
  Address remote;                // the peer's address and port
  std::uint32_t recv_queue = 0;  // bytes received, not yet read by the app
  std::uint32_t send_queue = 0;  // bytes written by the app, not yet acknowledged by the peer
  bool has_info = false;         // the fields below are valid (INET_DIAG_INFO was present)
  std::uint32_t last_data_recv_ms = 0;  // ms since data last arrived
  std::uint32_t last_data_sent_ms = 0;  // ms since data was last sent
  std::uint64_t bytes_received = 0;     // payload bytes received over the connection's life
  std::uint64_t bytes_sent = 0;         // payload bytes sent (retransmissions included)
  std::uint32_t notsent_bytes = 0;      // bytes written by the app and not sent yet
};

// A socket descriptor held by a process of the generation.
struct HeldSocket {
  pid_t pid = -1;
  int fd = -1;
  std::uint64_t inode = 0;
};

// ---- decisions (pure) ----

// An idle keep-alive connection: established, no unread input, nothing left unsent, and the last
// thing that happened on it was data sent (a response), not data received (a request). Sent but
// unacknowledged bytes do not make it busy: a client acknowledges a response with its next request
// (delayed ACK), so under load a connection is never without them. The kernel keeps these times
// in jiffies (4 ms at HZ=250): a request received in the same tick as the previous response was
// sent looks idle too. That is safe with shutdown(SHUT_RD): the request is read and answered, and
// only the read after it sees end-of-file. A connection that never carried a response is not
// idle: its first request is being served. One on which nothing was ever received counts as idle
// only after a second of silence: a client that has just connected is about to send its request.
bool is_idle_keepalive(const TcpConnection& c);

// The generation may be signalled with nothing lost: every accept queue is empty and it holds no
// connection on the listeners' ports.
bool is_quiet(std::span<const std::uint32_t> accept_queues, size_t held_connections);

// ---- parsers of untrusted text and records (pure) ----

// "socket:[12345]" (an fd's link in /proc) -> 12345; 0 when not a socket or malformed.
std::uint64_t socket_inode_of_link(std::string_view link);

// The process group id from the text of /proc/PID/stat; -1 when malformed. The command name in
// parentheses may hold any byte, ')' included, so the fields are read after the last ')'.
pid_t pgid_of_stat(std::string_view stat);

// The pids in /proc/PID/task/TID/children ("12 34 "); at most `limit`, malformed entries skipped.
std::vector<pid_t> parse_children(std::string_view text, size_t limit);

// One recv() of a sock_diag dump: appends the TCP sockets found to `out` (up to `limit` in all).
// Returns true when the dump is complete (NLMSG_DONE), false when more datagrams follow, and an
// Error for NLMSG_ERROR or a record that does not fit its own length.
Result<bool> parse_diag_datagram(std::span<const std::uint8_t> data,
                                 std::vector<TcpConnection>& out, size_t limit);

// ---- looking (I/O) ----

// Bytes of /proc text read per file (stat lines and children lists are far shorter).
constexpr size_t kMaxProcText = 64 * 1024;
// Reads at most `limit` bytes of a small file (a /proc one); "" when it cannot be read.
std::string read_small(const std::string& path, size_t limit = kMaxProcText);

// The accept-queue length of a TCP listener; an Error when `fd` is not a listening TCP socket.
Result<std::uint32_t> accept_queue_length(int fd);

// The socket descriptors held by `leader` and its descendants in process group `leader`.
// Processes that vanish while they are read are skipped.
Result<std::vector<HeldSocket>> held_sockets(pid_t leader);

// Every TCP socket on local port `port` (IPv4 and IPv6, any state but LISTEN and TIME_WAIT).
Result<std::vector<TcpConnection>> tcp_sockets_on_port(std::uint16_t port);

// Takes a pidfd_getfd copy of `socket` and closes the read side of the connection through it:
// the app reads end-of-file. Returns the copy, which keeps the connection open once the app has
// closed its own descriptor. An Error when the process or descriptor is gone, the copy is not
// that socket any more, or access is denied.
Result<Fd> take_read_side(const HeldSocket& socket);
// Closes the connection through such a copy (shutdown SHUT_RDWR: the client gets a FIN, the app
// reads end-of-file), as baton did before it took connections over.
Status close_connection(const HeldSocket& socket);

// A taken-over connection no process of the generation holds any more: baton's copy is the last.
struct TakenConnection {
  Fd fd;
  std::uint16_t local_port = 0;  // the listener's port it came in on
};

// What one look at a generation found.
struct DrainCheck {
  std::uint32_t accept_queue = 0;      // connections waiting in its listeners' accept queues
  size_t connections = 0;              // connections it holds on the listeners' ports
  size_t idle_taken = 0;               // idle keep-alive connections taken over by this look
  size_t idle_closed = 0;              // idle ones closed instead (ports baton does not relay)
  size_t detached = 0;                 // relayed connections the relay began to detach
  std::vector<TakenConnection> taken;  // released by the generation, now baton's alone
  bool quiet = false;                  // is_quiet(): it may be signalled now
};

// For a connection of the generation whose peer is `remote`: nullopt when the peer is not one of
// baton's own relayed upstream connections; otherwise whether the relay is detaching it (relay.h).
using UpstreamCheck = std::function<std::optional<bool>(const Address& remote)>;
// For a listener's port: true when its idle keep-alive connections are to be closed, not taken
// over (its clients were seen speaking what baton cannot relay, such as TLS: relay.h).
using ClosePortCheck = std::function<bool(std::uint16_t port)>;

// Watches one generation: its main pid and the listeners it owns (baton's copies, which stay
// owned by the caller and must outlive the watch).
class GenerationWatch {
 public:
  GenerationWatch(pid_t pid, std::vector<int> listener_fds);

  // Looks once, taking over the idle keep-alive connections it finds (each at most once), and
  // handing back those the generation no longer holds. An Error when a look was impossible
  // (netlink refused, a listener is not one): then nothing is known and the caller should not
  // call the generation quiet.
  Result<DrainCheck> check(const UpstreamCheck& upstream = {}, const ClosePortCheck& close = {}) {
    return look(true, upstream, close);
  }
  // The same look, taking nothing (for `baton status`).
  Result<DrainCheck> count() { return look(false, {}, {}); }
  // The copies of connections taken over that the generation may still hold: for a caller that
  // stops watching, to hand on once the generation is gone.
  std::vector<TakenConnection> release_all();

 private:
  Result<DrainCheck> look(bool take_idle, const UpstreamCheck& upstream,
                          const ClosePortCheck& close);
  pid_t pid_;
  std::vector<int> listener_fds_;
  std::map<std::uint64_t, TakenConnection> shut_;  // by inode: given shutdown(SHUT_RD), copy kept
};

}  // namespace baton

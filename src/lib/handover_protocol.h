// handover_protocol.h: the direct handover wire protocol, version 1, and its pure logic.
//
// Two instances of one server talk over a unix SOCK_SEQPACKET socket bound at the handover path
// (mode 0600). The OLD instance (the parent half, serving) listens there; the NEW instance (the
// child half, taking over) connects. Each side checks the other's SO_PEERCRED uid: equal to its
// own effective uid, or 0 (root); otherwise it closes the connection without a word.
//
// Framing: one message per packet, at most kMaxPacket (8192) bytes of printable ASCII:
//     baton-handover TYPE\n
//     key=value\n            (zero or more; keys [a-z_]+; values printable, no newline)
// A key appears at most once, except `listener`, which repeats in order. Unknown keys are ignored
// (a later minor addition must not break an older peer); anything else that does not fit (bad
// magic, unknown TYPE, missing or malformed field, a message the state does not expect, control
// data on a message that must have none) is rejected: the receiver closes the connection.
//
// Conversation (the new instance speaks first; one handover at a time):
//   new -> old  HELLO     min_version=1 max_version=1 pid=P
//   old -> new  OFFER     version=V pid=P listener=NAME TYPE ADDRESS ... (TYPE: stream|dgram)
//                         + SCM_RIGHTS: one descriptor per `listener` line, same order
//            or REFUSE    reason=TEXT retry=0|1 min_version=.. max_version=..
//                         (retry=1: busy with another handover, or already draining)
//   ... the new instance starts accepting on the descriptors ...
//   new -> old  READY     (I accept: stop accepting and drain)
//   old -> new  DRAINING  pid=P
// Either side may close at any time. The old instance keeps accepting until it receives READY: a
// new instance dying before that (connection EOF) changes nothing for it. After DRAINING, the new
// instance binds its own handover socket at a temporary name and renames it over the path, so the
// path always names a live instance. An old instance that sent DRAINING never unlinks the path
// (the successor replaces it); one stopping without a successor unlinks it if it is still its own.
//
// Versions: V is the highest version in both ranges. HELLO's first line and its three fields
// never change; any incompatible change elsewhere bumps the version (and kVersion below).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "baton/result.h"

namespace baton::handover {

inline constexpr int kVersion = 1;
inline constexpr int kMinVersion = 1;
inline constexpr size_t kMaxPacket = 8192;
inline constexpr int kMaxFds = 128;  // per OFFER; also bounded by the kernel (SCM_MAX_FD 253)

enum class Type { kHello, kOffer, kRefuse, kReady, kDraining };

struct Message {
  Type type = Type::kHello;
  std::vector<std::pair<std::string, std::string>> fields;  // in order, repeats allowed

  // The value of a unique field, or nullptr.
  const std::string* get(std::string_view key) const;
};

std::string_view type_name(Type type);
std::string encode(const Message& message);
// Rejects everything the framing above does not allow.
Result<Message> decode(std::string_view packet);

// One listener as described in an OFFER.
struct OfferedListener {
  std::string name;
  int type = 0;  // SOCK_STREAM / SOCK_DGRAM
  std::string address;
};

struct Hello {
  int min_version = kMinVersion;
  int max_version = kVersion;
  pid_t pid = 0;
};
struct Offer {
  int version = kVersion;
  pid_t pid = 0;
  std::vector<OfferedListener> listeners;
};
struct Refuse {
  std::string reason;
  bool retry = false;
  int min_version = kMinVersion;
  int max_version = kVersion;
};

Message make_hello(const Hello& hello);
Message make_offer(const Offer& offer);
Message make_refuse(const Refuse& refuse);
Message make_ready();
Message make_draining(pid_t pid);

Result<Hello> parse_hello(const Message& m);
// `fds_received`: how many descriptors came with the packet; must equal the listener count.
Result<Offer> parse_offer(const Message& m, size_t fds_received);
Result<Refuse> parse_refuse(const Message& m);
Result<pid_t> parse_draining(const Message& m);

// The old instance's side of one connection, without I/O: packet in, what to do out.
struct ParentAction {
  std::string reply;         // packet to send; empty: none
  bool attach_fds = false;   // send the listener descriptors with `reply`
  bool start_drain = false;  // the new instance accepts: drain now
  bool close = false;        // end the connection (after sending `reply`)
  std::string log;           // one line worth logging; empty: nothing
};

class ParentSession {
 public:
  // `listeners`: what to offer; `draining`: this instance already drains (refuse, retry=1).
  ParentSession(pid_t self, std::vector<OfferedListener> listeners, bool draining);
  // One received packet; `fds_received`: descriptors that came with it (always an error).
  ParentAction on_packet(std::string_view packet, size_t fds_received);
  bool offered() const { return state_ == State::kAwaitReady; }
  bool done() const { return state_ == State::kDone; }
  pid_t peer_pid() const { return peer_pid_; }

 private:
  enum class State { kAwaitHello, kAwaitReady, kDone };
  ParentAction reject(const std::string& why);
  pid_t self_;
  std::vector<OfferedListener> listeners_;
  bool draining_;
  State state_ = State::kAwaitHello;
  pid_t peer_pid_ = 0;
};

}  // namespace baton::handover

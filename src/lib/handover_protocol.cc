#include "lib/handover_protocol.h"

#include <sys/socket.h>

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace baton::handover {
namespace {

constexpr std::string_view kMagic = "baton-handover ";

constexpr std::pair<Type, std::string_view> kTypes[] = {
    {Type::kHello, "HELLO"}, {Type::kOffer, "OFFER"},       {Type::kRefuse, "REFUSE"},
    {Type::kReady, "READY"}, {Type::kDraining, "DRAINING"},
};

bool printable(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

bool valid_key(std::string_view k) {
  if (k.empty() || k.size() > 32) return false;
  for (char c : k) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

Result<long long> field_int(const Message& m, std::string_view key, long long min, long long max) {
  const std::string* v = m.get(key);
  if (v == nullptr) return Error(fmt::format("{}: missing {}", type_name(m.type), key));
  long long out = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (v->empty() || ec != std::errc() || end != v->data() + v->size() || out < min || out > max) {
    return Error(fmt::format("{}: {}='{}' is not a number in [{}, {}]", type_name(m.type), key, *v,
                             min, max));
  }
  return out;
}

Status no_fds(const Message& m, size_t fds) {
  if (fds != 0) return Error(fmt::format("{}: unexpected descriptors attached", type_name(m.type)));
  return {};
}

}  // namespace

const std::string* Message::get(std::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::string_view type_name(Type type) {
  for (const auto& [t, name] : kTypes) {
    if (t == type) return name;
  }
  return "?";
}

std::string encode(const Message& message) {
  std::string out(kMagic);
  out += type_name(message.type);
  out += '\n';
  for (const auto& [k, v] : message.fields) {
    out += k;
    out += '=';
    out += v;
    out += '\n';
  }
  return out;
}

Result<Message> decode(std::string_view packet) {
  if (packet.size() > kMaxPacket) return Error("handover message larger than 8192 bytes");
  if (packet.substr(0, kMagic.size()) != kMagic) return Error("not a baton-handover message");
  if (packet.empty() || packet.back() != '\n') return Error("handover message not newline-ended");
  std::string_view rest = packet.substr(kMagic.size());
  Message m;
  bool first = true;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    if (!printable(line)) return Error("handover message has a non-printable byte");
    if (first) {
      first = false;
      bool known = false;
      for (const auto& [t, name] : kTypes) {
        if (name == line) {
          m.type = t;
          known = true;
        }
      }
      if (!known) return Error(fmt::format("unknown handover message type '{}'", line));
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || !valid_key(line.substr(0, eq))) {
      return Error(fmt::format("malformed handover field '{}'", line));
    }
    std::string key(line.substr(0, eq));
    if (key != "listener" && m.get(key) != nullptr) {
      return Error(fmt::format("handover field '{}' repeated", key));
    }
    m.fields.emplace_back(std::move(key), std::string(line.substr(eq + 1)));
  }
  if (first) return Error("handover message without a type");
  return m;
}

Message make_hello(const Hello& h) {
  return {Type::kHello,
          {{"min_version", std::to_string(h.min_version)},
           {"max_version", std::to_string(h.max_version)},
           {"pid", std::to_string(h.pid)}}};
}

Message make_offer(const Offer& o) {
  Message m{Type::kOffer, {{"version", std::to_string(o.version)}, {"pid", std::to_string(o.pid)}}};
  for (const auto& l : o.listeners) {
    m.fields.emplace_back(
        "listener",
        fmt::format("{} {} {}", l.name, l.type == SOCK_DGRAM ? "dgram" : "stream", l.address));
  }
  return m;
}

Message make_refuse(const Refuse& r) {
  std::string reason = r.reason;
  for (char& c : reason) {
    if (c < 0x20 || c > 0x7e) c = ' ';
  }
  return {Type::kRefuse,
          {{"reason", reason},
           {"retry", r.retry ? "1" : "0"},
           {"min_version", std::to_string(r.min_version)},
           {"max_version", std::to_string(r.max_version)}}};
}

Message make_ready() { return {Type::kReady, {}}; }

Message make_draining(pid_t pid) { return {Type::kDraining, {{"pid", std::to_string(pid)}}}; }

Result<Hello> parse_hello(const Message& m) {
  if (m.type != Type::kHello)
    return Error(fmt::format("expected HELLO, got {}", type_name(m.type)));
  auto min = field_int(m, "min_version", 1, 1 << 20);
  if (!min) return min.error();
  auto max = field_int(m, "max_version", 1, 1 << 20);
  if (!max) return max.error();
  auto pid = field_int(m, "pid", 1, 0x7fffffff);
  if (!pid) return pid.error();
  if (*min > *max) return Error("HELLO: min_version above max_version");
  return Hello{static_cast<int>(*min), static_cast<int>(*max), static_cast<pid_t>(*pid)};
}

Result<Offer> parse_offer(const Message& m, size_t fds_received) {
  if (m.type != Type::kOffer)
    return Error(fmt::format("expected OFFER, got {}", type_name(m.type)));
  auto version = field_int(m, "version", 1, 1 << 20);
  if (!version) return version.error();
  if (*version < kMinVersion || *version > kVersion) {
    return Error(fmt::format("OFFER: version {} was not offered", *version));
  }
  auto pid = field_int(m, "pid", 1, 0x7fffffff);
  if (!pid) return pid.error();
  Offer o{static_cast<int>(*version), static_cast<pid_t>(*pid), {}};
  for (const auto& [k, v] : m.fields) {
    if (k != "listener") continue;
    size_t s1 = v.find(' ');
    size_t s2 = s1 == std::string::npos ? s1 : v.find(' ', s1 + 1);
    if (s2 == std::string::npos || s1 == 0 || s2 == s1 + 1 || s2 + 1 == v.size()) {
      return Error(fmt::format("OFFER: malformed listener '{}'", v));
    }
    std::string type = v.substr(s1 + 1, s2 - s1 - 1);
    if (type != "stream" && type != "dgram") {
      return Error(fmt::format("OFFER: listener type '{}' is neither stream nor dgram", type));
    }
    o.listeners.push_back(
        {v.substr(0, s1), type == "dgram" ? SOCK_DGRAM : SOCK_STREAM, v.substr(s2 + 1)});
  }
  if (o.listeners.size() > static_cast<size_t>(kMaxFds)) {
    return Error(fmt::format("OFFER: more than {} listeners", kMaxFds));
  }
  if (o.listeners.size() != fds_received) {
    return Error(fmt::format("OFFER: {} listeners described but {} descriptors received",
                             o.listeners.size(), fds_received));
  }
  return o;
}

Result<Refuse> parse_refuse(const Message& m) {
  if (m.type != Type::kRefuse) {
    return Error(fmt::format("expected REFUSE, got {}", type_name(m.type)));
  }
  Refuse r;
  if (const std::string* reason = m.get("reason")) r.reason = *reason;
  auto retry = field_int(m, "retry", 0, 1);
  if (!retry) return retry.error();
  r.retry = *retry == 1;
  if (auto v = field_int(m, "min_version", 1, 1 << 20)) r.min_version = static_cast<int>(*v);
  if (auto v = field_int(m, "max_version", 1, 1 << 20)) r.max_version = static_cast<int>(*v);
  return r;
}

Result<pid_t> parse_draining(const Message& m) {
  if (m.type != Type::kDraining) {
    return Error(fmt::format("expected DRAINING, got {}", type_name(m.type)));
  }
  auto pid = field_int(m, "pid", 1, 0x7fffffff);
  if (!pid) return pid.error();
  return static_cast<pid_t>(*pid);
}

ParentSession::ParentSession(pid_t self, std::vector<OfferedListener> listeners, bool draining)
    : self_(self), listeners_(std::move(listeners)), draining_(draining) {}

ParentAction ParentSession::reject(const std::string& why) {
  state_ = State::kDone;
  ParentAction a;
  a.close = true;
  a.log = "handover: rejected a message from pid " + std::to_string(peer_pid_) + ": " + why;
  return a;
}

ParentAction ParentSession::on_packet(std::string_view packet, size_t fds_received) {
  if (state_ == State::kDone) return reject("message after the end of the conversation");
  auto m = decode(packet);
  if (!m) return reject(m.error().what());
  if (auto s = no_fds(*m, fds_received); !s) return reject(s.error().what());

  if (state_ == State::kAwaitHello) {
    auto hello = parse_hello(*m);
    if (!hello) return reject(hello.error().what());
    peer_pid_ = hello->pid;
    ParentAction a;
    int version = std::min(hello->max_version, kVersion);
    if (version < std::max(hello->min_version, kMinVersion)) {
      state_ = State::kDone;
      a.reply = encode(
          make_refuse({fmt::format("no common protocol version (mine {}..{}, yours "
                                   "{}..{})",
                                   kMinVersion, kVersion, hello->min_version, hello->max_version),
                       false, kMinVersion, kVersion}));
      a.close = true;
      a.log = fmt::format("handover: refused pid {}: no common protocol version", peer_pid_);
      return a;
    }
    if (draining_) {
      state_ = State::kDone;
      a.reply = encode(make_refuse({"already draining", true, kMinVersion, kVersion}));
      a.close = true;
      return a;
    }
    state_ = State::kAwaitReady;
    a.reply = encode(make_offer({version, self_, listeners_}));
    a.attach_fds = true;
    a.log = fmt::format("handover: offered {} listener(s) to pid {} (protocol {})",
                        listeners_.size(), peer_pid_, version);
    return a;
  }

  // kAwaitReady
  if (m->type != Type::kReady) {
    return reject(fmt::format("expected READY, got {}", type_name(m->type)));
  }
  state_ = State::kDone;
  ParentAction a;
  a.reply = encode(make_draining(self_));
  a.start_drain = true;
  a.close = true;
  a.log = fmt::format("handover: pid {} is ready, draining", peer_pid_);
  return a;
}

}  // namespace baton::handover

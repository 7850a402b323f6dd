#include "supervisor/upgrade_state.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/address.h"
#include "common/listen_fds.h"
#include "supervisor/checked_json.h"
#include "supervisor/upgrade_settings.h"

namespace baton {
namespace {

using json = nlohmann::json;

std::int64_t ns(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
TimePoint at(std::int64_t n) { return TimePoint(std::chrono::nanoseconds(n)); }
json opt_ns(const std::optional<TimePoint>& t) { return t ? json(ns(*t)) : json(nullptr); }

// ---- reading: each field checked (checked_json.h) ----

using namespace checked;

std::optional<TimePoint> opt_time(const json& j, const char* key) {
  if (field(j, key).is_null()) return std::nullopt;
  return at(integer(j, key, INT64_MIN, INT64_MAX));
}
int fd_number(const json& j, const char* key) { return small(j, key, -1, kMaxCarriedFd); }

// ---- the core's part ----

json encode_generation(const Generation& g) {
  return {{"id", g.id},
          {"pid", g.pid},
          {"state", static_cast<int>(g.state)},
          {"started_at", ns(g.started_at)},
          {"ready_at", opt_ns(g.ready_at)},
          {"drain_started_at", opt_ns(g.drain_started_at)},
          {"exited_at", opt_ns(g.exited_at)},
          {"wait_status", g.wait_status ? json(*g.wait_status) : json(nullptr)},
          {"killed", g.killed},
          {"quiescing", g.quiescing},
          {"group_lingers", g.group_lingers},
          {"status_text", g.status_text},
          {"canary_window", g.canary_window},
          {"deadline", ns(g.deadline)}};
}

Generation decode_generation(const json& j) {
  Generation g;
  g.id = small(j, "id", 1);
  g.pid = small(j, "pid", -1);
  g.state = static_cast<GenerationState>(small(j, "state", 0, 4));
  g.started_at = at(integer(j, "started_at", INT64_MIN, INT64_MAX));
  g.ready_at = opt_time(j, "ready_at");
  g.drain_started_at = opt_time(j, "drain_started_at");
  g.exited_at = opt_time(j, "exited_at");
  if (!field(j, "wait_status").is_null()) g.wait_status = small(j, "wait_status", 0, 0xffff);
  g.killed = flag(j, "killed");
  g.quiescing = flag(j, "quiescing");
  g.group_lingers = flag(j, "group_lingers");
  g.status_text = text(j, "status_text");
  g.canary_window = flag(j, "canary_window");
  g.deadline = at(integer(j, "deadline", INT64_MIN, INT64_MAX));
  if (g.state != GenerationState::kExited && g.pid <= 0) {
    throw Bad{fmt::format("live generation {} has no pid", g.id)};
  }
  if (g.state == GenerationState::kDraining && !g.drain_started_at) {
    throw Bad{fmt::format("draining generation {} has no drain start", g.id)};
  }
  return g;
}

json encode_histogram(const DurationHistogram& h) {
  return {{"buckets", h.buckets}, {"count", h.count}, {"sum_seconds", h.sum_seconds}};
}

DurationHistogram decode_histogram(const json& j) {
  DurationHistogram h;
  const json& b = array(j, "buckets", h.buckets.size());
  if (b.size() != h.buckets.size()) throw Bad{"a histogram has the wrong number of buckets"};
  for (size_t i = 0; i < b.size(); ++i) {
    if (!b[i].is_number_unsigned()) throw Bad{"a histogram bucket is not a count"};
    h.buckets[i] = b[i].get<std::uint64_t>();
  }
  h.count = count(j, "count");
  h.sum_seconds = number(j, "sum_seconds");
  return h;
}

json encode_record(const std::optional<ReloadRecord>& r) {
  if (!r) return nullptr;
  return {{"id", r->id},
          {"in_progress", r->in_progress},
          {"ok", r->ok},
          {"message", r->message},
          {"requested_at", ns(r->requested_at)},
          {"finished_at", opt_ns(r->finished_at)}};
}

std::optional<ReloadRecord> decode_record(const json& j, const char* key) {
  const json& r = field(j, key);
  if (r.is_null()) return std::nullopt;
  ReloadRecord out;
  out.id = small(r, "id", 1);
  out.in_progress = flag(r, "in_progress");
  out.ok = flag(r, "ok");
  out.message = text(r, "message");
  out.requested_at = at(integer(r, "requested_at", INT64_MIN, INT64_MAX));
  out.finished_at = opt_time(r, "finished_at");
  return out;
}

json encode_core(const CoreSnapshot& s) {
  json gens = json::array();
  for (const auto& g : s.generations) gens.push_back(encode_generation(g));
  json completing = json::array();
  for (const auto& c : s.completing) {
    completing.push_back({{"generation", c.generation},
                          {"purpose", c.purpose},
                          {"replaced", c.replaced},
                          {"reload_id", c.reload_id},
                          {"waiters", c.waiters}});
  }
  const Counters& c = s.counters;
  return {{"generations", gens},
          {"next_id", s.next_id},
          {"next_reload_id", s.next_reload_id},
          {"completing", completing},
          {"counters",
           {{"reloads_ok", c.reloads_ok},
            {"reloads_failed", c.reloads_failed},
            {"reloads_coalesced", c.reloads_coalesced},
            {"crashes", c.crashes},
            {"drain_kills", c.drain_kills},
            {"generations_started", c.generations_started},
            {"ready_time", encode_histogram(c.ready_time)},
            {"reload_time", encode_histogram(c.reload_time)}}},
          {"last_reload", encode_record(s.last_reload)},
          {"last_failed_reload", encode_record(s.last_failed_reload)},
          {"backoff_ms", s.backoff.count()},
          {"warned_wrapper", s.warned_wrapper}};
}

CoreSnapshot decode_core(const json& j) {
  CoreSnapshot s;
  std::set<int> ids, live_pids;
  for (const auto& g : array(j, "generations", kMaxCarriedGenerations)) {
    s.generations.push_back(decode_generation(g));
    const Generation& added = s.generations.back();
    if (!ids.insert(added.id).second) throw Bad{fmt::format("generation {} twice", added.id)};
    if (added.state != GenerationState::kExited && !live_pids.insert(added.pid).second) {
      throw Bad{fmt::format("pid {} in two live generations", added.pid)};
    }
  }
  s.next_id = small(j, "next_id", 1);
  s.next_reload_id = small(j, "next_reload_id", 1);
  for (int id : ids) {
    if (id >= s.next_id) throw Bad{fmt::format("generation {} is not below next_id", id)};
  }
  for (const auto& c : array(j, "completing", kMaxCarriedGenerations)) {
    CoreSnapshot::Completing out;
    out.generation = small(c, "generation", 1);
    out.purpose = small(c, "purpose", 0, 2);
    out.replaced = small(c, "replaced", 0);
    out.reload_id = small(c, "reload_id", 0);
    for (const auto& w : array(c, "waiters", kMaxCarriedWaiters)) {
      if (!w.is_number_unsigned()) throw Bad{"a waiter is not a number"};
      out.waiters.push_back(w.get<std::uint64_t>());
    }
    if (!ids.contains(out.generation)) throw Bad{"a reload under way names no generation"};
    s.completing.push_back(std::move(out));
  }
  const json& c = field(j, "counters");
  s.counters.reloads_ok = count(c, "reloads_ok");
  s.counters.reloads_failed = count(c, "reloads_failed");
  s.counters.reloads_coalesced = count(c, "reloads_coalesced");
  s.counters.crashes = count(c, "crashes");
  s.counters.drain_kills = count(c, "drain_kills");
  s.counters.generations_started = count(c, "generations_started");
  s.counters.ready_time = decode_histogram(field(c, "ready_time"));
  s.counters.reload_time = decode_histogram(field(c, "reload_time"));
  s.last_reload = decode_record(j, "last_reload");
  s.last_failed_reload = decode_record(j, "last_failed_reload");
  s.backoff = Duration(integer(j, "backoff_ms", 0, INT32_MAX));
  s.warned_wrapper = flag(j, "warned_wrapper");
  return s;
}

// ---- the shell's part ----

json encode_waiter(const CarriedWaiter& w) { return {{"id", w.id}, {"fd", w.fd}}; }

// JSON text is UTF-8, but what the state carries need not be: an argument or an --env value is
// any bytes but NUL. Such a string crosses as {"$bytes": [b, ...]} (no field of the state is an
// object with that key) and is put back before the fields are read, so every byte arrives.
constexpr const char* kBytesKey = "$bytes";

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    unsigned min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4, min = 0x10000;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    unsigned cp = c & (0x7f >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

void bytes_to_json(json& j) {
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (valid_utf8(s)) return;
    json bytes = json::array();
    for (char c : s) bytes.push_back(static_cast<unsigned char>(c));
    j = json{{kBytesKey, std::move(bytes)}};
  } else if (j.is_array() || j.is_object()) {
    for (auto& v : j) bytes_to_json(v);
  }
}

void bytes_from_json(json& j) {
  if (j.is_object() && j.size() == 1 && j.contains(kBytesKey)) {
    const json& bytes = j[kBytesKey];
    if (!bytes.is_array()) throw Bad{"malformed bytes"};
    std::string s;
    s.reserve(bytes.size());
    for (const auto& b : bytes) {
      if (!b.is_number_unsigned() || b.get<unsigned>() > 255) throw Bad{"malformed bytes"};
      s.push_back(static_cast<char>(b.get<unsigned>()));
    }
    j = std::move(s);
  } else if (j.is_array() || j.is_object()) {
    for (auto& v : j) bytes_from_json(v);
  }
}
CarriedWaiter decode_waiter(const json& j) {
  CarriedWaiter w{count(j, "id"), fd_number(j, "fd")};
  if (w.fd < 3) throw Bad{"a waiting control client has no descriptor"};
  return w;
}

json encode_view(const ManagerView& v) {
  return {{"serving_generation", v.serving_generation},
          {"serving_pid", v.serving_pid},
          {"starting_generation", v.starting_generation},
          {"reload_id", v.reload_id},
          {"reload_in_progress", v.reload_in_progress},
          {"reloads_ended", v.reloads_ended},
          {"stopping", v.stopping}};
}

ManagerView decode_view(const json& j) {
  ManagerView v;
  v.serving_generation = small(j, "serving_generation");
  v.serving_pid = small(j, "serving_pid");
  v.starting_generation = small(j, "starting_generation");
  v.reload_id = small(j, "reload_id");
  v.reload_in_progress = flag(j, "reload_in_progress");
  v.reloads_ended = count(j, "reloads_ended");
  v.stopping = flag(j, "stopping");
  return v;
}

void decode_shell(const json& j, UpgradeState& s) {
  for (const auto& l : array(j, "listeners", kMaxListeners)) {
    CarriedListener out;
    out.name = text(l, "name");
    out.address = text(l, "address");
    if (!parse_address(out.address)) throw Bad{"a listener's address does not parse"};
    out.activated = flag(l, "activated");
    out.unix_path = text(l, "unix_path");
    for (const auto& m : array(l, "members", kMaxCarriedSlots)) {
      if (!m.is_number_integer() || m.get<std::int64_t>() < 3 ||
          m.get<std::int64_t>() > kMaxCarriedFd)
        throw Bad{"a listener member is not a descriptor"};
      out.members.push_back(m.get<int>());
    }
    out.shared = fd_number(l, "shared");
    if (out.members.empty() == (out.shared < 0)) {
      throw Bad{fmt::format("listener {} must have members or a shared socket", out.name)};
    }
    s.listeners.push_back(std::move(out));
  }
  for (const auto& in_use : array(j, "slots_in_use", kMaxCarriedSlots)) {
    if (!in_use.is_boolean()) throw Bad{"a slot is not true or false"};
    s.slots_in_use.push_back(in_use.get<bool>());
  }
  for (const auto& l : s.listeners) {
    if (!l.members.empty() && l.members.size() < s.slots_in_use.size()) {
      throw Bad{fmt::format("listener {} has fewer members than there are slots", l.name)};
    }
  }
  const int slots = static_cast<int>(s.slots_in_use.size());
  for (const auto& pair : array(j, "slot_by_generation", kMaxCarriedSlots)) {
    const int id = small(pair, "generation", 1);
    const int slot = small(pair, "slot", 0, std::max(0, slots - 1));
    if (slots == 0 || !s.slots_in_use[static_cast<size_t>(slot)]) {
      throw Bad{fmt::format("generation {} holds a slot not in use", id)};
    }
    if (!s.slot_by_generation.emplace(id, slot).second) throw Bad{"a generation holds two slots"};
  }
  if (!field(j, "target_slot").is_null()) {
    s.target_slot = small(j, "target_slot", 0, std::max(0, slots - 1));
    if (slots == 0) throw Bad{"a target slot without slots"};
  }
  std::set<int> live;
  for (const auto& g : s.core.generations) {
    if (g.state != GenerationState::kExited) live.insert(g.id);
  }
  for (const auto& [id, slot] : s.slot_by_generation) {
    if (!live.contains(id))
      throw Bad{fmt::format("generation {} holds a slot but is not live", id)};
  }
  for (const auto& g : array(j, "generations", kMaxCarriedGenerations)) {
    CarriedGeneration out;
    out.id = small(g, "id", 1);
    out.out_fd = fd_number(g, "out_fd");
    out.err_fd = fd_number(g, "err_fd");
    out.adopt_loaded = flag(g, "adopt_loaded");
    out.adopted = flag(g, "adopted");
    if (!s.core.generations.empty() &&
        std::none_of(s.core.generations.begin(), s.core.generations.end(),
                     [&](const Generation& x) { return x.id == out.id; })) {
      throw Bad{fmt::format("generation {} has descriptors but no record", out.id)};
    }
    s.generations.push_back(out);
  }
  s.lock_fd = fd_number(j, "lock_fd");
  s.control_fd = fd_number(j, "control_fd");
  s.control_path = text(j, "control_path");
  for (const auto& w : array(j, "waiters", kMaxCarriedWaiters))
    s.waiters.push_back(decode_waiter(w));
  s.next_waiter = count(j, "next_waiter");
  if (!field(j, "upgrade_waiter").is_null()) s.upgrade_waiter = decode_waiter(j["upgrade_waiter"]);
  s.notify_fd = fd_number(j, "notify_fd");
  s.notify_path = text(j, "notify_path");
  s.manager_fd = fd_number(j, "manager_fd");
  s.manager_name = text(j, "manager_name");
  const json& m = field(j, "manager");
  s.manager.last = decode_view(field(m, "last"));
  s.manager.ready_sent = flag(m, "ready_sent");
  s.manager.stopping_sent = flag(m, "stopping_sent");
  s.metrics_fd = fd_number(j, "metrics_fd");
  s.guard_fd = fd_number(j, "guard_fd");
  s.guard_pid = small(j, "guard_pid", -1);
  s.spoke_notify = flag(j, "spoke_notify");
  s.ignored_notify = small(j, "ignored_notify");
  s.signal_mask = count(j, "signal_mask");
  for (const auto& d : array(j, "dropped_lines", kMaxCarriedGenerations)) {
    s.dropped_lines[small(d, "source")] = count(d, "lines");
  }
  s.dropped_lines_total = count(j, "dropped_lines_total");
  if (s.lock_fd < 0 || s.control_fd < 0 || s.notify_fd < 0) {
    throw Bad{"the lock, the control socket and the notify socket are required"};
  }
  if ((s.manager_fd < 0) != s.manager_name.empty()) throw Bad{"the manager socket is half there"};
}

}  // namespace

std::vector<PassedFd> passed_fds(const UpgradeState& s) {
  std::vector<PassedFd> out;
  auto add = [&](int fd, PassedFd::Kind kind, int family, int type, bool listening,
                 std::string what) {
    if (fd >= 0) out.push_back({fd, kind, family, type, listening, std::move(what)});
  };
  using K = PassedFd::Kind;
  for (const auto& l : s.listeners) {
    auto address = parse_address(l.address);
    const int family = address ? address->family() : AF_UNSPEC;
    const int type = address ? address->socket_type() : SOCK_STREAM;
    const bool listening = type == SOCK_STREAM;
    for (size_t i = 0; i < l.members.size(); ++i) {
      add(l.members[i], K::kSocket, family, type, listening,
          fmt::format("listener {} member {}", l.name, i));
    }
    add(l.shared, K::kSocket, family, type, listening, fmt::format("listener {}", l.name));
  }
  for (const auto& g : s.generations) {
    add(g.out_fd, K::kPipe, 0, 0, false, fmt::format("generation {}'s stdout", g.id));
    add(g.err_fd, K::kPipe, 0, 0, false, fmt::format("generation {}'s stderr", g.id));
  }
  add(s.lock_fd, K::kLockFile, 0, 0, false, "the control lock");
  add(s.control_fd, K::kSocket, AF_UNIX, SOCK_STREAM, true, "the control socket");
  for (const auto& w : s.waiters) {
    add(w.fd, K::kSocket, AF_UNIX, SOCK_STREAM, false, fmt::format("control client {}", w.id));
  }
  if (s.upgrade_waiter) {
    add(s.upgrade_waiter->fd, K::kSocket, AF_UNIX, SOCK_STREAM, false, "the upgrade's client");
  }
  add(s.notify_fd, K::kSocket, AF_UNIX, SOCK_DGRAM, false, "the notify socket");
  add(s.manager_fd, K::kSocket, AF_UNIX, SOCK_DGRAM, false, "the service manager's socket");
  add(s.metrics_fd, K::kSocket, AF_UNSPEC, SOCK_STREAM, true, "the metrics listener");
  add(s.guard_fd, K::kPipe, 0, 0, false, "the orphan guard's pipe");
  return out;
}

std::string encode_upgrade_state(const UpgradeState& s) {
  json listeners = json::array();
  for (const auto& l : s.listeners) {
    listeners.push_back({{"name", l.name},
                         {"address", l.address},
                         {"activated", l.activated},
                         {"unix_path", l.unix_path},
                         {"members", l.members},
                         {"shared", l.shared}});
  }
  json slots = json::array();
  for (const auto& [id, slot] : s.slot_by_generation) {
    slots.push_back({{"generation", id}, {"slot", slot}});
  }
  json gens = json::array();
  for (const auto& g : s.generations) {
    gens.push_back({{"id", g.id},
                    {"out_fd", g.out_fd},
                    {"err_fd", g.err_fd},
                    {"adopt_loaded", g.adopt_loaded},
                    {"adopted", g.adopted}});
  }
  json waiters = json::array();
  for (const auto& w : s.waiters) waiters.push_back(encode_waiter(w));
  json dropped = json::array();
  for (const auto& [source, lines] : s.dropped_lines) {
    dropped.push_back({{"source", source}, {"lines", lines}});
  }
  json j = {{"baton_upgrade_state", s.version},
            {"from_version", s.from_version},
            {"binary", s.binary},
            {"started_at", s.started_at_ns},
            {"core", encode_core(s.core)},
            {"settings", encode_run_settings(s.settings)},
            {"listeners", listeners},
            {"slots_in_use", s.slots_in_use},
            {"slot_by_generation", slots},
            {"target_slot", s.target_slot ? json(*s.target_slot) : json(nullptr)},
            {"generations", gens},
            {"lock_fd", s.lock_fd},
            {"control_fd", s.control_fd},
            {"control_path", s.control_path},
            {"waiters", waiters},
            {"next_waiter", s.next_waiter},
            {"upgrade_waiter", s.upgrade_waiter ? encode_waiter(*s.upgrade_waiter) : json(nullptr)},
            {"notify_fd", s.notify_fd},
            {"notify_path", s.notify_path},
            {"manager_fd", s.manager_fd},
            {"manager_name", s.manager_name},
            {"manager",
             {{"last", encode_view(s.manager.last)},
              {"ready_sent", s.manager.ready_sent},
              {"stopping_sent", s.manager.stopping_sent}}},
            {"metrics_fd", s.metrics_fd},
            {"guard_fd", s.guard_fd},
            {"guard_pid", s.guard_pid},
            {"spoke_notify", s.spoke_notify},
            {"ignored_notify", s.ignored_notify},
            {"signal_mask", s.signal_mask},
            {"dropped_lines", dropped},
            {"dropped_lines_total", s.dropped_lines_total}};
  bytes_to_json(j);
  // Object keys are not converted: they are field names and variable names (checked to be
  // [A-Za-z0-9_]), so the replacement here never applies; it only keeps dump() from throwing.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::string> parse_upgrade_check_answer(std::string_view line) {
  auto answer = json::parse(line, nullptr, /*allow_exceptions=*/false);
  try {
    integer(answer, "baton_upgrade_check", kUpgradeStateVersion, kUpgradeStateVersion);
    if (!flag(answer, "ok")) throw Bad{"not ok"};
    return text(answer, "version");
  } catch (const Bad&) {
    return Error(EPROTO, "not an answer to the pre-flight check");
  }
}

Result<UpgradeState> decode_upgrade_state(std::string_view bytes) {
  if (bytes.size() > kMaxUpgradeState) {
    return Error(EMSGSIZE, fmt::format("upgrade state of {} bytes; at most {}", bytes.size(),
                                       kMaxUpgradeState));
  }
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error(EINVAL, "upgrade state is not JSON");
  UpgradeState s;
  try {
    bytes_from_json(j);
    s.version = small(j, "baton_upgrade_state", 0);
    if (s.version != kUpgradeStateVersion) {
      return Error(EPROTO, fmt::format("upgrade state version {}; this baton reads version {}",
                                       s.version, kUpgradeStateVersion));
    }
    s.from_version = text(j, "from_version");
    s.binary = text(j, "binary");
    s.started_at_ns = integer(j, "started_at", INT64_MIN, INT64_MAX);
    s.core = decode_core(field(j, "core"));
    s.settings = decode_run_settings(field(j, "settings"));
    decode_shell(j, s);
  } catch (const checked::Bad& bad) {
    return Error(EINVAL, "upgrade state: " + bad.what);
  } catch (const json::exception& e) {
    return Error(EINVAL, std::string("upgrade state: ") + e.what());
  }
  std::set<int> seen;
  for (const auto& p : passed_fds(s)) {
    if (p.fd < 3) return Error(EINVAL, "upgrade state: " + p.what + " is below fd 3");
    if (!seen.insert(p.fd).second) {
      return Error(EINVAL, fmt::format("upgrade state: fd {} named twice ({})", p.fd, p.what));
    }
  }
  return s;
}

}  // namespace baton

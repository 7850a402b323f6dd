#include "supervisor/drain_watch.h"

// The kernel's own tcp_info (linux/tcp.h) has the byte counters glibc's copy lacks; the two
// headers cannot both be included, so the TCP state numbers are spelled out below.
#include <dirent.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <deque>
#include <map>
#include <string>

#include <fmt/format.h>

#include "baton/fd.h"
#include "common/sock_diag.h"
#include "common/syscall.h"

namespace baton {
namespace {

// TCP states as the kernel numbers them (include/net/tcp_states.h, part of the ABI of sock_diag).
constexpr std::uint8_t kTcpEstablished = 1;
constexpr std::uint8_t kTcpListen = 10;
// Every state a socket with a descriptor can be in, less LISTEN: SYN_RECV, TIME_WAIT and
// NEW_SYN_RECV sockets have no descriptor, so they are not asked for.
constexpr std::uint32_t kHeldStates =
    (1u << 1) | (1u << 2) | (1u << 4) | (1u << 5) | (1u << 7) | (1u << 8) | (1u << 9) | (1u << 11);
// A connection on which the client has sent nothing is closed only once it has been silent this
// long: a client that has just connected is about to send its request.
constexpr std::uint32_t kUnusedGraceMs = 1000;
// One netlink datagram; the kernel sizes its dump messages well below this.
constexpr size_t kDiagBuffer = 64 * 1024;

template <typename T>
bool parse_number(std::string_view text, T& value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

// Appends the socket descriptors of `pid` to `out`; false when its fd directory cannot be read.
bool sockets_of(pid_t pid, std::vector<HeldSocket>& out) {
  const std::string dir = fmt::format("/proc/{}/fd", pid);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  const int dfd = ::dirfd(d);
  size_t seen = 0;
  while (dirent* e = ::readdir(d)) {
    if (++seen > kDrainMaxFdsPerProcess || out.size() >= kDrainMaxSockets) break;
    int fd = -1;
    if (!parse_number(std::string_view(e->d_name), fd) || fd < 0) continue;
    char link[64];
    ssize_t n = ::readlinkat(dfd, e->d_name, link, sizeof(link));
    if (n <= 0 || static_cast<size_t>(n) >= sizeof(link)) continue;
    if (auto inode = socket_inode_of_link(std::string_view(link, static_cast<size_t>(n)))) {
      out.push_back(HeldSocket{pid, fd, inode});
    }
  }
  ::closedir(d);
  return true;
}

Result<std::vector<TcpConnection>> dump_family(int family, std::uint16_t port) {
  auto diag = SockDiagSocket::open();
  if (!diag) return diag.error();
  // With tcp_info (INET_DIAG_INFO): is_idle_keepalive reads its times and byte counts.
  const auto request = tcp_dump_request(family, port, kHeldStates, 1U << (INET_DIAG_INFO - 1));
  if (auto sent = diag->send(request); !sent) return sent.error();
  std::vector<TcpConnection> found;
  std::vector<std::uint8_t> buf(kDiagBuffer);
  // Each datagram holds at least one record unless it is the last.
  for (size_t datagrams = 0; datagrams <= kDrainMaxConnections; ++datagrams) {
    auto datagram = diag->receive(buf);
    if (!datagram) return datagram.error();
    auto done = parse_diag_datagram(*datagram, found, kDrainMaxConnections);
    if (!done) return done.error();
    if (*done) {
      std::erase_if(found, [&](const TcpConnection& c) { return c.local_port != port; });
      return found;
    }
    if (found.size() >= kDrainMaxConnections) {
      return Error(fmt::format("more than {} sockets on port {}", kDrainMaxConnections, port));
    }
  }
  return Error("sock_diag dump did not end");
}

// The peer of a sock_diag record, as an Address (port included).
Address remote_of(const inet_diag_msg& msg) {
  sockaddr_storage storage{};
  socklen_t len = 0;
  if (msg.idiag_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = msg.id.idiag_dport;
    std::memcpy(&in6->sin6_addr, msg.id.idiag_dst, sizeof(in6->sin6_addr));
    len = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&storage);
    in->sin_family = AF_INET;
    in->sin_port = msg.id.idiag_dport;
    std::memcpy(&in->sin_addr, msg.id.idiag_dst, sizeof(in->sin_addr));
    len = sizeof(sockaddr_in);
  }
  return address_from_sockaddr(Transport::kTcp, reinterpret_cast<sockaddr*>(&storage), len);
}

}  // namespace

std::string read_small(const std::string& path, size_t limit) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  std::string out;
  char buf[4096];
  while (out.size() < limit) {
    ssize_t n = retry_eintr(::read, fd.get(), buf, std::min(sizeof(buf), limit - out.size()));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

bool is_idle_keepalive(const TcpConnection& c) {
  if (c.state != kTcpEstablished || !c.has_info || c.recv_queue != 0 || c.notsent_bytes != 0) {
    return false;
  }
  // Nothing ever came in: the client connected and has not sent its request yet.
  if (c.bytes_received == 0) return c.last_data_recv_ms >= kUnusedGraceMs;
  // A request came and no answer ever went out: the first request is being served. (The times
  // cannot tell: the connection was set up in the same tick as its first request arrived.)
  if (c.bytes_sent == 0) return false;
  return c.last_data_sent_ms <= c.last_data_recv_ms;
}

bool is_quiet(std::span<const std::uint32_t> accept_queues, size_t held_connections) {
  for (auto q : accept_queues) {
    if (q != 0) return false;
  }
  return held_connections == 0;
}

std::uint64_t socket_inode_of_link(std::string_view link) {
  constexpr std::string_view prefix = "socket:[";
  if (!link.starts_with(prefix) || !link.ends_with("]")) return 0;
  std::string_view digits = link.substr(prefix.size(), link.size() - prefix.size() - 1);
  std::uint64_t inode = 0;
  if (digits.empty() || !parse_number(digits, inode)) return 0;
  return inode;
}

pid_t pgid_of_stat(std::string_view stat) {
  auto close = stat.rfind(')');
  if (close == std::string_view::npos) return -1;
  // After ") ": state, ppid, pgrp.
  std::string_view rest = stat.substr(close + 1);
  std::string_view fields[3];
  for (auto& field : fields) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    auto end = rest.find(' ');
    if (end == std::string_view::npos) return -1;
    field = rest.substr(0, end);
    rest.remove_prefix(end);
  }
  pid_t pgid = -1;
  if (fields[0].size() != 1 || !parse_number(fields[2], pgid) || pgid <= 0) return -1;
  return pgid;
}

std::vector<pid_t> parse_children(std::string_view text, size_t limit) {
  std::vector<pid_t> out;
  while (!text.empty() && out.size() < limit) {
    auto end = text.find_first_of(" \n");
    std::string_view word = text.substr(0, end);
    pid_t pid = 0;
    if (!word.empty() && parse_number(word, pid) && pid > 0) out.push_back(pid);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return out;
}

Result<bool> parse_diag_datagram(std::span<const std::uint8_t> data,
                                 std::vector<TcpConnection>& out, size_t limit) {
  size_t offset = 0;
  while (data.size() - offset >= sizeof(nlmsghdr)) {
    nlmsghdr header;
    std::memcpy(&header, data.data() + offset, sizeof(header));
    if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > data.size() - offset) {
      return Error("malformed sock_diag message");
    }
    const std::uint8_t* payload = data.data() + offset + NLMSG_HDRLEN;
    const size_t payload_len =
        header.nlmsg_len > NLMSG_HDRLEN ? header.nlmsg_len - NLMSG_HDRLEN : 0;
    if (header.nlmsg_type == NLMSG_DONE) return true;
    if (header.nlmsg_type == NLMSG_ERROR) {
      int code = 0;
      if (payload_len >= sizeof(int)) std::memcpy(&code, payload, sizeof(int));
      return Error(code < 0 ? -code : 0, "sock_diag");
    }
    if (header.nlmsg_type == SOCK_DIAG_BY_FAMILY && payload_len >= sizeof(inet_diag_msg) &&
        out.size() < limit) {
      inet_diag_msg msg;
      std::memcpy(&msg, payload, sizeof(msg));
      TcpConnection c;
      c.inode = msg.idiag_inode;
      c.state = msg.idiag_state;
      c.local_port = ntohs(msg.id.idiag_sport);
      c.remote_port = ntohs(msg.id.idiag_dport);
      c.recv_queue = msg.idiag_rqueue;
      c.remote = remote_of(msg);
      c.send_queue = msg.idiag_wqueue;
      size_t at = NLMSG_ALIGN(sizeof(inet_diag_msg));
      while (at < payload_len && payload_len - at >= sizeof(rtattr)) {
        rtattr attr;
        std::memcpy(&attr, payload + at, sizeof(attr));
        if (attr.rta_len < sizeof(rtattr) || attr.rta_len > payload_len - at) break;
        const size_t len = attr.rta_len - RTA_LENGTH(0);
        if (attr.rta_type == INET_DIAG_INFO &&
            len >= offsetof(tcp_info, tcpi_bytes_sent) + sizeof(std::uint64_t)) {
          tcp_info info{};
          std::memcpy(&info, payload + at + RTA_LENGTH(0), std::min(len, sizeof(info)));
          c.has_info = true;
          c.last_data_recv_ms = info.tcpi_last_data_recv;
          c.last_data_sent_ms = info.tcpi_last_data_sent;
          c.bytes_received = info.tcpi_bytes_received;
          c.bytes_sent = info.tcpi_bytes_sent;
          c.notsent_bytes = info.tcpi_notsent_bytes;
        }
        at += RTA_ALIGN(attr.rta_len);
      }
      out.push_back(c);
    }
    offset += NLMSG_ALIGN(header.nlmsg_len);
    if (offset > data.size()) break;
  }
  return false;
}

Result<std::uint32_t> accept_queue_length(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) {
    return Error::from_errno(fmt::format("TCP_INFO on fd {}", fd));
  }
  if (info.tcpi_state != kTcpListen) return Error(fmt::format("fd {} is not a TCP listener", fd));
  return info.tcpi_unacked;  // on a listener: the accept-queue length
}

Result<std::vector<HeldSocket>> held_sockets(pid_t leader) {
  std::vector<HeldSocket> out;
  if (!sockets_of(leader, out)) {
    if (errno == ENOENT || errno == ESRCH) return out;  // gone: it holds nothing
    return Error::from_errno(fmt::format("read /proc/{}/fd", leader));
  }
  // Its descendants in its process group (workers, children): found through each thread's
  // children list, which costs what the group is, not what the machine runs.
  std::deque<pid_t> queue = {leader};
  std::set<pid_t> visited = {leader};
  while (!queue.empty() && visited.size() < kDrainMaxProcesses) {
    const pid_t pid = queue.front();
    queue.pop_front();
    const std::string tasks = fmt::format("/proc/{}/task", pid);
    DIR* d = ::opendir(tasks.c_str());
    if (d == nullptr) continue;
    size_t threads = 0;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.' || ++threads > kDrainMaxProcesses) continue;
      for (pid_t child :
           parse_children(read_small(tasks + "/" + e->d_name + "/children"), kDrainMaxProcesses)) {
        if (visited.size() >= kDrainMaxProcesses || !visited.insert(child).second) continue;
        if (pgid_of_stat(read_small(fmt::format("/proc/{}/stat", child))) != leader) continue;
        sockets_of(child, out);  // one that exits meanwhile holds nothing
        queue.push_back(child);
      }
    }
    ::closedir(d);
  }
  return out;
}

Result<std::vector<TcpConnection>> tcp_sockets_on_port(std::uint16_t port) {
  auto v4 = dump_family(AF_INET, port);
  if (!v4) return v4.error();
  auto v6 = dump_family(AF_INET6, port);
  if (!v6) return v6.error();
  std::vector<TcpConnection> all = std::move(v4).value();
  all.insert(all.end(), v6->begin(), v6->end());
  return all;
}

namespace {

// A pidfd_getfd copy of the app's descriptor, checked to be that socket still.
Result<Fd> copy_of(const HeldSocket& socket) {
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, socket.pid, 0)));
  if (!pidfd) return Error::from_errno(fmt::format("pidfd_open {}", socket.pid));
  // The copy is CLOEXEC; it shares the app's open file description, so shutdown reaches the app.
  Fd copy(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), socket.fd, 0)));
  if (!copy)
    return Error::from_errno(fmt::format("pidfd_getfd pid {} fd {}", socket.pid, socket.fd));
  struct stat st {};
  if (::fstat(copy.get(), &st) != 0) return Error::from_errno("fstat");
  if (!S_ISSOCK(st.st_mode) || st.st_ino != socket.inode) {
    return Error(
        fmt::format("pid {} fd {} is no longer socket {}", socket.pid, socket.fd, socket.inode));
  }
  return copy;
}

}  // namespace

Result<Fd> take_read_side(const HeldSocket& socket) {
  auto copy = copy_of(socket);
  if (!copy) return copy.error();
  if (::shutdown(copy->get(), SHUT_RD) != 0) return Error::from_errno("shutdown(SHUT_RD)");
  return copy;
}

Status close_connection(const HeldSocket& socket) {
  auto copy = copy_of(socket);
  if (!copy) return copy.error();
  if (::shutdown(copy->get(), SHUT_RDWR) != 0) return Error::from_errno("shutdown(SHUT_RDWR)");
  return {};
}

GenerationWatch::GenerationWatch(pid_t pid, std::vector<int> listener_fds)
    : pid_(pid), listener_fds_(std::move(listener_fds)) {}

Result<DrainCheck> GenerationWatch::look(bool take_idle, const UpstreamCheck& upstream,
                                         const ClosePortCheck& close) {
  DrainCheck result;
  std::vector<std::uint32_t> queues;
  std::set<std::uint16_t> ports;
  for (int fd : listener_fds_) {
    auto queue = accept_queue_length(fd);
    if (!queue) return queue.error();
    queues.push_back(*queue);
    result.accept_queue += *queue;
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return Error::from_errno(fmt::format("getsockname fd {}", fd));
    }
    const std::uint16_t port = addr.ss_family == AF_INET6
                                   ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                   : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    if (ports.size() < kDrainMaxPorts) ports.insert(port);
  }
  auto held = held_sockets(pid_);
  if (!held) return held.error();
  std::map<std::uint64_t, HeldSocket> by_inode;
  for (const auto& s : *held) by_inode.emplace(s.inode, s);
  // Its copies of the listeners are not connections. Without them, an app that holds no other
  // socket holds no connection: the sock_diag dumps, which walk the kernel's whole TCP table
  // (milliseconds on a large machine, paid at every switch), are skipped.
  for (int fd : listener_fds_) {
    struct stat st {};
    if (::fstat(fd, &st) == 0) by_inode.erase(static_cast<std::uint64_t>(st.st_ino));
  }
  if (!by_inode.empty()) {
    for (auto port : ports) {
      auto sockets = tcp_sockets_on_port(port);
      if (!sockets) return sockets.error();
      for (const auto& c : *sockets) {
        auto it = by_inode.find(c.inode);
        if (c.inode == 0 || it == by_inode.end()) continue;  // another generation's, or orphaned
        ++result.connections;
        if (shut_.contains(c.inode)) continue;  // already taken over; the app has yet to close it
        if (!take_idle) continue;
        // baton's own relayed connection: the relay, which sees both ends, decides when it lets
        // it go (relay.h); it is never taken over.
        if (auto detaching = upstream ? upstream(c.remote) : std::nullopt) {
          if (*detaching) ++result.detached;
          continue;
        }
        if (!is_idle_keepalive(c)) continue;
        if (close && close(port)) {  // once closed it is no longer established: closed once
          if (close_connection(it->second)) ++result.idle_closed;
          continue;
        }
        // A connection the app no longer holds, or one that changed under us, is left alone.
        if (auto copy = take_read_side(it->second)) {
          ++result.idle_taken;
          shut_.emplace(c.inode, TakenConnection{std::move(copy).value(), port});
        }
      }
    }
  }
  // The taken-over connections no process of the generation holds any more are baton's alone.
  for (auto it = shut_.begin(); it != shut_.end();) {
    if (by_inode.contains(it->first)) {
      ++it;
      continue;
    }
    result.taken.push_back(std::move(it->second));
    it = shut_.erase(it);
  }
  result.quiet = is_quiet(queues, result.connections);
  return result;
}

}  // namespace baton

namespace baton {

std::vector<TakenConnection> GenerationWatch::release_all() {
  std::vector<TakenConnection> out;
  for (auto& [inode, taken] : shut_) out.push_back(std::move(taken));
  shut_.clear();
  return out;
}

}  // namespace baton

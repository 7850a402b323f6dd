#include "lib/listener_holder.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "common/syscall.h"

namespace baton::handover {
namespace {

constexpr std::string_view kTcpListen = "0A";   // TCP_LISTEN, as /proc/net/tcp prints it
constexpr size_t kMaxTable = 64 * 1024 * 1024;  // a bound on what we read from /proc/net

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::string out;
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0 && out.size() < kMaxTable) out.append(buf, n);
  std::fclose(f);
  return out;
}

// Does /proc/PID/fd hold a socket with one of these inodes?
Result<bool> holds_any(pid_t pid, const std::vector<ino_t>& inodes) {
  const std::string dir = fmt::format("/proc/{}/fd", pid);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Error::from_errno("open " + dir);
  bool found = false;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[64] = {};
    std::string link = dir + "/" + e->d_name;
    ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
    std::string_view t(target, n > 0 ? static_cast<size_t>(n) : 0);
    if (!t.starts_with("socket:[") || !t.ends_with("]")) continue;
    t = t.substr(8, t.size() - 9);
    ino_t ino = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), ino);
    if (ec == std::errc() && end == t.data() + t.size() &&
        std::find(inodes.begin(), inodes.end(), ino) != inodes.end()) {
      found = true;
      break;
    }
  }
  ::closedir(d);
  return found;
}

}  // namespace

std::vector<ino_t> sockets_on_port(std::string_view table, int port, bool listen_only) {
  std::vector<ino_t> out;
  bool header = true;
  while (!table.empty()) {
    size_t nl = table.find('\n');
    std::string_view line = table.substr(0, nl);
    table.remove_prefix(nl == std::string_view::npos ? table.size() : nl + 1);
    if (header) {  // "  sl  local_address rem_address   st ... inode"
      header = false;
      continue;
    }
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    auto w = words(line);
    if (w.size() < 10) continue;
    std::string_view local = w[1];
    size_t colon = local.rfind(':');
    if (colon == std::string_view::npos) continue;
    int p = -1;
    auto [pend, pec] =
        std::from_chars(local.data() + colon + 1, local.data() + local.size(), p, 16);
    if (pec != std::errc() || pend != local.data() + local.size() || p != port) continue;
    if (listen_only && w[3] != kTcpListen) continue;
    ino_t ino = 0;
    auto [iend, iec] = std::from_chars(w[9].data(), w[9].data() + w[9].size(), ino);
    if (iec != std::errc() || iend != w[9].data() + w[9].size() || ino == 0) continue;
    out.push_back(ino);
  }
  return out;
}

Fd open_pidfd(pid_t pid) {
  if (pid <= 0) return Fd();
  // By syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C". pidfds are always close-on-exec.
  return Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

ino_t socket_inode(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
  return st.st_ino;
}

Status signal_if_holder(int pidfd, pid_t pid, const Address& address, int sig, ino_t exclude) {
  if (pidfd < 0) return Error(fmt::format("pid {} is gone", pid));
  if (address.transport == Transport::kUnix) {
    return Error(fmt::format("{} is not a TCP or UDP address", address.to_string()));
  }
  const bool tcp = address.transport == Transport::kTcp;
  std::vector<ino_t> inodes;
  static constexpr const char* kTcpTables[] = {"tcp", "tcp6"};
  static constexpr const char* kUdpTables[] = {"udp", "udp6"};
  for (const char* table : tcp ? kTcpTables : kUdpTables) {
    auto found =
        sockets_on_port(read_file(fmt::format("/proc/net/{}", table)), address.port(), tcp);
    inodes.insert(inodes.end(), found.begin(), found.end());
  }
  std::erase(inodes, exclude);
  auto holds = holds_any(pid, inodes);
  if (!holds) return holds.error();
  if (!*holds) {
    return Error(fmt::format("pid {} holds no socket on port {}", pid, address.port()));
  }
  // Had the process died and its pid been reused before /proc was read, the pidfd (opened when
  // the pid was learnt) refers to the dead one, and this fails with ESRCH.
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0) {
    return Error::from_errno(fmt::format("signal pid {}", pid));
  }
  return {};
}

}  // namespace baton::handover

#include "app_support.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace baton::testapps {

std::optional<std::vector<Listener>> inherited_listeners() {
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  if (pid == nullptr || fds == nullptr || std::atoi(pid) != ::getpid()) return std::nullopt;
  std::string names = std::getenv("LISTEN_FDNAMES") ?: "";
  std::vector<Listener> out;
  for (int i = 0; i < std::atoi(fds) && i < kMaxListeners; ++i) {
    const auto colon = names.find(':');
    out.push_back({3 + i, names.substr(0, colon)});
    names = colon == std::string::npos ? "" : names.substr(colon + 1);
  }
  return out;
}

bool make_nonblocking(const std::vector<Listener>& listeners) {
  for (const auto& l : listeners) {
    const int flags = ::fcntl(l.fd, F_GETFL);
    if (flags < 0 || ::fcntl(l.fd, F_SETFL, flags | O_NONBLOCK) != 0) return false;
  }
  return true;
}

void notify(const char* text) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t length = std::strlen(path);
  if (length >= sizeof(addr.sun_path)) return;
  std::memcpy(addr.sun_path, path, length);
  // An abstract name starts with a NUL and is exactly as long as given: no terminator counted.
  socklen_t size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length + 1);
  if (path[0] == '@') {
    addr.sun_path[0] = '\0';
    --size;
  }
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  ::sendto(fd, text, std::strlen(text), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), size);
  ::close(fd);
}

std::optional<std::string> read_request_head(int conn, std::string& pending) {
  constexpr size_t kMaxHead = 64 * 1024;
  char chunk[4096];
  size_t end;
  while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
    if (pending.size() > kMaxHead) return std::nullopt;
    const ssize_t n = ::recv(conn, chunk, sizeof(chunk), 0);
    if (n <= 0) return std::nullopt;
    pending.append(chunk, static_cast<size_t>(n));
  }
  std::string head = pending.substr(0, end + 4);
  pending.erase(0, end + 4);
  return head;
}

std::string request_path(const std::string& head) {
  const auto start = head.find(' ');
  if (start == std::string::npos) return "/";
  const auto end = head.find(' ', start + 1);
  if (end == std::string::npos) return "/";
  return head.substr(start + 1, end - start - 1);
}

std::string generation(const char* fallback) {
  const char* g = std::getenv("BATON_GENERATION");
  return g != nullptr ? g : fallback;
}

}  // namespace baton::testapps

#include "supervisor/manager_notify.h"

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "common/syscall.h"

namespace baton {

std::string ManagerNotifier::status_line(const ManagerView& v) {
  if (v.stopping) return "stopping: draining every generation";
  if (v.serving_generation != 0 && v.starting_generation != 0) {
    return fmt::format("serving generation {} (pid {}); generation {} starting",
                       v.serving_generation, v.serving_pid, v.starting_generation);
  }
  if (v.serving_generation != 0) {
    return fmt::format("serving generation {} (pid {})", v.serving_generation, v.serving_pid);
  }
  if (v.starting_generation != 0)
    return fmt::format("starting generation {}", v.starting_generation);
  return "no generation serving";
}

std::vector<std::string> ManagerNotifier::update(const ManagerView& now,
                                                 std::uint64_t monotonic_usec) {
  std::vector<std::string> out;
  const std::string status = status_line(now);
  auto with_status = [&](std::string fields) {
    if (status != status_sent_) {
      fields += "\nSTATUS=" + status;
      status_sent_ = status;
    }
    return fields;
  };
  const std::string reloading = fmt::format("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec);

  if (!ready_sent_ && now.serving_generation != 0 && !now.stopping) {
    out.push_back(with_status(fmt::format("READY=1\nMAINPID={}", main_pid_)));
    ready_sent_ = true;
  } else if (ready_sent_ && !stopping_sent_) {
    const bool started = now.reload_id != last_.reload_id;
    const bool ended = now.reloads_ended != last_.reloads_ended;
    // The reload under way ended (and perhaps a queued one started in the same batch).
    if (ended && last_.reload_in_progress) out.emplace_back("READY=1");
    // Ended without ever starting: refused at once. The manager still sees a whole reload, which
    // Type=notify-reload waits for after its SIGHUP.
    if (ended && !last_.reload_in_progress && !started) {
      out.push_back(reloading);
      out.emplace_back("READY=1");
    }
    if (started) {
      out.push_back(reloading);
      if (!now.reload_in_progress) out.emplace_back("READY=1");
    }
    if (!out.empty()) out.back() = with_status(out.back());
  }
  if (now.stopping && !stopping_sent_) {
    out.push_back(with_status("STOPPING=1"));
    stopping_sent_ = true;
  }
  if (status != status_sent_) out.push_back(with_status(""));
  for (auto& d : out) {
    if (d.starts_with("\n")) d.erase(0, 1);
  }
  last_ = now;
  return out;
}

Result<std::optional<ManagerSocket>> ManagerSocket::from_environment() {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr || *env == '\0') {
    ::unsetenv("NOTIFY_SOCKET");
    return std::optional<ManagerSocket>();
  }
  std::string name = env;
  ::unsetenv("NOTIFY_SOCKET");
  if (name[0] != '/' && name[0] != '@') {
    return Error(fmt::format("NOTIFY_SOCKET={}: not a socket path or @name", name));
  }
  auto address = parse_address("unix:" + name);
  if (!address) return Error(fmt::format("NOTIFY_SOCKET={}: {}", name, address.error().what()));
  Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Error::from_errno("socket");
  return std::optional<ManagerSocket>(ManagerSocket(std::move(fd), *address, name));
}

Result<ManagerSocket> ManagerSocket::adopt(Fd fd, const std::string& name) {
  auto address = parse_address("unix:" + name);
  if (!address) return Error(fmt::format("NOTIFY_SOCKET={}: {}", name, address.error().what()));
  return ManagerSocket(std::move(fd), *address, name);
}

bool ManagerSocket::send(const std::string& datagram) {
  return retry_eintr(::sendto, fd_.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL,
                     address_.sockaddr_ptr(),
                     address_.length) == static_cast<ssize_t>(datagram.size());
}

namespace {

// A decimal number without sign, space or leading '+' (strtoull would take all three).
std::optional<std::uint64_t> decimal(std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

Result<std::optional<std::chrono::microseconds>> parse_watchdog(const char* usec, const char* pid,
                                                                pid_t self) {
  using Timeout = std::optional<std::chrono::microseconds>;
  if (usec == nullptr || *usec == '\0') return Timeout();
  if (pid != nullptr && *pid != '\0') {
    auto p = decimal(pid);
    if (!p || *p == 0) return Error(fmt::format("WATCHDOG_PID={}: not a process id", pid));
    if (*p != static_cast<std::uint64_t>(self)) return Timeout();  // another process's watchdog
  }
  auto v = decimal(usec);
  if (!v || *v == 0) {
    return Error(fmt::format("WATCHDOG_USEC={}: not a positive number of microseconds", usec));
  }
  return Timeout(std::chrono::microseconds(
      std::min<std::uint64_t>(*v, static_cast<std::uint64_t>(kMaxWatchdog.count()))));
}

Result<std::optional<std::chrono::microseconds>> watchdog_from_environment() {
  auto timeout =
      parse_watchdog(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"), ::getpid());
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  return timeout;
}

std::chrono::microseconds watchdog_interval(std::chrono::microseconds timeout) {
  return std::max(timeout / 2, std::chrono::microseconds(1000));
}

std::uint64_t monotonic_usec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

}  // namespace baton

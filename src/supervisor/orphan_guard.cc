#include "supervisor/orphan_guard.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/syscall.h"
#include "supervisor/spawner.h"

namespace baton {
namespace {

// The guard's whole life: read records until EOF, then kill what is left.
[[noreturn]] void guard_main(int pipe_fd) {
  std::vector<pid_t> groups;
  groups.reserve(64);
  std::int32_t records[256];
  for (;;) {
    ssize_t n = retry_eintr(::read, pipe_fd, records, sizeof(records));
    if (n <= 0) break;  // EOF: the supervisor is gone (an error cannot be told from it)
    // Records are written whole (4 bytes, below PIPE_BUF), so reads never split one.
    for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof(std::int32_t)); ++i) {
      const std::int32_t r = records[i];
      if (r > 0 && groups.size() < static_cast<size_t>(OrphanGuard::kMaxGroups)) {
        groups.push_back(r);
      } else if (r < 0) {
        std::erase(groups, -r);
      }
    }
  }
  for (pid_t g : groups) ::kill(-g, SIGKILL);
  ::_exit(0);
}

}  // namespace

Result<OrphanGuard> OrphanGuard::start() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::from_errno("pipe");
  Fd read_end(fds[0]), write_end(fds[1]);
  pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork");
  if (pid == 0) {
    // Out of the supervisor's process group, so that a signal sent to that group (a terminal's
    // ^C, a test harness) leaves the guard to do its work; signals back to their defaults.
    ::setpgid(0, 0);
    ::prctl(PR_SET_NAME, "baton-guard");  // what ps -o comm shows
    reset_signals_in_child();
    // It holds nothing of the supervisor's: no listener, no control socket, no stdio (its
    // output could be a pipe nobody reads).
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    int fd = ::dup2(read_end.get(), 3);
    if (fd != 3) ::_exit(1);
    ::close_range(4, ~0U, 0);
    guard_main(3);
  }
  OrphanGuard guard;
  guard.pid_ = pid;
  read_end.reset();
  ::fcntl(write_end.get(), F_SETFL, O_NONBLOCK);
  guard.pipe_ = std::move(write_end);
  return guard;
}

bool OrphanGuard::send(int record) {
  if (!pipe_) return false;
  const std::int32_t r = record;
  return retry_eintr(::write, pipe_.get(), &r, sizeof(r)) == static_cast<ssize_t>(sizeof(r));
}

}  // namespace baton

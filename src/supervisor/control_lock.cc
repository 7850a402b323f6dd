#include "supervisor/control_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "common/private_dir.h"

namespace baton {

Result<Fd> lock_control_path(const std::string& control_path) {
  const std::filesystem::path control(control_path);
  auto dir = open_private_dir(control.parent_path().string());
  if (!dir) return dir.error();
  const std::string lock_path = control_path + ".lock";
  auto lock = open_in_dir(dir->get(), control.filename().string() + ".lock", O_RDWR | O_CREAT);
  if (!lock) {
    return Error(lock.error().code(), lock.error().code() == ELOOP
                                          ? "open " + lock_path + ": a symlink, not followed"
                                          : "open " + lock_path);
  }
  Fd fd = std::move(*lock);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
    return Error(fmt::format("lock file {} is not a regular file of ours; remove it", lock_path));
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    [[maybe_unused]] auto n = ::pread(fd.get(), pid, sizeof(pid) - 1, 0);
    return Error(
        fmt::format("another supervisor (pid {}) is running with control socket {}; "
                    "stop it or pass another --control",
                    std::strtol(pid, nullptr, 10), control_path));
  }
  std::string me = std::to_string(::getpid()) + "\n";
  [[maybe_unused]] int rc = ::ftruncate(fd.get(), 0);
  [[maybe_unused]] auto n = ::pwrite(fd.get(), me.data(), me.size(), 0);
  return fd;
}

}  // namespace baton

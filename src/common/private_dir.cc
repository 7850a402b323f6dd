#include "common/private_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <fmt/format.h>

#include "common/syscall.h"

namespace baton {
namespace {

constexpr const char kAdvice[] = "(remove it, or pass another --control)";

Status create_missing(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::path path(dir);
  fs::path so_far;
  for (const auto& part : path) {
    so_far /= part;
    if (so_far == so_far.root_path()) continue;
    if (::mkdir(so_far.c_str(), 0700) != 0 && errno != EEXIST) {
      return Error::from_errno("create " + so_far.string());
    }
  }
  return {};
}

}  // namespace

Result<Fd> open_private_dir(const std::string& dir) {
  const std::string shown = dir.empty() ? "." : dir;
  if (!dir.empty()) {
    if (auto s = create_missing(dir); !s) return s.error();
  }
  Fd fd(::open(shown.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOTDIR || errno == ELOOP) {
      return Error(
          fmt::format("control directory {} is not a directory (a symlink?) {}", shown, kAdvice));
    }
    return Error::from_errno("open control directory " + shown);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::from_errno("stat " + shown);
  if (st.st_uid != ::geteuid()) {
    return Error(fmt::format("control directory {} is owned by uid {}, not by uid {} {}", shown,
                             st.st_uid, ::geteuid(), kAdvice));
  }
  // Write permission is what lets another user add, remove or rename entries; read and search
  // bits only let them see the names (the sockets themselves are 0600 and check credentials).
  if ((st.st_mode & 022) != 0) {
    return Error(
        fmt::format("control directory {} has mode {:03o}: other users may change it; "
                    "make it 0700 {}",
                    shown, st.st_mode & 0777, kAdvice));
  }
  return fd;
}

Result<Fd> open_in_dir(int dir_fd, const std::string& name, int flags, mode_t mode) {
  if (name.empty() || name.find('/') != std::string::npos) {
    return Error(fmt::format("'{}' is not a file name", name));
  }
  Fd fd(retry_eintr(::openat, dir_fd, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) return Error::from_errno("open " + name);
  return fd;
}

}  // namespace baton

// baton/fd.h: Fd, the one owner of a file descriptor.
//
// An Fd closes what it holds when destroyed; it is move-only, so every descriptor has exactly one
// owner. baton creates every descriptor with CLOEXEC; only descriptors meant for a child lose it,
// and only in that child.
//
// Thread safety: an Fd is not synchronised; do not use one object from two threads at once.
#pragma once

#include <unistd.h>

#include <utility>

namespace baton {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }
  // Closes the held descriptor (if any) and holds `fd` instead.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace baton

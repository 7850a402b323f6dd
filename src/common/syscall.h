// syscall.h: EINTR is retried here, once, instead of at every call site.
#pragma once

#include <cerrno>
#include <utility>

namespace baton {

// Calls `fn(args...)` until it does not fail with EINTR; returns its result (errno intact).
template <typename Fn, typename... Args>
auto retry_eintr(Fn fn, Args&&... args) {
  decltype(fn(std::forward<Args>(args)...)) rc;
  do {
    rc = fn(args...);
  } while (rc == -1 && errno == EINTR);
  return rc;
}

}  // namespace baton

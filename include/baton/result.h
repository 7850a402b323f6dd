// baton/result.h: the one error type of baton, and Result<T>, a value or an Error.
//
// Every fallible call in baton returns a Result; nothing is thrown across the library boundary.
// An Error carries the errno captured right at the failing system call (0 when the failure is not
// an OS error, e.g. malformed input) and a message saying what was being done, e.g.
// "bind 127.0.0.1:8100". Error::what() renders both: "bind 127.0.0.1:8100: Address already in use".
//
// Thread safety: values of these types are not shared; distinct objects may be used from
// distinct threads freely.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace baton {

class Error {
 public:
  Error() = default;
  // An OS error: `code` is an errno value, `context` what was being done.
  Error(int code, std::string context) : code_(code), context_(std::move(context)) {}
  // A failure that is not an OS error (bad input, protocol violation...).
  explicit Error(std::string message) : code_(0), context_(std::move(message)) {}

  // Captures errno now; call it directly after the failing system call.
  static Error from_errno(std::string context) { return Error(errno, std::move(context)); }

  int code() const { return code_; }
  const std::string& context() const { return context_; }
  std::string what() const {
    if (code_ == 0) return context_;
    return context_ + ": " + std::strerror(code_);
  }

 private:
  int code_ = 0;
  std::string context_;
};

// A value of type T, or an Error. Check with ok() (or operator bool) before value().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Success, or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace baton

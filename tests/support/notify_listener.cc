#include "notify_listener.h"

#include <poll.h>

#include <stdexcept>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>

#include "common/syscall.h"
#include "harness.h"

namespace baton::test {
namespace {

baton::NotifySocket bind_notify(const std::string& path) {
  auto s = baton::NotifySocket::bind(path);
  if (!s) throw std::runtime_error(s.error().what());
  return std::move(s.value());
}

// Whether `m` says `line`, read through the supervisor's parser: a line it does not read is a
// mistake in the test.
bool says(const baton::NotifyMessage& m, std::string_view line) {
  if (line == "READY=1") return m.ready;
  if (line == "STOPPING=1") return m.stopping;
  if (line == "BATON_ADOPT_LOADED=1") return m.adopt_loaded;
  for (auto [key, value] :
       {std::pair{std::string_view("STATUS="), &m.status},
        std::pair{std::string_view("BATON_ADOPTED="), &m.adopted},
        std::pair{std::string_view("BATON_ADOPT_PASSTHROUGH="), &m.adopt_passthrough},
        std::pair{std::string_view("BATON_ADOPT_ERROR="), &m.adopt_error}}) {
    if (line.starts_with(key)) return value->has_value() && **value == line.substr(key.size());
  }
  ADD_FAILURE() << "the supervisor does not read the notify line '" << line << "'";
  return false;
}

}  // namespace

NotifyListener::NotifyListener(const std::string& path) : socket_(bind_notify(path)) {}

bool NotifyListener::receive(std::chrono::milliseconds timeout) {
  pollfd p{socket_.fd(), POLLIN, 0};
  if (retry_eintr(::poll, &p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  bool any = false;
  while (auto m = socket_.receive()) {
    history_.push_back(std::move(*m));
    any = true;
  }
  return any;
}

bool NotifyListener::received(pid_t pid, const std::string& line) const {
  for (const auto& m : history_) {
    if (m.pid == pid && says(m.message, line)) return true;
  }
  return false;
}

bool NotifyListener::wait_for(pid_t pid, const std::string& line,
                              std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (received(pid, line)) return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= std::chrono::milliseconds(0)) return false;
    receive(left);
  }
}

void NotifyListener::drain(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    receive(left);
  }
}

}  // namespace baton::test

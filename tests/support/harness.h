// harness.h: what end-to-end tests need to drive real processes over real sockets.
//
// Every wait here is bounded and event-driven where the kernel offers an event (pidfd for child
// exit); where it does not (a port starting to answer), it polls with a short step and a deadline.
// Every process a test starts is killed (its whole process group) when its Process is destroyed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"

namespace baton::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Paths of the binaries under test, from the build (see tests/CMakeLists.txt).
std::string baton_binary();
std::string example_binary();  // examples/http_server
std::string testapp_binary();  // tests/apps/testapp: misbehaving apps on demand
std::string adopt_library();   // libbaton_adopt.so

// A private temporary directory, removed with its contents on destruction. Short paths, so unix
// socket names fit in sun_path.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct SpawnOptions {
  std::map<std::string, std::string> env;  // added to (or replacing in) the test's environment
  std::vector<std::string> unset_env;      // removed from the environment
  std::string output_path;                 // stdout+stderr go here; empty: a temp file
  std::optional<uid_t> uid;                // drop to this uid (and gid) before exec (needs root)
  std::vector<int> inherit_fds;  // placed at fd 3, 4... in the child (the caller keeps them)
};

// A child process in its own process group, tracked by pidfd, output captured to a file.
class Process {
 public:
  static Process spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {});
  // A moved-from Process owns nothing: its destructor neither kills nor unlinks.
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ~Process();

  pid_t pid() const { return pid_; }
  void signal(int sig) const;
  // Waits for exit; returns the raw wait status, or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Exit code when exited normally, 128+signal when killed; nullopt on timeout.
  std::optional<int> wait_exit_code(std::chrono::milliseconds timeout);
  bool running();
  // Everything the process wrote so far.
  std::string output() const;
  // Waits until `needle` appears in the output; false on timeout or exit.
  bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout);

 private:
  Process() = default;
  pid_t pid_ = -1;
  Fd pidfd_;
  std::optional<int> status_;
  std::string output_path_;
  bool own_output_ = false;
};

struct CommandResult {
  int exit_code = -1;  // 128+signal when killed, -1 on timeout (then killed)
  std::string output;  // stdout and stderr, interleaved
};

// Runs a command to completion (bounded by `timeout`).
CommandResult run(const std::vector<std::string>& argv,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30),
                  const SpawnOptions& options = {});

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// One HTTP/1.1 GET on a new connection (Connection: close). Errors name what failed:
// connect (e.g. ECONNREFUSED), send, or reading the response.
Result<HttpResponse> http_get(const Address& address, const std::string& path,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10));
Result<HttpResponse> http_get(const std::string& address, const std::string& path,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Polls `predicate` every few milliseconds until true or `timeout` passes.
bool wait_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(10));

// Whether a unix stream socket listens at `path` (from /proc/net/unix). A socket's file exists
// from its bind, before its listen: a connect in between is refused.
bool unix_listening(const std::string& path);

// The file descriptors a process holds open, as numbers (from /proc/PID/fd).
std::vector<int> open_fds(pid_t pid);

// What each thread of a process is doing, one block per thread: tid, name and state (from
// /proc/PID/task/TID/stat), the kernel function it waits in (wchan), the system call it is in
// (number and arguments, from .../syscall), and its kernel stack where readable (root only).
// For failure messages: a process that did not exit explains where it sits.
std::string thread_states(pid_t pid);

// Reads a whole file ("" when missing).
std::string read_file(const std::string& path);

// A unix socket of `type` (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET) bound to `path` ("@name":
// abstract), and listening when `backlog` > 0; CLOEXEC. Invalid, errno set, on failure.
Fd bind_unix(const std::string& path, int type, int backlog = 0);
// A unix socket of `type` connected to `path`; CLOEXEC. Invalid, errno set, on failure.
Fd connect_unix(const std::string& path, int type);

// The line of `text` holding `needle` ("" when none): a figure out of a tool's report.
std::string line_with(const std::string& text, const std::string& needle);

}  // namespace baton::test

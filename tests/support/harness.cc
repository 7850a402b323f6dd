#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
// glibc 2.36's <sys/pidfd.h> lacks the extern "C" guard (fixed in 2.37); without it C++ looks for
// a mangled pidfd_open and the link fails.
extern "C" {
#include <sys/pidfd.h>
}
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "common/syscall.h"
#include "common/unix_socket.h"

namespace baton::test {

std::string baton_binary() { return BATON_TEST_BATON_BIN; }
std::string example_binary() { return BATON_TEST_EXAMPLE_BIN; }
std::string testapp_binary() { return BATON_TEST_TESTAPP_BIN; }
std::string adopt_library() { return BATON_TEST_ADOPT_LIB; }

TempDir::TempDir() {
  char tmpl[] = "/tmp/bt.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Process Process::spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  Process p;
  if (options.output_path.empty()) {
    char tmpl[] = "/tmp/bt-out.XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd < 0) std::abort();
    ::close(fd);
    p.output_path_ = tmpl;
    p.own_output_ = true;
  } else {
    p.output_path_ = options.output_path;
  }

  // Everything the child needs is prepared before fork: the child only calls async-signal-safe
  // functions (the test runner may have threads).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    if (options.env.count(key) != 0) continue;
    bool drop = false;
    for (const auto& u : options.unset_env) drop |= (u == key);
    if (!drop) env_strings.push_back(kv);
  }
  for (const auto& [k, v] : options.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argvp;
  for (auto& s : args) argvp.push_back(s.data());
  argvp.push_back(nullptr);

  int out = ::open(p.output_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || devnull < 0) std::abort();
  // Copies above any number the child's fd 3, 4... could collide with; CLOEXEC, so only the
  // dup2'ed ones survive the exec.
  std::vector<int> inherit;
  for (int fd : options.inherit_fds) {
    int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 512);
    if (high < 0) std::abort();
    inherit.push_back(high);
  }

  pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(devnull, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    if (options.uid) {
      ::setgroups(0, nullptr);
      if (::setgid(*options.uid) != 0 || ::setuid(*options.uid) != 0) ::_exit(126);
    }
    for (size_t i = 0; i < inherit.size(); ++i) {
      if (::dup2(inherit[i], 3 + static_cast<int>(i)) < 0) ::_exit(126);
    }
    ::execve(argvp[0], argvp.data(), envp.data());
    ::_exit(127);
  }
  ::close(out);
  ::close(devnull);
  for (int fd : inherit) ::close(fd);
  ::setpgid(pid, pid);  // also from the parent: no race with an early signal
  p.pid_ = pid;
  p.pidfd_ = Fd(::pidfd_open(pid, 0));
  return p;
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      status_(std::exchange(other.status_, std::nullopt)),
      output_path_(std::move(other.output_path_)),
      own_output_(std::exchange(other.own_output_, false)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Process previous(std::move(*this));  // the child held so far is reaped when this goes
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    status_ = std::exchange(other.status_, std::nullopt);
    output_path_ = std::move(other.output_path_);
    own_output_ = std::exchange(other.own_output_, false);
  }
  return *this;
}

Process::~Process() {
  if (pid_ > 0 && !status_) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  } else if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);  // leftovers of the group
  }
  if (own_output_) ::unlink(output_path_.c_str());
}

void Process::signal(int sig) const {
  if (!status_) ::kill(pid_, sig);
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  pollfd pfd{pidfd_.get(), POLLIN, 0};
  int rc = retry_eintr(::poll, &pfd, 1, static_cast<int>(timeout.count()));
  if (rc <= 0) return std::nullopt;
  int status = 0;
  if (retry_eintr(::waitpid, pid_, &status, 0) == pid_) status_ = status;
  return status_;
}

std::optional<int> Process::wait_exit_code(std::chrono::milliseconds timeout) {
  auto s = wait(timeout);
  if (!s) return std::nullopt;
  if (WIFEXITED(*s)) return WEXITSTATUS(*s);
  return 128 + WTERMSIG(*s);
}

bool Process::running() { return !wait(std::chrono::milliseconds(0)).has_value(); }

std::string Process::output() const { return read_file(output_path_); }

bool Process::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
  return wait_until([&] { return output().find(needle) != std::string::npos || !running(); },
                    timeout) &&
         output().find(needle) != std::string::npos;
}

CommandResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                  const SpawnOptions& options) {
  Process p = Process::spawn(argv, options);
  CommandResult r;
  auto code = p.wait_exit_code(timeout);
  r.exit_code = code ? *code : -1;
  r.output = p.output();
  return r;
}

Result<HttpResponse> http_get(const Address& address, const std::string& path,
                              std::chrono::milliseconds timeout) {
  Fd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::from_errno("socket");
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (retry_eintr(::connect, fd.get(), address.sockaddr_ptr(), address.length) != 0) {
    return Error::from_errno("connect " + address.to_string());
  }
  std::string req = fmt::format("GET {} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", path);
  if (retry_eintr(::send, fd.get(), req.data(), req.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(req.size())) {
    return Error::from_errno("send");
  }
  std::string raw;
  char buf[8192];
  for (;;) {
    ssize_t n = retry_eintr(::recv, fd.get(), buf, sizeof(buf), 0);
    if (n < 0) return Error::from_errno("recv");
    if (n == 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  auto head_end = raw.find("\r\n\r\n");
  if (raw.empty()) return Error(ECONNRESET, "closed before the response");
  if (head_end == std::string::npos || !raw.starts_with("HTTP/1.")) {
    return Error("malformed response: " + raw.substr(0, 80));
  }
  HttpResponse resp;
  resp.status = std::atoi(raw.c_str() + 9);
  std::istringstream lines(raw.substr(0, head_end));
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    resp.headers[key] = value;
  }
  resp.body = raw.substr(head_end + 4);
  return resp;
}

Result<HttpResponse> http_get(const std::string& address, const std::string& path,
                              std::chrono::milliseconds timeout) {
  auto a = parse_address(address);
  if (!a) return a.error();
  return http_get(*a, path, timeout);
}

bool wait_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (predicate()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

bool unix_listening(const std::string& path) {
  std::istringstream table(read_file("/proc/net/unix"));
  for (std::string line; std::getline(table, line);) {
    std::istringstream fields(line);
    std::string num, refs, protocol, flags, type, state, inode, name;
    fields >> num >> refs >> protocol >> flags >> type >> state >> inode >> name;
    if (name == path && flags == "00010000") return true;  // __SO_ACCEPTCON: listening
  }
  return false;
}

std::vector<int> open_fds(pid_t pid) {
  std::vector<int> fds;
  std::string dir = fmt::format("/proc/{}/fd", pid);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return fds;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    fds.push_back(std::atoi(e->d_name));
  }
  ::closedir(d);
  std::sort(fds.begin(), fds.end());
  return fds;
}

std::string thread_states(pid_t pid) {
  std::string dir = fmt::format("/proc/{}/task", pid);
  std::vector<int> tids;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') tids.push_back(std::atoi(e->d_name));
    }
    ::closedir(d);
  }
  if (tids.empty()) return fmt::format("pid {}: no threads in {}\n", pid, dir);
  std::sort(tids.begin(), tids.end());
  auto trimmed = [](std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  };
  std::string out;
  for (int tid : tids) {
    std::string task = fmt::format("{}/{}", dir, tid);
    // stat: "TID (COMM) STATE ..."; COMM may hold spaces and parentheses, so split at the last ')'.
    std::string stat = read_file(task + "/stat");
    std::string name_state = stat;
    auto open = stat.find('('), close = stat.rfind(')');
    if (open != std::string::npos && close != std::string::npos && close > open &&
        close + 2 < stat.size()) {
      name_state = stat.substr(open, close - open + 1) + " " + stat.substr(close + 2, 1);
    }
    out += fmt::format("thread {} {}: wchan {}, syscall {}\n", tid, name_state,
                       trimmed(read_file(task + "/wchan")), trimmed(read_file(task + "/syscall")));
    std::string stack = trimmed(read_file(task + "/stack"));
    if (!stack.empty()) out += stack + "\n";
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

// A new unix socket of `type` and the address of `path`; an invalid Fd when either fails.
Fd unix_socket_for(const std::string& path, int type, sockaddr_un& address, socklen_t& length) {
  auto filled = fill_unix_address(path, address);
  if (!filled) {
    errno = EINVAL;
    return Fd();
  }
  length = *filled;
  return Fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
}

}  // namespace

Fd bind_unix(const std::string& path, int type, int backlog) {
  sockaddr_un address{};
  socklen_t length = 0;
  Fd fd = unix_socket_for(path, type, address, length);
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      (backlog > 0 && ::listen(fd.get(), backlog) != 0)) {
    return Fd();
  }
  return fd;
}

Fd connect_unix(const std::string& path, int type) {
  sockaddr_un address{};
  socklen_t length = 0;
  Fd fd = unix_socket_for(path, type, address, length);
  if (!fd || retry_eintr(::connect, fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0) {
    return Fd();
  }
  return fd;
}

std::string line_with(const std::string& text, const std::string& needle) {
  auto at = text.find(needle);
  if (at == std::string::npos) return {};
  auto begin = text.rfind('\n', at);
  begin = begin == std::string::npos ? 0 : begin + 1;
  return text.substr(begin, text.find('\n', at) - begin);
}

}  // namespace baton::test

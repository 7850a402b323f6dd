// The supervisor's I/O shell: signals, sockets, child processes and probes turned into events
// for SupervisorCore, and SupervisorOs carried out with real system calls.
#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/syscall.h"
#include "supervisor/control_protocol.h"
#include "supervisor/event_loop.h"
#include "supervisor/notify_socket.h"
#include "supervisor/spawner.h"

extern char** environ;

namespace baton {
namespace {

constexpr size_t kOutputTail = 4096;    // bytes of a generation's output kept for failure reports
constexpr size_t kMaxControlClients = 64;
constexpr const char* kProbeListenerName = "baton-probe";

void log_line(const std::string& line) {
  std::string out = fmt::format("baton[{}]: {}\n", ::getpid(), line);
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, out.data(), out.size());
}

double to_seconds(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::duration<double>>(d).count();
}

struct BoundListener {
  std::string name;
  Address address;
  Fd fd;
  std::string unix_path;  // removed at exit
};

// What the shell keeps for one generation besides the core's record.
struct GenerationIo {
  int id = 0;
  pid_t pid = -1;
  Fd out, err;
  std::string tail;
  // http readiness
  Fd probe_listener;
  Address probe_address;
  Fd probe_conn;
  std::string probe_buffer;
  // exec readiness
  pid_t exec_pid = -1;
  EventLoop::TimerId timer = 0;
  // --adopt: what libbaton_adopt.so reported from inside the app
  bool adopt_loaded = false;
  bool adopted = false;
};

struct ControlClient {
  Fd fd;
  std::string buffer;
  std::optional<WaiterId> waiter;
};

class Supervisor final : public SupervisorOs {
 public:
  Supervisor(const SupervisorConfig& config, EventLoop loop)
      : config_(config), loop_(std::move(loop)), core_(*this, config.core) {}
  ~Supervisor() override;

  Status setup();
  int run();

  // SupervisorOs
  TimePoint now() override { return Clock::now(); }
  Result<int> spawn(int id) override;
  void signal(const Generation& g, int sig) override { ::kill(g.pid, sig); }
  void kill_group(const Generation& g) override {
    // The group id is the main pid (setpgid in the child). The kernel does not reuse a pid while a
    // process group of that id has members, so this cannot hit a stranger's group.
    ::kill(-g.pid, SIGKILL);
  }
  std::string output_tail(int id) override;
  std::string failure_hint(int id) override;
  void reply(WaiterId waiter, const ReloadOutcome& outcome) override;
  void log(const std::string& line) override { log_line(line); }
  void finished(int exit_code) override {
    exit_code_ = exit_code;
    loop_.stop();
  }

 private:
  Status lock_control_path();
  Status bind_listeners();
  Status open_control_socket();
  Status watch_signals();
  void on_signal();
  void reap_children();
  void on_notify();
  void on_output(GenerationIo& io, bool is_err);
  void start_readiness(GenerationIo& io);
  void http_probe_attempt(int id);
  void on_probe_event(int id);
  void exec_probe_attempt(int id);
  void retry_probe(int id, void (Supervisor::*attempt)(int));
  void stop_readiness(GenerationIo& io);
  void forget_generation_io(int id);
  GenerationIo* io_for(int id);
  std::optional<int> generation_of_pid(pid_t pid);
  void on_control_accept();
  void on_control_client(int fd, uint32_t events);
  void handle_request(ControlClient& client, const std::string& line);
  void send_and_close(int fd, const nlohmann::json& reply);
  nlohmann::json status_json();

  SupervisorConfig config_;
  EventLoop loop_;
  SupervisorCore core_;
  std::vector<BoundListener> listeners_;
  Fd lock_fd_;
  Fd control_fd_;
  bool control_bound_ = false;
  std::optional<NotifySocket> notify_;
  Fd signal_fd_;
  sigset_t old_mask_{};
  std::map<int, std::unique_ptr<GenerationIo>> io_;  // by generation id
  std::map<int, ControlClient> clients_;               // by fd
  std::map<WaiterId, int> waiters_;                    // waiter -> client fd
  WaiterId next_waiter_ = 1;
  int exit_code_ = 0;
  TimePoint started_at_ = Clock::now();
};

Supervisor::~Supervisor() {
  for (auto& [fd, client] : clients_) loop_.remove(fd);
  if (control_bound_) ::unlink(config_.control_path.c_str());
  for (auto& l : listeners_) {
    if (!l.unix_path.empty()) ::unlink(l.unix_path.c_str());
  }
  ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
}

Status Supervisor::lock_control_path() {
  namespace fs = std::filesystem;
  const fs::path control(config_.control_path);
  std::error_code ec;
  if (control.has_parent_path() && !fs::exists(control.parent_path(), ec)) {
    fs::create_directories(control.parent_path(), ec);
    if (ec) return Error(ec.value(), "create " + control.parent_path().string());
    ::chmod(control.parent_path().c_str(), 0700);
  }
  // One supervisor per control path: the lock is held for the supervisor's life and released by
  // the kernel however it ends, so a crashed supervisor never blocks the next one.
  const std::string lock_path = config_.control_path + ".lock";
  lock_fd_.reset(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd_) return Error::from_errno("open " + lock_path);
  if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    [[maybe_unused]] auto n = ::pread(lock_fd_.get(), pid, sizeof(pid) - 1, 0);
    return Error(fmt::format("another supervisor (pid {}) is running with control socket {}; "
                             "stop it or pass another --control",
                             std::strtol(pid, nullptr, 10), config_.control_path));
  }
  std::string me = std::to_string(::getpid()) + "\n";
  [[maybe_unused]] int rc = ::ftruncate(lock_fd_.get(), 0);
  [[maybe_unused]] auto n = ::pwrite(lock_fd_.get(), me.data(), me.size(), 0);
  return {};
}

Status Supervisor::bind_listeners() {
  int index = 0;
  for (const auto& spec : config_.listens) {
    auto fd = bind_listener(spec.address, config_.bind);
    if (!fd) return fd.error();
    BoundListener l;
    l.name = spec.name.empty() ? fmt::format("listen{}", index) : spec.name;
    auto bound = bound_address(fd->get(), spec.address.transport);
    l.address = bound ? *bound : spec.address;
    l.fd = std::move(fd).value();
    l.unix_path = spec.address.unix_path();
    listeners_.push_back(std::move(l));
    ++index;
  }
  return {};
}

Status Supervisor::open_control_socket() {
  auto addr = parse_address("unix:" + config_.control_path);
  if (!addr) return Error("bad --control path: " + addr.error().what());
  ::unlink(config_.control_path.c_str());  // we hold the lock: a socket file here is stale
  control_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!control_fd_) return Error::from_errno("socket");
  // Created with mode 0600 already: no window in which another user can connect.
  mode_t old = ::umask(0177);
  int rc = ::bind(control_fd_.get(), addr->sockaddr_ptr(), addr->length);
  ::umask(old);
  if (rc != 0) return Error::from_errno("bind control socket " + config_.control_path);
  control_bound_ = true;
  if (::listen(control_fd_.get(), 16) != 0) return Error::from_errno("listen on control socket");
  return loop_.add(control_fd_.get(), EPOLLIN, [this](uint32_t) { on_control_accept(); });
}

Status Supervisor::watch_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGPIPE}) {
    sigaddset(&mask, sig);
  }
  if (::sigprocmask(SIG_BLOCK, &mask, &old_mask_) != 0) return Error::from_errno("sigprocmask");
  sigdelset(&mask, SIGPIPE);  // blocked, so writes to a gone peer return EPIPE instead
  signal_fd_.reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_) return Error::from_errno("signalfd");
  return loop_.add(signal_fd_.get(), EPOLLIN, [this](uint32_t) { on_signal(); });
}

Status Supervisor::setup() {
  if (auto s = watch_signals(); !s) return s;
  if (auto s = lock_control_path(); !s) return s;
  if (auto s = bind_listeners(); !s) return s;
  if (auto s = open_control_socket(); !s) return s;
  auto notify = NotifySocket::bind(config_.control_path + ".notify");
  if (!notify) return notify.error();
  notify_ = std::move(notify).value();
  if (auto s = loop_.add(notify_->fd(), EPOLLIN, [this](uint32_t) { on_notify(); }); !s) return s;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    log(fmt::format("listening on {}={} (fd {})", listeners_[i].name,
                    listeners_[i].address.to_string(), 3 + i));
  }
  log("control socket " + config_.control_path);
  return {};
}

int Supervisor::run() {
  core_.start();
  loop_.run([this] { return core_.next_deadline(); }, [this] { core_.on_tick(); });
  return exit_code_;
}

Result<int> Supervisor::spawn(int id) {
  auto io = std::make_unique<GenerationIo>();
  io->id = id;
  SpawnRequest req;
  req.argv = config_.command;
  std::string names, starter;
  for (const auto& l : listeners_) {
    req.listener_fds.push_back(l.fd.get());
    names += (names.empty() ? "" : ":") + l.name;
    // Server::Starter spells TCP listeners as host:port (port alone for the wildcard), unix ones
    // as their path, each "=fd", separated by ';'.
    const std::string where = l.address.host_port();
    if (l.address.transport != Transport::kUdp) {
      starter += fmt::format("{}{}={}", starter.empty() ? "" : ";", where,
                             2 + req.listener_fds.size());
    }
  }
  if (config_.readiness.kind == ReadinessSpec::Kind::kHttp) {
    auto probe_addr = parse_address("127.0.0.1:0");
    auto probe = bind_listener(*probe_addr, BindOptions{});
    if (!probe) return probe.error();
    io->probe_address = bound_address(probe->get(), Transport::kTcp).value();
    io->probe_listener = std::move(probe).value();
    req.listener_fds.push_back(io->probe_listener.get());
    names += std::string(names.empty() ? "" : ":") + kProbeListenerName;
  }
  req.env["LISTEN_FDS"] = std::to_string(req.listener_fds.size());
  req.env["LISTEN_FDNAMES"] = names;
  req.env["SERVER_STARTER_PORT"] = starter;
  req.env["BATON_GENERATION"] = std::to_string(id);
  req.env["NOTIFY_SOCKET"] = notify_->path();
  if (!config_.adopt_library.empty()) {
    const char* preload = std::getenv("LD_PRELOAD");
    req.env["LD_PRELOAD"] = config_.adopt_library +
                            (preload != nullptr && *preload ? std::string(":") + preload : "");
    req.env["BATON_ADOPT"] = "1";
  }
  auto spawned = spawn_process(req);
  if (!spawned) return spawned.error();
  io->pid = spawned->pid;
  io->out = std::move(spawned->stdout_pipe);
  io->err = std::move(spawned->stderr_pipe);
  GenerationIo* raw = io.get();
  loop_.add(raw->out.get(), EPOLLIN, [this, raw](uint32_t) { on_output(*raw, false); });
  loop_.add(raw->err.get(), EPOLLIN, [this, raw](uint32_t) { on_output(*raw, true); });
  io_[id] = std::move(io);
  start_readiness(*raw);
  return raw->pid;
}

GenerationIo* Supervisor::io_for(int id) {
  auto it = io_.find(id);
  return it == io_.end() ? nullptr : it->second.get();
}

void Supervisor::on_output(GenerationIo& io, bool is_err) {
  Fd& fd = is_err ? io.err : io.out;
  char buf[16384];
  for (;;) {
    ssize_t n = retry_eintr(::read, fd.get(), buf, sizeof(buf));
    if (n > 0) {
      // Passed through as is; a slow terminal slows only the supervisor's own writes.
      const char* p = buf;
      size_t left = static_cast<size_t>(n);
      while (left > 0) {
        ssize_t w = retry_eintr(::write, is_err ? STDERR_FILENO : STDOUT_FILENO, p, left);
        if (w <= 0) break;
        p += w;
        left -= static_cast<size_t>(w);
      }
      io.tail.append(buf, static_cast<size_t>(n));
      if (io.tail.size() > kOutputTail) io.tail.erase(0, io.tail.size() - kOutputTail);
      continue;
    }
    if (n < 0 && errno == EAGAIN) return;
    loop_.remove(fd.get());  // EOF (every process of the generation closed it) or error
    fd.reset();
    break;
  }
  const Generation* g = core_.find(io.id);
  if (!io.out && !io.err && (g == nullptr || g->state == GenerationState::kExited)) {
    forget_generation_io(io.id);
  }
}

std::string Supervisor::output_tail(int id) {
  GenerationIo* io = io_for(id);
  if (io == nullptr) return {};
  if (io->out) on_output(*io, false);  // take in what is already written
  io = io_for(id);
  if (io != nullptr && io->err) on_output(*io, true);
  io = io_for(id);
  return io != nullptr ? io->tail : std::string();
}

std::string Supervisor::failure_hint(int id) {
  GenerationIo* io = io_for(id);
  if (io == nullptr || config_.adopt_library.empty()) return {};
  if (!io->adopt_loaded) {
    return "the adoption library did not load into the app (statically linked, setuid, or a "
           "wrapper dropped LD_PRELOAD)";
  }
  if (!io->adopted) {
    std::string held;
    for (const auto& l : listeners_) held += (held.empty() ? "" : ", ") + l.address.to_string();
    return "the app never bound an address baton holds (baton holds " + held + ")";
  }
  return {};
}

void Supervisor::forget_generation_io(int id) {
  GenerationIo* io = io_for(id);
  if (io == nullptr) return;
  stop_readiness(*io);
  if (io->out) loop_.remove(io->out.get());
  if (io->err) loop_.remove(io->err.get());
  io_.erase(id);
}

// ---- readiness ----

void Supervisor::start_readiness(GenerationIo& io) {
  const int id = io.id;
  switch (config_.readiness.kind) {
    case ReadinessSpec::Kind::kNotify:
      break;  // on_notify
    case ReadinessSpec::Kind::kHttp:
      http_probe_attempt(id);
      break;
    case ReadinessSpec::Kind::kExec:
      exec_probe_attempt(id);
      break;
    case ReadinessSpec::Kind::kDelay:
      io.timer = loop_.add_timer(Clock::now() + config_.readiness.delay, [this, id] {
        if (GenerationIo* io = io_for(id)) io->timer = 0;
        core_.on_ready(id);
      });
      break;
  }
}

void Supervisor::stop_readiness(GenerationIo& io) {
  if (io.timer != 0) loop_.cancel_timer(io.timer);
  io.timer = 0;
  if (io.probe_conn) {
    loop_.remove(io.probe_conn.get());
    io.probe_conn.reset();
  }
  io.probe_listener.reset();  // the app keeps its own copy
  if (io.exec_pid > 0) ::kill(-io.exec_pid, SIGKILL);  // reaped by reap_children
  io.exec_pid = -1;
}

void Supervisor::retry_probe(int id, void (Supervisor::*attempt)(int)) {
  GenerationIo* io = io_for(id);
  const Generation* g = core_.find(id);
  if (io == nullptr || g == nullptr || g->state != GenerationState::kStarting || g->killed) return;
  io->timer = loop_.add_timer(Clock::now() + kProbeRetry, [this, id, attempt] {
    if (GenerationIo* io = io_for(id)) io->timer = 0;
    (this->*attempt)(id);
  });
}

// The probe's connection lands in the backlog of the generation's private listener at once; the
// answer comes when the generation accepts and serves it, which is the proof sought. No polling
// while the app starts: one request waits for it.
void Supervisor::http_probe_attempt(int id) {
  GenerationIo* io = io_for(id);
  if (io == nullptr) return;
  io->probe_buffer.clear();
  Fd conn(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!conn || (::connect(conn.get(), io->probe_address.sockaddr_ptr(), io->probe_address.length) !=
                    0 &&
                errno != EINPROGRESS)) {
    return retry_probe(id, &Supervisor::http_probe_attempt);
  }
  std::string req = http_probe_request(config_.readiness.argument);
  // Small and sent into a fresh socket buffer: it fits at once.
  if (::send(conn.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    return retry_probe(id, &Supervisor::http_probe_attempt);
  }
  io->probe_conn = std::move(conn);
  loop_.add(io->probe_conn.get(), EPOLLIN | EPOLLRDHUP, [this, id](uint32_t) { on_probe_event(id); });
}

void Supervisor::on_probe_event(int id) {
  GenerationIo* io = io_for(id);
  if (io == nullptr || !io->probe_conn) return;
  char buf[4096];
  ssize_t n = retry_eintr(::recv, io->probe_conn.get(), buf, sizeof(buf), 0);
  if (n < 0 && errno == EAGAIN) return;
  if (n > 0) io->probe_buffer.append(buf, static_cast<size_t>(n));
  const bool done = n <= 0 || io->probe_buffer.find("\r\n") != std::string::npos ||
                    io->probe_buffer.size() > 1024;
  if (!done) return;
  loop_.remove(io->probe_conn.get());
  io->probe_conn.reset();
  int code = http_status_of(io->probe_buffer);
  if (code >= 200 && code < 300) {
    core_.on_ready(id);
    return;
  }
  retry_probe(id, &Supervisor::http_probe_attempt);
}

void Supervisor::exec_probe_attempt(int id) {
  GenerationIo* io = io_for(id);
  if (io == nullptr) return;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.push_back(fmt::format("BATON_GENERATION={}", id));
  env_strings.push_back(fmt::format("BATON_PID={}", io->pid));
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string cmd = config_.readiness.argument;
  char sh[] = "/bin/sh", dash_c[] = "-c";
  char* argv[] = {sh, dash_c, cmd.data(), nullptr};
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, 2, 1);  // its output goes to the operator's stderr
  pid_t pid = -1;
  int rc = posix_spawn(&pid, sh, &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return retry_probe(id, &Supervisor::exec_probe_attempt);
  io->exec_pid = pid;
}

// ---- children ----

void Supervisor::reap_children() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;  // none left to reap now (as PID 1, orphans are reaped here too)
    bool was_probe = false;
    for (auto& [id, io] : io_) {
      if (io->exec_pid != pid) continue;
      was_probe = true;
      io->exec_pid = -1;
      const int gen = id;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        core_.on_ready(gen);
      } else {
        retry_probe(gen, &Supervisor::exec_probe_attempt);
      }
      break;
    }
    if (was_probe) continue;
    std::optional<int> gen;
    if (const Generation* g = core_.find_pid(pid)) gen = g->id;
    core_.on_exit(pid, status);
    if (gen) {
      if (GenerationIo* io = io_for(*gen)) {
        stop_readiness(*io);
        if (!io->out && !io->err) forget_generation_io(*gen);
      }
    }
  }
}

void Supervisor::on_signal() {
  signalfd_siginfo info{};
  while (retry_eintr(::read, signal_fd_.get(), &info, sizeof(info)) == sizeof(info)) {
    switch (info.ssi_signo) {
      case SIGCHLD:
        reap_children();
        break;
      case SIGHUP:
        log("SIGHUP: reload");
        core_.on_reload(std::nullopt);
        break;
      case SIGTERM:
      case SIGINT:
        core_.on_stop();
        break;
      case SIGUSR1:
      case SIGUSR2:
        if (const Generation* g = core_.serving()) ::kill(g->pid, static_cast<int>(info.ssi_signo));
        break;
      default:
        break;
    }
  }
}

std::optional<int> Supervisor::generation_of_pid(pid_t pid) {
  if (const Generation* g = core_.find_pid(pid)) return g->id;
  // Not a main process: a process of the generation's group (a worker or a child) may speak for
  // it, as under systemd's NotifyAccess=all, confined here to the generation's process group.
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = content.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  int ppid = 0, pgid = 0;
  char state = 0;
  if (std::sscanf(content.c_str() + close + 1, " %c %d %d", &state, &ppid, &pgid) != 3) {
    return std::nullopt;
  }
  if (const Generation* g = core_.find_pid(pgid)) return g->id;
  return std::nullopt;
}

void Supervisor::on_notify() {
  while (auto received = notify_->receive()) {
    auto gen = generation_of_pid(received->pid);
    if (!gen) continue;  // from no generation of ours: ignored
    if (received->message.status) core_.on_status_text(*gen, *received->message.status);
    if (received->message.ready && config_.readiness.kind == ReadinessSpec::Kind::kNotify) {
      core_.on_ready(*gen);
    }
    if (received->message.stopping) log(fmt::format("generation {} says it is stopping", *gen));
    const NotifyMessage& m = received->message;
    if (GenerationIo* io = io_for(*gen)) {
      io->adopt_loaded = io->adopt_loaded || m.adopt_loaded;
      io->adopted = io->adopted || m.adopted.has_value();
    }
    if (m.adopted) log(fmt::format("generation {}: adopted {}", *gen, *m.adopted));
    if (m.adopt_passthrough) {
      log(fmt::format("generation {} bound {} itself: baton does not hold that address",
                      *gen, *m.adopt_passthrough));
    }
    if (m.adopt_error) log(fmt::format("generation {}: adoption error: {}", *gen, *m.adopt_error));
  }
}

// ---- control socket ----

void Supervisor::on_control_accept() {
  for (;;) {
    Fd fd(::accept4(control_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) return;
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != ::geteuid() && cred.uid != 0)) {
      std::string reply = control_error(fmt::format(
          "permission denied: uid {} may not control this supervisor", cred.uid)).dump() + "\n";
      [[maybe_unused]] auto n = ::send(fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
      log(fmt::format("control connection from uid {} (pid {}) refused", cred.uid, cred.pid));
      continue;
    }
    if (clients_.size() >= kMaxControlClients) continue;  // closed: too many at once
    const int raw = fd.get();
    clients_[raw] = ControlClient{std::move(fd), {}, std::nullopt};
    loop_.add(raw, EPOLLIN | EPOLLRDHUP, [this, raw](uint32_t ev) { on_control_client(raw, ev); });
  }
}

void Supervisor::on_control_client(int fd, uint32_t events) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  ControlClient& client = it->second;
  char buf[4096];
  ssize_t n = retry_eintr(::recv, fd, buf, sizeof(buf), 0);
  if (n < 0 && errno == EAGAIN) return;
  if (n <= 0 || (client.waiter && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0)) {
    if (client.waiter) {  // a client that hangs up stops waiting; the reload goes on
      core_.on_waiter_gone(*client.waiter);
      waiters_.erase(*client.waiter);
    }
    loop_.remove(fd);
    clients_.erase(it);
    return;
  }
  if (client.waiter) return;  // one request per connection: more bytes are ignored
  client.buffer.append(buf, static_cast<size_t>(n));
  auto newline = client.buffer.find('\n');
  if (newline == std::string::npos) {
    if (client.buffer.size() > kMaxControlLine) {
      send_and_close(fd, control_error("request line too long"));
    }
    return;
  }
  handle_request(client, client.buffer.substr(0, newline));
}

void Supervisor::handle_request(ControlClient& client, const std::string& line) {
  const int fd = client.fd.get();
  auto request = parse_control_request(line);
  if (!request) return send_and_close(fd, control_error(request.error().what()));
  switch (request->command) {
    case ControlRequest::Command::kStatus:
      return send_and_close(fd, [&] {
        auto j = control_ok("status");
        j["status"] = status_json();
        return j;
      }());
    case ControlRequest::Command::kStop:
      send_and_close(fd, control_ok("stopping: draining every generation"));
      core_.on_stop();
      return;
    case ControlRequest::Command::kReload: {
      const WaiterId w = next_waiter_++;
      client.waiter = w;
      waiters_[w] = fd;
      core_.on_reload(w);  // may answer at once (refused)
      if (!request->wait && waiters_.count(w) != 0) {
        waiters_.erase(w);
        const Generation* g = core_.starting();
        send_and_close(fd, control_ok(g != nullptr ? fmt::format("reload started: generation {} "
                                                                 "starting", g->id)
                                                   : "reload queued"));
      }
      return;
    }
  }
}

void Supervisor::reply(WaiterId waiter, const ReloadOutcome& outcome) {
  auto it = waiters_.find(waiter);
  if (it == waiters_.end()) return;  // not waiting (reload without --wait, or hung up)
  const int fd = it->second;
  waiters_.erase(it);
  nlohmann::json j = outcome.ok ? control_ok(outcome.message) : control_error(outcome.message);
  j["generation"] = outcome.generation;
  if (!outcome.ok) j["output_tail"] = outcome.output_tail;
  send_and_close(fd, j);
}

void Supervisor::send_and_close(int fd, const nlohmann::json& reply) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  std::string out = reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  // The client is waiting for exactly this reply; a bounded blocking send keeps it whole.
  set_nonblocking(fd, false);
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  [[maybe_unused]] auto n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  loop_.remove(fd);
  clients_.erase(it);
}

nlohmann::json Supervisor::status_json() {
  const auto now = Clock::now();
  const auto wall_now = std::chrono::system_clock::now();
  auto wall = [&](TimePoint t) {
    auto sys = wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(now - t);
    return std::chrono::duration_cast<std::chrono::milliseconds>(sys.time_since_epoch()).count() /
           1000.0;
  };
  nlohmann::json j;
  j["version"] = kControlProtocolVersion;
  j["supervisor"] = {{"pid", ::getpid()},
                     {"uptime_s", to_seconds(now - started_at_)},
                     {"command", config_.command},
                     {"readiness", config_.readiness.to_string()},
                     {"control", config_.control_path},
                     {"stopping", core_.stopping()}};
  j["listeners"] = nlohmann::json::array();
  for (size_t i = 0; i < listeners_.size(); ++i) {
    j["listeners"].push_back({{"name", listeners_[i].name},
                              {"address", listeners_[i].address.to_string()},
                              {"fd", 3 + i}});
  }
  const Generation* serving = core_.serving();
  j["serving_generation"] = serving != nullptr ? serving->id : 0;
  j["generations"] = nlohmann::json::array();
  for (const auto& g : core_.generations()) {
    nlohmann::json e = {{"generation", g.id},
                        {"pid", g.pid},
                        {"state", to_string(g.state)},
                        {"started_at", wall(g.started_at)}};
    if (g.ready_at) e["ready_after_s"] = to_seconds(*g.ready_at - g.started_at);
    if (g.drain_started_at) e["drain_started_at"] = wall(*g.drain_started_at);
    if (g.exited_at) e["exited_at"] = wall(*g.exited_at);
    if (g.wait_status) {
      if (WIFEXITED(*g.wait_status)) e["exit_status"] = WEXITSTATUS(*g.wait_status);
      if (WIFSIGNALED(*g.wait_status)) e["exit_signal"] = WTERMSIG(*g.wait_status);
    }
    if (g.killed) e["killed"] = true;
    if (!g.status_text.empty()) e["status_text"] = g.status_text;
    j["generations"].push_back(e);
  }
  if (const auto& r = core_.last_reload()) {
    nlohmann::json e = {{"id", r->id},
                        {"result", r->in_progress ? "in-progress" : (r->ok ? "ok" : "failed")},
                        {"reason", r->message},
                        {"requested_at", wall(r->requested_at)}};
    if (r->finished_at) e["duration_s"] = to_seconds(*r->finished_at - r->requested_at);
    j["last_reload"] = e;
  } else {
    j["last_reload"] = nullptr;
  }
  const Counters& c = core_.counters();
  j["counters"] = {{"reloads_ok", c.reloads_ok},
                   {"reloads_failed", c.reloads_failed},
                   {"reloads_coalesced", c.reloads_coalesced},
                   {"crashes", c.crashes},
                   {"drain_kills", c.drain_kills},
                   {"generations_started", c.generations_started}};
  return j;
}

}  // namespace

int run_supervisor(const SupervisorConfig& config) {
  auto loop = EventLoop::create();
  if (!loop) {
    log_line("error: " + loop.error().what());
    return 1;
  }
  Supervisor supervisor(config, std::move(loop).value());
  if (auto s = supervisor.setup(); !s) {
    std::fprintf(stderr, "baton: %s\n", s.error().what().c_str());
    return 1;
  }
  return supervisor.run();
}

}  // namespace baton

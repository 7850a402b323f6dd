// The supervisor's I/O shell: set-up, reaping and dispatch. Signals, the notify socket, child
// exits and control requests become events for SupervisorCore; SupervisorOs is carried out with
// real system calls. The parts with a concept of their own live beside it: readiness_probe (proof
// of readiness), generation_output (the app's output), control_server (the control socket),
// status_json (the status reply).
#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
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

#include "common/private_dir.h"
#include "common/syscall.h"
#include "supervisor/accept_probe.h"
#include "supervisor/accept_readiness.h"
#include "supervisor/activation.h"
#include "supervisor/control_server.h"
#include "supervisor/drain_watches.h"
#include "supervisor/event_loop.h"
#include "supervisor/generation_output.h"
#include "supervisor/listener_set.h"
#include "supervisor/log.h"
#include "supervisor/manager_notify.h"
#include "supervisor/metrics.h"
#include "supervisor/notify_socket.h"
#include "supervisor/orphan_guard.h"
#include "supervisor/output_sink.h"
#include "supervisor/process_group.h"
#include "supervisor/readiness_probe.h"
#include "supervisor/relay.h"
#include "supervisor/spawner.h"
#include "supervisor/status_json.h"

namespace baton {
namespace {

// Before the event loop runs (setting up, failing to): a plain write.
void log_line(LogLevel level, const std::string& line) {
  std::string out =
      LogFormat::for_fd(STDERR_FILENO).line(level, line, std::chrono::system_clock::now());
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, out.data(), out.size());
}

// How long a switch waits for the old generation to accept what was queued for it.

// What the shell keeps for one generation besides the core's record.
struct GenerationIo {
  int id = 0;
  pid_t pid = -1;
  std::unique_ptr<GenerationOutput> output;
  std::unique_ptr<ReadinessProbe> readiness;
  std::unique_ptr<AcceptReadiness> accept;  // auto and accept readiness
  // --adopt: what libbaton_adopt.so reported from inside the app
  bool adopt_loaded = false;
  bool adopted = false;
};

class Supervisor final : public SupervisorOs, public ControlServer::Handler {
 public:
  Supervisor(const SupervisorConfig& config, EventLoop loop)
      : config_(config),
        loop_(std::move(loop)),
        core_(*this, config.core),
        control_(loop_, *this) {}
  ~Supervisor() override;

  Status setup();
  int run();
  void tell_manager();

  // SupervisorOs
  TimePoint now() override { return Clock::now(); }
  Result<int> spawn(int id) override;
  void signal(const Generation& g, int sig) override { ::kill(g.pid, sig); }
  void signal_group(const Generation& g, int sig) override {
    if (auto s = signal_process_group(g.pid, sig); !s) log(LogLevel::kWarning, s.error().what());
  }
  bool group_has_members(const Generation& g) override { return process_group_has_members(g.pid); }
  std::string wrapper_warning(const Generation& g) override {
    auto shape = inspect_process(g.pid);  // gone already: nothing to say
    return shape ? shell_wrapper_warning(g.id, g.pid, *shape) : std::string();
  }
  void switch_to(const Generation& g) override;
  QuietCheck check_quiet(const Generation& g) override { return drains_.check(*listeners_, g); }
  void kill_group(const Generation& g) override {
    // The group id is the main pid (setpgid in the child). The kernel does not reuse a pid while a
    // process group of that id has members, so this cannot hit a stranger's group.
    ::kill(-g.pid, SIGKILL);
  }
  std::string output_tail(int id) override;
  std::string failure_hint(int id) override;
  Status prepare_reload(CoreOptions& options) override;
  void reply(WaiterId waiter, const ReloadOutcome& outcome) override {
    control_.reply(waiter, outcome);
  }
  void log(LogLevel level, const std::string& line) override {
    if (err_sink_) {
      err_sink_->write(0, log_format_.line(level, line, std::chrono::system_clock::now()));
    } else {
      log_line(level, line);
    }
  }
  void log(const std::string& line) { log(LogLevel::kInfo, line); }
  void finished(int exit_code) override {
    exit_code_ = exit_code;
    loop_.stop();
  }

  // ControlServer::Handler
  nlohmann::json status() override;
  void stop() override { core_.on_stop(); }
  void reload(WaiterId waiter) override { core_.on_reload(waiter); }
  std::optional<int> starting_generation() override {
    const Generation* g = core_.starting();
    return g != nullptr ? std::optional<int>(g->id) : std::nullopt;
  }
  void waiter_gone(WaiterId waiter) override { core_.on_waiter_gone(waiter); }

 private:
  Status lock_control_path();
  Status bind_listeners();
  Status watch_signals();
  void on_signal();
  void reap_children();
  void on_notify();
  void on_probe_accepted(int id);
  void generation_gone(int id);
  void relay_orphans();
  bool still_starting(int id) const;
  void forget_if_done(int id);
  GenerationIo* io_for(int id);
  std::optional<int> generation_of_pid(pid_t pid);

  SupervisorConfig config_;
  EventLoop loop_;
  SupervisorCore core_;
  ControlServer control_;
  std::optional<ListenerSet> listeners_;
  DrainWatches drains_{[this](const std::string& line) { log(line); }};
  Relay relay_{loop_};  // declared after listeners_: destroyed first, while the sockets are open
  LogFormat log_format_ = LogFormat::for_fd(STDERR_FILENO);  // baton's own lines (log.h)
  bool spoke_notify_ = false;  // some generation sent a notify message (the auto rule)
  Fd lock_fd_;
  std::optional<NotifySocket> notify_;
  OrphanGuard guard_;
  std::optional<ManagerSocket> manager_;  // baton's own manager ($NOTIFY_SOCKET), if any
  ManagerNotifier notifier_{::getpid()};
  bool manager_send_failed_ = false;
  Fd signal_fd_;
  sigset_t old_mask_{};
  // Declared before io_: every generation's output writes into them until it is destroyed.
  std::unique_ptr<OutputSink> out_sink_, err_sink_;  // baton's stdout and stderr, nonblocking
  std::map<int, std::unique_ptr<GenerationIo>> io_;  // by generation id
  int exit_code_ = 0;
  static constexpr int kMaxIgnoredNotifyLogs = 20;
  int ignored_notify_ = 0;
  TimePoint started_at_ = Clock::now();
  std::unique_ptr<MetricsServer> metrics_;  // --metrics; before loop_ in destruction
};

Supervisor::~Supervisor() {
  for (auto& [id, io] : io_) io->accept.reset();  // before the listener set goes
  ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
}

Status Supervisor::lock_control_path() {
  // The directory must be ours alone (common/private_dir.h): whoever can change its entries could
  // point the lock at any file we can write, or answer for us on the control socket.
  const std::filesystem::path control(config_.control_path);
  auto dir = open_private_dir(control.parent_path().string());
  if (!dir) return dir.error();
  // One supervisor per control path: the lock is held for the supervisor's life and released by
  // the kernel however it ends, so a crashed supervisor never blocks the next one.
  const std::string lock_path = config_.control_path + ".lock";
  auto lock = open_in_dir(dir->get(), control.filename().string() + ".lock", O_RDWR | O_CREAT);
  if (!lock) {
    return Error(lock.error().code(), lock.error().code() == ELOOP
                                          ? "open " + lock_path + ": a symlink, not followed"
                                          : "open " + lock_path);
  }
  lock_fd_ = std::move(*lock);
  struct stat st {};
  if (::fstat(lock_fd_.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
    return Error(fmt::format("lock file {} is not a regular file of ours; remove it", lock_path));
  }
  if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    [[maybe_unused]] auto n = ::pread(lock_fd_.get(), pid, sizeof(pid) - 1, 0);
    return Error(
        fmt::format("another supervisor (pid {}) is running with control socket {}; "
                    "stop it or pass another --control",
                    std::strtol(pid, nullptr, 10), config_.control_path));
  }
  std::string me = std::to_string(::getpid()) + "\n";
  [[maybe_unused]] int rc = ::ftruncate(lock_fd_.get(), 0);
  [[maybe_unused]] auto n = ::pwrite(lock_fd_.get(), me.data(), me.size(), 0);
  return {};
}

Status Supervisor::bind_listeners() {
  auto activated = take_activated_listeners(config_.listens);
  if (!activated) return activated.error();
  auto set = ListenerSet::bind(
      config_.listens, config_.bind, [this](const std::string& line) { log(line); }, &*activated);
  if (!set) return set.error();
  listeners_ = std::move(set).value();
  return {};
}

Status Supervisor::watch_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE}) {
    sigaddset(&mask, sig);
  }
  if (::sigprocmask(SIG_BLOCK, &mask, &old_mask_) != 0) return Error::from_errno("sigprocmask");
  sigdelset(&mask, SIGPIPE);  // blocked, so writes to a gone peer return EPIPE instead
  signal_fd_.reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_) return Error::from_errno("signalfd");
  return loop_.add(signal_fd_.get(), EPOLLIN, [this](uint32_t) { on_signal(); });
}

Status Supervisor::setup() {
  out_sink_ = std::make_unique<OutputSink>(loop_, STDOUT_FILENO);
  err_sink_ = std::make_unique<OutputSink>(loop_, STDERR_FILENO);
  for (auto* sink : {out_sink_.get(), err_sink_.get()}) {
    const char* stream = sink == out_sink_.get() ? "stdout" : "stderr";
    sink->on_overflow([this, stream](int source) {
      if (source == 0) return;  // baton's own lines: telling would only add one more
      log(LogLevel::kWarning,
          fmt::format("generation {}: baton's {} is not read fast enough; {} KiB of its output "
                      "is queued, further lines are dropped and counted (status: "
                      "output_dropped_lines)",
                      source, stream, OutputSink::kMaxQueuedPerSource / 1024));
    });
  }
  auto manager = ManagerSocket::from_environment();
  if (!manager) return manager.error();
  manager_ = std::move(manager).value();
  // Early, while the supervisor holds few descriptors for the fork to copy.
  auto guard = OrphanGuard::start();
  if (!guard) return guard.error();
  guard_ = std::move(guard).value();
  // A signalled group that outlives its main process stays ours to reap (process_group.h).
  if (config_.core.drain_signal_group) {
    if (auto s = become_child_subreaper(); !s) return s;
  }
  if (auto s = watch_signals(); !s) return s;
  if (auto s = lock_control_path(); !s) return s;
  if (auto s = bind_listeners(); !s) return s;
  if (auto s = control_.open(config_.control_path); !s) return s;
  // Absolute (sd_notify clients refuse a relative NOTIFY_SOCKET) and ours alone: a second
  // supervisor started on this path (its lock file removed) never replaces it.
  std::error_code ec;
  const auto notify_path = std::filesystem::absolute(config_.control_path, ec).string() +
                           fmt::format(".notify.{}", ::getpid());
  if (ec) return Error(ec.value(), "absolute path of " + config_.control_path);
  auto notify = NotifySocket::bind(notify_path);
  if (!notify) return notify.error();
  notify_ = std::move(notify).value();
  if (config_.run_as) {
    // Generations running as another user must reach the notify socket (and nothing else here:
    // the control socket is 0600 and checks its peer): search on the directory, the socket theirs.
    const std::string dir = std::filesystem::path(config_.control_path).parent_path().string();
    struct stat st {};
    if (!dir.empty() && ::stat(dir.c_str(), &st) == 0 && st.st_uid == ::geteuid() &&
        (st.st_mode & 0777) == 0700) {
      ::chmod(dir.c_str(), 0711);  // only baton's own private directory is opened up
    }
    if (::chown(notify_->path().c_str(), config_.run_as->uid, config_.run_as->gid) != 0) {
      return Error::from_errno("chown " + notify_->path());
    }
  }
  if (auto s = loop_.add(notify_->fd(), EPOLLIN, [this](uint32_t) { on_notify(); }); !s) return s;
  const auto& listeners = listeners_->listeners();
  for (size_t i = 0; i < listeners.size(); ++i) {
    log(fmt::format("listening on {}={} (fd {}, {}{})", listeners[i].name,
                    listeners[i].address.to_string(), 3 + i,
                    listeners[i].steered() ? "steered" : "shared",
                    listeners[i].activated ? ", from the service manager" : ""));
  }
  log("control socket " + config_.control_path);
  if (config_.metrics) {
    auto metrics = MetricsServer::open(*config_.metrics, loop_, [this] {
      return render_metrics(core_,
                            std::chrono::duration_cast<Duration>(Clock::now() - started_at_));
    });
    if (!metrics) return metrics.error();
    metrics_ = std::move(metrics).value();
    log(fmt::format("metrics at http://{}/metrics", metrics_->address().to_string()));
  }
  return {};
}

int Supervisor::run() {
  core_.start();
  // Asked before every wait, so after every batch of events: the manager hears of each change.
  loop_.run(
      [this] {
        tell_manager();
        return core_.next_deadline();
      },
      [this] { core_.on_tick(); });
  tell_manager();
  return exit_code_;
}

void Supervisor::tell_manager() {
  if (!manager_) return;
  ManagerView view;
  if (const Generation* g = core_.serving()) {
    view.serving_generation = g->id;
    view.serving_pid = g->pid;
  }
  if (const Generation* g = core_.starting()) view.starting_generation = g->id;
  if (const auto& r = core_.last_reload()) {
    view.reload_id = r->id;
    view.reload_in_progress = r->in_progress;
  }
  view.reloads_ended = core_.counters().reloads_ok + core_.counters().reloads_failed;
  view.stopping = core_.stopping();
  for (const auto& datagram : notifier_.update(view, monotonic_usec())) {
    if (!manager_->send(datagram) && !manager_send_failed_) {
      manager_send_failed_ = true;  // said once: the manager may be gone for good
      log(LogLevel::kWarning, fmt::format("could not tell the service manager ({}): {}",
                                          manager_->name(), std::strerror(errno)));
    }
  }
}

Result<int> Supervisor::spawn(int id) {
  auto io = std::make_unique<GenerationIo>();
  io->id = id;
  io->readiness = std::make_unique<ReadinessProbe>(
      loop_, config_.readiness, id,
      ReadinessProbe::Hooks{[this, id] { core_.on_ready(id); },
                            [this, id] { return still_starting(id); }});
  // The generation's own member of every steered listener, the shared socket of the others.
  auto sockets = listeners_->assign(id);
  if (!sockets) return sockets.error();
  for (int fd : *sockets) relay_.release(fd);  // the slot's own generation takes what waits
  struct Unassign {  // a generation that does not start gives its slot back
    ListenerSet* set;
    int id;
    ~Unassign() {
      if (set != nullptr) set->release(id);
    }
  } unassign{&*listeners_, id};
  SpawnRequest req;
  req.argv = config_.command;
  req.working_dir = config_.working_dir;
  req.run_as = config_.run_as;
  req.env = config_.env;  // baton's own variables below override the user's
  req.listener_fds = *sockets;
  std::string names, starter;
  size_t index = 0;
  for (const auto& l : listeners_->listeners()) {
    ++index;
    names += (names.empty() ? "" : ":") + l.name;
    // Server::Starter spells TCP listeners as host:port (port alone for the wildcard), unix ones
    // as their path, each "=fd", separated by ';'.
    const std::string where = l.address.host_port();
    if (l.address.transport != Transport::kUdp) {
      starter += fmt::format("{}{}={}", starter.empty() ? "" : ";", where, 2 + index);
    }
  }
  auto probe_fd = io->readiness->open_listener();
  if (!probe_fd) return probe_fd.error();
  if (*probe_fd >= 0) {
    req.listener_fds.push_back(*probe_fd);
    names += std::string(names.empty() ? "" : ":") + kProbeListenerName;
  }
  req.env["LISTEN_FDS"] = std::to_string(req.listener_fds.size());
  req.env["LISTEN_FDNAMES"] = names;
  req.env["SERVER_STARTER_PORT"] = starter;
  req.env["BATON_GENERATION"] = std::to_string(id);
  req.env["NOTIFY_SOCKET"] = notify_->path();
  if (!config_.adopt_library.empty()) {
    const char* preload = std::getenv("LD_PRELOAD");
    req.env["LD_PRELOAD"] =
        config_.adopt_library + (preload != nullptr && *preload ? std::string(":") + preload : "");
    req.env["BATON_ADOPT"] = "1";
  }
  auto spawned = spawn_process(req);
  if (!spawned) return spawned.error();
  io->pid = spawned->pid;
  io->output = std::make_unique<GenerationOutput>(
      loop_, std::move(spawned->stdout_pipe), std::move(spawned->stderr_pipe), *out_sink_,
      *err_sink_, id, config_.prefix_output ? generation_label(id) : "");
  // The sinks keep counters per generation: those of generations long gone (the core keeps the
  // last 16 exited) are dropped, so they stay bounded over months of reloads.
  out_sink_->forget(id - 64);
  err_sink_->forget(id - 64);
  if (auto s = io->output->watch([this, id] { forget_if_done(id); }); !s) {
    // Unwatched pipes would fill and stall the app: it is not started after all. Its exit is
    // reaped as that of no generation.
    ::kill(-spawned->pid, SIGKILL);
    return s.error();
  }
  if (!guard_.watch(io->pid)) {
    log(LogLevel::kWarning,
        fmt::format("generation {}: the orphan guard is not told of it; it may outlive a killed "
                    "supervisor",
                    id));
  }
  unassign.set = nullptr;
  GenerationIo* raw = io.get();
  io_[id] = std::move(io);
  raw->readiness->start(raw->pid);
  if (config_.readiness.uses_accept_probe()) {
    raw->accept = std::make_unique<AcceptReadiness>(
        loop_, *listeners_, id,
        AcceptReadiness::Hooks{[this, id] { return still_starting(id); },
                               [this, id] { on_probe_accepted(id); },
                               [this](const std::string& line) { log(line); }});
    raw->accept->start();
  }
  return raw->pid;
}

GenerationIo* Supervisor::io_for(int id) {
  auto it = io_.find(id);
  return it == io_.end() ? nullptr : it->second.get();
}

bool Supervisor::still_starting(int id) const {
  const Generation* g = core_.find(id);
  return g != nullptr && g->state == GenerationState::kStarting && !g->killed;
}

// The shell's part of a generation is forgotten once its process has exited and its output has
// been read to the end, whichever comes last.
void Supervisor::forget_if_done(int id) {
  GenerationIo* io = io_for(id);
  if (io == nullptr || !io->output->closed()) return;
  const Generation* g = core_.find(id);
  if (g == nullptr || g->state == GenerationState::kExited) io_.erase(id);
}

std::string Supervisor::output_tail(int id) {
  GenerationIo* io = io_for(id);
  if (io == nullptr) return {};
  io->output->take_in();  // what is already written
  std::string tail = io->output->tail();
  forget_if_done(id);
  return tail;
}

Status Supervisor::prepare_reload(CoreOptions& options) {
  if (!config_.reload_config) return {};
  auto fresh = config_.reload_config();
  if (!fresh) return fresh.error();
  // What a new generation may change; listeners, the control socket and the user stay as baton
  // started (they are held, or bound, for the supervisor's life).
  config_.command = fresh->command;
  config_.env = fresh->env;
  config_.working_dir = fresh->working_dir;
  config_.readiness = fresh->readiness;
  config_.prefix_output = fresh->prefix_output;
  options.ready_timeout = fresh->core.ready_timeout;
  options.drain_timeout = fresh->core.drain_timeout;
  options.readiness = fresh->core.readiness;
  auto spelled = [](const SupervisorConfig& c) {
    std::string out;
    for (const auto& l : c.listens) out += l.name + "=" + l.address.to_string() + " ";
    return out + c.control_path;
  };
  if (spelled(*fresh) != spelled(config_)) {
    log("the listeners or the control socket changed in the settings: they take effect when baton "
        "itself restarts; this reload keeps the ones it holds");
  }
  return {};
}

std::string Supervisor::failure_hint(int id) {
  GenerationIo* io = io_for(id);
  if (io == nullptr) return {};
  if (config_.readiness.kind == ReadinessSpec::Kind::kAuto && config_.adopt_library.empty()) {
    if (spoke_notify_) {
      return "the app speaks sd_notify, so it is held to READY=1, which it did not send";
    }
    if (!io->accept || !io->accept->probing()) {
      return "it sent no READY=1 and baton has no TCP listener to probe it on; choose a --ready "
             "check";
    }
    return "it neither sent READY=1 nor accepted baton's probe connection";
  }
  if (config_.adopt_library.empty()) return {};
  if (!io->adopt_loaded) {
    return "the adoption library did not load into the app (statically linked, setuid, or a "
           "wrapper dropped LD_PRELOAD)";
  }
  if (!io->adopted) {
    std::string held;
    for (const auto& l : listeners_->listeners()) {
      held += (held.empty() ? "" : ", ") + l.address.to_string();
    }
    return "the app never bound an address baton holds (baton holds " + held + ")";
  }
  return {};
}

// ---- children ----

void Supervisor::reap_children() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;  // none left to reap now (as PID 1, orphans are reaped here too)
    bool was_readiness_command = false;
    for (auto& [id, io] : io_) {
      // It may answer "ready", which may change io_: stop looking at once.
      if (io->readiness->on_reaped(pid, status)) {
        was_readiness_command = true;
        break;
      }
    }
    if (was_readiness_command) continue;
    std::optional<int> gen;
    if (const Generation* g = core_.find_pid(pid)) gen = g->id;
    core_.on_exit(pid, status);  // kills what is left of the group
    if (gen) {
      guard_.forget(pid);
      generation_gone(*gen);
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
      case SIGQUIT:  // a graceful stop too, not a core dump that would orphan the app
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
    if (!gen) {  // from no generation of ours: ignored, and said so a bounded number of times
      if (ignored_notify_ < kMaxIgnoredNotifyLogs) {
        log(LogLevel::kWarning,
            fmt::format("ignored a notify datagram from pid {}: not in any generation's process "
                        "group{}",
                        received->pid,
                        ++ignored_notify_ == kMaxIgnoredNotifyLogs ? " (no more such lines)" : ""));
      }
      continue;
    }
    const NotifyMessage& said = received->message;
    // STOPPING=1 alone does not count: it is said on the way out and tells nothing of how the
    // app proves it is ready.
    spoke_notify_ = spoke_notify_ || said.ready || said.status;
    if (said.status) core_.on_status_text(*gen, *said.status);
    if (said.ready && notify_proves_ready(config_.readiness)) core_.on_ready(*gen);
    if (received->message.stopping) log(fmt::format("generation {} says it is stopping", *gen));
    const NotifyMessage& m = received->message;
    if (GenerationIo* io = io_for(*gen)) {
      io->adopt_loaded = io->adopt_loaded || m.adopt_loaded;
      io->adopted = io->adopted || m.adopted.has_value();
    }
    if (m.adopted) log(fmt::format("generation {}: adopted {}", *gen, *m.adopted));
    if (m.adopt_passthrough) {
      log(fmt::format("generation {} bound {} itself: baton does not hold that address", *gen,
                      *m.adopt_passthrough));
    }
    if (m.adopt_error) {
      log(LogLevel::kError, fmt::format("generation {}: adoption error: {}", *gen, *m.adopt_error));
    }
  }
}

void Supervisor::switch_to(const Generation& g) {
  if (auto s = listeners_->switch_to(g.id); !s) {
    // The old program stays attached: connections keep going to the slot they went to.
    log(fmt::format("generation {}: switching new connections to it failed: {}", g.id,
                    s.error().what()));
    return;
  }
  // The handshake race: a connection steered to the old generation's socket just before the
  // switch waits in its accept queue. The drain watch (--drain=watch) signals the old generation
  // only once that queue is empty; a socket whose generation is gone is relayed (relay_orphans).
  relay_orphans();
}

// A generation's main process was reaped: its slot is free for a later generation, which then
// takes what waits in its sockets' accept queues.
void Supervisor::generation_gone(int id) {
  listeners_->release(id);
  relay_orphans();
  if (GenerationIo* io = io_for(id)) {
    io->readiness->stop();
    if (io->accept) io->accept->stop();
    forget_if_done(id);
  }
}

// Connections queued on a socket no generation will accept are relayed to the serving one.
void Supervisor::relay_orphans() {
  const auto& listeners = listeners_->listeners();
  for (int slot : listeners_->orphan_slots()) {
    for (const auto& l : listeners) {
      if (!l.steered() || l.address.transport != Transport::kTcp) continue;
      relay_.take_over(l.group->member(slot), connect_address(l.address));
    }
  }
}

// The generation accepted baton's probe connection on its own socket: ready under the auto rule
// unless it speaks sd_notify.
void Supervisor::on_probe_accepted(int id) {
  on_notify();  // a STATUS= sent before the accept counts: it means the app speaks sd_notify
  if (!accept_proves_ready(config_.readiness, spoke_notify_) || !still_starting(id)) return;
  log(fmt::format("generation {} accepted baton's probe connection on its own socket", id));
  core_.on_ready(id);
}

nlohmann::json Supervisor::status() {
  SupervisorFacts facts;
  facts.pid = ::getpid();
  facts.started_at = started_at_;
  facts.command = config_.command;
  facts.readiness = config_.readiness.to_string();
  facts.control_path = config_.control_path;
  facts.config_file = config_.config_file;
  facts.working_dir = config_.working_dir;
  facts.metrics_address = metrics_ ? metrics_->address().to_string() : "";
  const auto& listeners = listeners_->listeners();
  for (size_t i = 0; i < listeners.size(); ++i) {
    facts.listeners.push_back({listeners[i].name, listeners[i].address.to_string(),
                               static_cast<int>(3 + i), listeners[i].steered()});
  }
  for (const auto& g : core_.generations()) {
    if (auto slot = listeners_->slot_of(g.id)) facts.slots[g.id] = *slot;
  }
  facts.output_dropped_lines = out_sink_->dropped_lines_total() + err_sink_->dropped_lines_total();
  for (const auto& g : core_.generations()) {
    auto n = out_sink_->dropped_lines(g.id) + err_sink_->dropped_lines(g.id);
    if (n != 0) facts.generation_dropped_lines[g.id] = n;
  }
  return status_json(facts, core_, Clock::now(), std::chrono::system_clock::now());
}

}  // namespace

int run_supervisor(const SupervisorConfig& config) {
  auto loop = EventLoop::create();
  if (!loop) {
    log_line(LogLevel::kError, loop.error().what());
    return 1;
  }
  Supervisor supervisor(config, std::move(loop).value());
  if (auto s = supervisor.setup(); !s) {
    std::string line = LogFormat::for_fd(STDERR_FILENO).fatal_line(s.error().what());
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
    return 1;
  }
  return supervisor.run();
}

}  // namespace baton

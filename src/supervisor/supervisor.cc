// The supervisor's I/O shell (supervisor_shell.h): set-up, signals, the loop, the service
// manager, status. Signals, the notify socket, child exits and control requests become events for
// SupervisorCore; SupervisorOs is carried out with real system calls. A generation's life in the
// shell is in supervisor_generations.cc; the parts with a concept of their own live beside it:
// traffic (listeners, relay, drain watch), readiness_probe, generation_output, control_server,
// control_lock, status_json.
#include "supervisor/supervisor.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "common/duration.h"
#include "common/syscall.h"
#include "supervisor/control_lock.h"
#include "supervisor/process_group.h"
#include "supervisor/status_json.h"
#include "supervisor/supervisor_shell.h"

namespace baton {
namespace {

// Before the event loop runs (setting up, failing to): a plain write.
void log_line(LogLevel level, const std::string& line) {
  std::string out =
      LogFormat::for_fd(STDERR_FILENO).line(level, line, std::chrono::system_clock::now());
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, out.data(), out.size());
}

}  // namespace

void Supervisor::log(LogLevel level, const std::string& line) {
  if (err_sink_) {
    err_sink_->write(0, log_format_.line(level, line, std::chrono::system_clock::now()));
  } else {
    log_line(level, line);
  }
}

Supervisor::~Supervisor() {
  for (auto& [id, io] : io_) io->accept.reset();  // before the listener set goes
  ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
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

void Supervisor::open_sinks() {
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
}

Status Supervisor::setup() {
  open_sinks();
  // The binary `baton upgrade` executes again: this one's path, read before anyone replaces it.
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) self_path_.assign(exe, static_cast<size_t>(n));
  auto manager = ManagerSocket::from_environment();
  if (!manager) return manager.error();
  manager_ = std::move(manager).value();
  if (auto s = start_watchdog(); !s) return s;
  // Early, while the supervisor holds few descriptors for the fork to copy.
  auto guard = OrphanGuard::start();
  if (!guard) return guard.error();
  guard_ = std::move(guard).value();
  // A signalled group that outlives its main process stays ours to reap (process_group.h).
  if (config_.core.drain_signal_group) {
    if (auto s = become_child_subreaper(); !s) return s;
  }
  if (auto s = watch_signals(); !s) return s;
  // Whether the control directory is baton's own: created now, or one named for baton (/run/baton,
  // $XDG_RUNTIME_DIR/baton, /tmp/baton-UID), not one named by the operator or systemd.
  const std::string control_dir =
      std::filesystem::path(config_.control_path).parent_path().string();
  const std::string batons_own =
      std::filesystem::path(
          default_control_path(nullptr, nullptr, std::getenv("XDG_RUNTIME_DIR"), ::geteuid()))
          .parent_path()
          .string();
  std::error_code exists_ec;
  const bool dir_is_ours =
      !std::filesystem::exists(control_dir.empty() ? "." : control_dir, exists_ec) ||
      control_dir == batons_own;
  auto lock = lock_control_path(config_.control_path);
  if (!lock) return lock.error();
  lock_fd_ = std::move(lock).value();
  auto traffic = Traffic::bind(config_.listens, config_.bind, loop_,
                               [this](const std::string& line) { log(line); });
  if (!traffic) return traffic.error();
  traffic_ = std::move(traffic).value();
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
    // Only a directory baton made is opened up; of any other, the operator learns what it needs.
    const std::string& dir = control_dir;
    struct stat st {};
    if (!dir.empty() && ::stat(dir.c_str(), &st) == 0 && st.st_uid == ::geteuid()) {
      const bool searchable = (st.st_mode & S_IXOTH) != 0 ||
                              ((st.st_mode & S_IXGRP) != 0 && st.st_gid == config_.run_as->gid);
      if (!searchable && dir_is_ours && (st.st_mode & 0777) == 0700) {
        ::chmod(dir.c_str(), 0711);
      } else if (!searchable) {
        log(LogLevel::kWarning,
            fmt::format("the generations run as uid {} cannot reach their notify socket: {} "
                        "(mode {:04o}) is not searchable by them, and baton does not change a "
                        "directory it did not create; chmod o+x it (0711) or pass a --control "
                        "in a directory they can search",
                        config_.run_as->uid, dir, st.st_mode & 07777));
      }
    }
    if (::chown(notify_->path().c_str(), config_.run_as->uid, config_.run_as->gid) != 0) {
      return Error::from_errno("chown " + notify_->path());
    }
  }
  if (auto s = loop_.add(notify_->fd(), EPOLLIN, [this](uint32_t) { on_notify(); }); !s) return s;
  for (const auto& line : traffic_->describe()) log(line);
  log("control socket " + config_.control_path);
  if (config_.metrics) {
    auto metrics = MetricsServer::open(*config_.metrics, loop_, [this] {
      return render_metrics(core_, config_.self_version, read_process_stats(), facts());
    });
    if (!metrics) return metrics.error();
    metrics_ = std::move(metrics).value();
    log(fmt::format("metrics at http://{}/metrics", metrics_->address().to_string()));
  }
  return {};
}

int Supervisor::run() {
  if (resumed_) {
    reap_children();  // what exited during the exec: its SIGCHLD may have come before signalfd
    loop_.add_timer(Clock::now(), [this] {  // from the loop
      compare_settings_files();
      answer_upgrade_waiter();
    });
  } else {
    core_.start();
  }
  loop_.add_timer(Clock::now() + kListenerWatchInterval, [this] { watch_listeners(); });
  // Asked before every wait, so after every batch of events: the manager hears of each change.
  loop_.run(
      [this] {
        tell_manager();
        return core_.next_deadline();
      },
      [this] { core_.on_tick(); });
  tell_manager();
  log(exit_code_ == 0 ? LogLevel::kNotice : LogLevel::kError,
      exit_code_ == 0 ? std::string("stopped")
                      : fmt::format("stopped, exit status {}", exit_code_));
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

Status Supervisor::start_watchdog() {
  auto timeout = watchdog_from_environment();
  if (!timeout) return timeout.error();
  if (!*timeout || !manager_) return {};  // no watchdog, or no manager to ping
  watchdog_timeout_ = **timeout;
  log(fmt::format("the service manager's watchdog: WATCHDOG=1 every {}",
                  duration_to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                      watchdog_interval(watchdog_timeout_)))));
  ping_watchdog();
  return {};
}

// From a timer of the loop, so the pings stop when the loop does: a healthy loop is what the
// manager watches. A ping that cannot be sent is tried again at the next one.
void Supervisor::ping_watchdog() {
  if (!manager_->send("WATCHDOG=1") && !manager_send_failed_) {
    manager_send_failed_ = true;
    log(LogLevel::kWarning, fmt::format("could not tell the service manager ({}): {}",
                                        manager_->name(), std::strerror(errno)));
  }
  loop_.add_timer(Clock::now() + watchdog_interval(watchdog_timeout_), [this] { ping_watchdog(); });
}

Status Supervisor::prepare_reload(CoreOptions& options) {
  if (!config_.reload_config) return {};
  auto fresh = config_.reload_config();
  if (!fresh) return fresh.error();
  take_reloadable(*fresh, config_, options);
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

// ---- children ----

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

SupervisorFacts Supervisor::facts() {
  SupervisorFacts facts;
  facts.pid = ::getpid();
  facts.started_at = started_at_;
  facts.command = config_.command;
  facts.readiness = config_.readiness.to_string();
  facts.control_path = config_.control_path;
  facts.config_file = config_.config_file;
  facts.working_dir = config_.working_dir;
  facts.metrics_address = metrics_ ? metrics_->address().to_string() : "";
  const auto& listeners = traffic_->listeners().listeners();
  for (size_t i = 0; i < listeners.size(); ++i) {
    facts.listeners.push_back({listeners[i].name, listeners[i].address.to_string(),
                               static_cast<int>(3 + i), listeners[i].steered(),
                               listeners[i].group ? listeners[i].group->strangers_found() : 0});
  }
  for (const auto& g : core_.generations()) {
    if (auto slot = traffic_->listeners().slot_of(g.id)) facts.slots[g.id] = *slot;
    if (g.state == GenerationState::kExited) continue;
    if (auto f = traffic_->figures(g.id, g.pid)) {
      facts.traffic[g.id] = {f->share_percent, f->accept_queue, f->connections};
    }
  }
  facts.takeover = traffic_->takeover();
  facts.output_dropped_lines = out_sink_->dropped_lines_total() + err_sink_->dropped_lines_total();
  for (const auto& g : core_.generations()) {
    auto n = out_sink_->dropped_lines(g.id) + err_sink_->dropped_lines(g.id);
    if (n != 0) facts.generation_dropped_lines[g.id] = n;
  }
  return facts;
}

nlohmann::json Supervisor::status() {
  return status_json(facts(), core_, Clock::now(), std::chrono::system_clock::now());
}

void Supervisor::reload(WaiterId waiter, const ControlRequest& request) {
  if (!request.canary_percent) return core_.on_reload(waiter);
  if (!traffic_->listeners().any_steered()) {
    const std::string why = "a canary needs a steered listener (TCP or UDP); these are all shared";
    log(LogLevel::kWarning, "reload refused: " + why);
    const Generation* g = core_.serving();
    return control_.reply(waiter, ReloadOutcome{false, why, "", g != nullptr ? g->id : 0});
  }
  core_.on_reload(waiter, Canary{*request.canary_percent, request.canary_window});
}

int run_supervisor(const SupervisorConfig& config) {
  std::optional<UpgradeState> carried;
  if (const char* fd = std::getenv("BATON_RESUME_FD")) {
    auto state = take_upgrade_state(fd);
    if (!state) {
      // The predecessor's image is gone: nothing can be given back. Its generations end with
      // this process (PR_SET_PDEATHSIG, the orphan guard), so the port is free for a restart.
      log_line(LogLevel::kError, "upgrade: cannot resume: " + state.error().what());
      return 1;
    }
    carried = std::move(state).value();
  }
  SupervisorConfig effective;
  if (carried) {
    // The predecessor's settings, not what a file says now (upgrade_settings.h).
    effective = std::move(carried->settings.config);
    effective.control_path = carried->control_path;
    effective.self_argv = config.self_argv;
    effective.self_version = config.self_version;
    if (carried->settings.reread_at_reload) effective.reload_config = config.reload_config;
  } else {
    effective = config;
  }
  raise_descriptor_limit();
  auto loop = EventLoop::create();
  if (!loop) {
    log_line(LogLevel::kError, loop.error().what());
    return 1;
  }
  Supervisor supervisor(effective, std::move(loop).value());
  if (auto s = carried ? supervisor.resume(std::move(*carried)) : supervisor.setup(); !s) {
    std::string line = LogFormat::for_fd(STDERR_FILENO).fatal_line(s.error().what());
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
    return 1;
  }
  return supervisor.run();
}

}  // namespace baton

// `baton upgrade` in the supervisor's shell (supervisor_shell.h): the baton binary at the
// supervisor's path executed again in place, in the same pid, so the generations stay its
// children and every socket stays open. docs/upgrade.md has the reasoning; the state that
// crosses the exec is described in upgrade_state.h.
//
// The steps, each bounded:
//   1. refuse what cannot be carried (SupervisorCore::upgrade_refusal, connections baton relays);
//   2. the pre-flight check: the new binary, opened once by its path and from then on run only
//      through that descriptor (a file put at the path later is never run), run as a child
//      (`baton upgrade-check` with the original command line and a sealed copy of the state at
//      fd 3), must answer within
//      kUpgradeCheckTimeout that it can resume this state. It is the gate: after a successful
//      exec there is no way back, so anything it does not vouch for never gets that far; and
//      nothing it vouched for may change before the exec: neither the check nor the resume reads
//      a file (the settings travel in the state, upgrade_settings.h), only the command line;
//   3. the exec: the state written again (things moved during the check), CLOEXEC cleared on
//      exactly the descriptors it names, execveat of the file the check ran. A failed exec
//      carries on as before;
//   4. in the new image: run_supervisor finds $BATON_RESUME_FD, checks every descriptor the
//      state names, closes every other one, takes the state's settings as its own, and resume()
//      adopts the descriptors instead of binding. Once it runs, compare_settings_files() reads
//      the config file, only to tell the operator that it now says something else.
// The supervisor is single-threaded (checked before the exec): a generation's PR_SET_PDEATHSIG
// fires when the thread that forked it exits, which an exec from the only thread never does.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/listener.h"
#include "common/syscall.h"
#include "supervisor/checked_json.h"
#include "supervisor/control_protocol.h"
#include "supervisor/drain_watch.h"
#include "supervisor/spawner.h"
#include "supervisor/supervisor_shell.h"
#include "supervisor/upgrade_settings.h"

namespace baton {
namespace {

constexpr const char* kResumeFdVariable = "BATON_RESUME_FD";
// How long the new binary has to answer its pre-flight check.
constexpr std::chrono::seconds kUpgradeCheckTimeout{10};
// How long the exec waits for baton's stdout and stderr to take what is queued for them.
constexpr std::chrono::milliseconds kOutputDrainBeforeExec{200};
constexpr size_t kMaxCheckOutput = 4096;

Result<Fd> write_state(const std::string& bytes) {
  Fd fd(::memfd_create("baton-upgrade-state", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return Error::from_errno("memfd_create");
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = retry_eintr(::write, fd.get(), bytes.data() + done, bytes.size() - done);
    if (n <= 0) return Error::from_errno("write the upgrade state");
    done += static_cast<size_t>(n);
  }
  // Sealed: what the check read is what nobody can change after.
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) !=
      0) {
    return Error::from_errno("seal the upgrade state");
  }
  return fd;
}

// The state in sealed memfd `fd`, bounded.
Result<std::string> read_state(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error(EBADF, fmt::format("upgrade state: fd {} is not a file", fd));
  }
  const int seals = ::fcntl(fd, F_GET_SEALS);
  constexpr int kNeeded = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
  if (seals < 0 || (seals & kNeeded) != kNeeded) {
    return Error(EPERM, fmt::format("upgrade state: fd {} is not a sealed memfd", fd));
  }
  if (st.st_size < 0 || static_cast<size_t>(st.st_size) > kMaxUpgradeState) {
    return Error(EMSGSIZE, fmt::format("upgrade state of {} bytes; at most {}", st.st_size,
                                       kMaxUpgradeState));
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = retry_eintr(::pread, fd, bytes.data() + done, bytes.size() - done,
                            static_cast<off_t>(done));
    if (n <= 0) return Error::from_errno("read the upgrade state");
    done += static_cast<size_t>(n);
  }
  return bytes;
}

// The descriptor is what the state says it is.
Status check_passed_fd(const PassedFd& p) {
  auto bad = [&](const std::string& why) {
    return Error(EBADF, fmt::format("upgrade state: fd {} ({}) {}", p.fd, p.what, why));
  };
  struct stat st {};
  if (::fstat(p.fd, &st) != 0) return bad("is not open");
  switch (p.kind) {
    case PassedFd::Kind::kPipe:
      return S_ISFIFO(st.st_mode) ? Status{} : bad("is not a pipe");
    case PassedFd::Kind::kLockFile:
      return S_ISREG(st.st_mode) && st.st_uid == ::geteuid() ? Status{}
                                                             : bad("is not our lock file");
    case PassedFd::Kind::kSocket:
      break;
  }
  if (!S_ISSOCK(st.st_mode)) return bad("is not a socket");
  auto option = [&](int name) {
    int value = -1;
    socklen_t len = sizeof(value);
    return ::getsockopt(p.fd, SOL_SOCKET, name, &value, &len) == 0 ? value : -1;
  };
  const int family = option(SO_DOMAIN);
  const bool family_ok =
      p.family == AF_UNSPEC ? (family == AF_INET || family == AF_INET6) : family == p.family;
  if (!family_ok || option(SO_TYPE) != p.type) return bad("is not a socket of the right kind");
  if (p.listening && option(SO_ACCEPTCONN) != 1) return bad("is not listening");
  return {};
}

bool single_threaded() {
  const std::string status = read_small("/proc/self/status");
  return status.find("\nThreads:\t1\n") != std::string::npos;
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
  return fmt::format("ended with wait status {}", status);
}

// The last non-empty line of `text`, made printable and short.
std::string last_line(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  const auto nl = text.rfind('\n');
  if (nl != std::string_view::npos) text.remove_prefix(nl + 1);
  return escape_control_chars(text.substr(0, 300));
}

}  // namespace

bool resuming_after_upgrade() { return std::getenv(kResumeFdVariable) != nullptr; }

Result<UpgradeState> take_upgrade_state(const char* fd_text) {
  const std::string text = fd_text;
  ::unsetenv(kResumeFdVariable);  // what baton starts from now on is not resuming anything
  char* end = nullptr;
  const long fd = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || fd < 3 || fd > kMaxCarriedFd) {
    return Error(EINVAL, fmt::format("{}={}: not a descriptor", kResumeFdVariable, text));
  }
  auto bytes = read_state(static_cast<int>(fd));
  ::close(static_cast<int>(fd));
  if (!bytes) return bytes.error();
  auto state = decode_upgrade_state(*bytes);
  if (!state) return state.error();
  const auto passed = passed_fds(*state);
  for (const auto& p : passed) {
    if (auto s = check_passed_fd(p); !s) return s.error();
  }
  // Nothing else of the predecessor's stays open; what stays is CLOEXEC again.
  std::vector<int> keep;
  keep.reserve(passed.size());
  for (const auto& p : passed) keep.push_back(p.fd);
  std::sort(keep.begin(), keep.end());
  unsigned next = 3;
  for (int fd_kept : keep) {
    if (static_cast<unsigned>(fd_kept) > next) ::close_range(next, fd_kept - 1U, 0);
    next = static_cast<unsigned>(fd_kept) + 1;
    if (auto s = set_cloexec(fd_kept, true); !s) return s.error();
  }
  ::close_range(next, ~0U, 0);
  return state;
}

int upgrade_check(const SupervisorConfig& config, int state_fd) {
  auto bytes = read_state(state_fd);
  auto state = bytes ? decode_upgrade_state(*bytes) : Result<UpgradeState>(bytes.error());
  if (!state) {
    std::fprintf(stderr, "baton upgrade-check: %s\n", state.error().what().c_str());
    return 1;
  }
  const nlohmann::json answer = {{"baton_upgrade_check", kUpgradeStateVersion},
                                 {"ok", true},
                                 {"version", config.self_version}};
  std::printf("%s\n", answer.dump().c_str());
  return 0;
}

CarriedSettings Supervisor::running_settings() const {
  CarriedSettings s{config_, static_cast<bool>(config_.reload_config)};
  s.config.core = core_.options();  // the timeouts a reload took live in the core's options
  return s;
}

UpgradeState Supervisor::carry() {
  UpgradeState s;
  s.from_version = config_.self_version;
  s.binary = self_path_;
  s.started_at_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(started_at_.time_since_epoch()).count();
  s.core = core_.snapshot();
  s.settings = running_settings();
  traffic_->listeners().carry(s);
  for (const auto& [id, io] : io_) {
    if (core_.find(id) == nullptr) continue;  // its record is gone: its output goes too
    s.generations.push_back(
        {id, io->output->out_fd(), io->output->err_fd(), io->adopt_loaded, io->adopted});
  }
  s.lock_fd = lock_fd_.get();
  s.control_fd = control_.fd();
  s.control_path = control_.path();
  for (const auto& [waiter, fd] : control_.waiting()) {
    if (upgrade_ && waiter == upgrade_->waiter) continue;
    s.waiters.push_back({waiter, fd});
  }
  s.next_waiter = control_.next_waiter();
  s.notify_fd = notify_->fd();
  s.notify_path = notify_->path();
  if (manager_) {
    s.manager_fd = manager_->fd();
    s.manager_name = manager_->name();
  }
  s.manager = notifier_.carried();
  s.metrics_fd = metrics_ ? metrics_->fd() : -1;
  s.guard_fd = guard_.fd();
  s.guard_pid = guard_.pid();
  s.spoke_notify = spoke_notify_;
  s.ignored_notify = ignored_notify_;
  for (int sig = 1; sig <= 64; ++sig) {
    if (sigismember(&old_mask_, sig) == 1) s.signal_mask |= std::uint64_t{1} << (sig - 1);
  }
  for (const auto& g : core_.generations()) {
    auto n = out_sink_->dropped_lines(g.id) + err_sink_->dropped_lines(g.id);
    if (n != 0) s.dropped_lines[g.id] = n;
  }
  s.dropped_lines_total = out_sink_->dropped_lines_total() + err_sink_->dropped_lines_total();
  return s;
}

void Supervisor::waiter_gone(WaiterId waiter) {
  if (upgrade_ && upgrade_->waiter == waiter) upgrade_->client_gone = true;
  core_.on_waiter_gone(waiter);
}

void Supervisor::upgrade(WaiterId waiter, const ControlRequest& request) {
  auto refuse = [&](const std::string& why) {
    log(LogLevel::kWarning, "upgrade refused: " + why);
    control_.answer(waiter, control_error("upgrade refused: " + why + "; nothing changed"));
  };
  if (upgrade_) return refuse("another upgrade is under way");
  if (auto why = core_.upgrade_refusal()) return refuse(*why);
  if (const size_t n = traffic_->relayed_now(); n > 0) {
    return refuse(
        fmt::format("baton itself relays {} connection(s) of a generation that is gone; "
                    "try again once they end",
                    n));
  }
  if (self_path_.empty()) return refuse("the path of baton's own binary is not known");
  upgrade_ = std::make_unique<UpgradeCheck>();
  upgrade_->waiter = waiter;
  upgrade_->wait = request.wait;
  auto state = write_state(encode_upgrade_state(carry()));
  if (!state) {
    upgrade_.reset();
    return refuse(state.error().what());
  }
  // Opened once, here: the check runs this file and the exec executes it, so a binary put at the
  // path in between (by whoever may write there) is never run as the supervisor. O_PATH: only
  // the right to execute it is needed. Not close-on-exec where it is executed, so that a script
  // there still runs (its interpreter opens it as /dev/fd/N); the new image closes it.
  upgrade_->binary.reset(::open(self_path_.c_str(), O_PATH | O_CLOEXEC));
  if (!upgrade_->binary) {
    return end_upgrade(fmt::format("{} cannot be run: {}", self_path_, std::strerror(errno)));
  }
  SpawnRequest check;
  check.argv = {self_path_, "upgrade-check"};
  for (size_t i = 1; i < config_.self_argv.size(); ++i) check.argv.push_back(config_.self_argv[i]);
  check.listener_fds = {state->get(), upgrade_->binary.get()};
  check.exec_fd = upgrade_->binary.get();
  check.listen_pid = false;
  auto spawned = spawn_process(check);
  if (!spawned)
    return end_upgrade(
        fmt::format("{} cannot be run: {}", self_path_, std::strerror(spawned.error().code())));
  upgrade_->pid = spawned->pid;
  upgrade_->out = std::move(spawned->stdout_pipe);
  upgrade_->err = std::move(spawned->stderr_pipe);
  for (bool is_err : {false, true}) {
    const int fd = is_err ? upgrade_->err.get() : upgrade_->out.get();
    if (auto s = loop_.add(fd, EPOLLIN, [this, is_err](uint32_t) { upgrade_check_read(is_err); });
        !s) {
      return end_upgrade("watch the pre-flight check: " + s.error().what());
    }
  }
  upgrade_->timer = loop_.add_timer(Clock::now() + kUpgradeCheckTimeout, [this] {
    if (!upgrade_) return;
    upgrade_->timer = 0;
    end_upgrade(fmt::format("{} did not answer its pre-flight check within {}s", self_path_,
                            kUpgradeCheckTimeout.count()));
  });
  log(fmt::format("upgrade: checking {} first (pid {})", self_path_, upgrade_->pid));
}

void Supervisor::upgrade_check_read(bool is_err) {
  if (!upgrade_) return;
  Fd& fd = is_err ? upgrade_->err : upgrade_->out;
  std::string& into = is_err ? upgrade_->complained : upgrade_->said;
  char buf[4096];
  for (;;) {
    ssize_t n = retry_eintr(::read, fd.get(), buf, sizeof(buf));
    if (n > 0) {
      into.append(buf, std::min(static_cast<size_t>(n),
                                kMaxCheckOutput - std::min(kMaxCheckOutput, into.size())));
      continue;
    }
    if (n < 0 && errno == EAGAIN) return;
    loop_.remove(fd.get());
    fd.reset();
    break;
  }
  upgrade_check_settle();
}

bool Supervisor::upgrade_reaped(pid_t pid, int status) {
  if (!upgrade_ || upgrade_->pid != pid) return false;
  upgrade_->wait_status = status;
  // Whatever the check left running in its group (a session of its own) ends with it.
  ::kill(-pid, SIGKILL);
  upgrade_check_settle();
  return true;
}

// The verdict, once the check has closed its output and been reaped.
void Supervisor::upgrade_check_settle() {
  if (!upgrade_ || upgrade_->out || upgrade_->err || !upgrade_->wait_status) return;
  const int status = *upgrade_->wait_status;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string said = last_line(upgrade_->complained);
    return end_upgrade(fmt::format("{} failed its pre-flight check: {}", self_path_,
                                   said.empty() ? describe_exit(status) : said));
  }
  // Whatever sits at the path wrote this: read as the state is (checked_json.h), every field's
  // type checked before it is read (json::value() throws on a field of another type, which would
  // end the supervisor).
  auto version = parse_upgrade_check_answer(upgrade_->said.substr(0, upgrade_->said.find('\n')));
  if (!version) {
    return end_upgrade(
        fmt::format("{} did not answer the pre-flight check as baton does (is it "
                    "baton, of a version that can upgrade?)",
                    self_path_));
  }
  exec_upgrade(*version);
}

void Supervisor::end_upgrade(const std::string& error) {
  if (!upgrade_) return;
  log(LogLevel::kWarning, "upgrade failed: " + error + "; the supervisor carries on");
  if (upgrade_->timer != 0) loop_.cancel_timer(upgrade_->timer);
  if (upgrade_->out) loop_.remove(upgrade_->out.get());
  if (upgrade_->err) loop_.remove(upgrade_->err.get());
  // A check still running is killed, with its group; it is reaped later as a child of no
  // generation.
  if (upgrade_->pid > 0 && !upgrade_->wait_status) ::kill(-upgrade_->pid, SIGKILL);
  control_.answer(upgrade_->waiter, control_error(error + "; nothing changed"));
  upgrade_.reset();
}

void Supervisor::exec_upgrade(const std::string& new_version) {
  if (auto why = core_.upgrade_refusal()) return end_upgrade("meanwhile " + *why);
  if (traffic_->relayed_now() > 0) return end_upgrade("meanwhile baton began to relay connections");
  if (!single_threaded()) return end_upgrade("the supervisor runs more than one thread");
  if (upgrade_->timer != 0) loop_.cancel_timer(upgrade_->timer);
  upgrade_->timer = 0;
  const pid_t pid = ::getpid();
  log(LogLevel::kNotice, fmt::format("upgrading: executing {} in place (baton {} -> {}), pid {}",
                                     self_path_, config_.self_version, new_version, pid));
  if (manager_) {
    manager_->send(
        fmt::format("STATUS=upgrading baton {} -> {}", config_.self_version, new_version));
  }
  const bool carry_client = upgrade_->wait && !upgrade_->client_gone;
  if (!carry_client) {
    control_.answer(upgrade_->waiter,
                    control_ok(fmt::format("{} (baton {}) passed its pre-flight check; supervisor "
                                           "pid {} is executing it in place",
                                           self_path_, new_version, pid)));
  }
  out_sink_->drain_before_exec(kOutputDrainBeforeExec);
  err_sink_->drain_before_exec(kOutputDrainBeforeExec);
  UpgradeState s = carry();
  if (carry_client) {
    for (const auto& [waiter, fd] : control_.waiting()) {
      if (waiter == upgrade_->waiter) s.upgrade_waiter = CarriedWaiter{waiter, fd};
    }
  }
  auto state = write_state(encode_upgrade_state(s));
  if (!state) return end_upgrade(state.error().what());
  std::vector<int> passed{state->get(), upgrade_->binary.get()};
  for (const auto& p : passed_fds(s)) passed.push_back(p.fd);
  for (int fd : passed) {
    if (auto c = set_cloexec(fd, false); !c) {
      for (int undo : passed) (void)set_cloexec(undo, true);
      return end_upgrade(c.error().what());
    }
  }
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!std::string_view(*e).starts_with(std::string(kResumeFdVariable) + "=")) {
      env_strings.emplace_back(*e);
    }
  }
  env_strings.push_back(fmt::format("{}={}", kResumeFdVariable, state->get()));
  if (watchdog_timeout_.count() > 0) {  // removed at start: the successor reads it as this one did
    env_strings.push_back(fmt::format("WATCHDOG_USEC={}", watchdog_timeout_.count()));
    env_strings.push_back(fmt::format("WATCHDOG_PID={}", ::getpid()));
  }
  std::vector<char*> envp, argv;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = config_.self_argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The file the check ran, whatever is at the path now.
  restore_descriptor_limit();
  ::execveat(upgrade_->binary.get(), "", argv.data(), envp.data(), AT_EMPTY_PATH);
  const int e = errno;
  raise_descriptor_limit();
  // Still the same image: nothing was handed over.
  for (int fd : passed) (void)set_cloexec(fd, true);
  end_upgrade(fmt::format("exec {}: {}", self_path_, std::strerror(e)));
}

Status Supervisor::resume(UpgradeState s) {
  open_sinks();
  if (s.manager_fd >= 0) {
    auto manager = ManagerSocket::adopt(Fd(s.manager_fd), s.manager_name);
    if (!manager) return manager.error();
    manager_ = std::move(manager).value();
  }
  if (auto st = start_watchdog(); !st) return st;
  notifier_.resume(s.manager);
  guard_ = OrphanGuard::resume(Fd(s.guard_fd), s.guard_pid);
  if (config_.core.drain_signal_group) {
    if (auto st = become_child_subreaper(); !st) return st;
  }
  if (auto st = watch_signals(); !st) return st;
  sigemptyset(&old_mask_);  // the mask baton started with, not the one it blocked itself
  for (int sig = 1; sig <= 64; ++sig) {
    if ((s.signal_mask >> (sig - 1)) & 1U) sigaddset(&old_mask_, sig);
  }
  lock_fd_.reset(s.lock_fd);
  auto set = ListenerSet::resume(s, config_.bind);
  if (!set) return set.error();
  traffic_ = Traffic::resume(std::move(set).value(), loop_,
                             [this](const std::string& line) { log(line); });
  config_.control_path = s.control_path;
  if (auto st = control_.resume(Fd(s.control_fd), s.control_path, s.next_waiter); !st) return st;
  for (const auto& w : s.waiters) {
    if (auto st = control_.adopt_waiter(Fd(w.fd), w.id); !st) return st;
  }
  if (s.upgrade_waiter) {
    if (auto st = control_.adopt_waiter(Fd(s.upgrade_waiter->fd), s.upgrade_waiter->id); !st) {
      return st;
    }
    upgrade_waiter_ = s.upgrade_waiter;
  }
  notify_ = NotifySocket::adopt(Fd(s.notify_fd), s.notify_path);
  if (auto st = loop_.add(notify_->fd(), EPOLLIN, [this](uint32_t) { on_notify(); }); !st) {
    return st;
  }
  if (s.metrics_fd >= 0) {
    auto metrics = MetricsServer::adopt(Fd(s.metrics_fd), loop_, [this] {
      return render_metrics(core_, config_.self_version, read_process_stats(), facts());
    });
    if (!metrics) return metrics.error();
    metrics_ = std::move(metrics).value();
  }
  started_at_ = TimePoint(std::chrono::nanoseconds(s.started_at_ns));
  spoke_notify_ = s.spoke_notify;
  ignored_notify_ = s.ignored_notify;
  for (const auto& [source, lines] : s.dropped_lines) err_sink_->carry_dropped(source, lines);
  err_sink_->carry_dropped_total(s.dropped_lines_total);
  core_.restore(std::move(s.core));
  // The groups the guard still watches after their main process was reaped: those that linger.
  for (const Generation& g : core_.generations()) {
    if (g.group_lingers) lingering_groups_.push_back(g.pid);
  }
  for (const auto& c : s.generations) {
    auto io = std::make_unique<GenerationIo>();
    const int id = c.id;
    const Generation* g = core_.find(id);
    io->id = id;
    io->pid = g != nullptr ? g->pid : -1;
    io->adopt_loaded = c.adopt_loaded;
    io->adopted = c.adopted;
    io->readiness = std::make_unique<ReadinessProbe>(
        loop_, config_.readiness, id,
        ReadinessProbe::Hooks{[this, id] { core_.on_ready(id); },
                              [this, id] { return still_starting(id); }});
    io->output = std::make_unique<GenerationOutput>(
        loop_, Fd(c.out_fd), Fd(c.err_fd), *out_sink_, *err_sink_, id,
        config_.prefix_output ? generation_label(id) : "");
    GenerationIo* raw = io.get();
    io_[id] = std::move(io);
    if (auto st = raw->output->watch([this, id] { forget_if_done(id); }); !st) return st;
  }
  self_path_ = s.binary;
  // Executed through a descriptor, this process may be named after its number ("7") on kernels
  // before 6.14: the name the binary had before, as ps and pidof show it.
  ::prctl(PR_SET_NAME, std::filesystem::path(self_path_).filename().c_str());
  upgraded_from_ = s.from_version;
  resumed_ = true;
  const Generation* serving = core_.serving();
  log(LogLevel::kNotice,
      fmt::format("upgraded: baton {} -> {} in place (pid {}); generation {} serving, {} "
                  "generation(s) carried",
                  upgraded_from_, config_.self_version, ::getpid(),
                  serving != nullptr ? serving->id : 0, io_.size()));
  return {};
}

// The upgrade kept the running settings (docs/upgrade.md). The files a reload reads (config
// file, env file) are read again here only to tell the operator, once, whether they now say
// something else: an edit made before `baton upgrade` is not applied by it, and a file that no
// longer checks will fail the next reload. Nothing here changes how anything runs.
void Supervisor::compare_settings_files() {
  if (!config_.reload_config) return;
  auto fresh = config_.reload_config();
  if (!fresh) {
    upgrade_note_ = fresh.error().what() + "; the next reload fails until it does";
  } else {
    const auto diff =
        settings_difference(running_settings(), CarriedSettings{std::move(fresh).value(), true});
    if (diff.empty()) return;
    std::string applies;
    if (!diff.reload_applies.empty()) {
      applies = fmt::format("`baton reload` applies {}", fmt::join(diff.reload_applies, ", "));
    }
    if (!diff.restart_applies.empty()) {
      applies += fmt::format("{}only a restart of baton applies {}", applies.empty() ? "" : "; ",
                             fmt::join(diff.restart_applies, ", "));
    }
    upgrade_note_ = fmt::format(
        "{} now says other settings than baton runs with, and the upgrade kept "
        "those: {}",
        config_.config_file.empty() ? "the env file" : config_.config_file, applies);
  }
  log(LogLevel::kWarning, "upgrade: " + upgrade_note_);
}

void Supervisor::answer_upgrade_waiter() {
  if (!upgrade_waiter_) return;
  const Generation* g = core_.serving();
  auto reply = control_ok(fmt::format(
      "upgraded: baton {} -> {} in place, supervisor pid {}; generation {} serving (pid {})",
      upgraded_from_, config_.self_version, ::getpid(), g != nullptr ? g->id : 0,
      g != nullptr ? g->pid : 0));
  reply["generation"] = g != nullptr ? g->id : 0;
  reply["pid"] = ::getpid();
  if (!upgrade_note_.empty()) reply["warning"] = upgrade_note_;
  control_.answer(upgrade_waiter_->id, reply);
  upgrade_waiter_.reset();
}

}  // namespace baton

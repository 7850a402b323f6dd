// A generation's life as the supervisor's shell sees it (supervisor_shell.h): spawned with its
// sockets and environment, heard from on the notify socket, proven ready, switched to, reaped.
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "supervisor/drain_watch.h"
#include "supervisor/failure_hint.h"
#include "supervisor/generation_env.h"
#include "supervisor/spawner.h"
#include "supervisor/supervisor_shell.h"

namespace baton {

Result<int> Supervisor::spawn(int id) {
  auto io = std::make_unique<GenerationIo>();
  io->id = id;
  io->readiness = std::make_unique<ReadinessProbe>(
      loop_, config_.readiness, id,
      ReadinessProbe::Hooks{[this, id] { core_.on_ready(id); },
                            [this, id] { return still_starting(id); }});
  // The generation's own member of every steered listener, the shared socket of the others.
  auto sockets = traffic_->assign(id);
  if (!sockets) return sockets.error();
  struct Unassign {  // a generation that does not start gives its slot back
    Traffic* traffic;
    int id;
    ~Unassign() {
      if (traffic != nullptr) traffic->unassign(id);
    }
  } unassign{traffic_.get(), id};
  SpawnRequest req;
  req.argv = config_.command;
  req.working_dir = config_.working_dir;
  req.run_as = config_.run_as;
  req.env = config_.env;  // baton's own variables below override the user's
  if (config_.run_as) {
    // The user's HOME, USER, LOGNAME, SHELL (looked up at each start, as login does), unless
    // the operator set them: not baton's own.
    for (auto& [key, value] : user_env(config_.run_as->name, ::getpwuid(config_.run_as->uid))) {
      req.env.emplace(key, value);
    }
  }
  req.listener_fds = *sockets;
  auto probe_fd = io->readiness->open_listener();
  if (!probe_fd) return probe_fd.error();
  if (*probe_fd >= 0) req.listener_fds.push_back(*probe_fd);
  for (auto& [key, value] : listen_env(traffic_->listeners().listeners(), *probe_fd >= 0)) {
    req.env[key] = value;
  }
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
  unassign.traffic = nullptr;
  GenerationIo* raw = io.get();
  io_[id] = std::move(io);
  raw->readiness->start(raw->pid);
  if (config_.readiness.uses_accept_probe()) {
    raw->accept = std::make_unique<AcceptReadiness>(
        loop_, traffic_->listeners(), id,
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

HintFacts Supervisor::hint_facts(const GenerationIo& io) const {
  HintFacts facts;
  facts.auto_readiness = config_.readiness.kind == ReadinessSpec::Kind::kAuto;
  facts.adopting = !config_.adopt_library.empty();
  facts.spoke_notify = spoke_notify_;
  facts.probing = io.accept && io.accept->probing();
  facts.said_ready = io.said_ready;
  facts.accepted = io.accept && io.accept->accepted();
  facts.adopt_loaded = io.adopt_loaded;
  facts.adopted = io.adopted;
  for (const auto& l : traffic_->listeners().listeners()) {
    facts.held += (facts.held.empty() ? "" : ", ") + l.address.to_string();
  }
  return facts;
}

std::string Supervisor::failure_hint(int id) {
  GenerationIo* io = io_for(id);
  return io == nullptr ? std::string() : baton::failure_hint(hint_facts(*io));
}

std::string Supervisor::exit_hint(int id) {
  GenerationIo* io = io_for(id);
  if (io == nullptr) return {};
  io->output->take_in();  // what is already written; output_tail() forgets the rest later
  return baton::exit_hint(hint_facts(*io), io->output->tail());
}

std::optional<int> Supervisor::generation_of_pid(pid_t pid) {
  if (const Generation* g = core_.find_pid(pid)) return g->id;
  // Not a main process: a process of the generation's group (a worker or a child) may speak for
  // it, as under systemd's NotifyAccess=all, confined here to the generation's process group.
  const std::string stat = read_small(fmt::format("/proc/{}/stat", pid));  // bounded
  if (const Generation* g = core_.find_pid(pgid_of_stat(stat))) return g->id;
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
    if (said.ready) {
      if (GenerationIo* io = io_for(*gen); io != nullptr && !io->said_ready) {
        io->said_ready = true;
        if (config_.readiness.kind == ReadinessSpec::Kind::kAuto && io->accept &&
            io->accept->probing() && !io->accept->accepted() && still_starting(*gen)) {
          log(
              fmt::format("generation {} sent READY=1; it is ready once it accepts baton's probe "
                          "connection on its own socket",
                          *gen));
        }
      }
      ready_if_proven(*gen);
    }
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
  if (auto s = traffic_->switch_to(g.id); !s) {
    // The old program stays attached: connections keep going to the slot they went to.
    log(fmt::format("generation {}: switching new connections to it failed: {}", g.id,
                    s.error().what()));
  }
}

void Supervisor::canary_to(const Generation& g, const Generation& old, int percent) {
  if (auto s = traffic_->canary(g.id, percent); !s) {
    // New connections keep going to the old generation; the window's end switches fully.
    log(LogLevel::kWarning, fmt::format("generation {}: the canary share could not be set, "
                                        "generation {} keeps every new connection: {}",
                                        g.id, old.id, s.error().what()));
  }
}

// A generation's main process was reaped: its slot is free for a later generation, which then
// takes what waits in its sockets' accept queues.
void Supervisor::generation_gone(int id) {
  traffic_->gone(id);
  if (GenerationIo* io = io_for(id)) {
    io->readiness->stop();
    if (io->accept) io->accept->stop();
    forget_if_done(id);
  }
}

// The generation accepted baton's probe connection on its own socket: ready under accept, and
// under auto for an app that speaks no sd_notify or has sent READY=1 already.
void Supervisor::on_probe_accepted(int id) {
  on_notify();  // a STATUS= sent before the accept counts: it means the app speaks sd_notify
  if (!still_starting(id)) return;
  log(fmt::format("generation {} accepted baton's probe connection on its own socket", id));
  ready_if_proven(id);
}

void Supervisor::ready_if_proven(int id) {
  const GenerationIo* io = io_for(id);
  if (io == nullptr || !still_starting(id)) return;
  ReadinessSeen seen;
  seen.spoke_notify = spoke_notify_;
  seen.said_ready = io->said_ready;
  seen.probing = io->accept && io->accept->probing();
  seen.accepted = io->accept && io->accept->accepted();
  if (proven_ready(config_.readiness, seen)) core_.on_ready(id);
}

void Supervisor::reap_children() {
  for (;;) {
    int status = 0;
    rusage usage{};
    pid_t pid = ::wait4(-1, &status, WNOHANG, &usage);
    if (pid <= 0) return;  // none left to reap now (as PID 1, orphans are reaped here too)
    if (upgrade_reaped(pid, status)) continue;  // the new binary's pre-flight check
    if (pid == guard_.pid()) {
      guard_gone(status);
      continue;
    }
    const auto cpu = std::chrono::seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                     std::chrono::microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    bool was_readiness_command = false;
    for (auto& [id, io] : io_) {
      // It may answer "ready", which may change io_: stop looking at once.
      if (io->readiness->on_reaped(pid, status, cpu)) {
        was_readiness_command = true;
        break;
      }
    }
    if (was_readiness_command) continue;
    std::optional<int> gen;
    if (const Generation* g = core_.find_pid(pid)) gen = g->id;
    core_.on_exit(pid, status);  // kills what is left of the group, unless it lingers
    if (gen) {
      // A group that lives on (--drain-signal-group) stays the guard's until it has ended:
      // forgetting it here would leave its members running if baton died in the meantime.
      const Generation* g = core_.find(*gen);
      if (g != nullptr && g->group_lingers) {
        lingering_groups_.push_back(pid);
      } else {
        guard_.forget(pid);
      }
      generation_gone(*gen);
    }
    forget_ended_groups();
  }
}

void Supervisor::guard_gone(int status) {
  const std::string how = WIFSIGNALED(status)
                              ? fmt::format("was killed by signal {}", WTERMSIG(status))
                              : fmt::format("exited with status {}", WEXITSTATUS(status));
  auto guard = OrphanGuard::start();
  if (!guard) {
    log(LogLevel::kWarning,
        fmt::format("the orphan guard (pid {}) {}, and no new one could be started: {}; the "
                    "app's processes now end with baton only as far as they watch it",
                    guard_.pid(), how, guard.error().what()));
    guard_ = OrphanGuard();
    return;
  }
  const pid_t old = guard_.pid();
  guard_ = std::move(guard).value();
  size_t groups = 0;
  for (const Generation& g : core_.generations()) {
    if (g.state != GenerationState::kExited && g.pid > 0 && guard_.watch(g.pid)) ++groups;
  }
  for (pid_t pgid : lingering_groups_) groups += guard_.watch(pgid) ? 1 : 0;
  log(LogLevel::kWarning, fmt::format("the orphan guard (pid {}) {}; a new one (pid {}) watches "
                                      "{} process group(s)",
                                      old, how, guard_.pid(), groups));
}

// The core ends a lingering generation once its group is empty (each member is ours to reap, so
// the group id cannot be reused before this runs) or once it has killed the group at the drain
// deadline (its members then die and are reaped here): either way the guard lets go of it.
void Supervisor::forget_ended_groups() {
  std::erase_if(lingering_groups_, [this](pid_t pgid) {
    for (const Generation& g : core_.generations()) {
      if (g.pid == pgid && g.group_lingers) return false;
    }
    guard_.forget(pgid);
    return true;
  });
}

void Supervisor::watch_listeners() {
  loop_.add_timer(Clock::now() + kListenerWatchInterval, [this] { watch_listeners(); });
  const Generation* g = core_.serving();
  if (g == nullptr || g->pid <= 0) return;
  std::vector<ListenerWatch::Socket> sockets;
  const auto& all = traffic_->listeners().listeners();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].address.transport != Transport::kTcp) continue;
    const int fd = traffic_->listeners().socket_of(g->id, i);
    if (fd >= 0) sockets.push_back({all[i].name, fd});
  }
  for (const auto& [name, queued] : listener_watch_.look(g->id, g->pid, sockets, Clock::now())) {
    log(LogLevel::kWarning,
        fmt::format("generation {} (pid {}) closed its socket of listener {}: no process of it "
                    "holds it, and {} connection(s) wait there unaccepted; reload or restart it",
                    g->id, g->pid, name, queued));
  }
}

}  // namespace baton

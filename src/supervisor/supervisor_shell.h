// supervisor_shell.h: the supervisor's I/O shell, the class behind run_supervisor (supervisor.h).
// Private to src/supervisor: its definitions are split by concern between supervisor.cc (set-up,
// signals, the loop, the service manager, status) and supervisor_generations.cc (a generation's
// life as the shell sees it: spawn, notify messages, readiness, the switch, exit).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "baton/fd.h"
#include "baton/result.h"
#include "supervisor/accept_readiness.h"
#include "supervisor/control_server.h"
#include "supervisor/event_loop.h"
#include "supervisor/generation_output.h"
#include "supervisor/log.h"
#include "supervisor/manager_notify.h"
#include "supervisor/metrics.h"
#include "supervisor/notify_socket.h"
#include "supervisor/orphan_guard.h"
#include "supervisor/output_sink.h"
#include "supervisor/process_group.h"
#include "supervisor/readiness_probe.h"
#include "supervisor/status_json.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor_core.h"
#include "supervisor/traffic.h"

namespace baton {

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
  void canary_to(const Generation& g, const Generation& old, int percent) override;
  QuietCheck check_quiet(const Generation& g) override { return traffic_->check_quiet(g); }
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
  void log(LogLevel level, const std::string& line) override;
  void log(const std::string& line) { log(LogLevel::kInfo, line); }
  void finished(int exit_code) override {
    exit_code_ = exit_code;
    loop_.stop();
  }

  // ControlServer::Handler
  nlohmann::json status() override;
  void stop() override { core_.on_stop(); }
  void reload(WaiterId waiter, const ControlRequest& request) override;
  std::optional<int> starting_generation() override {
    const Generation* g = core_.starting();
    return g != nullptr ? std::optional<int>(g->id) : std::nullopt;
  }
  void waiter_gone(WaiterId waiter) override { core_.on_waiter_gone(waiter); }

 private:
  Status watch_signals();
  void on_signal();
  void reap_children();
  void on_notify();
  void on_probe_accepted(int id);
  void generation_gone(int id);
  bool still_starting(int id) const;
  void forget_if_done(int id);
  GenerationIo* io_for(int id);
  std::optional<int> generation_of_pid(pid_t pid);
  // What the status and /metrics show beside the core's own state (reads /proc and sock_diag).
  SupervisorFacts facts();

  SupervisorConfig config_;
  EventLoop loop_;
  SupervisorCore core_;
  ControlServer control_;
  std::unique_ptr<Traffic> traffic_;  // the listeners, the relay, the drain watch
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

}  // namespace baton

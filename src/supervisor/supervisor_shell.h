// supervisor_shell.h: the supervisor's I/O shell, the class behind run_supervisor (supervisor.h).
// Private to src/supervisor: its definitions are split by concern between supervisor.cc (set-up,
// signals, the loop, the service manager, status) and supervisor_generations.cc (a generation's
// life as the shell sees it: spawn, notify messages, readiness, the switch, exit) and
// supervisor_upgrade.cc (`baton upgrade`: the pre-flight check, the exec, the resume).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "baton/fd.h"
#include "baton/result.h"
#include "supervisor/accept_readiness.h"
#include "supervisor/control_server.h"
#include "supervisor/event_loop.h"
#include "supervisor/failure_hint.h"
#include "supervisor/generation_output.h"
#include "supervisor/listener_watch.h"
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
#include "supervisor/upgrade_state.h"

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
  bool said_ready = false;  // it sent READY=1 (auto may also need the accept probe's proof)
};

// An upgrade under way: the new binary's pre-flight check (supervisor_upgrade.cc).
struct UpgradeCheck {
  WaiterId waiter = 0;
  bool wait = false;         // `upgrade --wait`: the client crosses the exec
  bool client_gone = false;  // it hung up: the upgrade goes on, unanswered
  pid_t pid = -1;            // the check process (`baton upgrade-check`)
  Fd binary;                 // the new binary, opened once: what is checked is what is executed
  Fd out, err;               // its output, read until EOF
  std::string said, complained;
  std::optional<int> wait_status;
  EventLoop::TimerId timer = 0;
};

// Reads the state named by $BATON_RESUME_FD (`fd_text`, its value) and removes the variable;
// checks every descriptor the state names (passed_fds) and closes every other one above 2.
Result<UpgradeState> take_upgrade_state(const char* fd_text);

class Supervisor final : public SupervisorOs, public ControlServer::Handler {
 public:
  Supervisor(const SupervisorConfig& config, EventLoop loop)
      : config_(config),
        loop_(std::move(loop)),
        core_(*this, config.core),
        control_(loop_, *this) {}
  ~Supervisor() override;

  Status setup();
  // In place of setup(), after an in-place upgrade: adopts what `state` carries (its descriptors
  // checked and every other one closed already: adopt_upgrade_fds).
  Status resume(UpgradeState state);
  int run();
  void tell_manager();
  // Reads (and removes) the manager's watchdog from the environment; with one, WATCHDOG=1 now and
  // every watchdog_interval() from the loop (manager_notify.h).
  Status start_watchdog();
  void ping_watchdog();
  // Every kListenerWatchInterval: a serving generation that closed a listener is logged once.
  void watch_listeners();

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
  std::string exit_hint(int id) override;
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
  void waiter_gone(WaiterId waiter) override;
  void upgrade(WaiterId waiter, const ControlRequest& request) override;

 private:
  Status watch_signals();
  void on_signal();
  void reap_children();
  // The orphan guard exited (the app, of the same uid, can kill it): a new one, told every group.
  void guard_gone(int status);
  void forget_ended_groups();
  void on_notify();
  void on_probe_accepted(int id);
  // The generation is ready when what it has shown proves it (readiness.h: proven_ready).
  void ready_if_proven(int id);
  HintFacts hint_facts(const GenerationIo& io) const;
  void generation_gone(int id);
  bool still_starting(int id) const;
  void forget_if_done(int id);
  GenerationIo* io_for(int id);
  std::optional<int> generation_of_pid(pid_t pid);
  // What the status and /metrics show beside the core's own state (reads /proc and sock_diag).
  SupervisorFacts facts();
  // supervisor_upgrade.cc
  void upgrade_check_read(bool is_err);
  void upgrade_check_settle();
  void end_upgrade(const std::string& error);
  void exec_upgrade(const std::string& new_version);
  UpgradeState carry();
  CarriedSettings running_settings() const;  // what it runs with now, as the state carries it
  bool upgrade_reaped(pid_t pid, int status);
  void compare_settings_files();
  void answer_upgrade_waiter();
  void open_sinks();  // baton's own stdout and stderr, nonblocking (output_sink.h)

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
  std::vector<pid_t> lingering_groups_;   // reaped main pids whose group guard_ still watches
  std::optional<ManagerSocket> manager_;  // baton's own manager ($NOTIFY_SOCKET), if any
  ManagerNotifier notifier_{::getpid()};
  bool manager_send_failed_ = false;
  std::chrono::microseconds watchdog_timeout_{0};  // the manager's WatchdogSec= (0: none)
  ListenerWatch listener_watch_;
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
  std::string self_path_;                   // the baton binary, as /proc/self/exe named it at start
  std::unique_ptr<UpgradeCheck> upgrade_;   // an upgrade under way
  bool resumed_ = false;                    // started by resume(), not setup()
  std::optional<CarriedWaiter> upgrade_waiter_;  // `upgrade --wait` carried: answered from the loop
  std::string upgraded_from_;                    // the predecessor's version, for that answer
  std::string upgrade_note_;  // the settings files say something else now: for that answer too
};

}  // namespace baton

#include "soak/reload.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "baton/fd.h"
#include "common/path_search.h"
#include "common/syscall.h"
#include "soak/load.h"
#include "soak/spot_check.h"

namespace baton::soak {
namespace {

// `baton status --json` lists every generation; its whole output is needed to parse it.
constexpr size_t kKeepStatusOutput = 16 * 1024 * 1024;

std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  size_t nl = t.rfind('\n');
  std::string line = nl == std::string::npos ? t : t.substr(nl + 1);
  if (line.size() > 200) line = line.substr(0, 200) + "...";
  return line;
}

double seconds_since(int64_t start_ns, int64_t t) {
  return static_cast<double>(t - start_ns) / 1e9;
}

}  // namespace

CommandOutcome run_command(const std::vector<std::string>& argv, std::chrono::nanoseconds timeout,
                           size_t keep_output) {
  CommandOutcome out;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    out.error = Error::from_errno("pipe").what();
    return out;
  }
  Fd read_end(pipefd[0]);
  Fd write_end(pipefd[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    out.error = Error(rc, "cannot run " + argv[0]).what();
    return out;
  }
  write_end.reset();
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  ::fcntl(read_end.get(), F_SETFL, O_NONBLOCK);
  int64_t deadline = now_ns() + timeout.count();
  bool exited = false;
  bool pipe_open = true;
  auto drain = [&] {
    char buf[4096];
    for (;;) {
      ssize_t n = retry_eintr(::read, read_end.get(), buf, sizeof(buf));
      if (n > 0) {
        out.output.append(buf, static_cast<size_t>(n));
        if (out.output.size() > 2 * keep_output) {
          out.output.erase(0, out.output.size() - keep_output);
        }
        continue;
      }
      if (n == 0) pipe_open = false;
      return;
    }
  };
  // Waits for the child's exit, not for the end of its output: a command that leaves a
  // background process (kill-and-start scripts do) would otherwise never finish.
  while (!exited) {
    int64_t left_ms = (deadline - now_ns()) / 1'000'000;
    if (left_ms <= 0) {
      out.timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd fds[2] = {{pidfd.get(), POLLIN, 0}, {read_end.get(), POLLIN, 0}};
    int n = retry_eintr(::poll, fds, pipe_open ? 2 : 1,
                        static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (n < 0) break;
    if (n > 0 && (fds[1].revents & (POLLIN | POLLHUP))) drain();
    if (n > 0 && (fds[0].revents & POLLIN)) exited = true;
  }
  int status = 0;
  retry_eintr(::waitpid, pid, &status, 0);
  drain();
  if (out.output.size() > keep_output) out.output.erase(0, out.output.size() - keep_output);
  if (WIFEXITED(status))
    out.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    out.exit_code = 128 + WTERMSIG(status);
  return out;
}

Result<long long> parse_serving_generation(const std::string& status_json) {
  auto j = nlohmann::json::parse(status_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Error("baton status --json printed no JSON object: '" + last_line(status_json) + "'");
  }
  auto it = j.find("serving_generation");
  if (it == j.end() || !it->is_number_integer()) {
    if (it != j.end() && it->is_null()) return Error("no generation is serving");
    return Error("baton status --json has no integer serving_generation");
  }
  return it->get<long long>();
}

Status check_command_exists(const std::string& command) {
  static constexpr std::string_view kShellSyntax = "|&;<>()$`\\\"'*?[#~=%{}!\n";
  std::istringstream words(command);
  std::string prog;
  words >> prog;
  if (prog.empty()) return Error("the reload command is empty");
  if (command.find_first_of(kShellSyntax) != std::string::npos) return {};
  if (prog.find('/') != std::string::npos) {
    if (::access(prog.c_str(), X_OK) != 0) {
      return Error::from_errno("reload command '" + prog + "' cannot be run");
    }
    return {};
  }
  if (search_path(prog)) return {};
  // Shell builtins and keywords are fine too.
  for (std::string_view builtin : {"kill", "exec", "cd", "true", "false", ":", "eval", "test",
                                   "echo", "sleep", "printf", "command", "if", "for", "while"}) {
    if (prog == builtin) return {};
  }
  return Error("reload command not found: '" + prog + "' is not in PATH");
}

SizedPlan plan_sized_run(int count, double lead_in_s, double first_reload_s, double window_s) {
  SizedPlan p;
  p.spacing_s = std::max(2 * lead_in_s, 2 * (first_reload_s + window_s));
  p.duration_s = p.spacing_s * std::max(1, count);
  return p;
}

Reloader::Reloader(ReloadOptions options, std::function<double()> fraction_done,
                   double planned_duration_s, std::atomic<int64_t>* window_until_ns)
    : options_(std::move(options)),
      fraction_done_(std::move(fraction_done)),
      planned_duration_s_(planned_duration_s),
      window_until_ns_(window_until_ns) {
  records_.resize(static_cast<size_t>(std::max(0, options_.count)));
  for (size_t i = 0; i < records_.size(); ++i) records_[i].index = static_cast<int>(i);
  if (options_.size_to_reloads && !records_.empty()) {
    planned_duration_s_ = 0;  // known once the first reload is done
    records_[0].due_s = std::chrono::duration<double>(options_.lead_in).count();
  } else if (planned_duration_s > 0) {
    plan_evenly(planned_duration_s);
  }
}

void Reloader::plan_evenly(double duration_s) {
  for (auto& r : records_) {
    r.due_s = (static_cast<double>(r.index) + 0.5) * duration_s / options_.count;
  }
  planned_duration_s_.store(duration_s);
}

Reloader::~Reloader() {
  stop();
  join();
}

Result<std::string> Reloader::observe(bool wait_for_answer) {
  if (options_.command.empty()) {
    std::vector<std::string> argv = {options_.baton_path, "status", "--json"};
    if (!options_.control.empty()) {
      argv.emplace_back("--control");
      argv.push_back(options_.control);
    }
    CommandOutcome c = run_command(argv, std::chrono::seconds(10), kKeepStatusOutput);
    if (!c.error.empty()) return Error(c.error);
    if (c.exit_code != 0) {
      return Error(
          fmt::format("baton status failed (exit {}): {}", c.exit_code, last_line(c.output)));
    }
    auto g = parse_serving_generation(c.output);
    if (!g) return g.error();
    return std::to_string(*g);
  }
  if (options_.verify_header.empty()) return std::string();
  // Fresh connection each time, so the answer comes from whoever accepts connections now.
  std::string request = build_request(options_.url, true, {});
  int64_t deadline = now_ns() + options_.verify_timeout.count();
  for (;;) {
    auto r = spot_check(options_.address, request, options_.verify_header, std::chrono::seconds(5));
    if (r) {
      if (r->header_value.empty()) {
        return Error("response has no " + options_.verify_header + " header");
      }
      return r->header_value;
    }
    if (!wait_for_answer || now_ns() >= deadline) return r.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Status Reloader::preflight() {
  if (options_.count <= 0) return {};
  auto v = observe(false);
  if (!v) {
    if (options_.command.empty()) {
      return Error("cannot reload through baton: " + v.error().what() +
                   " (is `baton run` serving? pass --control PATH, or --reload-cmd CMD)");
    }
    return Error("--verify-header " + options_.verify_header + ": " + v.error().what());
  }
  return {};
}

void Reloader::start(int64_t start_ns) {
  start_ns_ = start_ns;
  thread_ = std::thread([this] { run(); });
}

void Reloader::stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  cv_.notify_all();
}

void Reloader::join() {
  if (thread_.joinable()) thread_.join();
}

void Reloader::run() {
  for (auto& r : records_) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (r.due_s >= 0) {
        // By time: sleep until the due time itself (stop() wakes the wait).
        int64_t due_ns = start_ns_ + static_cast<int64_t>(r.due_s * 1e9);
        for (int64_t now = now_ns(); !stop_ && now < due_ns; now = now_ns()) {
          cv_.wait_for(lock, std::chrono::nanoseconds(due_ns - now));
        }
      } else {
        // By requests: how far the run is can only be polled.
        double due_fraction = (static_cast<double>(r.index) + 0.5) / options_.count;
        while (!stop_ && fraction_done_() < due_fraction) {
          cv_.wait_for(lock, std::chrono::milliseconds(5));
        }
      }
      if (stop_) break;
    }
    reload_once(r);
    done_.fetch_add(1);
    if (!r.ok) failed_.fetch_add(1);
    if (options_.size_to_reloads && r.index == 0) {
      double lead_in = r.due_s;
      SizedPlan plan = plan_sized_run(options_.count, lead_in, r.duration_s,
                                      std::chrono::duration<double>(options_.window_after).count());
      plan_evenly(plan.duration_s);
      r.due_s = lead_in;  // the first was due at the lead-in, not where the plan would put it
    }
  }
  for (auto& r : records_) {
    if (!r.ran) r.error = "not run: the load ended first";
  }
  finished_.store(true);
}

void Reloader::reload_once(ReloadTrial& r) {
  r.ran = true;
  auto before = observe(false);
  int64_t t0 = now_ns();
  r.start_s = seconds_since(start_ns_, t0);
  if (r.due_s >= 0) r.late_s = std::max(0.0, r.start_s - r.due_s);
  window_until_ns_->store(INT64_MAX);
  std::vector<std::string> argv;
  if (options_.command.empty()) {
    argv = {options_.baton_path, "reload", "--wait"};
    if (!options_.control.empty()) {
      argv.emplace_back("--control");
      argv.push_back(options_.control);
    }
  } else {
    argv = {"/bin/sh", "-c", options_.command};
  }
  CommandOutcome c = run_command(argv, options_.timeout);
  int64_t t1 = now_ns();
  r.duration_s = static_cast<double>(t1 - t0) / 1e9;
  window_until_ns_->store(t1 + options_.window_after.count());
  if (before) r.before = *before;
  if (!c.error.empty()) {
    r.error = c.error;
  } else if (c.timed_out) {
    r.error = fmt::format("timed out after {:.0f} s and was killed",
                          std::chrono::duration<double>(options_.timeout).count());
  } else if (c.exit_code != 0) {
    std::string line = last_line(c.output);
    r.error = fmt::format("exit status {}{}{}", c.exit_code,
                          c.exit_code == 127 ? " (command not found)" : "",
                          line.empty() ? "" : ": " + line);
  }
  if (!r.error.empty()) return;
  if (!before) {
    r.error = "could not check before the reload: " + before.error().what();
    return;
  }
  if (!options_.command.empty() && options_.verify_header.empty()) {
    r.ok = true;  // nothing to verify with
    return;
  }
  auto after = observe(true);
  if (!options_.command.empty()) {
    // A restart command may return before the old process is gone (kill only sends a signal):
    // keep looking until a different process answers, within the verify timeout.
    int64_t deadline = now_ns() + options_.verify_timeout.count();
    while (after && *after == r.before && now_ns() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      after = observe(true);
    }
  }
  if (!after) {
    r.error = "could not check after the reload: " + after.error().what();
    return;
  }
  r.after = *after;
  if (r.after == r.before) {
    r.error = options_.command.empty()
                  ? "serving generation did not change (" + r.before + ")"
                  : options_.verify_header + " did not change (" + r.before + ")";
    return;
  }
  r.ok = true;
  r.verified = true;
}

}  // namespace baton::soak

#include "supervisor/spawner.h"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "common/path_search.h"
#include "common/syscall.h"

namespace baton {
namespace {

// Writes `value` in decimal into `out` (async-signal-safe; for use between clone and exec).
[[gnu::no_sanitize_address]] void format_pid(char* out, pid_t value) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  while (n > 0) *out++ = digits[--n];
  *out = '\0';
}

}  // namespace

Result<std::string> resolve_command(const std::string& command) {
  auto runnable = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
  };
  if (command.empty()) return Error("the program's name is empty");
  if (command.find('/') != std::string::npos) {
    if (!runnable(command)) {
      return Error(::access(command.c_str(), F_OK) == 0 ? EACCES : ENOENT, command);
    }
    return command;
  }
  if (auto found = search_path(command)) return *found;
  return Error(fmt::format("{}: not found in PATH", command));
}

[[gnu::no_sanitize_address]] void reset_signals_in_child() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

namespace {

// Everything the child needs, prepared by the parent before the clone: the child only reads it
// (the LISTEN_PID digits are its one write, into a buffer made for it).
struct ChildPlan {
  const SpawnRequest* request = nullptr;
  char** argv = nullptr;
  char** envp = nullptr;
  char* listen_pid = nullptr;  // where the child writes its pid, or null
  int exec_fd = -1;            // the child's descriptor to execute, or -1: argv[0]'s path
  bool pipes = false;
  int nfds = 0;
  int out_w = -1, err_w = -1, report_w = -1, devnull = -1;
  pid_t supervisor = -1;
};

// Tells the parent why the child could not exec, and ends the child.
[[gnu::no_sanitize_address, noreturn]] void child_fail(int report_fd, int code) {
  int e = code;
  [[maybe_unused]] auto n = ::write(report_fd, &e, sizeof(e));
  ::_exit(127);
}

// The child's side of spawn_process, from the clone to the exec. It runs on a stack of its own
// but in the supervisor's memory (CLONE_VM), while the supervisor waits (CLONE_VFORK): so it
// writes nothing the supervisor owns, only calls the C library's thin system call wrappers, and
// ends in execve or _exit. Uninstrumented under ASan: its frames live on a stack ASan does not
// know, and end without returning.
// The descriptor limit the apps get: baton's own, before raise_descriptor_limit() raised it.
rlimit g_app_nofile{};
bool g_nofile_raised = false;

[[gnu::no_sanitize_address]] int child_main(void* arg) {
  const ChildPlan& plan = *static_cast<const ChildPlan*>(arg);
  const SpawnRequest& request = *plan.request;
  int report_fd = plan.report_w;
  const int nfds = plan.nfds;
  // A session of its own, not just a process group: setpgid() can only join a group of the
  // caller's session, so no process outside this generation (another generation, or any
  // process of the same uid in baton's session) can join its group and speak for it on the
  // notify socket, where a sender counts for the generation whose group it is in.
  if (::setsid() < 0) child_fail(report_fd, errno);
  // Every signal is blocked here (the parent blocked them before the clone), so no handler of
  // the supervisor's runs in this shared memory; the dispositions are reset, then the mask.
  reset_signals_in_child();
  // Listeners go to 3.. via temporary copies above the target range, so that a listener that
  // already sits in the range is not overwritten before it is moved.
  const int floor = 3 + nfds + 3;  // above the targets and the report pipe
  int temps[kMaxListeners];
  for (int i = 0; i < nfds; ++i) {
    temps[i] = ::fcntl(request.listener_fds[i], F_DUPFD_CLOEXEC, floor);
    if (temps[i] < 0) child_fail(report_fd, errno);
  }
  const int moved_report = ::fcntl(report_fd, F_DUPFD_CLOEXEC, floor);
  if (moved_report < 0) child_fail(report_fd, errno);
  report_fd = moved_report;  // the old number is closed below, with the rest under `floor`
  if (::dup2(plan.devnull, 0) < 0) child_fail(report_fd, errno);
  if (plan.pipes && (::dup2(plan.out_w, 1) < 0 || ::dup2(plan.err_w, 2) < 0))
    child_fail(report_fd, errno);
  if (!plan.pipes && ::dup2(2, 1) < 0)
    child_fail(report_fd, errno);  // fd 2 stays the supervisor's stderr
  for (int i = 0; i < nfds; ++i) {
    if (::dup2(temps[i], 3 + i) < 0)
      child_fail(report_fd, errno);  // dup2 leaves the copy without CLOEXEC
  }
  // Nothing else of the supervisor's crosses exec; the report pipe is CLOEXEC and above.
  for (int fd = 3 + nfds; fd < floor; ++fd) ::close(fd);
  for (int i = 0; i < nfds; ++i) ::close(temps[i]);
  ::close_range(static_cast<unsigned>(floor), ~0U, CLOSE_RANGE_CLOEXEC);
  // The working directory is looked up now, at each spawn: a `current -> releases/N` link
  // flipped since the last generation takes this one to the new release.
  if (!request.working_dir.empty() && ::chdir(request.working_dir.c_str()) != 0)
    child_fail(report_fd, errno);
  if (request.run_as) {
    // Groups first: after setuid the right to change them is gone. Raw system calls: the C
    // library's wrappers would, in a threaded process, change the credentials of every thread
    // of the supervisor, whose memory this child shares; the system calls change this one.
    if (::syscall(SYS_setgroups, request.run_as->groups.size(), request.run_as->groups.data()) !=
            0 ||
        ::syscall(SYS_setgid, request.run_as->gid) != 0 ||
        ::syscall(SYS_setuid, request.run_as->uid) != 0) {
      child_fail(report_fd, errno);
    }
  }
  if (g_nofile_raised) ::setrlimit(RLIMIT_NOFILE, &g_app_nofile);
  // The generation dies with the supervisor (SIGKILL, OOM kill, crash): nobody would drain it,
  // and it would keep the listeners bound, so the next supervisor could not bind them. After the
  // change of user, which clears the setting. The getppid check covers a supervisor that died
  // before the prctl took effect. SIGKILL, not a drain signal: without a supervisor no deadline
  // would ever end a drain. The setting is cleared for the app's own children; those of its
  // process group outlive it only as long as the app lets them (the orphan guard ends them).
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(report_fd, errno);
  if (::getppid() != plan.supervisor) ::_exit(127);
  if (plan.listen_pid != nullptr) format_pid(plan.listen_pid, ::getpid());
  if (plan.exec_fd >= 0) {
    ::execveat(plan.exec_fd, "", plan.argv, plan.envp, AT_EMPTY_PATH);
  } else {
    ::execve(plan.argv[0], plan.argv, plan.envp);
  }
  child_fail(report_fd, errno);
}

}  // namespace

void raise_descriptor_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max) return;
  rlimit raised = r;
  raised.rlim_cur = r.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) return;
  g_app_nofile = r;
  g_nofile_raised = true;
}

void restore_descriptor_limit() {
  if (g_nofile_raised && ::setrlimit(RLIMIT_NOFILE, &g_app_nofile) == 0) g_nofile_raised = false;
}

namespace {

// The child's stack: it needs little (no allocation, a few frames of system call wrappers).
constexpr size_t kChildStack = 64 * 1024;

}  // namespace

Result<SpawnedProcess> spawn_process(const SpawnRequest& request) {
  // Everything is prepared before the clone; the child only does async-signal-safe work.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv = *e;
    std::string key(kv.substr(0, kv.find('=')));
    bool drop = request.env.contains(key);
    for (const auto& u : request.unset_env) drop = drop || u == key;
    if (!drop) env_strings.emplace_back(kv);
  }
  for (const auto& [k, v] : request.env) env_strings.push_back(fmt::format("{}={}", k, v));
  if (request.listen_pid) {
    env_strings.push_back("LISTEN_PID=" + std::string(24, '\0'));  // filled in by the child
  }
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  char* listen_pid =
      request.listen_pid ? envp[envp.size() - 2] + std::strlen("LISTEN_PID=") : nullptr;
  const bool pipes = request.output == SpawnRequest::Output::kPipes;
  std::vector<std::string> args = request.argv;
  std::vector<char*> argvp;
  argvp.reserve(args.size() + 1);
  for (auto& a : args) argvp.push_back(a.data());
  argvp.push_back(nullptr);
  const int nfds = static_cast<int>(request.listener_fds.size());
  if (nfds > kMaxListeners) {
    return Error(fmt::format("{} listeners; at most {} can be passed", nfds, kMaxListeners));
  }

  int out[2], err[2], report[2];
  Fd out_r, out_w, err_r, err_w;
  if (pipes) {
    if (::pipe2(out, O_CLOEXEC) != 0) return Error::from_errno("pipe");
    out_r.reset(out[0]);
    out_w.reset(out[1]);
    if (::pipe2(err, O_CLOEXEC) != 0) return Error::from_errno("pipe");
    err_r.reset(err[0]);
    err_w.reset(err[1]);
  }
  // The child writes its exec errno here; a successful exec closes it (CLOEXEC) unwritten.
  if (::pipe2(report, O_CLOEXEC) != 0) return Error::from_errno("pipe");
  Fd report_r(report[0]), report_w(report[1]);
  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) return Error::from_errno("open /dev/null");

  ChildPlan plan;
  plan.request = &request;
  plan.argv = argvp.data();
  plan.envp = envp.data();
  plan.listen_pid = listen_pid;
  plan.pipes = pipes;
  plan.nfds = nfds;
  for (int i = 0; i < nfds; ++i) {
    if (request.exec_fd >= 0 && request.listener_fds[i] == request.exec_fd) plan.exec_fd = 3 + i;
  }
  if (request.exec_fd >= 0 && plan.exec_fd < 0) {
    return Error(EINVAL, "spawn: the descriptor to execute is not among those passed");
  }
  plan.out_w = out_w.get();
  plan.err_w = err_w.get();
  plan.report_w = report_w.get();
  plan.devnull = devnull.get();
  plan.supervisor = ::getpid();
  // vfork-style (as posix_spawn does, which cannot set the parent-death signal or the user): no
  // copy of the supervisor's page tables and no copy-on-write faults after it, so a spawn costs
  // the same however much memory the supervisor holds. An exec readiness check is spawned every
  // few milliseconds while a generation starts, so this is most of what a check costs baton.
  void* stack = ::mmap(nullptr, kChildStack, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return Error::from_errno("mmap a stack for the child");
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::clone(child_main, static_cast<char*>(stack) + kChildStack,
                            CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kChildStack);  // the child has exec'd or exited: CLONE_VFORK waited for it
  if (pid < 0) return Error(clone_errno, "clone");
  report_w.reset();
  out_w.reset();
  err_w.reset();
  int child_errno = 0;
  ssize_t n = retry_eintr(::read, report_r.get(), &child_errno, sizeof(child_errno));
  if (n == sizeof(child_errno)) {
    int status = 0;
    retry_eintr(::waitpid, pid, &status, 0);
    return Error(child_errno,
                 request.working_dir.empty()
                     ? fmt::format("exec {}", request.argv[0])
                     : fmt::format("exec {} in {}", request.argv[0], request.working_dir));
  }
  if (pipes) {
    ::fcntl(out_r.get(), F_SETFL, O_NONBLOCK);
    ::fcntl(err_r.get(), F_SETFL, O_NONBLOCK);
  }
  return SpawnedProcess{pid, std::move(out_r), std::move(err_r)};
}

}  // namespace baton

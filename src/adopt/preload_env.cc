#include "adopt/preload_env.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#define BATON_EXPORT extern "C" __attribute__((visibility("default")))

namespace baton::adopt {
namespace {

constexpr const char* kVariables[] = {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "BATON_ADOPT",
                                      "BATON_ADOPT_READY"};
constexpr int kVariableCount = sizeof(kVariables) / sizeof(kVariables[0]);
constexpr size_t kPool = 32 * 1024;  // LISTEN_FDNAMES of 128 names of 64 bytes fits with room
constexpr int kMaxExecEnv = 8192;

char g_pool[kPool];
char* g_saved[kVariableCount];  // "NAME=value" in g_pool
int g_saved_count = 0;
pid_t g_adopter = -1;
int g_first_fd = 3;
int g_fd_count = 0;
char* g_exec_env[kMaxExecEnv + kVariableCount + 1];

using ExecveFn = int (*)(const char*, char* const*, char* const*);
std::atomic<ExecveFn> g_execve{nullptr};
std::atomic<ExecveFn> g_execvpe{nullptr};

ExecveFn next(std::atomic<ExecveFn>& slot, const char* name) {
  ExecveFn fn = slot.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = reinterpret_cast<ExecveFn>(dlsym(RTLD_NEXT, name));
    if (fn == nullptr) abort();  // a C library without execve: nothing sensible to do
    slot.store(fn, std::memory_order_release);
  }
  return fn;
}

bool is_ours(const char* entry) {
  for (const char* v : kVariables) {
    size_t n = strlen(v);
    if (strncmp(entry, v, n) == 0 && entry[n] == '=') return true;
  }
  return false;
}

void set_held_cloexec(bool on) {
  for (int fd = g_first_fd; fd < g_first_fd + g_fd_count; ++fd)
    fcntl(fd, F_SETFD, on ? FD_CLOEXEC : 0);
}

// `envp` plus the adoption variables, when the adopting process itself execs; else `envp`.
// Sets *handed_on when the descriptors were made inheritable (to undo if the exec fails).
char* const* for_exec(char* const* envp, bool* handed_on) {
  *handed_on = false;
  if (g_adopter <= 0 || getpid() != g_adopter) return envp;  // a forked child: nothing to hand on
  size_t n = 0;
  size_t k = 0;
  if (envp != nullptr) {
    while (envp[n] != nullptr) ++n;
    if (n > static_cast<size_t>(kMaxExecEnv)) return envp;
    for (size_t i = 0; i < n; ++i) {
      if (!is_ours(envp[i])) g_exec_env[k++] = envp[i];  // baton's values win
    }
  }
  for (int i = 0; i < g_saved_count; ++i) g_exec_env[k++] = g_saved[i];
  g_exec_env[k] = nullptr;
  set_held_cloexec(false);
  *handed_on = true;
  return g_exec_env;
}

int exec_with(std::atomic<ExecveFn>& slot, const char* fn_name, const char* file, char* const* argv,
              char* const* envp) {
  bool handed_on = false;
  char* const* env = for_exec(envp, &handed_on);
  int rc = next(slot, fn_name)(file, argv, env);
  int saved = errno;
  if (handed_on) set_held_cloexec(true);  // still this program: keep them to ourselves again
  errno = saved;
  return rc;
}

}  // namespace

void keep_adoption_to_ourselves(pid_t adopter, int first, int count) {
  g_adopter = adopter;
  g_first_fd = first;
  g_fd_count = count;
  set_held_cloexec(true);
  size_t need = 0;
  for (const char* v : kVariables) {
    const char* value = getenv(v);
    if (value != nullptr) need += strlen(v) + 1 + strlen(value) + 1;
  }
  if (need > kPool) return;  // cannot keep them to hand on: leave the environment as it is
  size_t used = 0;
  for (const char* v : kVariables) {
    const char* value = getenv(v);
    if (value == nullptr) continue;
    char* entry = g_pool + used;
    size_t nl = strlen(v), vl = strlen(value);
    memcpy(entry, v, nl);
    entry[nl] = '=';
    memcpy(entry + nl + 1, value, vl + 1);
    used += nl + 1 + vl + 1;
    g_saved[g_saved_count++] = entry;
    unsetenv(v);
  }
}

}  // namespace baton::adopt

using baton::adopt::exec_with;
using baton::adopt::g_execve;
using baton::adopt::g_execvpe;

BATON_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) {
  return exec_with(g_execve, "execve", path, argv, envp);
}

BATON_EXPORT int execv(const char* path, char* const argv[]) {
  return exec_with(g_execve, "execve", path, argv, environ);
}

BATON_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) {
  return exec_with(g_execvpe, "execvpe", file, argv, envp);
}

BATON_EXPORT int execvp(const char* file, char* const argv[]) {
  return exec_with(g_execvpe, "execvpe", file, argv, environ);
}

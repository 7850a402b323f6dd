// baton-adopt-launch: starts a program the way `baton run --adopt` does, for tests of the
// adoption library that must not depend on the supervisor.
//
//   baton-adopt-launch [--fd N[=NAME]]... [--preload LIBRARY] [--listen-fds COUNT] -- PROGRAM ...
//
// --listen-fds sets LISTEN_FDS to COUNT whatever the descriptors (a hostile or broken launcher).
// The inherited descriptors N (in order) become fds 3, 4, ... of PROGRAM, with LISTEN_FDS,
// LISTEN_PID (this pid, which exec keeps), LISTEN_FDNAMES and BATON_ADOPT=1 set, and LIBRARY
// prepended to LD_PRELOAD. Everything else (NOTIFY_SOCKET...) comes from the environment.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  std::vector<int> fds;
  std::string names;
  std::string preload;
  std::string listen_fds;
  int i = 1;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--fd" && i + 1 < argc) {
      std::string spec = argv[++i];
      auto eq = spec.find('=');
      fds.push_back(std::atoi(spec.substr(0, eq).c_str()));
      if (!names.empty() || fds.size() > 1) names += ":";
      names += eq == std::string::npos ? "" : spec.substr(eq + 1);
    } else if (arg == "--listen-fds" && i + 1 < argc) {
      listen_fds = argv[++i];
    } else if (arg == "--preload" && i + 1 < argc) {
      preload = argv[++i];
    } else {
      std::fprintf(stderr, "baton-adopt-launch: unknown argument '%s'\n", arg.c_str());
      return 2;
    }
  }
  if (i >= argc) {
    std::fprintf(stderr,
                 "usage: baton-adopt-launch [--fd N[=NAME]]... [--preload LIB] -- PROGRAM ...\n");
    return 2;
  }
  // Move out of the way first, so that e.g. fds {4, 3} do not overwrite each other.
  std::vector<int> moved;
  for (int fd : fds) {
    int m = fcntl(fd, F_DUPFD_CLOEXEC, 100);
    if (m < 0) {
      std::fprintf(stderr, "baton-adopt-launch: fd %d: %s\n", fd, std::strerror(errno));
      return 2;
    }
    moved.push_back(m);
  }
  for (size_t k = 0; k < moved.size(); ++k) {
    if (dup2(moved[k], 3 + static_cast<int>(k)) < 0) return 2;  // dup2 clears CLOEXEC
  }
  setenv("LISTEN_FDS", listen_fds.empty() ? std::to_string(fds.size()).c_str() : listen_fds.c_str(),
         1);
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDNAMES", names.c_str(), 1);
  setenv("BATON_ADOPT", "1", 1);
  if (!preload.empty()) {
    const char* old = getenv("LD_PRELOAD");
    std::string value = preload + (old != nullptr && *old != '\0' ? std::string(":") + old : "");
    setenv("LD_PRELOAD", value.c_str(), 1);
  }
  execvp(argv[i], argv + i);
  std::fprintf(stderr, "baton-adopt-launch: exec %s: %s\n", argv[i], std::strerror(errno));
  return 127;
}

// check.h: before starting an app with --adopt, can the adoption library load into it at all?
//
// LD_PRELOAD works only through the dynamic loader: a statically linked program (Go binaries
// usually are) never loads libbaton_adopt.so, a setuid/setgid program ignores it (secure-execution
// mode), and a 32-bit program cannot load the 64-bit library. This check catches those before the
// first generation starts, so `baton run --adopt` can say why instead of timing out on readiness.
// It follows `#!` interpreters (and `/usr/bin/env NAME`) a few levels deep. Programs that call the
// kernel without libc (raw syscalls, io_uring) cannot be detected here; the supervisor learns of
// them from the missing BATON_ADOPTED notification (see docs/adoption.md).
#pragma once

#include <string>

#include "baton/result.h"

namespace baton::adopt {

// Ok when `program` (a path, or a name looked up in $PATH) is a dynamically linked 64-bit ELF
// program, or a script whose interpreter is one. The error reads like
//   "/usr/local/bin/app is statically linked: LD_PRELOAD cannot load into it, so --adopt cannot
//    hand it baton's sockets (use a dynamically linked build, or make the app take LISTEN_FDS)".
Status check_adoptable(const std::string& program);

// Ok when `library` is a readable file (the libbaton_adopt.so the supervisor will preload).
Status check_adopt_library(const std::string& library);

}  // namespace baton::adopt

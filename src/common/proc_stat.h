// proc_stat.h: facts about another process from /proc/<pid>/stat.
#pragma once

#include <sys/types.h>

#include <optional>

namespace baton {

// The process group of `pid`; nullopt when it is gone or its stat cannot be read. The command
// name in the file may hold any byte, ')' and spaces too: the fields are read after its last ')'.
std::optional<pid_t> process_group_of(pid_t pid);

}  // namespace baton

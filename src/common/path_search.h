// path_search.h: finding a command in PATH, the way execvp(3) does.
#pragma once

#include <optional>
#include <string>

namespace baton {

// The PATH used when the environment has none.
constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

// The first "DIR/name" over the directories of $PATH (kDefaultPath when unset; an empty entry is
// the current directory) that is a regular file this process may execute; nullopt when none.
// `name` holds no '/': a name with one is a path, used as it is, and never searched.
std::optional<std::string> search_path(const std::string& name);

}  // namespace baton

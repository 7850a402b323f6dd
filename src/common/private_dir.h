// private_dir.h: a directory only this user can change, and files opened inside it without
// following links.
//
// The supervisor keeps its lock file and its control and notify sockets in one directory (the
// parent of --control; by default /tmp/baton-UID or $XDG_RUNTIME_DIR/baton). Whoever controls
// that directory controls what those names point to: another user who creates /tmp/baton-UID
// first, with a symlink for the lock file, makes the supervisor write into any file the victim
// can write, and can bind a fake control socket there. So the directory is created with mode
// 0700 when missing, then checked, whoever created it: a real directory (not a symlink), owned
// by the effective uid, not writable by group or others (write permission on a directory is what
// lets a user add, remove or rename its entries; a 0755 directory such as /run/app is fine). The
// check is made on the opened directory (fstat after open with O_NOFOLLOW | O_DIRECTORY), and files
// inside are then opened relative to it with O_NOFOLLOW, so no rename or symlink swapped in between
// is followed.
#pragma once

#include <sys/types.h>

#include <string>

#include "baton/fd.h"
#include "baton/result.h"

namespace baton {

// Creates `dir` (mode 0700; missing parents too, also 0700) unless it exists, then opens and
// checks it as above. Errors read like "control directory /tmp/baton-0 is owned by uid 1000, not
// by uid 0 (remove it, or pass another --control)".
Result<Fd> open_private_dir(const std::string& dir);

// Opens `name` (one path component) inside the directory `dir_fd` with O_NOFOLLOW | O_CLOEXEC
// and `flags`; a symlink there is an error (ELOOP), not followed.
Result<Fd> open_in_dir(int dir_fd, const std::string& name, int flags, mode_t mode = 0600);

}  // namespace baton

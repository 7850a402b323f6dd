// control_lock.h: one supervisor per control path.
//
// The lock file (<control>.lock) sits in the control socket's directory, which must be ours alone
// (common/private_dir.h): whoever can change its entries could point the lock at any file we can
// write, or answer for us on the control socket. The lock is held for the supervisor's life and
// released by the kernel however it ends, so a crashed supervisor never blocks the next one; the
// file holds the holder's pid, for the error the next one gives.
#pragma once

#include <string>

#include "baton/fd.h"
#include "baton/result.h"

namespace baton {

// The locked file, to keep open; an error saying who holds it, or what is wrong with the path.
Result<Fd> lock_control_path(const std::string& control_path);

}  // namespace baton

// baton/baton.h: the client library of baton in one include. See baton/instance.h to start.
#pragma once

#include "baton/fd.h"
#include "baton/instance.h"
#include "baton/notify.h"
#include "baton/result.h"

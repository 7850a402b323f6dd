// process_stats.h: the supervisor process's own figures, as the Prometheus conventions name them
// (process_start_time_seconds, process_cpu_seconds_total, process_resident_memory_bytes,
// process_open_fds). Read from /proc/self; a figure that could not be read is absent, not 0.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace baton {

struct ProcessStats {
  std::optional<double> start_time_seconds;  // since the Unix epoch (kept across an exec upgrade)
  std::optional<double> cpu_seconds;         // user + system time of this process
  std::optional<std::uint64_t> resident_bytes;
  std::optional<std::uint64_t> open_fds;
};

// Fills start time, CPU and resident memory from the text of /proc/self/stat. `boot_time` is
// /proc/stat's btime (seconds since the epoch), `ticks_per_second` sysconf(_SC_CLK_TCK),
// `page_size` sysconf(_SC_PAGESIZE). Text that does not parse leaves the fields absent. No I/O.
ProcessStats parse_proc_stat(std::string_view stat, std::optional<std::int64_t> boot_time,
                             long ticks_per_second, long page_size);

// The figures of the calling process now: /proc/self/stat, /proc/stat and /proc/self/fd.
ProcessStats read_process_stats();

}  // namespace baton

// The resource limits that the kernel holds this process to: its cgroup's memory limit and CPU
// quota (cgroup v1 and v2, as container engines and systemd set them) and the CPUs it may run
// on. A process that sizes itself from the machine instead is killed (memory) or throttled (CPU)
// inside a container. Shared by bufpool-server and bufpool-bench; not part of the installed
// library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace bufpool {

struct CgroupLimits {
  /// The lowest memory limit (v1 memory.limit_in_bytes, v2 memory.max or memory.high) of this
  /// process's cgroup and every ancestor that is visible; nullopt: none.
  std::optional<std::uint64_t> memory;
  std::string memory_file;  // the file that set it, as this process sees it
  /// The lowest CPU quota over its period (v1 cpu.cfs_quota_us / cpu.cfs_period_us, v2 cpu.max),
  /// in CPUs: 1.5 means one and a half cores' time per period; nullopt: none.
  std::optional<double> cpus;
  std::string cpu_file;
};

/// Reads the limits from /proc/self/cgroup, /proc/self/mountinfo and the cgroup files they lead
/// to. Every path is taken below `root` ("" on a real system; tests lay out a fake tree). Files
/// that are missing or unreadable count as no limit: the answer is never an error.
CgroupLimits read_cgroup_limits(const std::string& root = "");

/// The CPUs this process may run on (sched_getaffinity: taskset, cpusets); at least 1.
unsigned affinity_cpus() noexcept;

}  // namespace bufpool

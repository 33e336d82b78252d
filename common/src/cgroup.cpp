#include <bufpool/app/cgroup.hpp>
#include <bufpool/app/units.hpp>

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

namespace bufpool {
namespace {

// A limit at or above this is "unlimited": cgroup v1 writes PAGE_COUNTER_MAX pages
// (9223372036854771712 bytes with 4 KiB pages) rather than a word.
constexpr std::uint64_t unlimited = std::uint64_t{1} << 62;

std::optional<std::string> read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

// One cgroup hierarchy as this process sees it: where it is mounted, which part of the whole
// tree the mount shows (a container sees only its own subtree), and this process's place in it.
struct Hierarchy {
  std::string mount_point;  // "/sys/fs/cgroup/memory"
  std::string mount_root;   // "/" or, in a container, "/docker/abc..."
  std::string path;         // from /proc/self/cgroup
};

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  for (std::size_t start = 0;;) {
    const auto end = s.find(sep, start);
    out.emplace_back(s.substr(start, end == std::string_view::npos ? s.npos : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

bool has_controller(const std::string& list, std::string_view controller) {
  for (const auto& c : split(list, ','))
    if (c == controller) return true;
  return false;
}

// The hierarchy that holds `controller` (v1), or the unified one (v2) when controller is empty.
std::optional<Hierarchy> find_hierarchy(const std::string& root, std::string_view controller) {
  Hierarchy h;
  const bool v2 = controller.empty();
  {
    std::ifstream in(root + "/proc/self/cgroup");
    bool found = false;
    for (std::string line; std::getline(in, line);) {
      // "4:memory:/path", "2:cpu,cpuacct:/path", "0::/path" (v2)
      const auto a = line.find(':');
      const auto b = a == std::string::npos ? a : line.find(':', a + 1);
      if (b == std::string::npos) continue;
      const std::string controllers = line.substr(a + 1, b - a - 1);
      if (v2 ? line.compare(0, a, "0") == 0 && controllers.empty()
             : has_controller(controllers, controller)) {
        h.path = line.substr(b + 1);
        found = true;
        break;
      }
    }
    if (!found) return std::nullopt;
  }
  std::ifstream in(root + "/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS"
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream left(line.substr(0, dash)), right(line.substr(dash + 3));
    std::string id, parent, dev, mount_root, mount_point, fstype, source, options;
    left >> id >> parent >> dev >> mount_root >> mount_point;
    right >> fstype >> source >> options;
    if (v2 ? fstype != "cgroup2" : fstype != "cgroup" || !has_controller(options, controller))
      continue;
    h.mount_point = mount_point;
    h.mount_root = mount_root;
    return h;
  }
  return std::nullopt;
}

// The directories from this process's cgroup up to the top of what the mount shows, nearest
// first. A limit on any of them holds this process.
std::vector<std::string> cgroup_dirs(const std::string& root, const Hierarchy& h) {
  std::string_view rel = h.path;
  // In a container the mount shows the subtree at mount_root, and /proc/self/cgroup gives the
  // whole path (or, with a cgroup namespace, one relative to the namespace: "/").
  if (h.mount_root != "/") {
    const bool inside = rel.starts_with(h.mount_root) &&
                        (rel.size() == h.mount_root.size() || rel[h.mount_root.size()] == '/');
    if (inside)
      rel.remove_prefix(h.mount_root.size());
    else
      rel = {};  // a path outside what the mount shows: only the mount's own directory is ours
  }
  std::vector<std::string> dirs;
  for (;;) {
    while (!rel.empty() && rel.back() == '/')
      rel.remove_suffix(1);
    std::string dir = root;
    dir.append(h.mount_point).append(rel);
    dirs.push_back(std::move(dir));
    if (rel.empty()) return dirs;
    const auto slash = rel.rfind('/');  // "/a/b" -> "/a" -> ""
    rel = slash == std::string_view::npos ? std::string_view{} : rel.substr(0, slash);
  }
}

// Keeps the lowest limit seen, and the file it came from as this process sees it (without the
// test's root).
template <typename T>
void take_lower(std::optional<T>& limit, std::string& file, T value, const std::string& root,
                const std::string& path) {
  if (!limit || value < *limit) {
    limit = value;
    file = path.substr(root.size());
  }
}

// A whole number of bytes or microseconds; "max" (v2) and v1's "unlimited" are no limit.
std::optional<std::uint64_t> read_number(const std::string& path) {
  auto line = read_line(path);
  if (!line) return std::nullopt;
  auto n = parse_count(trim(*line));
  if (n && *n >= unlimited) return std::nullopt;
  return n;
}

// A quota of `quota` microseconds per `period` (v1's -1 and v2's "max" are not numbers).
void take_quota(CgroupLimits& out, std::optional<std::uint64_t> quota,
                std::optional<std::uint64_t> period, const std::string& root,
                const std::string& path) {
  if (quota && period && *quota > 0 && *period > 0)
    take_lower(out.cpus, out.cpu_file, static_cast<double>(*quota) / static_cast<double>(*period),
               root, path);
}

}  // namespace

CgroupLimits read_cgroup_limits(const std::string& root) {
  CgroupLimits out;
  if (auto h = find_hierarchy(root, "memory")) {
    for (const auto& dir : cgroup_dirs(root, *h)) {
      const std::string file = dir + "/memory.limit_in_bytes";
      if (auto v = read_number(file)) take_lower(out.memory, out.memory_file, *v, root, file);
    }
  }
  if (auto h = find_hierarchy(root, "cpu")) {
    for (const auto& dir : cgroup_dirs(root, *h))
      take_quota(out, read_number(dir + "/cpu.cfs_quota_us"),
                 read_number(dir + "/cpu.cfs_period_us"), root, dir + "/cpu.cfs_quota_us");
  }
  if (auto h = find_hierarchy(root, "")) {
    for (const auto& dir : cgroup_dirs(root, *h)) {
      for (const char* name : {"/memory.max", "/memory.high"})
        if (auto v = read_number(dir + name))
          take_lower(out.memory, out.memory_file, *v, root, dir + name);
      // "max 100000" or "150000 100000"
      if (auto line = read_line(dir + "/cpu.max")) {
        const auto fields = split(trim(*line), ' ');
        if (fields.size() == 2)
          take_quota(out, parse_count(fields[0]), parse_count(fields[1]), root, dir + "/cpu.max");
      }
    }
  }
  return out;
}

unsigned affinity_cpus() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace bufpool

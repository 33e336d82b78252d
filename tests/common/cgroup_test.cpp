// read_cgroup_limits over fake /proc and /sys trees laid out as the kernel shows them: cgroup v1
// on a host and in a container (the mount shows only the container's subtree), cgroup v2 with a
// namespace and with a limit on an ancestor, the hybrid layout of this machine, and "no limit".
#include <bufpool/app/cgroup.hpp>

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace bufpool {
namespace {

namespace fs = std::filesystem;

class FakeRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("bufpool-cgroup-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& path, const std::string& text) {
    const fs::path p = root_ / path.substr(1);
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  CgroupLimits read() { return read_cgroup_limits(root_.string()); }
  fs::path root_;
};

// A v1 mountinfo line for a controller, and the v2 one.
std::string v1_mount(const std::string& controllers, const std::string& root = "/") {
  return "32 31 0:29 " + root + " /sys/fs/cgroup/" + controllers +
         " rw,relatime shared:9 - cgroup cgroup rw," + controllers + "\n";
}
std::string v2_mount(const std::string& point = "/sys/fs/cgroup", const std::string& root = "/") {
  return "41 31 0:38 " + root + " " + point + " rw,relatime - cgroup2 cgroup2 rw\n";
}

TEST_F(FakeRoot, NothingToReadIsNoLimit) {
  const auto l = read();
  EXPECT_FALSE(l.memory);
  EXPECT_FALSE(l.cpus);
}

TEST_F(FakeRoot, V1OnAHostWalksUpToTheLowestLimit) {
  // systemd's layout: the service's own cgroup has no memory limit, its slice has one.
  write("/proc/self/cgroup", "4:memory:/system.slice/bufpool.service\n2:cpu,cpuacct:/x/y\n");
  write("/proc/self/mountinfo", v1_mount("memory") + v1_mount("cpu,cpuacct"));
  write("/sys/fs/cgroup/memory/system.slice/bufpool.service/memory.limit_in_bytes",
        "9223372036854771712\n");  // "unlimited"
  write("/sys/fs/cgroup/memory/system.slice/memory.limit_in_bytes", "314572800\n");
  write("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  write("/sys/fs/cgroup/cpu,cpuacct/x/y/cpu.cfs_quota_us", "-1\n");
  write("/sys/fs/cgroup/cpu,cpuacct/x/y/cpu.cfs_period_us", "100000\n");
  write("/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_quota_us", "150000\n");
  write("/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_period_us", "100000\n");
  const auto l = read();
  ASSERT_TRUE(l.memory);
  EXPECT_EQ(*l.memory, 314572800u);
  EXPECT_EQ(l.memory_file, "/sys/fs/cgroup/memory/system.slice/memory.limit_in_bytes");
  ASSERT_TRUE(l.cpus);
  EXPECT_DOUBLE_EQ(*l.cpus, 1.5);
  EXPECT_EQ(l.cpu_file, "/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_quota_us");
}

TEST_F(FakeRoot, V1InAContainerSeesOnlyItsSubtree) {
  // runc bind-mounts the container's own cgroup directory: the mount's root is its path.
  const std::string id = "/libpod_parent/libpod-0123abcd";
  write("/proc/self/cgroup", "4:memory:" + id + "\n1:cpu:" + id + "\n0::/\n");
  write("/proc/self/mountinfo",
        v2_mount("/sys/fs/cgroup/unified") + v1_mount("memory", id) + v1_mount("cpu", id));
  write("/sys/fs/cgroup/memory/memory.limit_in_bytes", "314572800\n");
  write("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "50000\n");
  write("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
  const auto l = read();
  ASSERT_TRUE(l.memory);
  EXPECT_EQ(*l.memory, 314572800u);
  EXPECT_EQ(l.memory_file, "/sys/fs/cgroup/memory/memory.limit_in_bytes");
  ASSERT_TRUE(l.cpus);
  EXPECT_DOUBLE_EQ(*l.cpus, 0.5);
}

TEST_F(FakeRoot, V2WithANamespaceAndWithALimitOnAnAncestor) {
  write("/proc/self/cgroup", "0::/\n");
  write("/proc/self/mountinfo", v2_mount());
  write("/sys/fs/cgroup/memory.max", "268435456\n");
  write("/sys/fs/cgroup/memory.high", "max\n");
  write("/sys/fs/cgroup/cpu.max", "200000 100000\n");
  auto l = read();
  ASSERT_TRUE(l.memory);
  EXPECT_EQ(*l.memory, 268435456u);
  EXPECT_EQ(l.memory_file, "/sys/fs/cgroup/memory.max");
  ASSERT_TRUE(l.cpus);
  EXPECT_DOUBLE_EQ(*l.cpus, 2.0);

  // Without a namespace: the pod's limit is on the parent, memory.high below memory.max.
  fs::remove_all(root_);
  write("/proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
  write("/proc/self/mountinfo", v2_mount());
  write("/sys/fs/cgroup/kubepods/pod1/ctr/memory.max", "max\n");
  write("/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "max 100000\n");
  write("/sys/fs/cgroup/kubepods/pod1/memory.max", "536870912\n");
  write("/sys/fs/cgroup/kubepods/pod1/memory.high", "402653184\n");
  write("/sys/fs/cgroup/kubepods/pod1/cpu.max", "25000 100000\n");
  l = read();
  ASSERT_TRUE(l.memory);
  EXPECT_EQ(*l.memory, 402653184u);
  EXPECT_EQ(l.memory_file, "/sys/fs/cgroup/kubepods/pod1/memory.high");
  ASSERT_TRUE(l.cpus);
  EXPECT_DOUBLE_EQ(*l.cpus, 0.25);
}

TEST_F(FakeRoot, AMountRootThatIsOnlyAPrefixIsNotOurs) {
  // "/docker" is not an ancestor of "/dockerx/a": only the mount's own directory is read.
  write("/proc/self/cgroup", "4:memory:/dockerx/a\n");
  write("/proc/self/mountinfo", v1_mount("memory", "/docker"));
  write("/sys/fs/cgroup/memory/x/a/memory.limit_in_bytes", "1048576\n");
  write("/sys/fs/cgroup/memory/memory.limit_in_bytes", "2097152\n");
  const auto l = read();
  ASSERT_TRUE(l.memory);
  EXPECT_EQ(*l.memory, 2097152u);
}

// taskset's view: the CPUs this thread may run on, not the machine's.
TEST(Cgroup, AffinityCountsTheCpusThisProcessMayUse) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  EXPECT_EQ(affinity_cpus(), static_cast<unsigned>(CPU_COUNT(&all)));
  int first = 0;
  while (!CPU_ISSET(first, &all))
    ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  EXPECT_EQ(affinity_cpus(), 1u);
  ASSERT_EQ(sched_setaffinity(0, sizeof all, &all), 0);
}

}  // namespace
}  // namespace bufpool

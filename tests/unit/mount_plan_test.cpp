// The mount plan, built without spawning anything: what a RootFs turns into.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <string>
#include <vector>

#include <hutch/detail/mount_plan.hpp>

using hutch::Namespace;
using hutch::Namespaces;
using hutch::RootFs;
using hutch::Standard;
using hutch::detail::Layout;
using hutch::detail::MountStep;
using Kind = hutch::detail::MountStep::Kind;

namespace {

class Snapshot {
 public:
  Snapshot() {
    char pattern[] = "/tmp/hutch-unit-XXXXXX";
    path_ = ::mkdtemp(pattern);
    std::filesystem::create_directories(path_ + "/lower");
    std::filesystem::create_directories(path_ + "/upper-layer");
  }
  ~Snapshot() { std::filesystem::remove_all(path_); }
  std::string lower() const { return std::filesystem::canonical(path_ + "/lower"); }
  std::string layer2() const { return std::filesystem::canonical(path_ + "/upper-layer"); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Planned {
  std::deque<std::string> strings;
  std::vector<MountStep> steps;
  hutch::result<const char*> root = hutch::success();
};

Planned plan(const RootFs& fs, Namespaces ns = Namespaces::all(), const Layout* layout = nullptr,
             const std::string& scratch = "/scratch") {
  Planned p;
  hutch::detail::RootFsPlanner planner{fs.spec(), layout, ns, p.strings, p.steps};
  p.root = planner.plan(scratch);
  return p;
}

std::string str(const char* s) {
  return s ? s : "";
}

const MountStep* find(const Planned& p, Kind kind, const std::string& target) {
  for (const auto& s : p.steps) {
    if (s.kind == kind && str(s.target) == target) return &s;
  }
  return nullptr;
}

std::size_t index_of(const Planned& p, Kind kind, const std::string& target = "") {
  for (std::size_t i = 0; i < p.steps.size(); ++i) {
    if (p.steps[i].kind == kind && (target.empty() || str(p.steps[i].target) == target)) return i;
  }
  return p.steps.size();
}

}  // namespace

TEST(MountPlan, ADirectoryIsBoundInPlaceAndPivotedIntoLast) {
  Snapshot snap;
  auto p = plan(RootFs::directory(snap.lower()));
  ASSERT_TRUE(p.root) << p.root.error().message();
  EXPECT_EQ(str(*p.root), snap.lower());
  EXPECT_EQ(p.steps.front().kind, Kind::make_private);
  const MountStep* bind = find(p, Kind::bind, snap.lower());
  ASSERT_NE(bind, nullptr);
  EXPECT_EQ(str(bind->source), snap.lower());
  EXPECT_TRUE(bind->flags & MS_REC);
  EXPECT_EQ(p.steps.back().kind, Kind::pivot_root);
  EXPECT_TRUE(p.steps.back().in_root);
}

TEST(MountPlan, AnOverlayStacksTheLayersTopFirstOnAPrivateTmpfs) {
  Snapshot snap;
  auto p = plan(RootFs::layers({snap.lower(), snap.layer2()}));
  ASSERT_TRUE(p.root) << p.root.error().message();
  EXPECT_EQ(str(*p.root), "/scratch/root");
  const MountStep* tmpfs = find(p, Kind::mount, "/scratch");
  ASSERT_NE(tmpfs, nullptr);
  EXPECT_EQ(str(tmpfs->fstype), "tmpfs");
  for (const char* dir : {"/scratch/upper", "/scratch/work", "/scratch/root"}) {
    EXPECT_NE(find(p, Kind::mkdir, dir), nullptr) << dir;
  }
  const MountStep* overlay = find(p, Kind::mount, "/scratch/root");
  ASSERT_NE(overlay, nullptr);
  EXPECT_EQ(str(overlay->data), "lowerdir=" + snap.layer2() + ":" + snap.lower() +
                                    ",upperdir=/scratch/upper,workdir=/scratch/work,userxattr");
  // Without a user namespace the host's trusted.* xattrs are read: no userxattr.
  auto privileged = plan(RootFs::layers({snap.lower(), snap.layer2()}),
                         Namespaces::all().without(Namespace::user));
  ASSERT_TRUE(privileged.root);
  EXPECT_EQ(str(find(privileged, Kind::mount, "/scratch/root")->data).find("userxattr"),
            std::string::npos);
}

TEST(MountPlan, ANamedScratchDirectoryGetsNoTmpfsOfItsOwn) {
  Snapshot snap;
  auto p = plan(RootFs::directory(snap.lower()).overlay(snap.path(), true));
  ASSERT_TRUE(p.root);
  EXPECT_EQ(find(p, Kind::mount, "/scratch"), nullptr);
  EXPECT_NE(find(p, Kind::mount, "/scratch/root"), nullptr);
}

TEST(MountPlan, ProcDevAndSysAreTheContainersOwnWithItsNamespaces) {
  Snapshot snap;
  auto p = plan(RootFs::directory(snap.lower()));
  ASSERT_TRUE(p.root);
  const MountStep* proc = find(p, Kind::mount, "/proc");
  ASSERT_NE(proc, nullptr);
  EXPECT_EQ(str(proc->fstype), "proc");
  EXPECT_TRUE(proc->in_root && proc->create);
  const MountStep* sys = find(p, Kind::mount, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_EQ(str(sys->fstype), "sysfs");
  EXPECT_TRUE(sys->flags & MS_RDONLY);
  EXPECT_TRUE(sys->network_sysfs) << "the step a sysfs made ahead with its network replaces";
  EXPECT_NE(find(p, Kind::mount, "/dev"), nullptr);
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
    const MountStep* bind = find(p, Kind::bind, node);
    ASSERT_NE(bind, nullptr) << node;
    EXPECT_TRUE(bind->here && bind->create_file);
    EXPECT_EQ(str(bind->source), std::string("/dev/") + node);
  }
  EXPECT_NE(find(p, Kind::mount, "mqueue"), nullptr) << "an ipc namespace gets its mqueue";
}

TEST(MountPlan, WithoutThoseNamespacesTheHostsAreBound) {
  Snapshot snap;
  const auto ns =
      Namespaces::all().without(Namespace::pid).without(Namespace::net).without(Namespace::ipc);
  auto p = plan(RootFs::directory(snap.lower()), ns);
  ASSERT_TRUE(p.root);
  const MountStep* proc = find(p, Kind::bind, "/proc");
  ASSERT_NE(proc, nullptr);
  EXPECT_EQ(str(proc->source), "/proc");
  const MountStep* sys = find(p, Kind::bind, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_TRUE(sys->flags & MS_RDONLY) << "read-only with every submount";
  EXPECT_FALSE(sys->network_sysfs);
  EXPECT_EQ(find(p, Kind::mount, "mqueue"), nullptr) << "the host's queues stay out";
}

TEST(MountPlan, MaskedAndReadOnlyPathsAreHereStepsUnderTheContainersOwnProcAndSys) {
  Snapshot snap;
  auto p = plan(RootFs::directory(snap.lower()));
  ASSERT_TRUE(p.root);
  for (const char* name : {"kcore", "keys", "timer_list", "sched_debug"}) {
    const MountStep* m = find(p, Kind::mask, name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_TRUE(m->here && m->optional);
  }
  EXPECT_NE(find(p, Kind::mask, "firmware"), nullptr);
  for (const char* name : {"sys", "sysrq-trigger", "irq", "bus", "fs"}) {
    EXPECT_NE(find(p, Kind::readonly, name), nullptr) << name;
  }
  // A user mount under /proc means the entries are no longer only the kernel's.
  auto covered = plan(RootFs::directory(snap.lower()).tmpfs("/proc/x", 4096));
  ASSERT_TRUE(covered.root);
  const MountStep* kcore = find(covered, Kind::mask, "/proc/kcore");
  ASSERT_NE(kcore, nullptr);
  EXPECT_TRUE(kcore->in_root && !kcore->here);
  // Turned off, they are gone.
  auto bare = plan(RootFs::directory(snap.lower())
                       .without(Standard::masked_paths)
                       .without(Standard::readonly_paths));
  ASSERT_TRUE(bare.root);
  EXPECT_EQ(index_of(bare, Kind::mask), bare.steps.size());
  EXPECT_EQ(index_of(bare, Kind::readonly), bare.steps.size());
}

TEST(MountPlan, BindsAndTmpfsMountsResolveInsideTheRoot) {
  Snapshot snap;
  const std::string file = snap.path() + "/file";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    std::fclose(f);
  }
  auto p = plan(RootFs::directory(snap.lower())
                    .bind(snap.path(), "/data", hutch::read_only)
                    .bind(file, "/etc/one")
                    .tmpfs("/tmp", 1 << 20, 0700));
  ASSERT_TRUE(p.root) << p.root.error().message();
  const MountStep* data = find(p, Kind::bind, "/data");
  ASSERT_NE(data, nullptr);
  EXPECT_TRUE(data->in_root && data->create && !data->create_file);
  EXPECT_TRUE(data->flags & MS_RDONLY);
  const MountStep* one = find(p, Kind::bind, "/etc/one");
  ASSERT_NE(one, nullptr);
  EXPECT_TRUE(one->create_file) << "a file's mount point is a file";
  EXPECT_FALSE(one->flags & MS_RDONLY);
  const MountStep* tmp = find(p, Kind::mount, "/tmp");
  ASSERT_NE(tmp, nullptr);
  EXPECT_EQ(str(tmp->data), "size=1048576,mode=700");
}

TEST(MountPlan, ReadOnlyRootIsRemountedBeforeTheCgroupNamespaceIsEntered) {
  Snapshot snap;
  auto p = plan(RootFs::directory(snap.lower()).read_only());
  ASSERT_TRUE(p.root);
  const std::size_t remount = index_of(p, Kind::remount, "/");
  const std::size_t cgroup = index_of(p, Kind::enter_cgroup);
  const std::size_t pivot = index_of(p, Kind::pivot_root);
  EXPECT_LT(remount, cgroup);
  EXPECT_LT(cgroup, pivot);
  EXPECT_EQ(p.steps[remount].flags & MS_RDONLY, static_cast<unsigned long>(MS_RDONLY));
}

TEST(MountPlan, CgroupMountsFollowTheHostsLayout) {
  Snapshot snap;
  Layout v2{hutch::CGroupLayout::unified, {{"/sys/fs/cgroup", {"memory", "pids"}, "/", true}}};
  auto unified = plan(RootFs::directory(snap.lower()), Namespaces::all(), &v2);
  ASSERT_TRUE(unified.root);
  const MountStep* cgroup2 = find(unified, Kind::mount, "/sys/fs/cgroup");
  ASSERT_NE(cgroup2, nullptr);
  EXPECT_EQ(str(cgroup2->fstype), "cgroup2");
  EXPECT_TRUE(cgroup2->flags & MS_RDONLY);
  EXPECT_GT(index_of(unified, Kind::mount, "/sys/fs/cgroup"),
            index_of(unified, Kind::enter_cgroup));

  Layout v1{hutch::CGroupLayout::hybrid,
            {{"/sys/fs/cgroup/memory", {"memory"}, "/", false},
             {"/sys/fs/cgroup/cpu,cpuacct", {"cpu", "cpuacct"}, "/", false}}};
  auto hybrid = plan(RootFs::directory(snap.lower()), Namespaces::all(), &v1);
  ASSERT_TRUE(hybrid.root);
  EXPECT_EQ(str(find(hybrid, Kind::mount, "/sys/fs/cgroup")->fstype), "tmpfs");
  const MountStep* memory = find(hybrid, Kind::mount, "memory");
  ASSERT_NE(memory, nullptr);
  EXPECT_EQ(str(memory->data), "memory");
  EXPECT_TRUE(memory->here);
  EXPECT_NE(find(hybrid, Kind::mount, "cpu,cpuacct"), nullptr);
  EXPECT_NE(find(hybrid, Kind::remount, "."), nullptr) << "the tmpfs is made read-only";

  // Without a cgroup namespace, or without a layout, there is nothing to show.
  auto none =
      plan(RootFs::directory(snap.lower()), Namespaces::all().without(Namespace::cgroup), &v2);
  ASSERT_TRUE(none.root);
  EXPECT_EQ(find(none, Kind::mount, "/sys/fs/cgroup"), nullptr);
}

TEST(MountPlan, BadInputIsRefusedBeforeAnythingIsPlanned) {
  Snapshot snap;
  auto expect_invalid = [&](const RootFs& fs, Namespaces ns, const std::string& why) {
    auto p = plan(fs, ns);
    ASSERT_FALSE(p.root) << why;
    EXPECT_TRUE(p.steps.empty()) << why;
  };
  expect_invalid(RootFs::directory(snap.lower()), Namespaces::all().without(Namespace::mount),
                 "a root needs a mount namespace");
  expect_invalid(RootFs::directory(snap.path() + "/missing"), Namespaces::all(), "missing root");
  expect_invalid(RootFs::directory(snap.lower()).bind(snap.path(), "relative"), Namespaces::all(),
                 "relative target");
  expect_invalid(RootFs::directory(snap.lower()).bind(snap.path(), "/a/../../b"), Namespaces::all(),
                 "'..' in a target");
  expect_invalid(RootFs::directory(snap.lower()).tmpfs("/t", 0), Namespaces::all(),
                 "zero-sized tmpfs");
  expect_invalid(RootFs::directory(snap.lower()).tmpfs("/t", 1, 010000), Namespaces::all(),
                 "bad tmpfs mode");
  expect_invalid(RootFs::layers({}), Namespaces::all(), "no layer");
  auto missing_bind = plan(RootFs::directory(snap.lower()).bind(snap.path() + "/nope", "/x"));
  ASSERT_FALSE(missing_bind.root);
  EXPECT_EQ(missing_bind.root.error().subject, snap.path() + "/nope");
  auto colon = hutch::detail::RootFsPlanner::check_overlay_path("/a:b");
  EXPECT_FALSE(colon) << "overlayfs cannot take ':' in a layer path";
}

TEST(MountPlan, AnOciConfigsMountsArePlannedAsGiven) {
  Snapshot snap;
  auto fs = RootFs::directory(snap.lower())
                .without(Standard::proc)
                .without(Standard::dev)
                .without(Standard::sys)
                .without(Standard::masked_paths)
                .without(Standard::readonly_paths)
                .without(Standard::cgroup)
                .with(Standard::devices)
                .mount({.type = "proc", .source = "proc", .target = "/proc"})
                .mount({.type = "tmpfs",
                        .source = "tmpfs",
                        .target = "/dev",
                        .flags = MS_NOSUID,
                        .data = "mode=755,size=65536k"})
                .mount({.type = "cgroup", .source = "cgroup", .target = "/sys/fs/cgroup",
                        .flags = MS_RDONLY})
                .mount({.type = "bind",
                        .source = snap.path(),
                        .target = "/data",
                        .flags = MS_REC | MS_RDONLY | MS_NOSUID,
                        .propagation = MS_SLAVE | MS_REC,
                        .recursive_attributes = true})
                .mask("/proc/kcore")
                .readonly("/proc/sys")
                .device({.path = "/dev/hutch-test-null", .type = 'c', .major = 1, .minor = 3})
                .propagation(MS_SHARED | MS_REC);
  Layout v2{hutch::CGroupLayout::unified, {{"/sys/fs/cgroup", {"memory"}, "/", true}}};
  auto p = plan(fs, Namespaces::all(), &v2);
  ASSERT_TRUE(p.root) << p.root.error().message();
  const MountStep* dev = find(p, Kind::mount, "/dev");
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(str(dev->data), "mode=755,size=65536k");
  EXPECT_EQ(dev->flags, static_cast<unsigned long>(MS_NOSUID));
  const MountStep* data = find(p, Kind::bind, "/data");
  ASSERT_NE(data, nullptr);
  EXPECT_TRUE(data->flags & MS_REC);
  EXPECT_FALSE(data->flags & MS_RDONLY) << "read-only comes after, by mount_setattr";
  const MountStep* attributes = find(p, Kind::attributes, "/data");
  ASSERT_NE(attributes, nullptr);
  EXPECT_EQ(attributes->flags, 0x1ul | 0x2ul);
  EXPECT_TRUE(attributes->recursive);
  EXPECT_NE(find(p, Kind::propagate, "/data"), nullptr);
  EXPECT_NE(find(p, Kind::mask, "/proc/kcore"), nullptr);
  EXPECT_NE(find(p, Kind::readonly, "/proc/sys"), nullptr);
  EXPECT_NE(find(p, Kind::bind, "/dev/null"), nullptr) << "the default devices";
  EXPECT_NE(find(p, Kind::symlink, "/dev/ptmx"), nullptr);
  const MountStep* node = find(p, Kind::node, "/dev/hutch-test-null");
  ASSERT_NE(node, nullptr) << "no host node of that path: mknod";
  EXPECT_EQ(node->device, makedev(1, 3));
  // The cgroup mount comes once the cgroup namespace is entered; the root's propagation
  // after pivot_root.
  EXPECT_GT(index_of(p, Kind::mount, "/sys/fs/cgroup"), index_of(p, Kind::enter_cgroup));
  EXPECT_GT(index_of(p, Kind::propagate, "/"), index_of(p, Kind::pivot_root));
  // Nothing of the standard set but the devices.
  EXPECT_EQ(find(p, Kind::mount, "mqueue"), nullptr);
  EXPECT_EQ(find(p, Kind::mask, "kcore"), nullptr);
}

// hutch::Pool: containers created ahead and refilled in the background; spawn() starts one.
#include <dirent.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "support.hpp"

using namespace hutch_test;
using namespace std::chrono_literals;
using hutch::Container;
using hutch::Pool;
using hutch::RootFs;

namespace {

/// This process's children, from every thread's /proc/self/task/TID/children.
std::set<pid_t> children() {
  std::set<pid_t> out;
  DIR* tasks = ::opendir("/proc/self/task");
  while (dirent* e = tasks ? ::readdir(tasks) : nullptr) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/children");
    for (pid_t pid; in >> pid;) out.insert(pid);
  }
  if (tasks) ::closedir(tasks);
  return out;
}

/// Waits up to `limit` for `done`.
template <typename F>
bool eventually(F done, std::chrono::milliseconds limit = 10s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace

// Each spawn is a fresh container (pid 1 of its own namespace, its own writable layer), and
// the pool is made full again after it.
TEST(Pool, SpawnStartsAFreshContainerAndThePoolRefills) {
  LeakCheck leaks;
  {
    Pool pool(busybox_container({"sh", "-c", "echo pid $$; cat /mark 2>/dev/null; echo x >/mark"})
                  .std_out(hutch::Stdio::piped()),
              2);
    ASSERT_TRUE(pool.fill()) << "the pool fills";
    EXPECT_EQ(pool.ready(), 2u);
    for (int i = 0; i < 4; ++i) {
      auto child = pool.spawn();
      ASSERT_TRUE(child) << child.error().message();
      auto out = child->wait_with_output();
      ASSERT_TRUE(out) << out.error().message();
      EXPECT_TRUE(out->status.success());
      EXPECT_EQ(out->std_out, "pid 1\n") << "a container is used once";
    }
    EXPECT_TRUE(eventually([&] { return pool.ready() == 2; })) << pool.ready();
  }
}

// A pool's containers die with the process, not with the thread that took them, and outlive
// the pool.
TEST(Pool, AContainerOutlivesTheThreadThatTookItAndThePool) {
  LeakCheck leaks;
  std::optional<hutch::Child> child;
  {
    Pool pool(busybox_container({"sh", "-c", "read line; echo got $line"})
                  .std_in(hutch::Stdio::piped())
                  .std_out(hutch::Stdio::piped()),
              1);
    std::thread([&] {
      auto spawned = pool.spawn();
      ASSERT_TRUE(spawned) << spawned.error().message();
      child.emplace(std::move(*spawned));
    }).join();
  }
  ASSERT_TRUE(child);
  std::this_thread::sleep_for(100ms);  // a parent-death signal would have come by now
  ASSERT_EQ(::write(child->stdin_pipe().get(), "hello\n", 6), 6);
  child->stdin_pipe().reset();
  auto out = child->wait_with_output();
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_TRUE(out->status.success()) << fmt::format("{}", out->status);
  EXPECT_EQ(out->std_out, "got hello\n");
}

// Destroying the pool kills and removes the containers still waiting: no process, no scratch.
TEST(Pool, DestroyingThePoolRemovesTheWaitingContainers) {
  LeakCheck leaks;
  const std::set<pid_t> before = children();
  {
    Pool pool(busybox_container({"true"}), 3);
    ASSERT_TRUE(pool.fill());
    EXPECT_EQ(children().size(), before.size() + 3);
  }
  hutch::settle();
  EXPECT_TRUE(eventually([&] { return children() == before; })) << "a container was left";
}

// Many threads spawn from one pool at once.
TEST(Pool, ThreadsShareOnePool) {
  LeakCheck leaks;
  Pool pool(busybox_container({"true"}), 2);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        auto child = pool.spawn();
        if (!child) continue;
        auto status = child->wait();
        if (status && status->success()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 20);
}

// A description that cannot be created: the spawn says why, and nothing is left.
TEST(Pool, ACreateFailureIsTheSpawnsErrorAndLeavesNothing) {
  LeakCheck leaks;
  const std::set<pid_t> before = children();
  {
    Pool pool(busybox_container({"true"}).cwd("/no/such/dir"), 2);
    auto child = pool.spawn();
    ASSERT_FALSE(child);
    EXPECT_EQ(child.error().step, hutch::Step::chdir) << child.error().message();
    EXPECT_NE(child.error().message().find("/no/such/dir"), std::string::npos);
    auto filled = pool.fill(5s);
    ASSERT_FALSE(filled);
    EXPECT_EQ(filled.error().step, hutch::Step::chdir);
    EXPECT_EQ(pool.ready(), 0u);
  }
  hutch::settle();
  EXPECT_TRUE(eventually([&] { return children() == before; })) << "a container was left";
}

// Size 0: every spawn is the caller's own.
TEST(Pool, AnEmptyPoolSpawnsInTheCaller) {
  LeakCheck leaks;
  Pool pool(busybox_container({"echo", "direct"}).std_out(hutch::Stdio::piped()), 0);
  auto out = pool.spawn();
  ASSERT_TRUE(out) << out.error().message();
  auto done = out->wait_with_output();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->std_out, "direct\n");
  EXPECT_EQ(pool.ready(), 0u);
}

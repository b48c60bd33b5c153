// Plain GoogleTest tests that CTest starts through hutch-test (hutch_isolate_tests() in
// tests/CMakeLists.txt): each checks from inside that it runs in a container of its own,
// and one leaves a mess that the next must not see. Nothing here knows of hutch.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

int processes() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    n += e.path().filename().string().find_first_not_of("0123456789") == std::string::npos;
  }
  return n;
}

}  // namespace

TEST(Launched, RunsAloneInItsOwnContainer) {
  EXPECT_EQ(::getpid(), 1);
  EXPECT_EQ(processes(), 1);
  char name[256] = {};
  ::gethostname(name, sizeof name);
  EXPECT_STREQ(name, "isolated-test");
}

TEST(Launched, SeesTheHostReadOnlyAndItsOwnTmp) {
  EXPECT_FALSE(std::ofstream(std::filesystem::current_path() / "written-by-a-test").is_open());
  EXPECT_TRUE(std::ofstream("/tmp/written-by-a-test").is_open());
}

TEST(Launched, LeavesAMess) {
  if (::fork() == 0) {
    ::sleep(60);
    ::_exit(0);
  }
  std::ofstream("/tmp/mess") << "left";
  SUCCEED();
}

TEST(Launched, FindsNoMessFromAnotherTest) {
  EXPECT_FALSE(std::filesystem::exists("/tmp/mess"));
  EXPECT_EQ(processes(), 1);
}

// A consumer's isolated GoogleTest test (hutch::gtest).
#include <unistd.h>

#include <hutch/testing/gtest.hpp>

HUTCH_ISOLATED_TEST(Consumer, RunsInItsOwnContainer) {
  EXPECT_EQ(::getpid(), 1);
}

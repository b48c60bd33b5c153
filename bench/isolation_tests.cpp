// 200 trivial GoogleTest tests, built twice: plain (TEST) and each isolated by hutch::gtest
// (HUTCH_ISOLATED_TEST), for bench/isolation.sh, which also runs the plain ones through
// CTest with and without the hutch-test launcher.
#include <gtest/gtest.h>

#if HUTCH_BENCH_ISOLATED
#include <hutch/testing/gtest.hpp>
#define BENCH_TEST(name)             \
  HUTCH_ISOLATED_TEST(Bench, name) { \
    EXPECT_EQ(1 + 1, 2);             \
  }
#else
#define BENCH_TEST(name) \
  TEST(Bench, name) {    \
    EXPECT_EQ(1 + 1, 2); \
  }
#endif

#define BENCH_TESTS_10(p)                                                              \
  BENCH_TEST(p##0)                                                                     \
  BENCH_TEST(p##1) BENCH_TEST(p##2) BENCH_TEST(p##3) BENCH_TEST(p##4) BENCH_TEST(p##5) \
      BENCH_TEST(p##6) BENCH_TEST(p##7) BENCH_TEST(p##8) BENCH_TEST(p##9)
#define BENCH_TESTS_100(p)                                                                \
  BENCH_TESTS_10(p##0)                                                                    \
  BENCH_TESTS_10(p##1) BENCH_TESTS_10(p##2) BENCH_TESTS_10(p##3) BENCH_TESTS_10(p##4)     \
      BENCH_TESTS_10(p##5) BENCH_TESTS_10(p##6) BENCH_TESTS_10(p##7) BENCH_TESTS_10(p##8) \
          BENCH_TESTS_10(p##9)

BENCH_TESTS_100(T)
BENCH_TESTS_100(U)

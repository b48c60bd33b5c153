// hutch::gtest for a whole test binary, with no test changed: included before every source
// of the binary (hutch_isolate_gtest() in cmake/hutchTesting.cmake adds
// `-include hutch/testing/isolate_all.hpp`), it makes every TEST and TEST_F an isolated test,
// run with hutch::testing::default_options(). TEST_P and typed tests stay as they are.
#pragma once

#include <gtest/gtest.h>

#include "gtest.hpp"

#undef TEST
#define TEST(Suite, Name) HUTCH_ISOLATED_TEST(Suite, Name)
#undef TEST_F
#define TEST_F(Fixture, Name) HUTCH_ISOLATED_TEST_F(Fixture, Name)

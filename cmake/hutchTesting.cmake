# hutch_isolate_tests(TARGET name... | DIRECTORY dir... [MEMORY size] [PIDS n] [CPUS n]
#                     [NETWORK none|host] [TIMEOUT seconds] [TMP size] [WRITABLE])
#
# Makes CTest start every test of the given executable targets (or of every executable target
# defined in the given directories) inside a container of its own, through hutch-test: the
# host's filesystem read-only with a private /tmp, its own pid, uts, ipc, mount, user and
# network namespaces, and the limits given. Works for add_test(NAME ... COMMAND target) and
# gtest_discover_tests(); exit codes and signals reach CTest unchanged. Uses the target
# property TEST_LAUNCHER on CMake 3.29 and later, CROSSCOMPILING_EMULATOR before. Call it
# after the targets are defined and before gtest_discover_tests(), which reads the property
# when it is called.
function(hutch_isolate_tests)
  cmake_parse_arguments(PARSE_ARGV 0 arg "WRITABLE" "MEMORY;PIDS;CPUS;NETWORK;TIMEOUT;TMP"
                        "TARGET;DIRECTORY")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "hutch_isolate_tests: unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  get_property(launcher GLOBAL PROPERTY HUTCH_TEST_LAUNCHER)
  if(NOT launcher)
    set(launcher ${HUTCH_TEST_LAUNCHER})
  endif()
  if(NOT launcher)
    message(FATAL_ERROR "hutch_isolate_tests: hutch-test was not built or installed")
  endif()
  foreach(option MEMORY PIDS CPUS NETWORK TIMEOUT TMP)
    if(DEFINED arg_${option})
      string(TOLOWER ${option} flag)
      list(APPEND launcher --${flag} ${arg_${option}})
    endif()
  endforeach()
  if(arg_WRITABLE)
    list(APPEND launcher --writable)
  endif()
  list(APPEND launcher --)
  set(targets ${arg_TARGET})
  foreach(dir IN LISTS arg_DIRECTORY)
    get_property(in_dir DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
    foreach(target IN LISTS in_dir)
      get_target_property(type ${target} TYPE)
      if(type STREQUAL "EXECUTABLE")
        list(APPEND targets ${target})
      endif()
    endforeach()
  endforeach()
  if(NOT targets)
    message(FATAL_ERROR "hutch_isolate_tests: no executable targets given")
  endif()
  foreach(target IN LISTS targets)
    if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.29)
      set_property(TARGET ${target} PROPERTY TEST_LAUNCHER ${launcher})
    else()
      set_property(TARGET ${target} PROPERTY CROSSCOMPILING_EMULATOR ${launcher})
    endif()
    if(TARGET hutch-test)
      add_dependencies(${target} hutch-test)
    endif()
  endforeach()
endfunction()

# hutch_isolate_gtest(TARGET name...)
#
# Makes every TEST and TEST_F of the given GoogleTest executables an isolated test of
# hutch::gtest, with no source changed: each source is compiled with
# hutch/testing/isolate_all.hpp included first, and the targets link hutch::gtest. The tests
# then run in containers of their own however the binary is started (by hand, by CTest, with
# --gtest_shuffle or shards), with hutch::testing::default_options().
function(hutch_isolate_gtest)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "" "TARGET")
  if(NOT arg_TARGET OR arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "hutch_isolate_gtest: give TARGET name...")
  endif()
  if(NOT TARGET hutch::gtest)
    message(FATAL_ERROR "hutch_isolate_gtest: hutch::gtest is not available (find_package(hutch "
                        "COMPONENTS gtest))")
  endif()
  foreach(target IN LISTS arg_TARGET)
    target_link_libraries(${target} PRIVATE hutch::gtest)
    target_compile_options(${target} PRIVATE "SHELL:-include hutch/testing/isolate_all.hpp")
  endforeach()
endfunction()

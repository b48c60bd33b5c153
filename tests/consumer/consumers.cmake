# The consumer programs, one per target, built the same way however hutch was found.
add_executable(consumer ${CMAKE_CURRENT_LIST_DIR}/main.cpp)
target_link_libraries(consumer PRIVATE hutch::hutch)
add_executable(consumer_seccomp ${CMAKE_CURRENT_LIST_DIR}/seccomp_main.cpp)
target_link_libraries(consumer_seccomp PRIVATE hutch::seccomp)
add_executable(consumer_image ${CMAKE_CURRENT_LIST_DIR}/image_main.cpp)
target_link_libraries(consumer_image PRIVATE hutch::image)
add_executable(consumer_oci ${CMAKE_CURRENT_LIST_DIR}/oci_main.cpp)
target_link_libraries(consumer_oci PRIVATE hutch::oci)
add_executable(consumer_net ${CMAKE_CURRENT_LIST_DIR}/net_main.cpp)
target_link_libraries(consumer_net PRIVATE hutch::net)
find_package(GTest REQUIRED)  # GTest::gtest_main, which the consumer links itself
add_executable(consumer_gtest ${CMAKE_CURRENT_LIST_DIR}/gtest_main.cpp)
target_link_libraries(consumer_gtest PRIVATE hutch::gtest GTest::gtest_main)

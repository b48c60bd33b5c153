# vcpkg port for hutch. Point SOURCE_PATH at a release archive when one is published; for an
# overlay port built from a checkout: vcpkg install hutch --overlay-ports=ports
if(DEFINED ENV{HUTCH_SOURCE_DIR})
  set(SOURCE_PATH "$ENV{HUTCH_SOURCE_DIR}")
else()
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
endif()

set(VCPKG_BUILD_TYPE release)  # header-only

set(HUTCH_SECCOMP OFF)
if("seccomp" IN_LIST FEATURES)
  set(HUTCH_SECCOMP ON)
endif()
set(HUTCH_IMAGE OFF)
if("image" IN_LIST FEATURES)
  set(HUTCH_IMAGE ON)
endif()

set(HUTCH_GTEST OFF)
if("gtest" IN_LIST FEATURES)
  set(HUTCH_GTEST ON)
endif()
set(HUTCH_NET OFF)
if("net" IN_LIST FEATURES)
  set(HUTCH_NET ON)
endif()
set(HUTCH_REGISTRY OFF)
if("registry" IN_LIST FEATURES)
  set(HUTCH_REGISTRY ON)
endif()
set(HUTCH_OCI OFF)
if("oci" IN_LIST FEATURES)
  set(HUTCH_OCI ON)
endif()

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DHUTCH_BUILD_TESTS=OFF
    -DHUTCH_BUILD_BENCHMARKS=OFF
    -DHUTCH_BUILD_EXAMPLES=OFF
    -DHUTCH_BUILD_TOOLS=OFF
    -DHUTCH_INSTALL=ON
    -DHUTCH_SECCOMP=${HUTCH_SECCOMP}
    -DHUTCH_IMAGE=${HUTCH_IMAGE}
    -DHUTCH_OCI=${HUTCH_OCI}
    -DHUTCH_NET=${HUTCH_NET}
    -DHUTCH_REGISTRY=${HUTCH_REGISTRY}
    -DHUTCH_GTEST=${HUTCH_GTEST})
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME hutch CONFIG_PATH share/cmake/hutch)
vcpkg_fixup_pkgconfig()

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug" "${CURRENT_PACKAGES_DIR}/lib")
file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright"
     "See the hutch repository for its license terms.\n")

import os

from conan import ConanFile
from conan.tools.cmake import CMake, CMakeToolchain, CMakeDeps, cmake_layout
from conan.tools.files import copy

required_conan_version = ">=2.0"


class HutchConan(ConanFile):
    name = "hutch"
    version = "0.1.0"
    description = "Header-only C++20 library to run Linux containers from a C++ program"
    topics = ("containers", "namespaces", "cgroups", "sandbox", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    # Optional modules, each a component with its own target: hutch::seccomp (libseccomp)
    # hutch::image (nlohmann_json, libarchive, OpenSSL), hutch::oci (nlohmann_json and
    # hutch::seccomp), hutch::net (nlohmann_json), hutch::registry (libcurl and hutch::image:
    # image pulls) and hutch::gtest (GoogleTest, nlohmann_json).
    options = {"with_seccomp": [True, False], "with_image": [True, False], "with_oci": [True, False],
               "with_net": [True, False], "with_registry": [True, False],
               "with_gtest": [True, False]}
    default_options = {"with_seccomp": True, "with_image": True, "with_oci": True,
                       "with_net": True, "with_registry": True, "with_gtest": False}
    no_copy_source = True

    def export_sources(self):
        root = os.path.join(self.recipe_folder, "..")
        for pattern in ("CMakeLists.txt", "cmake/*", "include/*", "LICENSE*"):
            copy(self, pattern, src=root, dst=self.export_sources_folder)

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        self.requires("fmt/[>=9 <12]", transitive_headers=True)
        self.requires("boost/[>=1.74]", transitive_headers=True, options={"header_only": True})
        if self.options.with_seccomp:
            self.requires("libseccomp/[>=2.5 <3]")
        if self.options.with_gtest:
            self.requires("gtest/[>=1.11 <2]", transitive_headers=True)
        if (self.options.with_image or self.options.with_oci or self.options.with_net
                or self.options.with_gtest):
            self.requires("nlohmann_json/[>=3.10 <4]", transitive_headers=True)
        if self.options.with_image:
            self.requires("libarchive/[>=3.6 <4]", transitive_headers=True)
            self.requires("openssl/[>=3 <4]", transitive_headers=True)
        if self.options.with_registry:
            self.requires("libcurl/[>=7.85 <9]", transitive_headers=True)

    def validate(self):
        from conan.errors import ConanInvalidConfiguration
        from conan.tools.build import check_min_cppstd
        if self.settings.os != "Linux":
            raise ConanInvalidConfiguration("hutch runs Linux containers: Linux only")
        check_min_cppstd(self, 20)
        if self.options.with_oci and not self.options.with_seccomp:
            raise ConanInvalidConfiguration("with_oci needs with_seccomp")
        if self.options.with_registry and not self.options.with_image:
            raise ConanInvalidConfiguration("with_registry needs with_image")

    def package_id(self):
        # Header-only: one package for every setting; the options still tell the modules.
        self.info.settings.clear()

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["HUTCH_BUILD_TESTS"] = False
        tc.cache_variables["HUTCH_BUILD_BENCHMARKS"] = False
        tc.cache_variables["HUTCH_BUILD_EXAMPLES"] = False
        tc.cache_variables["HUTCH_BUILD_TOOLS"] = False
        tc.cache_variables["HUTCH_INSTALL"] = True
        tc.cache_variables["HUTCH_SECCOMP"] = "ON" if self.options.with_seccomp else "OFF"
        tc.cache_variables["HUTCH_IMAGE"] = "ON" if self.options.with_image else "OFF"
        tc.cache_variables["HUTCH_OCI"] = "ON" if self.options.with_oci else "OFF"
        tc.cache_variables["HUTCH_NET"] = "ON" if self.options.with_net else "OFF"
        tc.cache_variables["HUTCH_REGISTRY"] = "ON" if self.options.with_registry else "OFF"
        tc.cache_variables["HUTCH_GTEST"] = "ON" if self.options.with_gtest else "OFF"
        tc.generate()
        CMakeDeps(self).generate()

    def package(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.install()

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "hutch")
        self.cpp_info.set_property("cmake_target_name", "hutch::hutch")
        self.cpp_info.set_property("pkg_config_name", "hutch")
        # Header-only components: a target each, no binaries.
        def component(name, target, requires):
            c = self.cpp_info.components[name]
            c.set_property("cmake_target_name", target)
            c.bindirs = []
            c.libdirs = []
            c.requires = requires

        component("core", "hutch::hutch", ["fmt::fmt", "boost::headers"])
        if self.options.with_seccomp:
            component("seccomp", "hutch::seccomp", ["core", "libseccomp::libseccomp"])
        if self.options.with_image:
            component("image", "hutch::image", ["core", "nlohmann_json::nlohmann_json",
                                                "libarchive::libarchive", "openssl::crypto"])
        if self.options.with_oci:
            component("oci", "hutch::oci", ["core", "seccomp", "nlohmann_json::nlohmann_json"])
        if self.options.with_net:
            component("net", "hutch::net", ["core", "nlohmann_json::nlohmann_json"])
        if self.options.with_registry:
            component("registry", "hutch::registry", ["core", "image", "libcurl::libcurl"])
        if self.options.with_gtest:
            component("gtest", "hutch::gtest", ["core", "gtest::gtest", "nlohmann_json::nlohmann_json"])

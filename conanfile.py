# Conan 2 recipe for stowage, a header-only library, and its command-line tool:
#   conan create .                              the headers (runs test_package/)
#   conan create . -o "stowage/*:tool=True"     the headers and bin/stowage, the tool
#                                               (stats, verify, dump, load, compact,
#                                               backup, migrate --status, repair),
#                                               built here with CMake, CLI11 and
#                                               nlohmann/json; test_package/ then runs it
# Consumers: find_package(stowage CONFIG REQUIRED) and link stowage::stowage
# (stowage::boost_serializer for BoostSerializer, stowage::json_import for
# import_json, stowage::content for ContentStore, stowage::msgpack_serializer
# for MsgpackSerializer), as with `cmake --install`. With the tool, bin/ is on
# the PATH of the package's run environment (conanrun), or of the build
# environment when it is a tool_requires.
import os
import re

from conan import ConanFile
from conan.errors import ConanException, ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.env import Environment
from conan.tools.files import copy, load
from conan.tools.gnu import PkgConfigDeps
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0"


class StowageConan(ConanFile):
    name = "stowage"
    description = ("An embedded, persistent, typed key-value store for C++20, header-only: "
                   "WAL with group commit, LZ4-compressed checksummed chunks, Bloom filters, a block cache")
    # The Boost Software License 1.0 (LICENSE; COPYRIGHT holds the notice).
    license = "BSL-1.0"
    topics = ("key-value", "database", "embedded", "storage", "header-only", "lz4")
    # Without the tool; configure() makes it "unknown" (headers and an executable) with it.
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"boost_serializer": [True, False], "json_import": [True, False], "content": [True, False],
               "msgpack_serializer": [True, False], "tool": [True, False]}
    default_options = {"boost_serializer": True, "json_import": True, "content": True, "msgpack_serializer": True,
                       "tool": False}
    # The headers, the notices, and what CMake needs to build the tool.
    exports_sources = "include/*", "COPYRIGHT", "LICENSE", "CMakeLists.txt", "cmake/*", "tools/*"
    no_copy_source = True

    def set_version(self):
        # One source of truth: project(stowage VERSION x.y.z) in CMakeLists.txt.
        text = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        self.version = self.version or re.search(r"project\(stowage VERSION ([0-9.]+)", text).group(1)

    def configure(self):
        if self.options.tool:
            # Headers and an executable built for these settings.
            self.package_type = "unknown"

    def layout(self):
        if self.options.tool:
            cmake_layout(self, src_folder=".")
        else:
            basic_layout(self, src_folder=".")

    def requirements(self):
        # Boost headers: Intrusive (cache lists) (the file lock is plain POSIX);
        # libboost_serialization only for the BoostSerializer component.
        self.requires("boost/1.86.0")
        self.requires("lz4/1.9.4")
        self.requires("xxhash/0.8.2")  # used header-only (XXH_INLINE_ALL)
        if self.options.json_import or self.options.tool:
            # stowage::import_json (json_import.hpp), and the tool's JSON lines
            self.requires("nlohmann_json/3.11.3")
        if self.options.content:
            self.requires("openssl/3.3.2")  # SHA-256 of stowage::content (digest.hpp, content_store.hpp) only
        if self.options.msgpack_serializer:
            self.requires("msgpack-cxx/6.1.1")  # stowage::msgpack_serializer (msgpack_serializer.hpp) only
        if self.options.tool:
            self.requires("cli11/2.4.2")  # the tool's argument parsing (header-only; not needed by consumers)

    def build_requirements(self):
        if self.options.tool:
            self.tool_requires("cmake/[>=3.20 <4]")
            self.tool_requires("pkgconf/2.2.0")  # cmake/StowageDependencies.cmake finds liblz4 with pkg-config

    def package_id(self):
        if not self.info.options.tool:
            self.info.clear()  # headers only: one package for every configuration

    def validate(self):
        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, 20)
        if self.options.tool and self.settings.os == "Windows":
            raise ConanInvalidConfiguration("stowage: the tool (option tool) needs a POSIX system")

    def generate(self):
        if not self.options.tool:
            return
        tc = CMakeToolchain(self)
        tc.cache_variables["STOWAGE_BUILD_TOOLS"] = True
        for part in ("TESTS", "EXAMPLES", "BENCHMARKS", "FUZZERS"):
            tc.cache_variables["STOWAGE_BUILD_" + part] = False
        tc.cache_variables["STOWAGE_INSTALL"] = False  # package() copies what the package holds
        tc.generate()
        CMakeDeps(self).generate()  # Boost, CLI11, nlohmann_json, ... for find_package
        PkgConfigDeps(self).generate()  # liblz4.pc for pkg_check_modules
        env = Environment()
        env.prepend_path("PKG_CONFIG_PATH", self.generators_folder)
        env.vars(self).save_script("conanbuild_stowage_pkg_config")

    def build(self):
        if not self.options.tool:
            return
        cmake = CMake(self)
        cmake.configure()
        cmake.build(target="stowage_cli")

    def package(self):
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"), os.path.join(self.package_folder, "include"))
        for notice in ("LICENSE", "COPYRIGHT"):
            copy(self, notice, self.source_folder, os.path.join(self.package_folder, "licenses"))
        if self.options.tool:
            # tools/stowage (tools/<config>/stowage with a multi-config generator)
            built = copy(self, "stowage", os.path.join(self.build_folder, "tools"),
                         os.path.join(self.package_folder, "bin"), keep_path=False)
            if not built:
                raise ConanException("stowage: the tool was not built (tools/CMakeLists.txt skips it when CLI11 or "
                                     "nlohmann/json is not found)")

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "stowage")
        # The aggregate of all components; users link the components' targets.
        self.cpp_info.set_property("cmake_target_name", "stowage::stowage_all")

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "stowage::stowage")
        core.bindirs = []
        core.libdirs = []
        core.requires = ["boost::headers", "lz4::lz4", "xxhash::xxhash"]
        if self.settings.os in ("Linux", "FreeBSD"):
            core.system_libs = ["pthread"]

        # The optional parts: (option = component = target name, what it requires besides core).
        parts = (("boost_serializer", "boost::serialization"), ("json_import", "nlohmann_json::nlohmann_json"),
                 ("content", "openssl::crypto"), ("msgpack_serializer", "msgpack-cxx::msgpack-cxx"))
        for part, dependency in parts:
            if getattr(self.options, part):
                comp = self.cpp_info.components[part]
                comp.set_property("cmake_target_name", "stowage::" + part)
                comp.bindirs = []
                comp.libdirs = []
                comp.requires = ["core", dependency]
        if self.options.tool:
            # bin/stowage, on the PATH of the run and build environments. Conan
            # wants every direct requirement used by a component: the tool's
            # own ones (compiled into bin/stowage) are this one's, which
            # consumers have no reason to link.
            tool = self.cpp_info.components["tool"]
            tool.set_property("cmake_target_name", "stowage::tool")
            tool.bindirs = ["bin"]
            tool.libdirs = []
            tool.includedirs = []
            tool.requires = ["cli11::cli11", "nlohmann_json::nlohmann_json"]

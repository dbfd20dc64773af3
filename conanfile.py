# Conan 2 recipe for stowage, a header-only library:
#   conan create .                  (builds and runs test_package/)
# Consumers: find_package(stowage CONFIG REQUIRED) and link stowage::stowage
# (stowage::boost_serializer for BoostSerializer, stowage::json_import for
# import_json, stowage::content for ContentStore, stowage::msgpack_serializer
# for MsgpackSerializer), as with `cmake --install`.
import os
import re

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0"


class StowageConan(ConanFile):
    name = "stowage"
    description = ("An embedded, persistent, typed key-value store for C++20, header-only: "
                   "WAL with group commit, LZ4-compressed checksummed chunks, Bloom filters, a block cache")
    # The Boost Software License 1.0 (LICENSE; COPYRIGHT holds the notice).
    license = "BSL-1.0"
    topics = ("key-value", "database", "embedded", "storage", "header-only", "lz4")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"boost_serializer": [True, False], "json_import": [True, False], "content": [True, False],
               "msgpack_serializer": [True, False]}
    default_options = {"boost_serializer": True, "json_import": True, "content": True, "msgpack_serializer": True}
    exports_sources = "include/*", "COPYRIGHT", "LICENSE"
    no_copy_source = True

    def set_version(self):
        # One source of truth: project(stowage VERSION x.y.z) in CMakeLists.txt.
        text = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        self.version = self.version or re.search(r"project\(stowage VERSION ([0-9.]+)", text).group(1)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        # Boost headers: Intrusive (cache lists), Interprocess + Date_Time (file lock);
        # libboost_serialization only for the BoostSerializer component.
        self.requires("boost/1.86.0")
        self.requires("lz4/1.9.4")
        self.requires("xxhash/0.8.2")  # used header-only (XXH_INLINE_ALL)
        if self.options.json_import:
            self.requires("nlohmann_json/3.11.3")  # stowage::import_json (json_import.hpp) only
        if self.options.content:
            self.requires("openssl/3.3.2")  # SHA-256 of stowage::content (digest.hpp, content_store.hpp) only
        if self.options.msgpack_serializer:
            self.requires("msgpack-cxx/6.1.1")  # stowage::msgpack_serializer (msgpack_serializer.hpp) only

    def package_id(self):
        self.info.clear()

    def validate(self):
        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, 20)

    def package(self):
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"), os.path.join(self.package_folder, "include"))
        for notice in ("LICENSE", "COPYRIGHT"):
            copy(self, notice, self.source_folder, os.path.join(self.package_folder, "licenses"))

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

import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, cmake_layout


class StowageTestPackageConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps", "CMakeToolchain"
    test_type = "explicit"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if not can_run(self):
            return
        # The program writes a store and keeps it: the tool, when the
        # package holds it (option tool), must read it back as sound.
        store = os.path.join(self.build_folder, "stowage-test-package-store")
        program = os.path.join(self.cpp.build.bindir, "stowage_test_package")
        self.run(f'"{program}" "{store}" --keep', env="conanrun")
        stowage = self.dependencies["stowage"]
        if stowage.options.tool:
            tool = os.path.join(stowage.package_folder, "bin", "stowage")
            self.run(f'"{tool}" verify "{store}"', env="conanrun")
            self.run(f'"{tool}" dump "{store}"', env="conanrun")
            self.run(f'"{tool}" stats "{store}"', env="conanrun")

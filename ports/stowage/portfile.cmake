# vcpkg port of stowage (header-only). As an overlay port from a checkout:
#   vcpkg install stowage --overlay-ports=<checkout>/ports
# builds from the checkout this port sits in. For a registry, replace the
# SOURCE_PATH line with vcpkg_from_github(OUT_SOURCE_PATH SOURCE_PATH REPO <owner>/stowage
# REF "v${VERSION}" SHA512 <sha512 of the tarball> HEAD_REF main).
set(VCPKG_BUILD_TYPE release)  # header-only: no debug build
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)

# The "tool" feature builds the stowage command-line tool (CLI11, nlohmann/json).
vcpkg_check_features(OUT_FEATURE_OPTIONS feature_options FEATURES tool STOWAGE_BUILD_TOOLS)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${feature_options}
    -DSTOWAGE_BUILD_TESTS=OFF
    -DSTOWAGE_BUILD_EXAMPLES=OFF
    -DSTOWAGE_BUILD_BENCHMARKS=OFF
    -DSTOWAGE_BUILD_FUZZERS=OFF
    -DSTOWAGE_INSTALL=ON
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME stowage CONFIG_PATH share/stowage/cmake)
if("tool" IN_LIST FEATURES)
  vcpkg_copy_tools(TOOL_NAMES stowage AUTO_CLEAN)  # bin/stowage -> tools/stowage/
endif()

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
# The license text (BSL-1.0) and the copyright notice.
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE" "${SOURCE_PATH}/COPYRIGHT")

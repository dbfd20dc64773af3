# Finds what stowage's headers include. Used by the build tree and, through
# stowageConfig.cmake, by every installed consumer, so both see the same targets.
include(GNUInstallDirs)
include(CMakeFindDependencyMacro)
find_dependency(Threads)
find_dependency(Boost 1.74 COMPONENTS headers OPTIONAL_COMPONENTS serialization)
find_dependency(PkgConfig)
if(NOT TARGET PkgConfig::STOWAGE_LZ4)
  pkg_check_modules(STOWAGE_LZ4 REQUIRED IMPORTED_TARGET GLOBAL liblz4)
endif()
find_path(STOWAGE_XXHASH_INCLUDE_DIR xxhash.h)
if(NOT STOWAGE_XXHASH_INCLUDE_DIR)
  message(FATAL_ERROR "stowage needs xxhash.h (Debian: apt-get install libxxhash-dev)")
endif()
# Optional: nlohmann/json for stowage::json_import (Debian: nlohmann-json3-dev).
if(NOT TARGET nlohmann_json::nlohmann_json)
  find_package(nlohmann_json 3 QUIET)
endif()

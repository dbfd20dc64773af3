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
# Optional: OpenSSL's libcrypto for stowage::content (Debian: libssl-dev).
if(NOT TARGET OpenSSL::Crypto)
  find_package(OpenSSL QUIET COMPONENTS Crypto)
endif()
# Optional: msgpack-c's C++ headers for stowage::msgpack_serializer (Debian:
# libmsgpack-dev, which brings libmsgpack-cxx-dev). Debian installs two CMake
# packages both named "msgpack" (the C library and the C++ headers), so the
# headers are found directly and wrapped in a target of stowage's own.
if(NOT TARGET stowage_msgpack_cxx)
  find_path(STOWAGE_MSGPACK_INCLUDE_DIR msgpack.hpp)
  if(STOWAGE_MSGPACK_INCLUDE_DIR)
    add_library(stowage_msgpack_cxx INTERFACE IMPORTED GLOBAL)
    set_target_properties(stowage_msgpack_cxx PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${STOWAGE_MSGPACK_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES Boost::headers)
  endif()
endif()

# Checks the license is in place everywhere it must be (label `packaging`):
#  - LICENSE holds the Boost Software License 1.0, word for word as Boost ships it
#    (its first line and its disclaimer's last line);
#  - COPYRIGHT and the README name it;
#  - every header under include/ and single_include/ starts with the SPDX line.
#   cmake -DSTOWAGE_SOURCE_DIR=<checkout> -P check_license.cmake
cmake_minimum_required(VERSION 3.20)
set(errors "")
set(spdx "// SPDX-License-Identifier: BSL-1.0")
if(NOT EXISTS "${STOWAGE_SOURCE_DIR}/LICENSE")
  string(APPEND errors "  no LICENSE file\n")
else()
  file(READ "${STOWAGE_SOURCE_DIR}/LICENSE" text)
  if(NOT text MATCHES "^Boost Software License - Version 1\\.0 - August 17th, 2003\n"
     OR NOT text MATCHES "DEALINGS IN THE SOFTWARE\\.\n$")
    string(APPEND errors "  LICENSE is not the Boost Software License 1.0 text\n")
  endif()
endif()
foreach(f COPYRIGHT README.md)
  file(READ "${STOWAGE_SOURCE_DIR}/${f}" text)
  if(NOT text MATCHES "Boost Software License" OR NOT text MATCHES "BSL-1\\.0")
    string(APPEND errors "  ${f} does not name the Boost Software License (BSL-1.0)\n")
  endif()
endforeach()
file(GLOB_RECURSE headers "${STOWAGE_SOURCE_DIR}/include/*.hpp" "${STOWAGE_SOURCE_DIR}/single_include/*.hpp")
list(LENGTH headers count)
foreach(h IN LISTS headers)
  file(STRINGS "${h}" first LIMIT_COUNT 1)
  if(NOT first STREQUAL spdx)
    file(RELATIVE_PATH rel "${STOWAGE_SOURCE_DIR}" "${h}")
    string(APPEND errors "  ${rel}: the first line is not '${spdx}'\n")
  endif()
endforeach()
if(errors)
  message(FATAL_ERROR "license:\n${errors}")
endif()
message(STATUS "license: LICENSE is BSL-1.0, COPYRIGHT and README name it, ${count} headers carry the SPDX line")

# Drives one consumption test: configures, builds and runs the downstream
# project in app/ against stowage, the way a user would get it. Run by CTest:
#   cmake -DMODE=<mode> -DSTOWAGE_SOURCE_DIR=... -DAPP_DIR=... -DWORK_DIR=... -DCXX=...
#         [-DGENERATOR=...] [-DBUILD_TYPE=...] [-DPREFIX=...] -P run.cmake
# MODE:
#   install           build (the stowage tool) and cmake --install stowage (no tests/examples/benchmarks)
#                     into PREFIX, check the layout and that bin/stowage runs
#   find_package      app/ with find_package(stowage CONFIG REQUIRED) and CMAKE_PREFIX_PATH=PREFIX
#   test_package      the Conan test_package/ project, built the same way against PREFIX
#                     (and, when PREFIX holds bin/stowage, the tool run on the store it keeps)
#   add_subdirectory  app/ with add_subdirectory(<checkout>)
#   fetchcontent      app/ with FetchContent, redirected to the checkout by FETCHCONTENT_SOURCE_DIR_STOWAGE
#   fetchcontent_git  app/ with FetchContent cloning file://<checkout> at its HEAD commit (git needed)
#   single_header     app/main.cpp compiled by hand against a copy of single_include/stowage.hpp
cmake_minimum_required(VERSION 3.20)
foreach(v MODE STOWAGE_SOURCE_DIR APP_DIR WORK_DIR CXX)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "run.cmake: -D${v}=... is required")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc COMMAND_ECHO STDOUT)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumption test '${MODE}': command failed (${rc})")
  endif()
endfunction()

set(generator_args "")
if(GENERATOR)
  list(APPEND generator_args -G "${GENERATOR}")
endif()
set(common_args ${generator_args} -DCMAKE_CXX_COMPILER=${CXX})
if(BUILD_TYPE)
  list(APPEND common_args -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
endif()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Configure + build + run a downstream CMake project in ${WORK_DIR}/build.
function(build_and_run source_dir exe)
  run(${CMAKE_COMMAND} -S ${source_dir} -B ${WORK_DIR}/build ${common_args} ${ARGN})
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
  run(${WORK_DIR}/build/${exe} ${WORK_DIR}/store)
endfunction()

if(MODE STREQUAL "install")
  if(NOT PREFIX)
    message(FATAL_ERROR "run.cmake: install needs -DPREFIX=...")
  endif()
  file(REMOVE_RECURSE "${PREFIX}")
  run(${CMAKE_COMMAND} -S ${STOWAGE_SOURCE_DIR} -B ${WORK_DIR}/build ${common_args}
      -DSTOWAGE_BUILD_TESTS=OFF -DSTOWAGE_BUILD_EXAMPLES=OFF -DSTOWAGE_BUILD_BENCHMARKS=OFF)
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)  # the stowage tool, when CLI11 is found
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/build --prefix ${PREFIX})
  set(tool "")
  if(EXISTS "${WORK_DIR}/build/tools/stowage")
    set(tool bin/stowage)
    run(${PREFIX}/bin/stowage --help)
  endif()
  foreach(f include/stowage/stowage.hpp include/stowage/stowage_fwd.hpp include/stowage/boost_serializer.hpp
            share/stowage/cmake/stowageConfig.cmake share/stowage/cmake/stowageConfigVersion.cmake
            share/stowage/cmake/stowageTargets.cmake share/stowage/cmake/StowageDependencies.cmake)
    if(NOT EXISTS "${PREFIX}/${f}")
      message(FATAL_ERROR "consumption test 'install': ${PREFIX}/${f} was not installed")
    endif()
  endforeach()
  # Header-only: nothing may land in lib/, and nothing but the tool in bin/.
  file(GLOB_RECURSE stray "${PREFIX}/lib/*" "${PREFIX}/bin/*")
  list(REMOVE_ITEM stray "${PREFIX}/${tool}")
  if(stray)
    message(FATAL_ERROR "consumption test 'install': a header-only install put files in lib/ or bin/: ${stray}")
  endif()
elseif(MODE STREQUAL "find_package")
  build_and_run(${APP_DIR} consumer -DSTOWAGE_CONSUME=find_package -DCMAKE_PREFIX_PATH=${PREFIX})
elseif(MODE STREQUAL "test_package")
  build_and_run(${STOWAGE_SOURCE_DIR}/test_package stowage_test_package -DCMAKE_PREFIX_PATH=${PREFIX})
  # As test_package/conanfile.py does with option tool: the installed tool
  # reads the store the program kept as sound.
  if(EXISTS "${PREFIX}/bin/stowage")
    run(${WORK_DIR}/build/stowage_test_package ${WORK_DIR}/store --keep)
    run(${PREFIX}/bin/stowage verify ${WORK_DIR}/store)
    run(${PREFIX}/bin/stowage dump ${WORK_DIR}/store)
  endif()
elseif(MODE STREQUAL "add_subdirectory")
  build_and_run(${APP_DIR} consumer -DSTOWAGE_CONSUME=add_subdirectory -DSTOWAGE_SOURCE_DIR=${STOWAGE_SOURCE_DIR})
elseif(MODE STREQUAL "fetchcontent")
  # What a user does to try a local checkout in place of the declared repository.
  build_and_run(${APP_DIR} consumer -DSTOWAGE_CONSUME=fetchcontent
      -DSTOWAGE_GIT_REPOSITORY=file://${STOWAGE_SOURCE_DIR} -DSTOWAGE_GIT_TAG=HEAD
      -DFETCHCONTENT_SOURCE_DIR_STOWAGE=${STOWAGE_SOURCE_DIR})
elseif(MODE STREQUAL "fetchcontent_git")
  # A real clone (of the committed HEAD: uncommitted changes are not in it).
  find_package(Git REQUIRED)
  execute_process(COMMAND ${GIT_EXECUTABLE} -C ${STOWAGE_SOURCE_DIR} rev-parse HEAD
                  OUTPUT_VARIABLE head OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumption test 'fetchcontent_git': ${STOWAGE_SOURCE_DIR} is not a git checkout")
  endif()
  build_and_run(${APP_DIR} consumer -DSTOWAGE_CONSUME=fetchcontent
      -DSTOWAGE_GIT_REPOSITORY=file://${STOWAGE_SOURCE_DIR} -DSTOWAGE_GIT_TAG=${head}
      -DFETCHCONTENT_BASE_DIR=${WORK_DIR}/deps)
elseif(MODE STREQUAL "single_header")
  # README: "copy single_include/stowage.hpp, compile with -std=c++20, link -llz4 (and -pthread)".
  file(COPY ${STOWAGE_SOURCE_DIR}/single_include/stowage.hpp DESTINATION ${WORK_DIR}/include/stowage)
  run(${CXX} -std=c++20 -Wall -Wextra -Wpedantic -Werror -I${WORK_DIR}/include
      ${APP_DIR}/main.cpp -o ${WORK_DIR}/consumer -llz4 -pthread)
  run(${WORK_DIR}/consumer ${WORK_DIR}/store)
else()
  message(FATAL_ERROR "run.cmake: unknown MODE '${MODE}'")
endif()

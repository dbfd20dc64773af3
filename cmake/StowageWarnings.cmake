# Warning and sanitizer flags for stowage's own tests, examples and benchmarks
# (never set on the stowage target itself, so consumers keep their own flags).
add_library(stowage_dev_flags INTERFACE)
target_compile_options(stowage_dev_flags INTERFACE -Wall -Wextra -Wpedantic -Werror)
if(STOWAGE_SANITIZE STREQUAL "address")
  target_compile_options(stowage_dev_flags INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(stowage_dev_flags INTERFACE -fsanitize=address,undefined)
  target_compile_definitions(stowage_dev_flags INTERFACE STOWAGE_SANITIZED=1)
elseif(STOWAGE_SANITIZE STREQUAL "thread")
  target_compile_options(stowage_dev_flags INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
  target_link_options(stowage_dev_flags INTERFACE -fsanitize=thread)
  target_compile_definitions(stowage_dev_flags INTERFACE STOWAGE_SANITIZED=1)
elseif(NOT STOWAGE_SANITIZE STREQUAL "")
  message(FATAL_ERROR "STOWAGE_SANITIZE must be '', 'address' or 'thread', not '${STOWAGE_SANITIZE}'")
endif()
if(NOT STOWAGE_SANITIZE STREQUAL "" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # g++ 12 with sanitizers and optimisation reports false -Wmaybe-uninitialized
  # inside libstdc++'s <regex> (pulled in by Catch2); not in stowage's code.
  target_compile_options(stowage_dev_flags INTERFACE -Wno-maybe-uninitialized)
endif()

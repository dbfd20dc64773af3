# Compiles each snippet of this folder, each misusing one policy (or the key
# or the serializer), and checks that it fails with exactly one error whose
# text starts as its "// expect: " line says: the concept check in Storage,
# not a cascade from inside the engine.
#   cmake -DCXX=<compiler> -DINCLUDE=<include dir> -DDIR=<this folder> -P check.cmake
file(GLOB cases "${DIR}/*.cpp")
foreach(src ${cases})
  get_filename_component(name ${src} NAME_WE)
  execute_process(COMMAND ${CXX} -std=c++20 -fsyntax-only -I${INCLUDE} ${src}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(FATAL_ERROR "${name}: compiled, but it misuses a policy")
  endif()
  string(REGEX MATCHALL "error:" errors "${out}${err}")
  list(LENGTH errors n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "${name}: ${n} errors, want exactly 1:\n${out}${err}")
  endif()
  file(STRINGS ${src} want REGEX "^// expect: ")
  string(REPLACE "// expect: " "" want "${want}")
  string(FIND "${out}${err}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${name}: the error does not say \"${want}\":\n${out}${err}")
  endif()
  message(STATUS "${name}: one error: ${want}...")
endforeach()

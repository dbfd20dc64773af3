// SPDX-License-Identifier: BSL-1.0
// The one file of separate_compilation_test that compiles the engine (built,
// like separate_compilation_test.cpp, with STOWAGE_SEPARATE_COMPILATION).
#include <stowage/engine_src.hpp>

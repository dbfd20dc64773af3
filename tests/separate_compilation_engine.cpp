// SPDX-License-Identifier: BSL-1.0
// The one file of separate_compilation_test that compiles the engine (built,
// like separate_compilation_test.cpp, with STOWAGE_SEPARATE_COMPILATION).
#include <stowage/engine_src.hpp>

// A second policy set, as a program that uses one would compile it here.
STOWAGE_COMPILE_ENGINE(stowage::NoCompression, stowage::LruEviction, stowage::NoLock);

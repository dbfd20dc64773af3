// SPDX-License-Identifier: BSL-1.0
// engine_src.hpp: include it in exactly one translation unit of a program
// built with STOWAGE_SEPARATE_COMPILATION (defined in every translation
// unit): it compiles the engine over the default policies (Lz4Compression,
// LruEviction, ThreadLock) there, once, with the handle (engine_handle.hpp)
// the other files reach it through. Those files include only the light part
// of stowage.hpp. This one gets every header.
//
// A program that also uses Storage over other policies compiles their engine
// here too, at namespace scope after this include:
//   STOWAGE_COMPILE_ENGINE(stowage::NoCompression, stowage::LruEviction, stowage::NoLock)
#pragma once

// engine.hpp brings in what stowage.hpp leaves out in the other files (the
// policies, chunks, cache, migrations) but verify.hpp.
#include "engine.hpp"
#include "stowage.hpp"
#include "verify.hpp"

/// Compiles Engine<Compression, Eviction, Lock> and its EngineHandle in this
/// translation unit (see the top of engine_src.hpp).
#define STOWAGE_COMPILE_ENGINE(Compression, Eviction, Lock)           \
  template class stowage::Engine<Compression, Eviction, Lock>;       \
  template class stowage::EngineHandle<Compression, Eviction, Lock>

STOWAGE_COMPILE_ENGINE(stowage::Lz4Compression, stowage::LruEviction, stowage::ThreadLock);

// SPDX-License-Identifier: BSL-1.0
// engine_src.hpp: include it in exactly one translation unit of a program
// built with STOWAGE_SEPARATE_COMPILATION (see the end of engine.hpp): it
// compiles the engine over the default policies there, once.
#pragma once

#include "stowage.hpp"

template class stowage::Engine<stowage::Lz4Compression, stowage::LruEviction, stowage::ThreadLock>;

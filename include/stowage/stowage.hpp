// SPDX-License-Identifier: BSL-1.0
// stowage.hpp: the one header to include. Brings in Storage, Database and every policy
// that needs no extra library (BoostSerializer lives in boost_serializer.hpp,
// which needs libboost_serialization).
//
// With STOWAGE_SEPARATE_COMPILATION (see engine_src.hpp) it brings in only
// what using a Storage over the default policies needs: Storage, its keys,
// values, options, errors and migration results. The engine, the policies'
// definitions, Migrator (migration.hpp) and verify (verify.hpp) then come
// from their own headers, or from the one file that includes
// <stowage/engine_src.hpp>.
#pragma once

#include "engine_handle.hpp"
#include "error.hpp"
#include "key_codec.hpp"
#include "migration_report.hpp"
#include "options.hpp"
#include "backup.hpp"
#include "database.hpp"
#include "serializer.hpp"
#include "storage.hpp"

#ifndef STOWAGE_DECLARES_ENGINE_ONLY
#include "cache.hpp"
#include "chunk.hpp"
#include "compression.hpp"
#include "concepts.hpp"
#include "engine.hpp"
#include "eviction.hpp"
#include "file.hpp"
#include "lock.hpp"
#include "migration.hpp"
#include "verify.hpp"
#endif

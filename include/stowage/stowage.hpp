// SPDX-License-Identifier: BSL-1.0
// stowage.hpp: the one header to include. Brings in Storage and every policy
// that needs no extra library (BoostSerializer lives in boost_serializer.hpp,
// which needs libboost_serialization).
#pragma once

#include "cache.hpp"
#include "chunk.hpp"
#include "compression.hpp"
#include "concepts.hpp"
#include "error.hpp"
#include "eviction.hpp"
#include "file.hpp"
#include "key_codec.hpp"
#include "lock.hpp"
#include "migration.hpp"
#include "options.hpp"
#include "serializer.hpp"
#include "storage.hpp"
#include "verify.hpp"

// SPDX-License-Identifier: BSL-1.0
// stowage_fwd.hpp: forward declarations of stowage's public types, for a
// header that only names them (a pointer or reference member, a parameter, a
// friend) and should not pay for <stowage/stowage.hpp>: this one includes no
// other header and costs nothing measurable to compile. Include
// <stowage/stowage.hpp> where a store is opened or used.
//
// The default template arguments of Storage and KeyCodec are given here, once
// (storage.hpp and key_codec.hpp include this header), so
// `stowage::Storage<Key, Value>*` needs nothing more.
#pragma once
// A macro guard as well: it also holds when this file and the copy of it
// inside single_include/stowage.hpp meet in one translation unit.
#ifndef STOWAGE_STOWAGE_FWD_HPP
#define STOWAGE_STOWAGE_FWD_HPP

namespace stowage {

// options.hpp
struct Options;
struct Stats;
enum class Durability;
enum class LogLevel;

// migration.hpp
class Migrator;
struct MigrationStep;
struct MigrationReport;
struct MigrationStatus;

// file.hpp
class FileSystem;

// error.hpp
class Error;
class IoError;
class CorruptionError;
class LockError;
class MigrationError;
class ValidationError;

// Policies: serializer.hpp, boost_serializer.hpp, compression.hpp, eviction.hpp, lock.hpp
struct BinarySerializer;
struct BoostSerializer;
struct NoCompression;
struct Lz4Compression;
struct LruEviction;
struct NoLock;
struct ThreadLock;
struct ProcessLock;

// engine.hpp, snapshot.hpp
struct RecordTypes;
class Snapshot;
template <class Compression, class Eviction, class Lock>
class Engine;

// Optional parts, each with a target of its own: digest.hpp and content_store.hpp
// (stowage::content), msgpack_serializer.hpp (stowage::msgpack_serializer)
struct Digest;
struct MsgpackSerializer;
template <class Value, class Serializer = BinarySerializer, class Compression = Lz4Compression,
          class Eviction = LruEviction, class Lock = ThreadLock>
class ContentStore;

// storage.hpp, collection.hpp, database.hpp
template <class Key, class Value, class Serializer = BinarySerializer, class Compression = Lz4Compression,
          class Eviction = LruEviction, class Lock = ThreadLock>
class Storage;
template <class Key, class Value, class Serializer = BinarySerializer, class Compression = Lz4Compression,
          class Eviction = LruEviction, class Lock = ThreadLock>
class Collection;
template <class Compression = Lz4Compression, class Eviction = LruEviction, class Lock = ThreadLock>
class Database;

// Customisation points: serializer.hpp, key_codec.hpp
template <class T>
struct ValueCodec;
template <class T, class Enable = void>
struct KeyCodec;

}  // namespace stowage

#endif  // STOWAGE_STOWAGE_FWD_HPP

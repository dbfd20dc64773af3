// SPDX-License-Identifier: BSL-1.0
// concepts.hpp: what each policy of Storage must provide, as C++20 concepts.
// Storage checks each with a static_assert whose message names what was
// expected, so a wrong user policy fails with one readable line.
//
//   Serializer  SerializerFor<S, Value>   (serializer.hpp)
//   Compression CompressionPolicy<C>      (compression.hpp)
//   Eviction    EvictionPolicy<E>         (eviction.hpp)
//   Lock        LockPolicy<L>             (lock.hpp)
//   Key         EncodableKey<K>           (key_codec.hpp)
#pragma once

#include <concepts>
#include <string>
#include <string_view>

#include "compression.hpp"
#include "eviction.hpp"
#include "key_codec.hpp"
#include "lock.hpp"

namespace stowage {

/// S turns T into bytes and back: static id() (recorded in the manifest),
/// serialize(const T&, std::string& out) appending to out, and
/// deserialize<T>(std::string_view) consuming all the bytes.
template <class S, class T>
concept SerializerFor = requires(const T& value, std::string& out, std::string_view in) {
  { S::id() } -> std::convertible_to<std::string_view>;
  S::serialize(value, out);
  { S::template deserialize<T>(in) } -> std::same_as<T>;
};

/// Optional for a Serializer: S::deserialize_into<T>(bytes, out) decodes like
/// deserialize<T>(bytes) but into an existing object, reusing its memory;
/// scans use it when present (BinarySerializer has it).
template <class S, class T>
concept SerializerDecodesInto = requires(std::string_view in, T& out) { S::template deserialize_into<T>(in, out); };

/// L is default-constructible and provides exclusive and shared locking plus
/// `static constexpr bool waits_for_other_processes`.
template <class L>
concept LockPolicy = std::default_initializable<L> && requires(L& l) {
  l.lock();
  l.unlock();
  l.lock_shared();
  l.unlock_shared();
  { L::waits_for_other_processes } -> std::convertible_to<bool>;
};

}  // namespace stowage

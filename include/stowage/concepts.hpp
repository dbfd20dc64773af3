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
#include "serializer.hpp"

namespace stowage {

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

// SPDX-License-Identifier: BSL-1.0
// expiry.hpp: records that expire (Collection::put(key, value, ttl),
// Collection::set_default_ttl). A collection that expires records has an
// entry of kind "expiry" in the MANIFEST's collection table (docs/format.md,
// "Expiry") holding its default time to live, and every value it stores
// from then on starts with its expiry time:
//
//   varint expiry time (microseconds since the Unix epoch; 0: never) | value
//
// Times are absolute (Options::clock), so expiry survives restarts. The
// engine knows which collections expire (ExpiringSet): its reads (get,
// contains, scans, counts, snapshots) skip a record whose time has come and
// hand the others over without the time, so an expired record is gone at
// once; merges turn expired records into tombstones (ExpiryPruner), so
// compaction reclaims their space. Expiry is set on an empty collection:
// the values stored before carry no time, and nothing in a value tells the
// two apart.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "detail/coding.hpp"
#include "detail/collection_prefix.hpp"
#include "error.hpp"

namespace stowage::detail {

/// Longest time to live (and latest expiry time) a value may carry, in
/// microseconds: about 2,283 years.
inline constexpr std::uint64_t kMaxExpiryMicros = std::uint64_t{1} << 56;

/// A collection's expiry, as its MANIFEST entry records it.
struct ExpiryRule {
  std::uint64_t ttl = 0;    ///< default time to live (us) of a put without one; 0: such puts never expire
  std::uint64_t start = 0;  ///< the store's last sequence when expiry began: later puts carry a time
};

/// The expiry time of a put made at now (us) living ttl (us); 0 (never) for
/// ttl 0.
inline std::uint64_t expiry_time(std::uint64_t now, std::uint64_t ttl) {
  if (ttl == 0) return 0;
  return std::min(now + std::min(ttl, kMaxExpiryMicros), kMaxExpiryMicros);
}

/// value with its expiry time in front.
inline std::string with_expiry(std::uint64_t expires, std::string_view value) {
  std::string out;
  out.reserve(varint_length(expires) + value.size());
  put_varint(out, expires);
  out.append(value);
  return out;
}

/// A stored value split into its expiry time and the value itself.
struct Expiring {
  std::uint64_t expires = 0;  ///< 0: never
  std::string_view value;
};

/// Splits a stored value of a collection that expires records; a value
/// without a whole time is a CorruptionError naming file (nullptr: a
/// buffered write).
inline Expiring split_expiry(std::string_view stored, const std::filesystem::path* file) {
  // The varint read inline: every record a scan of such a collection
  // returns passes here.
  std::uint64_t expires = 0;
  std::size_t i = 0;
  for (unsigned shift = 0;; shift += 7, ++i) {
    if (i == stored.size() || i == 10)
      throw CorruptionError(file ? *file : std::filesystem::path{}, 0,
                            "a value of a collection that expires records has no expiry time");
    const auto b = static_cast<unsigned char>(stored[i]);
    expires |= std::uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80u) == 0) break;
  }
  if (expires > kMaxExpiryMicros)
    throw CorruptionError(file ? *file : std::filesystem::path{}, 0,
                          "a value's expiry time " + std::to_string(expires) + " is out of range");
  return {expires, stored.substr(i + 1)};
}

/// Whether a value expiring at `expires` is gone at now (us).
inline bool expired_at(std::uint64_t expires, std::uint64_t now) { return expires != 0 && expires <= now; }

/// The ids of the collections whose values carry expiry times: read on
/// every lookup without a lock, so a set once published is never freed
/// before the set itself (ids are only added; a dropped collection's keys
/// are never read again).
class ExpiringSet {
 public:
  /// Whether collection id expires records. Call after reading a value:
  /// a value carrying a time was written after its id was added.
  bool contains(std::uint32_t id) const {
    const auto* ids = current_.load(std::memory_order_acquire);
    return ids != nullptr && std::binary_search(ids->begin(), ids->end(), id);
  }
  /// Whether the collection of key (parsed from its prefix) expires records.
  bool covers(std::string_view key) const {
    if (current_.load(std::memory_order_acquire) == nullptr) return false;
    const auto p = parse_collection_prefix(key);
    return p && contains(p->id);
  }
  /// Whether no collection expires records.
  bool empty() const { return current_.load(std::memory_order_acquire) == nullptr; }
  /// Makes the set ids (which holds every id it held: ids are never taken
  /// out while the store is open).
  void assign(std::vector<std::uint32_t> ids) {
    std::sort(ids.begin(), ids.end());
    std::lock_guard g(mu_);
    const auto* now = current_.load(std::memory_order_relaxed);
    if (now ? *now == ids : ids.empty()) return;  // most MANIFEST changes leave it as it is
    kept_.push_back(std::make_unique<const std::vector<std::uint32_t>>(std::move(ids)));
    current_.store(kept_.back().get(), std::memory_order_release);
  }

 private:
  std::atomic<const std::vector<std::uint32_t>*> current_{nullptr};
  std::mutex mu_;
  std::vector<std::unique_ptr<const std::vector<std::uint32_t>>> kept_;  // mu_
};

/// What a merge turns into tombstones: the expired records of the
/// collections that expire records, judged at one moment.
class ExpiryPruner {
 public:
  ExpiryPruner() = default;
  /// Prunes the collections in set (when any) at now (us).
  ExpiryPruner(const ExpiringSet* set, std::uint64_t now) : set_(set && !set->empty() ? set : nullptr), now_(now) {}
  /// Whether the put of value under key (the newest record of key in the
  /// merge) has expired. A value that does not parse is kept (a read
  /// reports it).
  bool expired(std::string_view key, std::string_view value) const {
    if (set_ == nullptr || !set_->covers(key)) return false;
    Reader r(value);
    try {
      return expired_at(r.varint(), now_);
    } catch (const CorruptionError&) {
      return false;
    }
  }

 private:
  const ExpiringSet* set_ = nullptr;
  std::uint64_t now_ = 0;
};

}  // namespace stowage::detail

// SPDX-License-Identifier: BSL-1.0
// snapshot.hpp: stowage::Snapshot, a consistent read-only moment of a store
// (Storage::snapshot, Database::snapshot). What it pins is the engine's
// (detail::SnapshotState, defined in engine.hpp): the commit sequence it was
// taken at, the write buffers and the Version of chunk files of that moment.
// Reads through it (Collection::View) see every commit up to that sequence
// and none after. Taking one copies no record.
#pragma once

#include <cstdint>
#include <memory>

#include "stowage_fwd.hpp"

namespace stowage {

namespace detail {
struct SnapshotState;  // engine.hpp
}  // namespace detail

/// A consistent read-only moment of a store: the records as they were
/// after the commit numbered sequence(), whatever is written afterwards.
/// Read a collection at it with Collection::at(snapshot) (Storage::snapshot()
/// gives that view of its records directly).
///
/// Cheap to take: it pins the write buffers of its moment and copies
/// nothing. While it lives, a write that replaces a record it can see keeps
/// the old version in the write buffer (memory the buffer's budget counts),
/// a buffer it pins stays in memory after its flush, and compactions keep
/// in the chunk files exactly the older versions of records it can see
/// (Stats::snapshots, Stats::snapshot_versions,
/// Stats::snapshot_pinned_bytes): it reads the current files at its
/// sequence, so a snapshot held under heavy writes costs the versions it
/// sees, not a copy of the store. Copies share the moment; the last one to
/// die releases it. Read it only while its store is open: after close() a
/// read throws ValidationError, after the store is destroyed it is
/// undefined (as for an iterator). Destroying it later is fine. A
/// compaction that cannot keep the versions of one key it sees together
/// (over about 1 GiB of values) makes its later reads throw Error instead
/// of answering without them.
class Snapshot {
 public:
  /// No snapshot: reading at it throws ValidationError.
  Snapshot() = default;

  /// The sequence number of the last commit it sees (Stats::last_sequence
  /// when it was taken; 0 for a store never written).
  std::uint64_t sequence() const noexcept { return sequence_; }
  /// Whether it holds a moment (a default-constructed one does not).
  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  template <class C, class E, class L>
  friend class Engine;
  Snapshot(std::shared_ptr<const detail::SnapshotState> state, const void* store, std::uint64_t sequence)
      : state_(std::move(state)), store_(store), sequence_(sequence) {}

  std::shared_ptr<const detail::SnapshotState> state_;
  const void* store_ = nullptr;  // the engine that took it
  std::uint64_t sequence_ = 0;
};

}  // namespace stowage

// SPDX-License-Identifier: BSL-1.0
// compression.hpp: block compression policies. A policy turns a block's raw
// bytes into stored bytes and back. Its one-byte `id` is written in front of
// every stored block, so a reader always knows how a block was stored:
//   0 = stored as is (NoCompression), 1 = LZ4 block format (Lz4Compression),
//   2..15 reserved for future built-in policies, 16..255 for user policies.
// Invariants every policy keeps:
//  - compress(in, out) replaces `out` with bytes that decompress to exactly `in`;
//  - decompress(in, raw_size, out) writes exactly raw_size bytes to `out` (a
//    caller-owned buffer of raw_size bytes) and never writes past it; any input
//    that does not decode to exactly raw_size bytes is a CorruptionError with
//    an empty path (the caller rethrows it naming the file and offset).
// When a block is stored uncompressed: the chunk writer calls compress() on
// every block (unless the policy is NoCompression) and keeps the result only
// when it saves at least an eighth (stored * 8 <= raw * 7) and raw is at most
// 255 times stored plus 64 bytes (chunk_format::kMaxRatio, kRatioSlack: the
// most a reader believes, so no crafted header makes it allocate far more
// than the file holds). Otherwise the block is written as is, with id 0, and
// read back without calling the policy: a policy never sees a block it did
// not shrink, and its decompress() never sees id 0.
#pragma once

#include <climits>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include <lz4.h>

#include "error.hpp"

namespace stowage {

/// Stores blocks as they are.
struct NoCompression {
  /// Written in every block header stored by this policy.
  static constexpr std::uint8_t id = 0;
  /// Recorded in the store's metadata.
  static constexpr std::string_view name = "none";

  /// Replaces `out` with a copy of `in`.
  static void compress(std::string_view in, std::string& out) { out.assign(in.data(), in.size()); }

  /// Copies `in` to `out`; `in` must be exactly raw_size bytes, else CorruptionError.
  static void decompress(std::string_view in, std::size_t raw_size, char* out) {
    if (in.size() != raw_size)
      throw CorruptionError("uncompressed block holds " + std::to_string(in.size()) + " bytes but declares " +
                            std::to_string(raw_size));
    if (raw_size != 0) std::memcpy(out, in.data(), raw_size);
  }
};

/// LZ4 block format (LZ4_compress_default; decoded only with LZ4_decompress_safe
/// into the caller's buffer of the declared size).
struct Lz4Compression {
  /// Written in every block header stored by this policy.
  static constexpr std::uint8_t id = 1;
  /// Recorded in the store's metadata.
  static constexpr std::string_view name = "lz4";

  /// Replaces `out` with the LZ4 block encoding of `in`; inputs over
  /// LZ4_MAX_INPUT_SIZE bytes are a ValidationError.
  static void compress(std::string_view in, std::string& out) {
    if (in.size() > static_cast<std::size_t>(LZ4_MAX_INPUT_SIZE))
      throw ValidationError("stowage: cannot LZ4-compress " + std::to_string(in.size()) +
                            " bytes: the limit is " + std::to_string(LZ4_MAX_INPUT_SIZE) + " (store smaller values)");
    const int n = static_cast<int>(in.size());
    out.resize(static_cast<std::size_t>(LZ4_compressBound(n)));
    const int written = LZ4_compress_default(in.data(), out.data(), n, static_cast<int>(out.size()));
    if (written <= 0) throw ValidationError("stowage: LZ4 compression of " + std::to_string(in.size()) + " bytes failed");
    out.resize(static_cast<std::size_t>(written));
  }

  /// Decodes `in` into exactly raw_size bytes at `out`; anything else
  /// (malformed input, a different decoded length) is a CorruptionError.
  static void decompress(std::string_view in, std::size_t raw_size, char* out) {
    if (in.size() > static_cast<std::size_t>(INT_MAX) || raw_size > static_cast<std::size_t>(INT_MAX))
      throw CorruptionError("lz4 block of " + std::to_string(in.size()) + " bytes declaring " +
                            std::to_string(raw_size) + " raw bytes is beyond LZ4's limits");
    char empty = 0;
    const int got = LZ4_decompress_safe(in.data(), raw_size == 0 ? &empty : out, static_cast<int>(in.size()),
                                        static_cast<int>(raw_size));
    if (got < 0 || static_cast<std::size_t>(got) != raw_size)
      throw CorruptionError("lz4 block of " + std::to_string(in.size()) +
                            " bytes is malformed or does not decode to the declared " + std::to_string(raw_size) +
                            " bytes");
  }
};

namespace detail {
/// True for the policies stowage ships (they own ids 0..15).
template <class C>
inline constexpr bool is_builtin_compression = std::is_same_v<C, NoCompression> || std::is_same_v<C, Lz4Compression>;
}  // namespace detail

/// A block compression policy: a constant `std::uint8_t id` (user policies use
/// 16..255), a constant `name`, and static compress/decompress with the
/// signatures and contract of NoCompression's.
template <class C>
concept CompressionPolicy =
    requires(std::string_view in, std::string& out, std::size_t raw_size, char* dst) {
      requires std::same_as<std::remove_cvref_t<decltype(C::id)>, std::uint8_t>;
      typename std::integral_constant<std::uint8_t, C::id>;  // a constant expression
      requires std::convertible_to<decltype(C::name), std::string_view>;
      typename std::integral_constant<std::size_t, std::string_view(C::name).size()>;
      C::compress(in, out);
      C::decompress(in, raw_size, dst);
    } && (detail::is_builtin_compression<C> || C::id >= 16);

namespace detail {

/// Decompresses a block stored with compression `id`: 0 and 1 are always
/// understood, Compression::id by the policy. Returns false for any other id
/// (nothing is written); decoding failures throw CorruptionError (empty path).
template <CompressionPolicy Compression>
bool decompress_by_id(std::uint8_t id, std::string_view in, std::size_t raw_size, char* out) {
  if (id == NoCompression::id) {
    NoCompression::decompress(in, raw_size, out);
  } else if (id == Lz4Compression::id) {
    Lz4Compression::decompress(in, raw_size, out);
  } else if (id == Compression::id) {
    Compression::decompress(in, raw_size, out);
  } else {
    return false;
  }
  return true;
}

/// Whether a reader parameterised with Compression can decode blocks stored with `id`.
template <CompressionPolicy Compression>
constexpr bool can_decompress(std::uint8_t id) {
  return id == NoCompression::id || id == Lz4Compression::id || id == Compression::id;
}

}  // namespace detail
}  // namespace stowage

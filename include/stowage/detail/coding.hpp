// SPDX-License-Identifier: BSL-1.0
// detail/coding.hpp: the byte-level helpers every on-disk format uses.
// Integers are little-endian; varints are LEB128 (at most 10 bytes for 64 bits);
// checksums are XXH3-64. A Reader never reads past its end: every get_* checks
// the remaining length first and throws CorruptionError naming file and offset.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

// xxHash is used header-only: its functions are inlined here, so nothing
// needs linking. The macro is set only around this include.
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#define STOWAGE_SET_XXH_INLINE_ALL
#endif
#include <xxhash.h>
#ifdef STOWAGE_SET_XXH_INLINE_ALL
#undef XXH_INLINE_ALL
#undef STOWAGE_SET_XXH_INLINE_ALL
#endif

#include "../error.hpp"

namespace stowage::detail {

inline void put_fixed16(std::string& out, std::uint16_t v) {
  char b[2] = {static_cast<char>(v), static_cast<char>(v >> 8)};
  out.append(b, 2);
}
inline void put_fixed32(std::string& out, std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 4);
}
inline void put_fixed64(std::string& out, std::uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 8);
}
inline void encode_fixed32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline void encode_fixed64(char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline std::uint16_t decode_fixed16(const char* p) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(p[0]) | (static_cast<unsigned char>(p[1]) << 8));
}
inline std::uint32_t decode_fixed32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline std::uint64_t decode_fixed64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline void put_varint(std::string& out, std::uint64_t v) {
  char b[10];
  int n = 0;
  while (v >= 0x80) {
    b[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  b[n++] = static_cast<char>(v);
  out.append(b, static_cast<std::size_t>(n));
}
inline std::size_t varint_length(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
inline void put_bytes(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

/// XXH3-64 of a byte range (with a seed so different record kinds never share
/// checksums by accident).
inline std::uint64_t checksum(std::string_view data, std::uint64_t seed = 0) {
  return XXH3_64bits_withSeed(data.data(), data.size(), seed);
}

/// Bounds-checked cursor over bytes read from `file`, starting at file offset
/// `base`. Every failure is a CorruptionError naming the file and offset.
class Reader {
 public:
  Reader(std::string_view data, const std::filesystem::path* file = nullptr, std::uint64_t base = 0)
      : data_(data), file_(file), base_(base) {}

  /// A cursor over bytes decoded from the frame at `frame_offset` of `file`
  /// (a block after decompression): errors name the frame's offset, `kind`
  /// and the position inside the decoded bytes.
  static Reader decoded(std::string_view data, const std::filesystem::path& file, std::uint64_t frame_offset,
                        const char* kind) {
    Reader r(data, &file, frame_offset);
    r.kind_ = kind;
    return r;
  }

  std::size_t remaining() const { return data_.size() - pos_; }
  bool empty() const { return pos_ == data_.size(); }
  std::size_t position() const { return pos_; }
  std::uint64_t file_offset() const { return base_ + pos_; }

  [[noreturn]] [[gnu::cold]] [[gnu::noinline]] void fail(const std::string& what) const {
    const auto& file = file_ ? *file_ : std::filesystem::path{};
    if (kind_) throw CorruptionError(file, base_, std::string(kind_) + ", decoded byte " + std::to_string(pos_) + ": " + what);
    throw CorruptionError(file, base_ + pos_, what);
  }
  void need(std::size_t n, const char* what) const {
    if (remaining() < n) [[unlikely]]
      fail_truncated(what);
  }
  std::uint8_t u8(const char* what = "byte") {
    need(1, what);
    return static_cast<std::uint8_t>(data_[pos_++]);
  }
  std::uint16_t u16(const char* what = "fixed16") {
    need(2, what);
    auto v = decode_fixed16(data_.data() + pos_);
    pos_ += 2;
    return v;
  }
  std::uint32_t u32(const char* what = "fixed32") {
    need(4, what);
    auto v = decode_fixed32(data_.data() + pos_);
    pos_ += 4;
    return v;
  }
  std::uint64_t u64(const char* what = "fixed64") {
    need(8, what);
    auto v = decode_fixed64(data_.data() + pos_);
    pos_ += 8;
    return v;
  }
  std::uint64_t varint(const char* what = "varint") {
    // Most varints in blocks and records (lengths, small counts) are one byte.
    if (pos_ < data_.size()) [[likely]] {
      const auto b = static_cast<unsigned char>(data_[pos_]);
      if (b < 0x80) {
        ++pos_;
        return b;
      }
    }
    return varint_long(what);
  }
  /// `n` raw bytes, as a view into the underlying buffer.
  std::string_view bytes(std::size_t n, const char* what = "bytes") {
    need(n, what);
    auto v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  /// A varint length followed by that many bytes; the length is checked
  /// against what remains before anything is allocated.
  std::string_view length_prefixed(const char* what = "string") {
    auto n = varint(what);
    if (n > remaining())
      fail(std::string("length ") + std::to_string(n) + " of " + what + " exceeds the " + std::to_string(remaining()) +
           " bytes left");
    return bytes(static_cast<std::size_t>(n), what);
  }

 private:
  [[noreturn]] [[gnu::cold]] [[gnu::noinline]] void fail_truncated(const char* what) const {
    fail(std::string("truncated ") + what);
  }
  std::uint64_t varint_long(const char* what) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1, what);
      auto b = static_cast<unsigned char>(data_[pos_++]);
      if (shift == 63 && b > 1) fail(std::string("overlong ") + what);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(std::string("overlong ") + what);
  }

  std::string_view data_;
  const std::filesystem::path* file_;
  std::uint64_t base_;
  const char* kind_ = nullptr;  // set by decoded(): errors are relative to a frame
  std::size_t pos_ = 0;
};

}  // namespace stowage::detail

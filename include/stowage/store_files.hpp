// SPDX-License-Identifier: BSL-1.0
// store_files.hpp: what the engine and the readers that work without it
// (verify.hpp, the `stowage` tool) agree on besides the file formats: the
// names of chunk files in a store's directory and the largest key and value
// a store holds. (WAL segment names live in wal.hpp, with the WAL format.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace stowage {

/// Largest encoded key a store accepts.
inline constexpr std::size_t kMaxKeyBytes = 64 * 1024;
/// Largest encoded value a store accepts.
inline constexpr std::size_t kMaxValueBytes = std::size_t{1} << 30;

namespace detail {

/// An encoded key for messages: "0x" and the hex of its first max_bytes
/// bytes ("..." when there are more).
inline std::string hex_key(std::string_view encoded, std::size_t max_bytes = 64) {
  static const char* hex = "0123456789abcdef";
  std::string out = "0x";
  for (unsigned char c : encoded.substr(0, max_bytes)) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return encoded.size() > max_bytes ? out + "..." : out;
}

/// "000042.chunk" for chunk file 42.
inline std::string chunk_file_name(std::uint64_t number) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06llu.chunk", static_cast<unsigned long long>(number));
  return buf;
}

/// The number of a chunk file name ("NNNNNN.chunk", up to 18 digits); nullopt for any other name.
inline std::optional<std::uint64_t> parse_chunk_file_name(std::string_view name) {
  constexpr std::string_view ext = ".chunk";
  if (name.size() <= ext.size() || name.substr(name.size() - ext.size()) != ext) return std::nullopt;
  auto digits = name.substr(0, name.size() - ext.size());
  if (digits.size() > 18) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

}  // namespace detail
}  // namespace stowage

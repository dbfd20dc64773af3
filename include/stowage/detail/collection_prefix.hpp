// SPDX-License-Identifier: BSL-1.0
// detail/collection_prefix.hpp: the bytes that start every key of a
// collection in a store of the prefixed layout (manifest format 5, see
// docs/format.md, "Collections"). Collection id 0 is the default collection
// (Storage's); named collections take 1, 2, ... and never reuse an id.
//
//   id < 0xF0:   one byte, the id
//   otherwise:   one byte 0xF0 + (n - 1), then the id in n big-endian bytes
//                (n = 1 to 4, the fewest that hold it)
//
// The first byte says how long the prefix is, so no prefix is the start of
// another: the keys of two collections never interleave.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace stowage::detail {

/// First byte of a prefix that holds its id in the bytes after it.
inline constexpr unsigned kLongPrefixByte = 0xF0;

/// The key prefix of collection id.
inline std::string collection_prefix(std::uint32_t id) {
  std::string p;
  if (id < kLongPrefixByte) {
    p.push_back(static_cast<char>(id));
    return p;
  }
  unsigned n = 1;
  while (n < 4 && (id >> (8 * n)) != 0) ++n;
  p.push_back(static_cast<char>(kLongPrefixByte + n - 1));
  for (unsigned i = n; i-- > 0;) p.push_back(static_cast<char>((id >> (8 * i)) & 0xff));
  return p;
}

/// A collection prefix read from the start of a key.
struct ParsedPrefix {
  std::uint32_t id = 0;
  std::size_t size = 0;  ///< its bytes: the collection's own key starts here
};

/// The prefix key starts with, or nullopt when it starts with none (an
/// empty key, a long form cut short, or a long form whose id would fit a
/// shorter one: every id has exactly one prefix).
inline std::optional<ParsedPrefix> parse_collection_prefix(std::string_view key) {
  if (key.empty()) return std::nullopt;
  const auto b = static_cast<unsigned char>(key[0]);
  if (b < kLongPrefixByte) return ParsedPrefix{b, 1};
  const unsigned n = b - kLongPrefixByte + 1;
  if (n > 4 || key.size() < 1 + n) return std::nullopt;
  std::uint32_t id = 0;
  for (unsigned i = 0; i < n; ++i) id = (id << 8) | static_cast<unsigned char>(key[1 + i]);
  if (collection_prefix(id).size() != 1 + n) return std::nullopt;
  return ParsedPrefix{id, 1 + n};
}

}  // namespace stowage::detail

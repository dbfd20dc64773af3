// SPDX-License-Identifier: BSL-1.0
// key_codec.hpp: order-preserving key encodings (KeyCodec<T>), so the store
// can compare keys as raw bytes.
//
// Invariant, for every supported T and all a, b:
//   memcmp-order(encode(a), encode(b)) == (a < b ? -1 : b < a ? 1 : 0) under std::less<T>,
// encode(a) == encode(b) exactly when neither is less than the other, and
// every encoding is self-delimiting (no encoding is a proper prefix of
// another), so concatenations of encodings compare element by element.
//
// Format:
//   unsigned integers   big-endian, fixed width
//   signed integers     sign bit flipped, then big-endian (char follows its own signedness)
//   bool                1 byte, 0 or 1
//   enums               as their underlying integer
//   float, double       -0.0 written as +0.0; IEEE bits with the sign bit set
//                       (positive) or all bits flipped (negative), big-endian;
//                       NaN is refused with ValidationError
//   std::string         bytes with each 0x00 written 0x00 0xFF, ended by 0x00 0x01
//   pair, tuple, array  the element encodings, concatenated
//   std::vector         each element preceded by 0x01, the whole ended by 0x00
//   std::optional       0x00 when empty, else 0x01 then the value
// Decoding accepts only what encode produces (canonical form) and reports
// anything else as CorruptionError (empty file path, offset inside the key).
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "error.hpp"
#include "stowage_fwd.hpp"

namespace stowage {

/// Order-preserving codec for key type T. User key types specialise it with
///   static void encode(const T& key, std::string& out);  // append order-preserving bytes
///   static T decode(std::string_view& in);                // consume from the front; CorruptionError on bad bytes
///   static std::string name();                            // names the order, recorded in the manifest
/// and optionally
///   static void decode_into(std::string_view& in, T& out); // decode() into an existing object
/// which scans use to reuse one key object's memory for every record.
/// The second parameter is for SFINAE / constrained partial specialisations.
template <class T, class Enable>  // Enable = void: in stowage_fwd.hpp
struct KeyCodec;

/// True when KeyCodec<T> provides encode, decode and name.
template <class T>
concept EncodableKey = requires(const T& key, std::string& out, std::string_view& in) {
  KeyCodec<T>::encode(key, out);
  { KeyCodec<T>::decode(in) } -> std::convertible_to<T>;
  { KeyCodec<T>::name() } -> std::convertible_to<std::string>;
};

namespace detail::key {

template <class>
inline constexpr bool always_false = false;

/// Throws CorruptionError for byte `at` of the key.
[[noreturn]] inline void fail(std::size_t at, const std::string& what) {
  throw CorruptionError(std::filesystem::path{}, at, "bad key: " + what);
}

template <class U>
void put_be(std::string& out, U u) {
  char b[sizeof(U)];
  for (std::size_t i = sizeof(U); i-- > 0;) {
    b[i] = static_cast<char>(u & 0xff);
    if constexpr (sizeof(U) > 1) u = static_cast<U>(u >> 8);
  }
  out.append(b, sizeof(U));
}
template <class U>
U take_be(std::string_view& in, std::size_t base, const char* what) {
  if (in.size() < sizeof(U)) fail(base, std::string("truncated ") + what);
  U u = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    if constexpr (sizeof(U) > 1) u = static_cast<U>(u << 8);
    u = static_cast<U>(u | static_cast<unsigned char>(in[i]));
  }
  in.remove_prefix(sizeof(U));
  return u;
}

/// Built-in codecs also offer decode_at(in, base), reporting offsets relative
/// to the whole key (`base` = offset of in.data() inside it).
template <class T>
concept has_decode_at = requires(std::string_view& in, std::size_t base) {
  { KeyCodec<T>::decode_at(in, base) } -> std::convertible_to<T>;
};

/// Decodes one element of a compound key starting at offset `base`.
template <class T>
T decode_element(std::string_view& in, std::size_t base) {
  if constexpr (has_decode_at<T>) {
    return KeyCodec<T>::decode_at(in, base);
  } else {
    const std::string_view before = in;
    T v = KeyCodec<T>::decode(in);
    if (in.size() > before.size() || in.data() != before.data() + (before.size() - in.size()))
      throw Error("stowage: a KeyCodec's decode() must consume bytes from the front of its input");
    return v;
  }
}

template <class... T>
std::string name_list() {
  std::string s;
  ((s += (s.empty() ? "" : ","), s += std::string(KeyCodec<T>::name())), ...);
  return s;
}

}  // namespace detail::key

/// bool: one byte, 0 or 1.
template <>
struct KeyCodec<bool> {
  /// Appends 0x00 or 0x01.
  static void encode(bool v, std::string& out) { out.push_back(v ? '\1' : '\0'); }
  /// Reads one byte; anything but 0 or 1 is corruption.
  static bool decode_at(std::string_view& in, std::size_t base) {
    if (in.empty()) detail::key::fail(base, "truncated bool");
    const auto b = static_cast<unsigned char>(in[0]);
    if (b > 1) detail::key::fail(base, "bad bool byte");
    in.remove_prefix(1);
    return b == 1;
  }
  /// Reads one byte; anything but 0 or 1 is corruption.
  static bool decode(std::string_view& in) { return decode_at(in, 0); }
  /// "bool".
  static std::string name() { return "bool"; }
};

/// Integers: big-endian fixed width; signed ones with the sign bit flipped.
template <class T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
struct KeyCodec<T> {
  /// The unsigned type of the same width.
  using U = std::make_unsigned_t<T>;
  /// Bit flipped so negative numbers sort first (0 for unsigned types).
  static constexpr U flip = std::is_signed_v<T> ? static_cast<U>(U{1} << (sizeof(T) * 8 - 1)) : U{0};

  /// Appends sizeof(T) bytes.
  static void encode(T v, std::string& out) { detail::key::put_be(out, static_cast<U>(static_cast<U>(v) ^ flip)); }
  /// Reads sizeof(T) bytes.
  static T decode_at(std::string_view& in, std::size_t base) {
    return static_cast<T>(static_cast<U>(detail::key::take_be<U>(in, base, "integer") ^ flip));
  }
  /// Reads sizeof(T) bytes.
  static T decode(std::string_view& in) { return decode_at(in, 0); }
  /// "i8".."i64" or "u8".."u64" (by signedness and width, so char names its order).
  static std::string name() {
    std::string s(1, std::is_signed_v<T> ? 'i' : 'u');
    s += std::to_string(sizeof(T) * 8);
    return s;
  }
};

/// Enums: as their underlying integer.
template <class T>
  requires std::is_enum_v<T>
struct KeyCodec<T> {
  /// The underlying integer type.
  using Base = KeyCodec<std::underlying_type_t<T>>;
  /// Appends the underlying value's encoding.
  static void encode(T v, std::string& out) { Base::encode(static_cast<std::underlying_type_t<T>>(v), out); }
  /// Reads the underlying value.
  static T decode_at(std::string_view& in, std::size_t base) { return static_cast<T>(Base::decode_at(in, base)); }
  /// Reads the underlying value.
  static T decode(std::string_view& in) { return decode_at(in, 0); }
  /// The underlying type's name: the order is the same.
  static std::string name() { return Base::name(); }
};

/// float and double: total order of the IEEE bits; NaN refused, -0.0 == +0.0.
template <class T>
  requires(std::is_same_v<T, float> || std::is_same_v<T, double>)
struct KeyCodec<T> {
  static_assert(std::numeric_limits<T>::is_iec559, "stowage: floating-point keys need IEEE-754 types");
  /// The integer type holding the bits.
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  /// The IEEE sign bit.
  static constexpr U sign = U{1} << (sizeof(T) * 8 - 1);

  /// Appends sizeof(T) bytes; throws ValidationError for NaN.
  static void encode(T v, std::string& out) {
    if (std::isnan(v)) throw ValidationError("stowage: NaN cannot be a key: std::less has no order for it");
    if (v == 0) v = 0;  // -0.0 and +0.0 are equivalent under std::less: one encoding
    U bits = std::bit_cast<U>(v);
    bits = (bits & sign) ? static_cast<U>(~bits) : static_cast<U>(bits | sign);
    detail::key::put_be(out, bits);
  }
  /// Reads sizeof(T) bytes; NaN and -0.0 (never written) are corruption.
  static T decode_at(std::string_view& in, std::size_t base) {
    U bits = detail::key::take_be<U>(in, base, "floating-point number");
    bits = (bits & sign) ? static_cast<U>(bits & ~sign) : static_cast<U>(~bits);
    const T v = std::bit_cast<T>(bits);
    if (std::isnan(v)) fail_at(base, "NaN");
    if (v == 0 && std::signbit(v)) fail_at(base, "non-canonical -0.0");
    return v;
  }
  /// Reads sizeof(T) bytes; NaN and -0.0 (never written) are corruption.
  static T decode(std::string_view& in) { return decode_at(in, 0); }
  /// "f32" or "f64".
  static std::string name() { return sizeof(T) == 4 ? "f32" : "f64"; }

 private:
  [[noreturn]] static void fail_at(std::size_t base, const char* what) { detail::key::fail(base, what); }
};

/// std::string: 0x00 escaped as 0x00 0xFF, terminated by 0x00 0x01.
template <>
struct KeyCodec<std::string> {
  /// Appends the escaped bytes and the terminator.
  static void encode(const std::string& v, std::string& out) {
    out.reserve(out.size() + v.size() + 2);
    std::size_t from = 0;
    for (std::size_t z; (z = v.find('\0', from)) != std::string::npos; from = z + 1) {
      out.append(v, from, z - from);
      out.append("\0\xff", 2);
    }
    out.append(v, from, std::string::npos);
    out.append("\0\x01", 2);
  }
  /// Reads up to and including the terminator.
  static std::string decode_at(std::string_view& in, std::size_t base) {
    std::string s;
    decode_into_at(in, base, s);
    return s;
  }
  /// Reads up to and including the terminator.
  static std::string decode(std::string_view& in) { return decode_at(in, 0); }
  /// Reads up to and including the terminator into `out`, reusing its
  /// capacity (a scan decodes every key into the same string). On a
  /// CorruptionError `out` holds an unspecified prefix.
  static void decode_into(std::string_view& in, std::string& out) { decode_into_at(in, 0, out); }
  /// decode_into, reporting offsets from `base` (see decode_at).
  static void decode_into_at(std::string_view& in, std::size_t base, std::string& out) {
    out.clear();
    std::size_t from = 0;
    for (;;) {
      const std::size_t z = in.find('\0', from);
      if (z == std::string_view::npos) detail::key::fail(base + in.size(), "unterminated string");
      out.append(in.substr(from, z - from));
      if (z + 1 == in.size()) detail::key::fail(base + z + 1, "truncated string escape");
      const auto next = static_cast<unsigned char>(in[z + 1]);
      if (next == 0x01) {
        in.remove_prefix(z + 2);
        return;
      }
      if (next != 0xff) detail::key::fail(base + z + 1, "bad string escape");
      out.push_back('\0');
      from = z + 2;
    }
  }
  /// "str".
  static std::string name() { return "str"; }
};

/// std::pair: first then second.
template <class A, class B>
  requires(EncodableKey<A> && EncodableKey<B>)
struct KeyCodec<std::pair<A, B>> {
  /// Appends both encodings.
  static void encode(const std::pair<A, B>& v, std::string& out) {
    KeyCodec<A>::encode(v.first, out);
    KeyCodec<B>::encode(v.second, out);
  }
  /// Reads both elements.
  static std::pair<A, B> decode_at(std::string_view& in, std::size_t base) {
    const std::size_t start = in.size();
    A a = detail::key::decode_element<A>(in, base);
    B b = detail::key::decode_element<B>(in, base + (start - in.size()));
    return {std::move(a), std::move(b)};
  }
  /// Reads both elements.
  static std::pair<A, B> decode(std::string_view& in) { return decode_at(in, 0); }
  /// "pair<A,B>".
  static std::string name() { return "pair<" + detail::key::name_list<A, B>() + ">"; }
};

/// std::tuple: the elements in order.
template <class... E>
  requires(EncodableKey<E> && ...)
struct KeyCodec<std::tuple<E...>> {
  /// Appends every element's encoding.
  static void encode(const std::tuple<E...>& v, std::string& out) {
    std::apply([&](const E&... e) { (KeyCodec<E>::encode(e, out), ...); }, v);
  }
  /// Reads every element.
  static std::tuple<E...> decode_at(std::string_view& in, std::size_t base) {
    const std::size_t start = in.size();
    // Braced initialisation evaluates the elements left to right.
    return std::tuple<E...>{detail::key::decode_element<E>(in, base + (start - in.size()))...};
  }
  /// Reads every element.
  static std::tuple<E...> decode(std::string_view& in) { return decode_at(in, 0); }
  /// "tup<A,B,...>".
  static std::string name() { return "tup<" + detail::key::name_list<E...>() + ">"; }
};

/// std::array: the N elements in order.
template <class E, std::size_t N>
  requires EncodableKey<E>
struct KeyCodec<std::array<E, N>> {
  /// Appends every element's encoding.
  static void encode(const std::array<E, N>& v, std::string& out) {
    for (const E& e : v) KeyCodec<E>::encode(e, out);
  }
  /// Reads N elements.
  static std::array<E, N> decode_at(std::string_view& in, std::size_t base) {
    const std::size_t start = in.size();
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return std::array<E, N>{((void)I, detail::key::decode_element<E>(in, base + (start - in.size())))...};
    }(std::make_index_sequence<N>{});
  }
  /// Reads N elements.
  static std::array<E, N> decode(std::string_view& in) { return decode_at(in, 0); }
  /// "arr<E,N>".
  static std::string name() { return "arr<" + std::string(KeyCodec<E>::name()) + "," + std::to_string(N) + ">"; }
};

/// std::vector: 0x01 before each element, 0x00 at the end.
template <class E>
  requires EncodableKey<E>
struct KeyCodec<std::vector<E>> {
  /// Appends the marked elements and the end byte.
  static void encode(const std::vector<E>& v, std::string& out) {
    for (const auto& e : v) {
      out.push_back('\1');
      KeyCodec<E>::encode(e, out);
    }
    out.push_back('\0');
  }
  /// Reads elements up to the end byte (each costs at least its marker byte).
  static std::vector<E> decode_at(std::string_view& in, std::size_t base) {
    const std::size_t start = in.size();
    std::vector<E> v;
    for (;;) {
      const std::size_t at = base + (start - in.size());
      if (in.empty()) detail::key::fail(at, "unterminated vector");
      const auto marker = static_cast<unsigned char>(in[0]);
      in.remove_prefix(1);
      if (marker == 0x00) return v;
      if (marker != 0x01) detail::key::fail(at, "bad vector element marker");
      v.push_back(detail::key::decode_element<E>(in, at + 1));
    }
  }
  /// Reads elements up to the end byte.
  static std::vector<E> decode(std::string_view& in) { return decode_at(in, 0); }
  /// "vec<E>".
  static std::string name() { return "vec<" + std::string(KeyCodec<E>::name()) + ">"; }
};

/// std::optional: 0x00 when empty (sorts first), else 0x01 and the value.
template <class E>
  requires EncodableKey<E>
struct KeyCodec<std::optional<E>> {
  /// Appends the flag and the value.
  static void encode(const std::optional<E>& v, std::string& out) {
    out.push_back(v ? '\1' : '\0');
    if (v) KeyCodec<E>::encode(*v, out);
  }
  /// Reads the flag and the value.
  static std::optional<E> decode_at(std::string_view& in, std::size_t base) {
    if (in.empty()) detail::key::fail(base, "truncated optional");
    const auto flag = static_cast<unsigned char>(in[0]);
    if (flag > 1) detail::key::fail(base, "bad optional flag");
    in.remove_prefix(1);
    if (flag == 0) return std::nullopt;
    return detail::key::decode_element<E>(in, base + 1);
  }
  /// Reads the flag and the value.
  static std::optional<E> decode(std::string_view& in) { return decode_at(in, 0); }
  /// "opt<E>".
  static std::string name() { return "opt<" + std::string(KeyCodec<E>::name()) + ">"; }
};

namespace detail::key {
template <class T>
void require_encodable() {
  static_assert(always_false<T>,
                "stowage: T cannot be a key: specialise stowage::KeyCodec<T> with static void encode(const T&, "
                "std::string&), static T decode(std::string_view&) and static std::string name() (pair, tuple, "
                "array, vector and optional keys need a KeyCodec for every element type)");
}
}  // namespace detail::key

/// Appends the order-preserving encoding of `key` to `out`.
template <class T>
void encode_key(const T& key, std::string& out) {
  if constexpr (EncodableKey<T>)
    KeyCodec<T>::encode(key, out);
  else
    detail::key::require_encodable<T>();
}

/// The order-preserving encoding of `key`.
template <class T>
std::string encode_key(const T& key) {
  std::string out;
  encode_key(key, out);
  return out;
}

/// Decodes a key that must take exactly `bytes`; CorruptionError otherwise.
template <class T>
T decode_key(std::string_view bytes) {
  if constexpr (EncodableKey<T>) {
    std::string_view in = bytes;
    T key = detail::key::decode_element<T>(in, 0);
    if (!in.empty())
      detail::key::fail(bytes.size() - in.size(), std::to_string(in.size()) + " trailing bytes after the key");
    return key;
  } else {
    detail::key::require_encodable<T>();
    throw Error("stowage: not a key type");  // never compiled: the static_assert above fires
  }
}

namespace detail::key {
/// True when KeyCodec<T> offers the optional `static void decode_into(
/// std::string_view& in, T& out)`: decode like decode() but into an existing
/// object, reusing its memory.
template <class T>
concept has_decode_into = requires(std::string_view& in, T& out) { KeyCodec<T>::decode_into(in, out); };
}  // namespace detail::key

/// decode_key<T>(bytes) into `out`: through KeyCodec<T>::decode_into when the
/// codec offers it (no allocation once `out` has grown to the key's size),
/// else `out = decode_key<T>(bytes)`. CorruptionError like decode_key; after
/// one, `out` holds an unspecified (valid) value.
template <class T>
void decode_key_into(std::string_view bytes, T& out) {
  if constexpr (detail::key::has_decode_into<T>) {
    std::string_view in = bytes;
    KeyCodec<T>::decode_into(in, out);
    if (in.size() > bytes.size() || in.data() != bytes.data() + (bytes.size() - in.size()))
      throw Error("stowage: a KeyCodec's decode_into() must consume bytes from the front of its input");
    if (!in.empty())
      detail::key::fail(bytes.size() - in.size(), std::to_string(in.size()) + " trailing bytes after the key");
  } else {
    out = decode_key<T>(bytes);
  }
}

/// The name of T's key order (KeyCodec<T>::name()), recorded in the manifest.
template <class T>
std::string key_name() {
  if constexpr (EncodableKey<T>) {
    return std::string(KeyCodec<T>::name());
  } else {
    detail::key::require_encodable<T>();
    return {};
  }
}

// ---- Key prefixes (Storage::scan_prefix, count_prefix) --------------------

namespace detail::key {
/// How a P encodes as a prefix of Key's encoding; ok is false when P is not
/// a prefix scan_prefix accepts for Key.
template <class Key, class P>
struct PrefixCodec {
  static constexpr bool ok = false;
};
/// A std::string key and string bytes: the keys that start with them.
template <class P>
  requires std::is_convertible_v<const P&, std::string_view>
struct PrefixCodec<std::string, P> {
  static constexpr bool ok = true;
  /// The escaped bytes, without the terminator.
  static void encode(const P& prefix, std::string& out) {
    const std::string_view v = prefix;
    for (const char c : v) {
      out.push_back(c);
      if (c == '\0') out.push_back('\xff');
    }
  }
};
template <class T>
inline constexpr bool is_tuple = false;
template <class... E>
inline constexpr bool is_tuple<std::tuple<E...>> = true;
// Encodes the first sizeof...(F) elements of a key whose elements are E...
template <class... E>
struct LeadingElements {
  template <class... F>
  static constexpr bool accepts() {
    if constexpr (sizeof...(F) == 0 || sizeof...(F) > sizeof...(E)) {
      return false;
    } else {
      return []<std::size_t... I>(std::index_sequence<I...>) {
        return (std::is_convertible_v<const F&, std::tuple_element_t<I, std::tuple<E...>>> && ...);
      }(std::index_sequence_for<F...>{});
    }
  }
  template <class... F>
  static void encode(const std::tuple<F...>& prefix, std::string& out) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (KeyCodec<std::tuple_element_t<I, std::tuple<E...>>>::encode(
           static_cast<std::tuple_element_t<I, std::tuple<E...>>>(std::get<I>(prefix)), out),
       ...);
    }(std::index_sequence_for<F...>{});
  }
};
/// A tuple or pair key and a std::tuple of its first elements (or their
/// first element alone): the keys whose leading elements equal them.
template <class... E, class P>
  requires(!is_tuple<P> && LeadingElements<E...>::template accepts<P>())
struct PrefixCodec<std::tuple<E...>, P> {
  static constexpr bool ok = true;
  static void encode(const P& prefix, std::string& out) { LeadingElements<E...>::encode(std::tuple<const P&>(prefix), out); }
};
template <class... E, class... F>
  requires(LeadingElements<E...>::template accepts<F...>())
struct PrefixCodec<std::tuple<E...>, std::tuple<F...>> {
  static constexpr bool ok = true;
  static void encode(const std::tuple<F...>& prefix, std::string& out) { LeadingElements<E...>::encode(prefix, out); }
};
template <class A, class B, class P>
  requires(!is_tuple<P> && LeadingElements<A, B>::template accepts<P>())
struct PrefixCodec<std::pair<A, B>, P> {
  static constexpr bool ok = true;
  static void encode(const P& prefix, std::string& out) { LeadingElements<A, B>::encode(std::tuple<const P&>(prefix), out); }
};
template <class A, class B, class... F>
  requires(LeadingElements<A, B>::template accepts<F...>())
struct PrefixCodec<std::pair<A, B>, std::tuple<F...>> {
  static constexpr bool ok = true;
  static void encode(const std::tuple<F...>& prefix, std::string& out) { LeadingElements<A, B>::encode(prefix, out); }
};
}  // namespace detail::key

/// True when P is a prefix of Key that scan_prefix and count_prefix accept:
/// string bytes for a std::string key (the keys that start with them); for
/// a std::pair or std::tuple key, its first element or a std::tuple of its
/// first elements (the keys whose leading elements equal them).
template <class Key, class P>
concept KeyPrefix = detail::key::PrefixCodec<Key, std::remove_cvref_t<P>>::ok;

/// The encoding every key with `prefix` starts with (see KeyPrefix); no
/// other key's encoding starts with it.
template <class Key, class P>
  requires KeyPrefix<Key, P>
std::string encode_key_prefix(const P& prefix) {
  std::string out;
  detail::key::PrefixCodec<Key, std::remove_cvref_t<P>>::encode(prefix, out);
  return out;
}

/// The smallest byte string above every string that starts with `prefix`
/// (in memcmp order), or std::nullopt when there is none (an empty prefix,
/// or one of only 0xFF bytes).
inline std::optional<std::string> prefix_end(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (prefix.empty()) return std::nullopt;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

}  // namespace stowage

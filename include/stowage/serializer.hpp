// SPDX-License-Identifier: BSL-1.0
// serializer.hpp: stowage's own value format (BinarySerializer, id "binary-1")
// and the traits user types opt in with. Header-only; no Boost needed.
//
// Format (every multi-byte number little-endian, every length a LEB128 varint):
//   bool                 1 byte, 0 or 1 (anything else is corruption)
//   integers             fixed width: sizeof(T) bytes (two's complement)
//   float / double       the IEEE-754 bits as a 4 / 8 byte integer
//   long double          as double where it is one, else its 10 (x87) or 16 (binary128) value bytes
//   enums                as their underlying integer
//   std::string          varint length, then the bytes
//   vector, map, set,    varint element count, then the elements in iteration
//   unordered_map/set      order (a map element is key then value)
//   std::array<T, N>     the N elements, no count
//   pair, tuple          the elements in order, nothing else
//   std::optional        1 byte 0 (empty) or 1 followed by the value
//   std::variant         varint alternative index, then that alternative
//   std::monostate       nothing
//   name-value wrapper   its value (boost::serialization::nvp and look-alikes)
//   user type with a     varint version (the writer's value_version<T>), then
//     serialize member     whatever serialize() writes; on reading, serialize()
//                          gets the version that was written
//   ValueCodec<T>        whatever the codec writes (at least one byte)
//
// User types opt in with a Boost-style member (one member serves this and
// BoostSerializer; befriend stowage::serialization_access to keep it private)
//   template <class Archive> void serialize(Archive& ar, unsigned version) { ar & a & b; }
// (BinarySerializer also takes ar(a, b) and ar << a / ar >> a), or by
// specialising stowage::ValueCodec<T>, which wins over every other rule.
// Deserialized types must be default-constructible unless they have a codec.
//
// Invariant of deserialize: it never reads past its input; it never sizes an
// allocation from an unchecked count (every count is checked against the bytes
// that remain, reservations are capped at the remaining bytes' worth, and each
// decoded element consumes at least one byte); it never recurses deeper than
// BinarySerializer::max_depth user objects; it consumes the input exactly; and
// it reports every malformed input as a stowage::CorruptionError (empty file
// path, offset = byte position inside the value).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "detail/coding.hpp"
#include "error.hpp"

namespace stowage {

/// Opt-in codec for a user value type. The primary template is left undefined;
/// specialise it (before first use) with
///   static void encode(const T& v, std::string& out);  // append at least one byte
///   static T decode(std::string_view& in);              // consume from the front;
///                                                       // throw CorruptionError on bad input
/// and optionally `static std::string name();`, used by type_description<T>().
template <class T>
struct ValueCodec;

/// Befriend this (`friend class stowage::serialization_access;`) to keep a
/// type's `serialize` member private.
class serialization_access {
 public:
  /// Calls `t.serialize(ar, version)`; SFINAE-friendly, so it also serves as
  /// the detection of a serialize member.
  template <class T, class Archive>
  static auto serialize(T& t, Archive& ar, unsigned version) -> decltype(t.serialize(ar, version)) {
    return t.serialize(ar, version);
  }
};

namespace detail::value {

/// True when T declares `static constexpr unsigned version = N;`.
template <class T>
concept has_static_version = requires { typename std::integral_constant<unsigned, T::version>; };

template <class T>
constexpr unsigned version_of() {
  if constexpr (has_static_version<T>)
    return T::version;
  else
    return 0;
}

}  // namespace detail::value

/// S turns T into bytes and back: static id() (recorded in the manifest),
/// serialize(const T&, std::string& out) appending to out, and
/// deserialize<T>(std::string_view) consuming all the bytes.
template <class S, class T>
concept SerializerFor = requires(const T& value, std::string& out, std::string_view in) {
  { S::id() } -> std::convertible_to<std::string_view>;
  S::serialize(value, out);
  { S::template deserialize<T>(in) } -> std::same_as<T>;
};

/// Optional for a Serializer: `template <class T> static std::string describe();`
/// returns the description of T the store records in its manifest as the
/// value type (and that a typed migration step records for its Old and New).
/// Opening a store whose recorded description differs, at the same schema
/// version, is a MigrationError naming both, so the string should change
/// whenever the encoding of T does ("my-format:point{x:i32,y:i32}" say).
/// The string is recorded verbatim; an empty one records the type as unknown,
/// which turns that check off. Without the hook, describe_value<S, T>() uses
/// type_description<T>() when BinarySerializer's rules can describe T, else
/// S::id() and value_type_name<T>.
template <class S, class T>
concept SerializerDescribes = requires {
  { S::template describe<T>() } -> std::convertible_to<std::string>;
};

/// The name a user gives a value type that neither its Serializer (no
/// SerializerDescribes hook) nor BinarySerializer's rules (no serialize
/// member, no ValueCodec, not a standard type) can describe, e.g. a plain
/// struct stored through a user Serializer. Specialise it inside namespace
/// stowage, before the first Storage of that type:
///   template <> inline constexpr std::string_view value_type_name<Plain> = "plain-v1";
/// The manifest then records "<S::id()>:<name>" ("text-1:plain-v1"); change
/// the name when the encoding changes. Empty (the default): no name given.
/// Types the rules can describe keep type_description<T>() and ignore it.
template <class T>
inline constexpr std::string_view value_type_name{};

/// Optional for a Serializer: S::deserialize_into<T>(bytes, out) decodes like
/// deserialize<T>(bytes) but into an existing object, reusing its memory;
/// scans use it when present (BinarySerializer has it).
template <class S, class T>
concept SerializerDecodesInto = requires(std::string_view in, T& out) { S::template deserialize_into<T>(in, out); };

/// Schema version of a user type: T::version when T declares
/// `static constexpr unsigned version = N;`, else 0. BinarySerializer writes it
/// before the type's fields and passes the written version to serialize() when
/// reading, so a type can add fields under `if (version >= N)`.
template <class T>
inline constexpr unsigned value_version = detail::value::version_of<T>();

namespace detail::value {

/// Deepest nesting of user objects (serialize-member types) BinarySerializer
/// writes or reads; guards the stack against hostile recursive data.
inline constexpr unsigned max_nesting = 256;

template <class>
inline constexpr bool always_false = false;

template <class T, template <class...> class Tpl>
struct is_spec : std::false_type {};
template <template <class...> class Tpl, class... A>
struct is_spec<Tpl<A...>, Tpl> : std::true_type {};
template <class T, template <class...> class Tpl>
inline constexpr bool is_spec_v = is_spec<T, Tpl>::value;

template <class T>
struct is_std_array : std::false_type {};
template <class T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};

/// True when ValueCodec<T> is specialised with encode and decode.
template <class T>
concept has_value_codec = requires(const T& v, std::string& out, std::string_view& in) {
  ValueCodec<T>::encode(v, out);
  { ValueCodec<T>::decode(in) } -> std::convertible_to<T>;
};
template <class T>
concept has_codec_name = requires {
  { ValueCodec<T>::name() } -> std::convertible_to<std::string>;
};

class Output;
class Input;
class Describer;

/// A name-value wrapper such as boost::serialization::nvp (what
/// BOOST_SERIALIZATION_NVP(x) makes): stored as just its value, so a serialize
/// member written for Boost's XML archives works here too.
template <class T>
concept name_value_wrapper = requires(const T& w) {
  { w.name() } -> std::convertible_to<const char*>;
  w.value();
  w.const_value();
};

/// True when T has a `template <class Archive> void serialize(Archive&, unsigned)` member.
template <class T>
concept has_serialize_member = requires(T& t, Output& ar) { serialization_access::serialize(t, ar, 0u); };

/// How a type is encoded.
enum class Kind {
  none,
  codec,
  boolean,
  integer,
  floating,
  enumeration,
  string,
  vector,
  array,
  pair,
  tuple,
  optional,
  variant,
  map,
  set,
  unit,
  wrapper,
  object
};

constexpr int long_double_digits = std::numeric_limits<long double>::digits;
/// Bytes a long double takes on the wire (0 where the format is not supported).
constexpr std::size_t long_double_bytes() {
  if constexpr (long_double_digits == 53)
    return 8;
  else if constexpr (std::endian::native != std::endian::little)
    return 0;
  else if constexpr (long_double_digits == 64)
    return 10;
  else if constexpr (long_double_digits == 113)
    return 16;
  else
    return 0;
}

template <class T>
constexpr Kind kind_of() {
  if constexpr (has_value_codec<T>)
    return Kind::codec;
  else if constexpr (std::is_same_v<T, bool>)
    return Kind::boolean;
  else if constexpr (std::is_integral_v<T>)
    return Kind::integer;
  else if constexpr (std::is_same_v<T, long double>)
    return long_double_bytes() ? Kind::floating : Kind::none;
  else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
    return Kind::floating;
  else if constexpr (std::is_enum_v<T>)
    return Kind::enumeration;
  else if constexpr (std::is_same_v<T, std::string>)
    return Kind::string;
  else if constexpr (is_spec_v<T, std::vector>)
    return Kind::vector;
  else if constexpr (is_std_array<T>::value)
    return Kind::array;
  else if constexpr (is_spec_v<T, std::pair>)
    return Kind::pair;
  else if constexpr (is_spec_v<T, std::tuple>)
    return Kind::tuple;
  else if constexpr (is_spec_v<T, std::optional>)
    return Kind::optional;
  else if constexpr (is_spec_v<T, std::variant>)
    return Kind::variant;
  else if constexpr (is_spec_v<T, std::map> || is_spec_v<T, std::unordered_map>)
    return Kind::map;
  else if constexpr (is_spec_v<T, std::set> || is_spec_v<T, std::unordered_set>)
    return Kind::set;
  else if constexpr (std::is_same_v<T, std::monostate>)
    return Kind::unit;
  else if constexpr (name_value_wrapper<T>)
    return Kind::wrapper;
  else if constexpr (has_serialize_member<T>)
    return Kind::object;
  else
    return Kind::none;
}
template <class T>
inline constexpr Kind kind_v = kind_of<std::remove_cv_t<T>>();
/// The type a name-value wrapper holds.
template <class W>
using wrapped_t = std::remove_cvref_t<decltype(std::declval<const W&>().const_value())>;

/// True when describe<T>() (type_description<T>()) compiles: T and every type
/// it is made of have a Kind, and user objects are default-constructible
/// (the fields a serialize member names are not looked at).
template <class T>
constexpr bool describable() {
  constexpr Kind k = kind_v<T>;
  if constexpr (k == Kind::none)
    return false;
  else if constexpr (k == Kind::vector || k == Kind::set || k == Kind::array || k == Kind::optional)
    return describable<typename T::value_type>();
  else if constexpr (k == Kind::map)
    return describable<typename T::key_type>() && describable<typename T::mapped_type>();
  else if constexpr (k == Kind::pair)
    return describable<typename T::first_type>() && describable<typename T::second_type>();
  else if constexpr (k == Kind::tuple || k == Kind::variant)
    return []<template <class...> class Tpl, class... E>(Tpl<E...>*) { return (true && ... && describable<E>()); }(
        static_cast<T*>(nullptr));
  else if constexpr (k == Kind::wrapper)
    return describable<wrapped_t<T>>();
  else if constexpr (k == Kind::object)
    return std::is_default_constructible_v<T>;
  else  // codecs, scalars, enums, strings, unit
    return true;
}

/// Fewest bytes any value of T encodes to (containers check counts against it).
template <class T>
constexpr std::size_t min_size() {
  constexpr Kind k = kind_v<T>;
  if constexpr (k == Kind::boolean)
    return 1;
  else if constexpr (k == Kind::integer)
    return sizeof(T);
  else if constexpr (k == Kind::floating)
    return std::is_same_v<T, long double> ? long_double_bytes() : sizeof(T);
  else if constexpr (k == Kind::enumeration)
    return sizeof(std::underlying_type_t<T>);
  else if constexpr (k == Kind::array)
    return std::tuple_size_v<T> * min_size<typename T::value_type>();
  else if constexpr (k == Kind::pair)
    return min_size<typename T::first_type>() + min_size<typename T::second_type>();
  else if constexpr (k == Kind::tuple)
    return []<class... E>(std::tuple<E...>*) { return (std::size_t{0} + ... + min_size<E>()); }(static_cast<T*>(nullptr));
  else if constexpr (k == Kind::wrapper)
    return min_size<wrapped_t<T>>();
  else if constexpr (k == Kind::unit || k == Kind::none)
    return 0;
  else  // lengths, flags, indexes, versions: at least one byte; codecs must write one
    return 1;
}

/// Elements copied as one block: native little-endian integers and IEEE floats.
template <class E>
inline constexpr bool bulk_copyable =
    (std::is_same_v<E, std::byte> || (std::is_integral_v<E> && !std::is_same_v<E, bool>)) && !has_value_codec<E> &&
    (sizeof(E) == 1 || std::endian::native == std::endian::little);
template <class E>
inline constexpr bool bulk_copyable_float =
    (std::is_same_v<E, float> || std::is_same_v<E, double>) && !has_value_codec<E> &&
    std::endian::native == std::endian::little && std::numeric_limits<E>::is_iec559;
template <class E>
inline constexpr bool bulk_v = bulk_copyable<E> || bulk_copyable_float<E>;

template <class T>
constexpr bool supported() {
  constexpr Kind k = kind_v<T>;
  if constexpr (k == Kind::none)
    return false;
  else if constexpr (k == Kind::vector || k == Kind::set)
    return supported<typename T::value_type>() && min_size<typename T::value_type>() > 0;
  else if constexpr (k == Kind::map)
    return supported<typename T::key_type>() && supported<typename T::mapped_type>() &&
           min_size<typename T::key_type>() + min_size<typename T::mapped_type>() > 0;
  else if constexpr (k == Kind::array || k == Kind::optional)
    return supported<typename T::value_type>();
  else if constexpr (k == Kind::pair)
    return supported<typename T::first_type>() && supported<typename T::second_type>();
  else if constexpr (k == Kind::tuple || k == Kind::variant)
    return []<template <class...> class Tpl, class... E>(Tpl<E...>*) { return (true && ... && supported<E>()); }(
        static_cast<T*>(nullptr));
  else if constexpr (k == Kind::wrapper)
    return supported<wrapped_t<T>>();
  else if constexpr (k == Kind::object)
    return std::is_default_constructible_v<T>;
  else
    return true;
}

/// True when decode_into(in, v) leaves v exactly as decode_new would build it,
/// whatever v held before (so an existing object can be reused): every kind
/// but user objects (an older version's serialize() may skip fields, which
/// must then keep their defaults, not the previous value's) and wrappers,
/// and aggregates of such kinds.
template <class T>
constexpr bool overwrites() {
  constexpr Kind k = kind_v<T>;
  if constexpr (k == Kind::object || k == Kind::wrapper || k == Kind::none)
    return false;
  else if constexpr (k == Kind::array)
    return bulk_v<typename T::value_type> || overwrites<typename T::value_type>();
  else if constexpr (k == Kind::pair)
    return overwrites<typename T::first_type>() && overwrites<typename T::second_type>();
  else if constexpr (k == Kind::tuple)
    return []<class... E>(std::tuple<E...>*) { return (true && ... && overwrites<E>()); }(static_cast<T*>(nullptr));
  else  // scalars, strings, codecs, and containers that are cleared or replaced whole
    return true;
}

/// The one compile error a type that cannot be serialized produces.
template <class T>
void unsupported_type() {
  static_assert(always_false<T>,
                "stowage: T is not serializable: give it `template <class Archive> void serialize(Archive& ar, "
                "unsigned version) { ar & field1 & field2; }` or specialise stowage::ValueCodec<T> (see the "
                "'required from' lines for T)");
}
template <class E>
void check_container_element() {
  static_assert(min_size<E>() > 0 || !supported<E>(),
                "stowage: a container element must encode to at least one byte: std::tuple<>, std::monostate "
                "and std::array<T, 0> cannot be elements of a vector, set or map");
}

template <class T>
void encode(Output& out, const T& v);
template <class T>
void decode_into(Input& in, T& v);
template <class T>
T decode_new(Input& in);
template <class T>
std::string describe(std::vector<const void*>& stack);

/// The saving archive BinarySerializer hands to `serialize` members:
/// `ar & x`, `ar << x` and `ar(x, y, ...)` append the fields.
class Output {
 public:
  /// Boost.Serialization-style direction flags.
  using is_saving = std::true_type;
  using is_loading = std::false_type;

  /// Appends to `out`.
  explicit Output(std::string& out) : out_(out) {}
  /// Writes one field.
  template <class U>
  Output& operator&(const U& v) {
    encode(*this, v);
    return *this;
  }
  /// Writes one field.
  template <class U>
  Output& operator<<(const U& v) {
    encode(*this, v);
    return *this;
  }
  /// Writes the fields in order.
  template <class... U>
  Output& operator()(const U&... v) {
    (encode(*this, v), ...);
    return *this;
  }
  /// The bytes written so far.
  std::string& bytes() { return out_; }
  /// User objects currently open (see max_nesting).
  unsigned depth = 0;

 private:
  std::string& out_;
};

/// The loading archive BinarySerializer hands to `serialize` members:
/// `ar & x`, `ar >> x` and `ar(x, y, ...)` read the fields into place.
class Input {
 public:
  /// Boost.Serialization-style direction flags.
  using is_saving = std::false_type;
  using is_loading = std::true_type;

  /// Reads `data` from its start.
  explicit Input(std::string_view data) : r(data), data_(data) {}
  /// Reads one field.
  template <class U>
  Input& operator&(U& v) {
    decode_into(*this, v);
    return *this;
  }
  /// Reads one field.
  template <class U>
  Input& operator>>(U& v) {
    decode_into(*this, v);
    return *this;
  }
  /// Reads the fields in order.
  template <class... U>
  Input& operator()(U&... v) {
    (decode_into(*this, v), ...);
    return *this;
  }
  /// The bytes not read yet.
  std::string_view rest() const { return data_.substr(r.position()); }
  /// Byte position inside the value.
  std::size_t position() const { return r.position(); }
  /// Throws CorruptionError for the byte at `at`.
  [[noreturn]] void fail(std::size_t at, const std::string& what) const {
    throw CorruptionError(std::filesystem::path{}, at, what);
  }
  /// The bounds-checked cursor.
  Reader r;
  /// User objects currently open (see max_nesting).
  unsigned depth = 0;

 private:
  std::string_view data_;
};

/// The archive type_description runs `serialize` members with: each field
/// appends its type's description.
class Describer {
 public:
  /// Boost.Serialization-style direction flags (it reads fields, like a saver).
  using is_saving = std::true_type;
  using is_loading = std::false_type;

  /// `stack` holds the user types being described (for "rec").
  explicit Describer(std::vector<const void*>& stack) : stack_(stack) {}
  /// Describes one field.
  template <class U>
  Describer& operator&(const U&) {
    add<U>();
    return *this;
  }
  /// Describes one field.
  template <class U>
  Describer& operator<<(const U&) {
    add<U>();
    return *this;
  }
  /// Describes the fields in order.
  template <class... U>
  Describer& operator()(const U&...) {
    (add<U>(), ...);
    return *this;
  }
  /// The comma-separated field descriptions.
  const std::string& fields() const { return fields_; }

 private:
  template <class U>
  void add() {
    if (!fields_.empty()) fields_ += ',';
    fields_ += describe<U>(stack_);
  }
  std::vector<const void*>& stack_;
  std::string fields_;
};

/// Counts one level of user-object nesting for as long as it lives.
template <class Archive>
class DepthGuard {
 public:
  explicit DepthGuard(Archive& a) : a_(a) { ++a_.depth; }
  ~DepthGuard() { --a_.depth; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;

 private:
  Archive& a_;
};

template <class U>
void put_le(std::string& out, U u) {
  char b[sizeof(U)];
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    b[i] = static_cast<char>(u & 0xff);
    if constexpr (sizeof(U) > 1) u = static_cast<U>(u >> 8);
  }
  out.append(b, sizeof(U));
}
template <class U>
U get_le(std::string_view s) {
  U u = 0;
  for (std::size_t i = sizeof(U); i-- > 0;) {
    if constexpr (sizeof(U) > 1) u = static_cast<U>(u << 8);
    u = static_cast<U>(u | static_cast<unsigned char>(s[i]));
  }
  return u;
}

template <class T>
void encode(Output& out, const T& v) {
  constexpr Kind k = kind_v<T>;
  std::string& o = out.bytes();
  if constexpr (k == Kind::none) {
    unsupported_type<T>();
  } else if constexpr (k == Kind::codec) {
    const auto before = o.size();
    ValueCodec<T>::encode(v, o);
    if (o.size() == before)
      throw ValidationError("stowage: a ValueCodec's encode() appended no bytes; it must write at least one");
  } else if constexpr (k == Kind::boolean) {
    o.push_back(v ? '\1' : '\0');
  } else if constexpr (k == Kind::integer) {
    put_le(o, static_cast<std::make_unsigned_t<T>>(v));
  } else if constexpr (k == Kind::floating) {
    if constexpr (std::is_same_v<T, float>) {
      put_le(o, std::bit_cast<std::uint32_t>(v));
    } else if constexpr (std::is_same_v<T, double> || long_double_bytes() == 8) {
      put_le(o, std::bit_cast<std::uint64_t>(static_cast<double>(v)));
    } else {  // x87 extended or binary128 long double on a little-endian host
      char b[sizeof(long double)];
      std::memcpy(b, &v, sizeof b);
      o.append(b, long_double_bytes());
    }
  } else if constexpr (k == Kind::enumeration) {
    encode(out, static_cast<std::underlying_type_t<T>>(v));
  } else if constexpr (k == Kind::string) {
    put_bytes(o, v);
  } else if constexpr (k == Kind::vector) {
    using E = typename T::value_type;
    check_container_element<E>();
    put_varint(o, v.size());
    if constexpr (bulk_v<E>) {
      if (!v.empty()) o.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(E));
    } else {
      for (const auto& e : v) encode<E>(out, e);
    }
  } else if constexpr (k == Kind::array) {
    using E = typename T::value_type;
    if constexpr (bulk_v<E>) {
      if (!v.empty()) o.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(E));
    } else {
      for (const auto& e : v) encode<E>(out, e);
    }
  } else if constexpr (k == Kind::pair) {
    encode(out, v.first);
    encode(out, v.second);
  } else if constexpr (k == Kind::tuple) {
    std::apply([&](const auto&... e) { (encode(out, e), ...); }, v);
  } else if constexpr (k == Kind::optional) {
    o.push_back(v.has_value() ? '\1' : '\0');
    if (v) encode(out, *v);
  } else if constexpr (k == Kind::variant) {
    if (v.valueless_by_exception()) throw ValidationError("stowage: cannot serialize a valueless std::variant");
    put_varint(o, v.index());
    std::visit([&](const auto& alt) { encode(out, alt); }, v);
  } else if constexpr (k == Kind::map) {
    check_container_element<std::pair<typename T::key_type, typename T::mapped_type>>();
    put_varint(o, v.size());
    for (const auto& [key, val] : v) {
      encode(out, key);
      encode(out, val);
    }
  } else if constexpr (k == Kind::set) {
    check_container_element<typename T::value_type>();
    put_varint(o, v.size());
    for (const auto& e : v) encode(out, e);
  } else if constexpr (k == Kind::unit) {
    // nothing to write
  } else if constexpr (k == Kind::wrapper) {
    encode(out, v.const_value());
  } else if constexpr (k == Kind::object) {
    DepthGuard guard(out);
    if (out.depth > max_nesting)
      throw ValidationError("stowage: value nests more than " + std::to_string(max_nesting) +
                            " user objects; BinarySerializer cannot store it");
    put_varint(o, value_version<T>);
    // serialize() is non-const by convention; the saving archive only reads.
    serialization_access::serialize(const_cast<T&>(v), out, value_version<T>);
  }
}

template <class T>
T read_codec(Input& in) {
  const std::string_view before = in.rest();
  std::string_view rest = before;
  T v = ValueCodec<T>::decode(rest);
  if (rest.size() > before.size() || rest.data() != before.data() + (before.size() - rest.size()))
    throw Error("stowage: a ValueCodec's decode() must consume bytes from the front of its input");
  in.r.bytes(before.size() - rest.size());
  return v;
}

template <class E, class Container>
void reserve_for(Input& in, Container& c, std::uint64_t n) {
  // Never more than the remaining bytes' worth of memory, whatever `n` claims.
  const std::size_t cap = std::max<std::size_t>(1, in.r.remaining() / std::max<std::size_t>(1, sizeof(E)));
  c.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(n, cap)));
}

/// Reads a container's element count and checks it against the bytes left.
template <class E>
std::size_t read_count(Input& in, const char* what) {
  const auto at = in.position();
  const std::uint64_t n = in.r.varint(what);
  if (n > in.r.remaining() / min_size<E>())
    in.fail(at, std::string(what) + " " + std::to_string(n) + " exceeds the remaining " +
                    std::to_string(in.r.remaining()) + " bytes");
  return static_cast<std::size_t>(n);
}

template <class E>
void bulk_read(Input& in, E* dst, std::size_t n) {
  if (n == 0) return;
  const std::string_view s = in.r.bytes(n * sizeof(E), "array");
  std::memcpy(static_cast<void*>(dst), s.data(), s.size());
}

template <class V, std::size_t... I>
void decode_variant(Input& in, V& v, std::size_t index, std::index_sequence<I...>) {
  using Fn = void (*)(Input&, V&);
  static constexpr Fn table[] = {[](Input& i, V& out) {
    out.template emplace<I>(decode_new<std::variant_alternative_t<I, V>>(i));
  }...};
  table[index](in, v);
}

template <class T>
void decode_into(Input& in, T& v) {
  constexpr Kind k = kind_v<T>;
  if constexpr (k == Kind::none) {
    unsupported_type<T>();
  } else if constexpr (k == Kind::codec) {
    v = read_codec<T>(in);
  } else if constexpr (k == Kind::boolean) {
    const auto at = in.position();
    const auto b = in.r.u8("bool");
    if (b > 1) in.fail(at, "bad bool byte " + std::to_string(b));
    v = b == 1;
  } else if constexpr (k == Kind::integer) {
    using U = std::make_unsigned_t<T>;
    v = static_cast<T>(get_le<U>(in.r.bytes(sizeof(T), "integer")));
  } else if constexpr (k == Kind::floating) {
    if constexpr (std::is_same_v<T, float>) {
      v = std::bit_cast<float>(get_le<std::uint32_t>(in.r.bytes(4, "float")));
    } else if constexpr (std::is_same_v<T, double> || long_double_bytes() == 8) {
      v = static_cast<T>(std::bit_cast<double>(get_le<std::uint64_t>(in.r.bytes(8, "double"))));
    } else {
      const std::string_view s = in.r.bytes(long_double_bytes(), "long double");
      char b[sizeof(long double)] = {};
      std::memcpy(b, s.data(), s.size());
      std::memcpy(&v, b, sizeof b);
    }
  } else if constexpr (k == Kind::enumeration) {
    std::underlying_type_t<T> u{};
    decode_into(in, u);
    v = static_cast<T>(u);
  } else if constexpr (k == Kind::string) {
    v.assign(in.r.length_prefixed("string"));
  } else if constexpr (k == Kind::vector) {
    using E = typename T::value_type;
    check_container_element<E>();
    const std::size_t n = read_count<E>(in, "vector length");
    v.clear();
    if constexpr (bulk_v<E>) {
      v.resize(n);
      bulk_read(in, v.data(), n);
    } else {
      reserve_for<E>(in, v, n);
      for (std::size_t i = 0; i < n; ++i) v.push_back(decode_new<E>(in));
    }
  } else if constexpr (k == Kind::array) {
    using E = typename T::value_type;
    if constexpr (bulk_v<E>) {
      bulk_read(in, v.data(), v.size());
    } else {
      for (auto& e : v) decode_into(in, e);
    }
  } else if constexpr (k == Kind::pair) {
    decode_into(in, v.first);
    decode_into(in, v.second);
  } else if constexpr (k == Kind::tuple) {
    std::apply([&](auto&... e) { (decode_into(in, e), ...); }, v);
  } else if constexpr (k == Kind::optional) {
    const auto at = in.position();
    const auto flag = in.r.u8("optional flag");
    if (flag == 0)
      v.reset();
    else if (flag == 1)
      v = decode_new<typename T::value_type>(in);
    else
      in.fail(at, "bad optional flag " + std::to_string(flag));
  } else if constexpr (k == Kind::variant) {
    const auto at = in.position();
    const std::uint64_t index = in.r.varint("variant index");
    constexpr std::size_t n = std::variant_size_v<T>;
    if (index >= n) in.fail(at, "variant index " + std::to_string(index) + " out of range");
    decode_variant(in, v, static_cast<std::size_t>(index), std::make_index_sequence<n>{});
  } else if constexpr (k == Kind::map) {
    using K = typename T::key_type;
    using M = typename T::mapped_type;
    check_container_element<std::pair<K, M>>();
    const std::size_t n = read_count<std::pair<K, M>>(in, "map size");
    v.clear();
    for (std::size_t i = 0; i < n; ++i) {
      const auto at = in.position();
      K key = decode_new<K>(in);
      M val = decode_new<M>(in);
      if (!v.emplace(std::move(key), std::move(val)).second) in.fail(at, "duplicate map key");
    }
  } else if constexpr (k == Kind::set) {
    using K = typename T::value_type;
    check_container_element<K>();
    const std::size_t n = read_count<K>(in, "set size");
    v.clear();
    for (std::size_t i = 0; i < n; ++i) {
      const auto at = in.position();
      if (!v.insert(decode_new<K>(in)).second) in.fail(at, "duplicate set element");
    }
  } else if constexpr (k == Kind::unit) {
    // nothing to read
  } else if constexpr (k == Kind::wrapper) {
    decode_into(in, v.value());
  } else if constexpr (k == Kind::object) {
    DepthGuard guard(in);
    const auto at = in.position();
    if (in.depth > max_nesting)
      in.fail(at, "value nests more than " + std::to_string(max_nesting) + " user objects");
    const std::uint64_t version = in.r.varint("version");
    if (version > value_version<T>)
      in.fail(at, "value has version " + std::to_string(version) + ", newer than this program's " +
                      std::to_string(value_version<T>));
    serialization_access::serialize(v, in, static_cast<unsigned>(version));
  }
}

template <class T>
T decode_new(Input& in) {
  constexpr Kind k = kind_v<T>;
  if constexpr (k == Kind::none) {
    unsupported_type<T>();
    throw Error("stowage: unsupported type");  // never compiled: the static_assert above fires
  } else if constexpr (k == Kind::codec) {
    return read_codec<T>(in);
  } else if constexpr (!std::is_default_constructible_v<T>) {
    static_assert(always_false<T>,
                  "stowage: T must be default-constructible to be deserialized (or specialise "
                  "stowage::ValueCodec<T>)");
    throw Error("stowage: type is not default-constructible");  // never compiled
  } else {
    T v{};
    decode_into(in, v);
    return v;
  }
}

/// Unique address per type, standing in for typeid in the "rec" check.
template <class T>
inline constexpr char type_tag = 0;

template <class T>
std::string integer_name() {
  if constexpr (std::is_same_v<T, char>)
    return "char";
  else if constexpr (std::is_same_v<T, char8_t>)
    return "c8";
  else if constexpr (std::is_same_v<T, char16_t>)
    return "c16";
  else if constexpr (std::is_same_v<T, char32_t>)
    return "c32";
  else if constexpr (std::is_same_v<T, wchar_t>)
    return "wc" + std::to_string(sizeof(T) * 8);
  else
    return (std::is_signed_v<T> ? "i" : "u") + std::to_string(sizeof(T) * 8);
}

template <class... E>
std::string describe_list(std::vector<const void*>& stack) {
  std::string s;
  ((s += (s.empty() ? "" : ","), s += describe<E>(stack)), ...);
  return s;
}

template <class T>
std::string describe(std::vector<const void*>& stack) {
  constexpr Kind k = kind_v<T>;
  if constexpr (k == Kind::none) {
    unsupported_type<T>();
    return {};
  } else if constexpr (k == Kind::codec) {
    if constexpr (has_codec_name<T>)
      return "codec:" + std::string(ValueCodec<T>::name());
    else
      return "codec" + std::to_string(sizeof(T));
  } else if constexpr (k == Kind::boolean) {
    return "bool";
  } else if constexpr (k == Kind::integer) {
    return integer_name<T>();
  } else if constexpr (k == Kind::floating) {
    if constexpr (std::is_same_v<T, float>)
      return "f32";
    else if constexpr (std::is_same_v<T, double> || long_double_bytes() == 8)
      return "f64";
    else
      return long_double_bytes() == 10 ? "f80" : "f128";
  } else if constexpr (k == Kind::enumeration) {
    return "enum<" + describe<std::underlying_type_t<T>>(stack) + ">";
  } else if constexpr (k == Kind::string) {
    return "str";
  } else if constexpr (k == Kind::vector) {
    return "vec<" + describe<typename T::value_type>(stack) + ">";
  } else if constexpr (k == Kind::array) {
    return "arr<" + describe<typename T::value_type>(stack) + "," + std::to_string(std::tuple_size_v<T>) + ">";
  } else if constexpr (k == Kind::pair) {
    return "pair<" + describe_list<typename T::first_type, typename T::second_type>(stack) + ">";
  } else if constexpr (k == Kind::tuple) {
    return [&]<class... E>(std::tuple<E...>*) { return "tup<" + describe_list<E...>(stack) + ">"; }(
        static_cast<T*>(nullptr));
  } else if constexpr (k == Kind::optional) {
    return "opt<" + describe<typename T::value_type>(stack) + ">";
  } else if constexpr (k == Kind::variant) {
    return [&]<class... E>(std::variant<E...>*) { return "var<" + describe_list<E...>(stack) + ">"; }(
        static_cast<T*>(nullptr));
  } else if constexpr (k == Kind::map) {
    return "map<" + describe_list<typename T::key_type, typename T::mapped_type>(stack) + ">";
  } else if constexpr (k == Kind::set) {
    return "set<" + describe<typename T::value_type>(stack) + ">";
  } else if constexpr (k == Kind::unit) {
    return "unit";
  } else if constexpr (k == Kind::wrapper) {
    return describe<wrapped_t<T>>(stack);
  } else if constexpr (k == Kind::object) {
    static_assert(std::is_default_constructible_v<T>,
                  "stowage: T must be default-constructible to be described and deserialized (or specialise "
                  "stowage::ValueCodec<T>)");
    const void* tag = &type_tag<T>;
    if (std::find(stack.begin(), stack.end(), tag) != stack.end()) return "rec";
    stack.push_back(tag);
    struct Pop {
      std::vector<const void*>& s;
      ~Pop() { s.pop_back(); }
    } pop{stack};
    T sample{};
    Describer d(stack);
    serialization_access::serialize(sample, d, value_version<T>);
    std::string head = "obj";
    if constexpr (value_version<T> != 0) head += "@" + std::to_string(value_version<T>);
    return head + "{" + d.fields() + "}";
  }
}

}  // namespace detail::value

/// stowage's own portable binary value format (see the top of this header).
struct BinarySerializer {
  /// Format name recorded in the store's manifest.
  static constexpr std::string_view id() { return "binary-1"; }
  /// Deepest nesting of user objects a value may have.
  static constexpr unsigned max_depth = detail::value::max_nesting;

  /// Appends the encoding of `v` to `out` (on an exception, `out` is left as it was).
  template <class T>
  static void serialize(const T& v, std::string& out) {
    const auto size = out.size();
    try {
      detail::value::Output ar(out);
      detail::value::encode(ar, v);
    } catch (...) {
      out.resize(size);
      throw;
    }
  }

  /// Decodes a T that must take exactly `bytes`; CorruptionError otherwise.
  template <class T>
  static T deserialize(std::string_view bytes) {
    detail::value::Input in(bytes);
    T v = detail::value::decode_new<T>(in);
    if (!in.r.empty())
      in.fail(in.position(), std::to_string(in.r.remaining()) + " trailing bytes after the value");
    return v;
  }

  /// deserialize<T>(bytes) into an existing `out`, reusing its memory where
  /// that gives the same result (strings, containers, scalars and aggregates
  /// of them; user objects are decoded fresh and assigned). Scans decode
  /// every record into the same object through this. CorruptionError like
  /// deserialize; after one, `out` holds an unspecified (valid) value.
  template <class T>
  static void deserialize_into(std::string_view bytes, T& out) {
    if constexpr (detail::value::overwrites<T>()) {
      detail::value::Input in(bytes);
      detail::value::decode_into(in, out);
      if (!in.r.empty())
        in.fail(in.position(), std::to_string(in.r.remaining()) + " trailing bytes after the value");
    } else {
      out = deserialize<T>(bytes);
    }
  }

  /// True when BinarySerializer can store a T.
  template <class T>
  static constexpr bool supports = detail::value::supported<T>();
};

/// A portable structural description of T ("i32", "vec<str>", "obj{i32,str}",
/// "rec" for a type already being described, ...), identical under every
/// compiler; the store records it in its manifest as the value's fingerprint.
template <class T>
std::string type_description() {
  std::vector<const void*> stack;
  return detail::value::describe<T>(stack);
}

/// The value type description a store using Serializer S records for Value
/// (RecordTypes::value_type, and a typed migration step's from/to type), the
/// one place that chooses it:
///   1. S::describe<Value>() when S has that hook (SerializerDescribes);
///   2. else type_description<Value>() when BinarySerializer's rules can
///      describe Value (so every store that opened before the hook existed
///      records, and is checked against, the very same string);
///   3. else "<S::id()>:<value_type_name<Value>>" when the user named Value;
///   4. else a compile error saying to add one of the two.
template <class S, class Value>
std::string describe_value() {
  if constexpr (SerializerDescribes<S, Value>) {
    return std::string(S::template describe<Value>());
  } else if constexpr (detail::value::describable<Value>()) {
    return type_description<Value>();
  } else if constexpr (!value_type_name<Value>.empty()) {
    return std::string(S::id()) + ":" + std::string(value_type_name<Value>);
  } else {
    static_assert(detail::value::always_false<Value>,
                  "stowage: the store cannot describe Value for its manifest: the Serializer has no describe hook "
                  "and BinarySerializer's rules cannot describe Value (no serialize member, no "
                  "stowage::ValueCodec<Value>); add `template <class T> static std::string describe();` to the "
                  "Serializer, or name the type inside namespace stowage: `template <> inline constexpr "
                  "std::string_view value_type_name<Value> = \"my-type-v1\";` (see the 'required from' lines "
                  "for Value)");
    return {};
  }
}

}  // namespace stowage

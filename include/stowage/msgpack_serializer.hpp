// SPDX-License-Identifier: BSL-1.0
// msgpack_serializer.hpp: MsgpackSerializer (id "msgpack-1"), a value format
// that programs in other languages read with any MessagePack library. Built
// on msgpack-c's C++ headers (Debian: libmsgpack-dev): link
// stowage::msgpack_serializer. The core (stowage.hpp) never includes it.
//
// User types opt in exactly as for BinarySerializer: the Boost-style member
//   template <class Archive> void serialize(Archive& ar, unsigned version) { ar & a & b; }
// (also ar(a, b) and ar << a / ar >> a), or msgpack-c's own adaptor macros
// (MSGPACK_DEFINE and relatives), whose layout msgpack-c decides.
//
// Format: one MessagePack object per value.
//   bool                       true / false
//   integers, enums            the smallest MessagePack integer holding the value
//   float, double              float 32, float 64 (integers and either float
//                              width are accepted on reading)
//   long double                float 64 when that holds it exactly, else a str
//                              with its C99 hex-float text ("%La")
//   std::string                str (its bytes as they are)
//   vector / array of uint8_t  bin
//     or std::byte
//   vector, array, set,        array of the elements (a set in its iteration
//   unordered_set                order)
//   map, unordered_map         map
//   pair, tuple                array of the elements
//   std::optional              nil, or the value ([value] when the value itself
//                              may be nil: an optional or monostate)
//   std::variant               array [alternative index, value]
//   std::monostate             nil
//   name-value wrapper         its value (boost::serialization::nvp and look-alikes)
//   user type with a           array [version, field1, field2, ...]: the writer's
//     serialize member           value_version<T> first, as every stowage
//                                serializer records it; on reading, serialize()
//                                gets the version that was written
//   MSGPACK_DEFINE types       what msgpack-c writes for them
//   ValueCodec<T>              bin holding the codec's bytes
//
// Reading: msgpack-c parses the bytes with limits derived from their length
// (no array, map, str or bin can claim more elements or bytes than there
// are, nesting at most max_depth deep), so hostile input cannot make it
// allocate without bound; every mismatch of type, length or range, and any
// trailing byte, is a CorruptionError.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <msgpack.hpp>

#include "error.hpp"
#include "serializer.hpp"

namespace stowage {

namespace detail::msgpack_format {

using value::Kind;
using value::kind_v;

/// Appends what a msgpack::packer writes to a std::string.
struct StringSink {
  std::string* out;
  /// msgpack::packer's stream interface.
  void write(const char* p, std::size_t n) { out->append(p, n); }
};
using Packer = msgpack::packer<StringSink>;

/// True for the types msgpack-c's MSGPACK_DEFINE family adapts.
template <class T>
concept msgpack_defined = requires(const T& c, T& m, Packer& pk, const msgpack::object& o) {
  c.msgpack_pack(pk);
  m.msgpack_unpack(o);
};

/// True for a vector or std::array of uint8_t or std::byte (written as bin).
template <class T>
constexpr bool byte_sequence() {
  if constexpr (kind_v<T> == Kind::vector || kind_v<T> == Kind::array)
    return std::is_same_v<typename T::value_type, std::uint8_t> || std::is_same_v<typename T::value_type, std::byte>;
  else
    return false;
}

[[noreturn]] inline void fail(const std::string& what) {
  throw CorruptionError({}, 0, "MessagePack value: " + what);
}

inline const char* type_name(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "bool";
    case msgpack::type::POSITIVE_INTEGER: return "positive integer";
    case msgpack::type::NEGATIVE_INTEGER: return "negative integer";
    case msgpack::type::FLOAT32: return "float 32";
    case msgpack::type::FLOAT64: return "float 64";
    case msgpack::type::STR: return "str";
    case msgpack::type::BIN: return "bin";
    case msgpack::type::ARRAY: return "array";
    case msgpack::type::MAP: return "map";
    case msgpack::type::EXT: return "ext";
  }
  return "unknown";
}

inline void expect(const msgpack::object& o, msgpack::type::object_type t, const char* wanted) {
  if (o.type != t) fail(std::string("expected ") + wanted + ", found " + type_name(o));
}

inline void expect_array(const msgpack::object& o, std::size_t n, const char* what) {
  expect(o, msgpack::type::ARRAY, "array");
  if (o.via.array.size != n)
    fail(std::string(what) + " needs an array of " + std::to_string(n) + ", found " + std::to_string(o.via.array.size));
}

template <class T>
void encode(Packer& pk, std::string& out, const T& v);
template <class T>
void decode(const msgpack::object& o, T& v, unsigned depth);

/// The saving archive handed to `serialize` members: each field is packed
/// into `body` and counted, so the object's array header can be written first.
class FieldWriter {
 public:
  /// Boost.Serialization-style direction flags.
  using is_saving = std::true_type;
  /// Boost.Serialization-style direction flags.
  using is_loading = std::false_type;

  explicit FieldWriter(std::string& body) : body_(&body), pk_(sink_) { sink_.out = body_; }
  /// Packs one field.
  template <class T>
  FieldWriter& operator&(const T& v) {
    encode(pk_, *body_, v);
    ++count_;
    return *this;
  }
  /// Same as &.
  template <class T>
  FieldWriter& operator<<(const T& v) {
    return *this & v;
  }
  /// Packs every argument as a field.
  template <class... T>
  FieldWriter& operator()(const T&... v) {
    (void)(*this & ... & v);
    return *this;
  }
  /// Fields packed so far.
  std::uint32_t count() const { return count_; }

 private:
  std::string* body_;
  StringSink sink_{};
  Packer pk_;
  std::uint32_t count_ = 0;
};

/// The loading archive handed to `serialize` members: each field is read
/// from the next element of the object's array.
class FieldReader {
 public:
  /// Boost.Serialization-style direction flags.
  using is_saving = std::false_type;
  /// Boost.Serialization-style direction flags.
  using is_loading = std::true_type;

  FieldReader(const msgpack::object* items, std::size_t n, unsigned depth) : items_(items), n_(n), depth_(depth) {}
  /// Reads one field.
  template <class T>
  FieldReader& operator&(T& v) {
    if (next_ >= n_) fail("an object has fewer fields than its serialize() reads");
    decode(items_[next_++], v, depth_);
    return *this;
  }
  /// Same as &.
  template <class T>
  FieldReader& operator>>(T& v) {
    return *this & v;
  }
  /// Reads every argument as a field.
  template <class... T>
  FieldReader& operator()(T&... v) {
    (void)(*this & ... & v);
    return *this;
  }
  /// Whether every element was read.
  bool done() const { return next_ == n_; }

 private:
  const msgpack::object* items_;
  std::size_t n_;
  unsigned depth_;
  std::size_t next_ = 0;
};

/// True when some value of T is written as nil (so an engaged optional of T
/// cannot be written as just its value).
template <class T>
constexpr bool may_be_nil() {
  if constexpr (kind_v<T> == Kind::optional || kind_v<T> == Kind::unit)
    return true;
  else if constexpr (kind_v<T> == Kind::wrapper)
    return may_be_nil<value::wrapped_t<T>>();
  else
    return false;
}

template <class T>
constexpr bool supported() {
  if constexpr (kind_v<T> == Kind::none)
    return msgpack_defined<T> && std::is_default_constructible_v<T>;
  else
    return value::supported<T>();
}

/// A MessagePack float 32 (tag 0xca) or float 64 (0xcb): the tag, then the IEEE bits big-endian.
template <class Bits>
void append_float(std::string& out, char tag, Bits bits) {
  out.push_back(tag);
  for (int shift = 8 * static_cast<int>(sizeof(Bits)) - 8; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((bits >> shift) & 0xff));
}

template <class Range>
void encode_bytes(Packer& pk, const Range& r) {
  pk.pack_bin(static_cast<std::uint32_t>(r.size()));
  pk.pack_bin_body(reinterpret_cast<const char*>(r.data()), static_cast<std::uint32_t>(r.size()));
}

template <class T>
void encode(Packer& pk, std::string& out, const T& v) {
  constexpr Kind k = kind_v<T>;
  if constexpr (k == Kind::codec) {
    std::string bytes;
    ValueCodec<T>::encode(v, bytes);
    encode_bytes(pk, bytes);
  } else if constexpr (k == Kind::boolean) {
    v ? pk.pack_true() : pk.pack_false();
  } else if constexpr (k == Kind::integer) {
    if constexpr (std::is_signed_v<T>)
      pk.pack(static_cast<std::int64_t>(v));
    else
      pk.pack(static_cast<std::uint64_t>(v));
  } else if constexpr (k == Kind::floating) {
    // Written here, not by msgpack-c's pack_float / pack_double, which turn
    // integral values into integers: a float field stays a float on the wire.
    if constexpr (std::is_same_v<T, float>) {
      append_float(out, '\xca', std::bit_cast<std::uint32_t>(v));
    } else if constexpr (std::is_same_v<T, double>) {
      append_float(out, '\xcb', std::bit_cast<std::uint64_t>(v));
    } else {  // long double
      const double d = static_cast<double>(v);
      if (std::isnan(v) || static_cast<T>(d) == v) {
        append_float(out, '\xcb', std::bit_cast<std::uint64_t>(d));
      } else {
        char buf[64];
        const int n = std::snprintf(buf, sizeof buf, "%La", v);
        pk.pack_str(static_cast<std::uint32_t>(n));
        pk.pack_str_body(buf, static_cast<std::uint32_t>(n));
      }
    }
  } else if constexpr (k == Kind::enumeration) {
    encode(pk, out, static_cast<std::underlying_type_t<T>>(v));
  } else if constexpr (k == Kind::string) {
    pk.pack_str(static_cast<std::uint32_t>(v.size()));
    pk.pack_str_body(v.data(), static_cast<std::uint32_t>(v.size()));
  } else if constexpr (byte_sequence<T>()) {
    encode_bytes(pk, v);
  } else if constexpr (k == Kind::vector || k == Kind::array || k == Kind::set) {
    pk.pack_array(static_cast<std::uint32_t>(v.size()));
    for (const auto& e : v) encode(pk, out, e);
  } else if constexpr (k == Kind::map) {
    pk.pack_map(static_cast<std::uint32_t>(v.size()));
    for (const auto& [key, value] : v) {
      encode(pk, out, key);
      encode(pk, out, value);
    }
  } else if constexpr (k == Kind::pair) {
    pk.pack_array(2);
    encode(pk, out, v.first);
    encode(pk, out, v.second);
  } else if constexpr (k == Kind::tuple) {
    pk.pack_array(static_cast<std::uint32_t>(std::tuple_size_v<T>));
    std::apply([&](const auto&... e) { (encode(pk, out, e), ...); }, v);
  } else if constexpr (k == Kind::optional) {
    if (!v) {
      pk.pack_nil();
    } else if constexpr (may_be_nil<typename T::value_type>()) {
      pk.pack_array(1);  // [value]: the value itself may be nil
      encode(pk, out, *v);
    } else {
      encode(pk, out, *v);
    }
  } else if constexpr (k == Kind::variant) {
    pk.pack_array(2);
    pk.pack(static_cast<std::uint64_t>(v.index()));
    std::visit([&](const auto& alt) { encode(pk, out, alt); }, v);
  } else if constexpr (k == Kind::unit) {
    pk.pack_nil();
  } else if constexpr (k == Kind::wrapper) {
    encode(pk, out, v.const_value());
  } else if constexpr (k == Kind::object) {
    std::string body;
    FieldWriter fields(body);
    serialization_access::serialize(const_cast<T&>(v), fields, value_version<T>);
    pk.pack_array(fields.count() + 1);
    pk.pack(value_version<T>);
    out.append(body);
  } else if constexpr (msgpack_defined<T>) {
    v.msgpack_pack(pk);
  } else {
    value::unsupported_type<T>();
  }
}

template <class T>
void decode_integer(const msgpack::object& o, T& v) {
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    if (o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
      fail(std::to_string(o.via.u64) + " does not fit the integer type");
    v = static_cast<T>(o.via.u64);
  } else if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    if constexpr (std::is_unsigned_v<T>) {
      fail("a negative integer for an unsigned type");
    } else {
      if (o.via.i64 < static_cast<std::int64_t>(std::numeric_limits<T>::min()))
        fail(std::to_string(o.via.i64) + " does not fit the integer type");
      v = static_cast<T>(o.via.i64);
    }
  } else {
    fail(std::string("expected an integer, found ") + type_name(o));
  }
}

template <class T>
void decode_bytes(const msgpack::object& o, T& v) {
  expect(o, msgpack::type::BIN, "bin");
  const auto* p = reinterpret_cast<const typename T::value_type*>(o.via.bin.ptr);
  if constexpr (kind_v<T> == Kind::vector) {
    v.assign(p, p + o.via.bin.size);
  } else {
    if (o.via.bin.size != v.size())
      fail("a fixed array of " + std::to_string(v.size()) + " bytes holds " + std::to_string(o.via.bin.size));
    std::copy(p, p + o.via.bin.size, v.begin());
  }
}

template <class T>
void decode(const msgpack::object& o, T& v, unsigned depth) {
  constexpr Kind k = kind_v<T>;
  if constexpr (k == Kind::codec) {
    expect(o, msgpack::type::BIN, "bin");
    std::string_view in(o.via.bin.ptr, o.via.bin.size);
    v = ValueCodec<T>::decode(in);
    if (!in.empty()) fail("trailing bytes after a ValueCodec value");
  } else if constexpr (k == Kind::boolean) {
    expect(o, msgpack::type::BOOLEAN, "bool");
    v = o.via.boolean;
  } else if constexpr (k == Kind::integer) {
    decode_integer(o, v);
  } else if constexpr (k == Kind::floating) {
    if constexpr (std::is_same_v<T, long double>) {
      if (o.type == msgpack::type::STR) {
        const std::string text(o.via.str.ptr, o.via.str.size);
        char* end = nullptr;
        v = std::strtold(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size()) fail("\"" + text + "\" is not a long double");
        return;
      }
    }
    // Other writers (msgpack-c among them) may store an integral float as an
    // integer, or a double as float 32: both are accepted.
    if (o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64)
      v = static_cast<T>(o.via.f64);
    else if (o.type == msgpack::type::POSITIVE_INTEGER)
      v = static_cast<T>(o.via.u64);
    else if (o.type == msgpack::type::NEGATIVE_INTEGER)
      v = static_cast<T>(o.via.i64);
    else
      fail(std::string("expected a float, found ") + type_name(o));
  } else if constexpr (k == Kind::enumeration) {
    std::underlying_type_t<T> u{};
    decode_integer(o, u);
    v = static_cast<T>(u);
  } else if constexpr (k == Kind::string) {
    expect(o, msgpack::type::STR, "str");
    v.assign(o.via.str.ptr, o.via.str.size);
  } else if constexpr (byte_sequence<T>()) {
    decode_bytes(o, v);
  } else if constexpr (k == Kind::vector) {
    expect(o, msgpack::type::ARRAY, "array");
    v.clear();
    v.reserve(o.via.array.size);
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
      typename T::value_type e{};  // (not emplace_back(): vector<bool> hands out proxies)
      decode(o.via.array.ptr[i], e, depth + 1);
      v.push_back(std::move(e));
    }
  } else if constexpr (k == Kind::array) {
    expect_array(o, std::tuple_size_v<T>, "a fixed array");
    for (std::size_t i = 0; i < v.size(); ++i) decode(o.via.array.ptr[i], v[i], depth + 1);
  } else if constexpr (k == Kind::set) {
    expect(o, msgpack::type::ARRAY, "array");
    v.clear();
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
      typename T::value_type e{};
      decode(o.via.array.ptr[i], e, depth + 1);
      if (!v.insert(std::move(e)).second) fail("a set holds the same element twice");
    }
  } else if constexpr (k == Kind::map) {
    expect(o, msgpack::type::MAP, "map");
    v.clear();
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
      typename T::key_type key{};
      typename T::mapped_type value{};
      decode(o.via.map.ptr[i].key, key, depth + 1);
      decode(o.via.map.ptr[i].val, value, depth + 1);
      if (!v.emplace(std::move(key), std::move(value)).second) fail("a map holds the same key twice");
    }
  } else if constexpr (k == Kind::pair) {
    expect_array(o, 2, "a pair");
    decode(o.via.array.ptr[0], v.first, depth + 1);
    decode(o.via.array.ptr[1], v.second, depth + 1);
  } else if constexpr (k == Kind::tuple) {
    expect_array(o, std::tuple_size_v<T>, "a tuple");
    std::size_t i = 0;
    std::apply([&](auto&... e) { (decode(o.via.array.ptr[i++], e, depth + 1), ...); }, v);
  } else if constexpr (k == Kind::optional) {
    if (o.type == msgpack::type::NIL) {
      v.reset();
    } else {
      typename T::value_type inner{};
      if constexpr (may_be_nil<typename T::value_type>()) {
        expect_array(o, 1, "an optional of a value that may be nil");
        decode(o.via.array.ptr[0], inner, depth + 1);
      } else {
        decode(o, inner, depth + 1);
      }
      v = std::move(inner);
    }
  } else if constexpr (k == Kind::variant) {
    expect_array(o, 2, "a variant");
    std::size_t index = 0;
    decode_integer(o.via.array.ptr[0], index);
    if (index >= std::variant_size_v<T>)
      fail("variant alternative " + std::to_string(index) + " of " + std::to_string(std::variant_size_v<T>));
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((I == index ? (decode(o.via.array.ptr[1], v.template emplace<I>(), depth + 1), 0) : 0), ...);
    }(std::make_index_sequence<std::variant_size_v<T>>{});
  } else if constexpr (k == Kind::unit) {
    expect(o, msgpack::type::NIL, "nil");
  } else if constexpr (k == Kind::wrapper) {
    decode(o, v.value(), depth);
  } else if constexpr (k == Kind::object) {
    if (depth > value::max_nesting) fail("objects nested deeper than " + std::to_string(value::max_nesting));
    expect(o, msgpack::type::ARRAY, "array");
    if (o.via.array.size == 0) fail("an object without its version");
    unsigned version = 0;
    decode_integer(o.via.array.ptr[0], version);
    v = T{};
    FieldReader fields(o.via.array.ptr + 1, o.via.array.size - 1, depth + 1);
    serialization_access::serialize(v, fields, version);
    if (!fields.done()) fail("an object has more fields than its serialize() reads");
  } else if constexpr (msgpack_defined<T>) {
    try {
      v = T{};
      v.msgpack_unpack(o);
    } catch (const std::bad_cast&) {
      fail("it does not match the type's MSGPACK_DEFINE layout");
    }
  } else {
    value::unsupported_type<T>();
  }
}

}  // namespace detail::msgpack_format

/// MessagePack value format (see the top of this header); a Serializer
/// policy: `Storage<Key, Value, MsgpackSerializer>`.
struct MsgpackSerializer {
  /// Format name recorded in the store's manifest.
  static constexpr std::string_view id() { return "msgpack-1"; }
  /// Deepest nesting of containers and objects a value may have.
  static constexpr unsigned max_depth = detail::value::max_nesting;

  /// Appends the MessagePack encoding of `v` to `out` (on an exception, `out` is left as it was).
  template <class T>
  static void serialize(const T& v, std::string& out) {
    const auto size = out.size();
    try {
      detail::msgpack_format::StringSink sink{&out};
      detail::msgpack_format::Packer pk(sink);
      detail::msgpack_format::encode(pk, out, v);
    } catch (...) {
      out.resize(size);
      throw;
    }
  }

  /// Decodes a T that must take exactly `bytes`; CorruptionError otherwise.
  template <class T>
  static T deserialize(std::string_view bytes) {
    const std::size_t n = bytes.size();
    const msgpack::unpack_limit limit(n, n, n, n, n, 2 * max_depth + 8);
    std::size_t offset = 0;
    T v{};
    try {
      msgpack::object_handle handle = msgpack::unpack(bytes.data(), n, offset, nullptr, nullptr, limit);
      if (offset != n) detail::msgpack_format::fail(std::to_string(n - offset) + " trailing bytes after the value");
      detail::msgpack_format::decode(handle.get(), v, 0);
    } catch (const Error&) {
      throw;
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {  // msgpack::unpack_error, insufficient_bytes, size overflows, type_error
      detail::msgpack_format::fail(std::string("malformed (") + e.what() + ")");
    }
    return v;
  }

  /// True when MsgpackSerializer can store a T.
  template <class T>
  static constexpr bool supports = detail::msgpack_format::supported<T>();
};

}  // namespace stowage

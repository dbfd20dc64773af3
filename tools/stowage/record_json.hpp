// SPDX-License-Identifier: BSL-1.0
// record_json.hpp (the `stowage` tool): encoded keys and values to JSON and
// back, driven by what the MANIFEST records instead of C++ types:
//  - keys by the key order's name (KeyCodec<Key>::name(): "u64", "str",
//    "pair<str,i32>", "vec<u8>", ...), decoded with the library's own codecs;
//  - values by the value type description (type_description<Value>():
//    "obj@2{str,f64,vec<i32>}", ...) when the store uses BinarySerializer
//    ("binary-1"), decoded with its own element codecs.
//
// JSON shapes (the same for keys and values):
//   bool -> true/false; integers, chars, enums -> numbers; floats -> numbers,
//   or "NaN", "Infinity", "-Infinity"; str -> a string when it is valid UTF-8,
//   else {"hex": "..."}; vec, set, arr, pair, tup -> arrays; opt -> null or the
//   value (an optional of an optional: [] or [value]); var -> {"index": i,
//   "value": v}; map -> an object when its keys are strings, else an array of
//   [key, value] pairs; unit -> null; obj -> an array of its fields (the
//   description records no field names). Types the description cannot say
//   enough about (user codecs "codec...", recursive "rec", long doubles, user
//   key codecs) make the whole key or value render as hex instead: a record
//   line is {"key": K, "value": V}, with "key_hex" / "value_hex" in their place.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include <stowage/error.hpp>
#include <stowage/key_codec.hpp>
#include <stowage/serializer.hpp>

namespace stowage::tool {

using Json = nlohmann::json;

/// A type as a key order name or a value type description names it.
struct TypeNode {
  /// What the node is.
  enum class Kind { boolean, integer, floating, string, unit, sequence, array, tuple, optional, variant, map, object };
  Kind kind = Kind::unit;
  unsigned bits = 0;         ///< integer and floating widths
  bool is_signed = false;    ///< integers
  bool is_set = false;       ///< sequence: a set (the same bytes as a vector)
  std::uint64_t count = 0;   ///< array length
  std::uint32_t version = 0; ///< object: its schema version
  std::vector<TypeNode> elems;  ///< element types, in order
};

/// Lower-case hex of bytes.
inline std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

/// Bytes from hex (either case); ValidationError on anything else.
inline std::string from_hex(std::string_view hex) {
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw ValidationError("stowage: '" + std::string(hex) + "' is not hex");
  };
  if (hex.size() % 2 != 0) throw ValidationError("stowage: hex '" + std::string(hex) + "' has an odd length");
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) out.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  return out;
}

/// True when s is valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
inline bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if ((c >> 5) == 6) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c >> 4) == 14) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c >> 3) == 30) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 2) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    static constexpr std::uint32_t min_cp[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

namespace record_json_detail {

// A recursive-descent parser of key order names and value type descriptions.
// Anything it does not know (user codecs, "rec", long doubles) is nullopt.
class TypeParser {
 public:
  TypeParser(std::string_view text, bool value) : s_(text), value_(value) {}

  std::optional<TypeNode> parse_all() {
    auto t = parse();
    if (!t || pos_ != s_.size()) return std::nullopt;
    return t;
  }

 private:
  bool eat(std::string_view tok) {
    if (s_.substr(pos_, tok.size()) != tok) return false;
    pos_ += tok.size();
    return true;
  }
  std::optional<std::uint64_t> number() {
    std::uint64_t v = 0;
    const auto* b = s_.data() + pos_;
    auto [p, ec] = std::from_chars(b, s_.data() + s_.size(), v);
    if (ec != std::errc{} || p == b) return std::nullopt;
    pos_ += static_cast<std::size_t>(p - b);
    return v;
  }
  // "<A,B,...>" after a generic's name; "<>" is an empty list.
  bool list(std::vector<TypeNode>& out) {
    if (!eat("<")) return false;
    if (eat(">")) return true;
    for (;;) {
      auto t = parse();
      if (!t) return false;
      out.push_back(std::move(*t));
      if (eat(">")) return true;
      if (!eat(",")) return false;
    }
  }
  static TypeNode integer(unsigned bits, bool is_signed) {
    TypeNode t;
    t.kind = TypeNode::Kind::integer;
    t.bits = bits;
    t.is_signed = is_signed;
    return t;
  }
  std::optional<TypeNode> parse() {
    TypeNode t;
    using K = TypeNode::Kind;
    if (eat("bool")) {
      t.kind = K::boolean;
      return t;
    }
    if (eat("str")) {
      t.kind = K::string;
      return t;
    }
    if (value_ && eat("unit")) return t;
    if (value_ && eat("char")) return integer(8, std::is_signed_v<char>);
    if (value_ && eat("c8")) return integer(8, false);
    if (value_ && eat("c16")) return integer(16, false);
    if (value_ && eat("c32")) return integer(32, false);
    if (value_ && eat("wc")) {
      auto n = number();
      if (!n || *n != sizeof(wchar_t) * 8) return std::nullopt;
      return integer(static_cast<unsigned>(*n), std::is_signed_v<wchar_t>);
    }
    if (eat("f32") || eat("f64")) {
      t.kind = K::floating;
      t.bits = s_[pos_ - 1] == '2' ? 32 : 64;
      return t;
    }
    if (s_.substr(pos_, 1) == "i" || s_.substr(pos_, 1) == "u") {
      const bool is_signed = s_[pos_] == 'i';
      ++pos_;
      auto n = number();
      if (!n || (*n != 8 && *n != 16 && *n != 32 && *n != 64)) return std::nullopt;
      return integer(static_cast<unsigned>(*n), is_signed);
    }
    if (value_ && eat("enum")) {
      std::vector<TypeNode> e;
      if (!list(e) || e.size() != 1 || e[0].kind != K::integer) return std::nullopt;
      return e[0];
    }
    auto generic = [&](std::string_view name, K kind, std::size_t min, std::size_t max) -> std::optional<TypeNode> {
      if (!eat(name)) return std::nullopt;
      t.kind = kind;
      if (!list(t.elems) || t.elems.size() < min || t.elems.size() > max) return std::nullopt;
      return t;
    };
    const std::size_t start = pos_;
    auto attempt = [&](std::string_view name, K kind, std::size_t min, std::size_t max) {
      pos_ = start;
      t = TypeNode{};
      auto r = generic(name, kind, min, max);
      if (!r) pos_ = start;
      return r;
    };
    if (s_.substr(pos_, 4) == "vec<") return attempt("vec", K::sequence, 1, 1);
    if (value_ && s_.substr(pos_, 4) == "set<") {
      auto r = attempt("set", K::sequence, 1, 1);
      if (r) r->is_set = true;
      return r;
    }
    if (s_.substr(pos_, 5) == "pair<") return attempt("pair", K::tuple, 2, 2);
    if (s_.substr(pos_, 4) == "tup<") return attempt("tup", K::tuple, 0, 1000);
    if (s_.substr(pos_, 4) == "opt<") return attempt("opt", K::optional, 1, 1);
    if (value_ && s_.substr(pos_, 4) == "var<") return attempt("var", K::variant, 1, 1000);
    if (value_ && s_.substr(pos_, 4) == "map<") return attempt("map", K::map, 2, 2);
    if (eat("arr<")) {
      t.kind = K::array;
      auto e = parse();
      if (!e || !eat(",")) return std::nullopt;
      auto n = number();
      if (!n || !eat(">")) return std::nullopt;
      t.elems.push_back(std::move(*e));
      t.count = *n;
      return t;
    }
    if (value_ && eat("obj")) {
      t.kind = K::object;
      if (eat("@")) {
        auto v = number();
        if (!v || *v > 0xffffffffu) return std::nullopt;
        t.version = static_cast<std::uint32_t>(*v);
      }
      if (!eat("{")) return std::nullopt;
      if (eat("}")) return t;
      for (;;) {
        auto f = parse();
        if (!f) return std::nullopt;
        t.elems.push_back(std::move(*f));
        if (eat("}")) return t;
        if (!eat(",")) return std::nullopt;
      }
    }
    return std::nullopt;  // codec..., rec, f80, f128, user key orders
  }

  std::string_view s_;
  bool value_;
  std::size_t pos_ = 0;
};

// Calls fn(std::type_identity<T>{}) with the C++ integer type of a node.
template <class Fn>
decltype(auto) with_integer(const TypeNode& t, Fn&& fn) {
  switch (t.bits) {
    case 8:
      return t.is_signed ? fn(std::type_identity<std::int8_t>{}) : fn(std::type_identity<std::uint8_t>{});
    case 16:
      return t.is_signed ? fn(std::type_identity<std::int16_t>{}) : fn(std::type_identity<std::uint16_t>{});
    case 32:
      return t.is_signed ? fn(std::type_identity<std::int32_t>{}) : fn(std::type_identity<std::uint32_t>{});
    default:
      return t.is_signed ? fn(std::type_identity<std::int64_t>{}) : fn(std::type_identity<std::uint64_t>{});
  }
}

[[noreturn]] inline void bad_json(const Json& j, const std::string& want) {
  throw ValidationError("stowage: JSON " + j.dump() + " is not " + want);
}

template <class T>
Json float_to_json(T v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  // The shortest text that reads back as the same T, as a JSON number.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return Json::parse(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

template <class T>
T float_from_json(const Json& j) {
  if (j.is_number()) return static_cast<T>(j.get<double>());
  if (j == "NaN") return std::numeric_limits<T>::quiet_NaN();
  if (j == "Infinity") return std::numeric_limits<T>::infinity();
  if (j == "-Infinity") return -std::numeric_limits<T>::infinity();
  bad_json(j, "a number");
}

template <class T>
T integer_from_json(const Json& j) {
  if (j.is_number_unsigned()) {
    const auto v = j.get<std::uint64_t>();
    if (v <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(v);
  } else if (j.is_number_integer()) {
    const auto v = j.get<std::int64_t>();
    if (v >= static_cast<std::int64_t>(std::numeric_limits<T>::min()) &&
        (v < 0 || static_cast<std::uint64_t>(v) <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())))
      return static_cast<T>(v);
  }
  bad_json(j, "an integer within " + std::to_string(std::numeric_limits<T>::min()) + ".." +
                  std::to_string(std::numeric_limits<T>::max()));
}

inline Json string_to_json(const std::string& s) {
  if (valid_utf8(s)) return s;
  return Json{{"hex", to_hex(s)}};
}

inline std::string string_from_json(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.size() == 1 && j.contains("hex") && j["hex"].is_string())
    return from_hex(j["hex"].get<std::string>());
  bad_json(j, "a string (or {\"hex\": \"...\"})");
}

inline const Json& expect_array(const Json& j, std::size_t n, const char* what) {
  if (!j.is_array() || (n != SIZE_MAX && j.size() != n))
    bad_json(j, std::string(what) + (n != SIZE_MAX ? " of " + std::to_string(n) + " elements" : ""));
  return j;
}

// The JSON an optional holds, or nullptr when it is empty (null, or [] for
// an optional of an optional, whose full form is [value]).
inline const Json* optional_payload(const TypeNode& t, const Json& j) {
  if (t.elems[0].kind == TypeNode::Kind::optional) {
    if (!j.is_array() || j.size() > 1) bad_json(j, "[] or [value] (an optional of an optional)");
    return j.empty() ? nullptr : &j[0];
  }
  return j.is_null() ? nullptr : &j;
}

// ---- keys: the key codec's bytes --------------------------------------------

inline Json key_to_json(const TypeNode& t, std::string_view& in, std::size_t base) {
  using K = TypeNode::Kind;
  const std::size_t at = base;
  switch (t.kind) {
    case K::boolean:
      return KeyCodec<bool>::decode_at(in, at);
    case K::integer:
      return with_integer(t, [&]<class T>(std::type_identity<T>) { return Json(KeyCodec<T>::decode_at(in, at)); });
    case K::floating:
      if (t.bits == 32) return float_to_json(KeyCodec<float>::decode_at(in, at));
      return float_to_json(KeyCodec<double>::decode_at(in, at));
    case K::string:
      return string_to_json(KeyCodec<std::string>::decode_at(in, at));
    case K::tuple:
    case K::array: {
      Json out = Json::array();
      const std::size_t n = t.kind == K::array ? static_cast<std::size_t>(t.count) : t.elems.size();
      const std::size_t start = in.size();
      for (std::size_t i = 0; i < n; ++i)
        out.push_back(key_to_json(t.kind == K::array ? t.elems[0] : t.elems[i], in, base + (start - in.size())));
      return out;
    }
    case K::sequence: {
      Json out = Json::array();
      const std::size_t start = in.size();
      for (;;) {
        const std::size_t pos = base + (start - in.size());
        if (in.empty()) detail::key::fail(pos, "unterminated vector");
        const auto marker = static_cast<unsigned char>(in[0]);
        in.remove_prefix(1);
        if (marker == 0) return out;
        if (marker != 1) detail::key::fail(pos, "bad vector element marker");
        out.push_back(key_to_json(t.elems[0], in, pos + 1));
      }
    }
    case K::optional: {
      if (in.empty()) detail::key::fail(at, "truncated optional");
      const auto flag = static_cast<unsigned char>(in[0]);
      if (flag > 1) detail::key::fail(at, "bad optional flag");
      in.remove_prefix(1);
      const bool nested = t.elems[0].kind == K::optional;
      if (flag == 0) return nested ? Json::array() : Json(nullptr);
      Json v = key_to_json(t.elems[0], in, at + 1);
      return nested ? Json::array({v}) : v;
    }
    default:
      throw Error("stowage: not a key type");
  }
}

inline void key_from_json(const TypeNode& t, const Json& j, std::string& out) {
  using K = TypeNode::Kind;
  switch (t.kind) {
    case K::boolean:
      if (!j.is_boolean()) bad_json(j, "true or false");
      KeyCodec<bool>::encode(j.get<bool>(), out);
      return;
    case K::integer:
      with_integer(t, [&]<class T>(std::type_identity<T>) { KeyCodec<T>::encode(integer_from_json<T>(j), out); });
      return;
    case K::floating:
      if (t.bits == 32)
        KeyCodec<float>::encode(float_from_json<float>(j), out);
      else
        KeyCodec<double>::encode(float_from_json<double>(j), out);
      return;
    case K::string:
      KeyCodec<std::string>::encode(string_from_json(j), out);
      return;
    case K::tuple:
    case K::array: {
      const std::size_t n = t.kind == K::array ? static_cast<std::size_t>(t.count) : t.elems.size();
      expect_array(j, n, "an array");
      for (std::size_t i = 0; i < n; ++i) key_from_json(t.kind == K::array ? t.elems[0] : t.elems[i], j[i], out);
      return;
    }
    case K::sequence:
      expect_array(j, SIZE_MAX, "an array");
      for (const auto& e : j) {
        out.push_back('\1');
        key_from_json(t.elems[0], e, out);
      }
      out.push_back('\0');
      return;
    case K::optional: {
      const Json* v = optional_payload(t, j);
      out.push_back(v ? '\1' : '\0');
      if (v) key_from_json(t.elems[0], *v, out);
      return;
    }
    default:
      throw Error("stowage: not a key type");
  }
}

// ---- values: BinarySerializer's bytes ----------------------------------------

template <class T>
T read_scalar(detail::value::Input& in) {
  return detail::value::decode_new<T>(in);
}
template <class T>
void write_scalar(std::string& out, const T& v) {
  detail::value::Output ar(out);
  detail::value::encode(ar, v);
}

// A container's element count, checked against the bytes left (every element
// takes at least one byte: the library refuses containers of empty types).
inline std::size_t read_count(detail::value::Input& in, const char* what) {
  const auto at = in.position();
  const std::uint64_t n = in.r.varint(what);
  if (n > in.r.remaining())
    in.fail(at, std::string(what) + " " + std::to_string(n) + " exceeds the " + std::to_string(in.r.remaining()) +
                    " bytes left");
  return static_cast<std::size_t>(n);
}

inline Json value_to_json(const TypeNode& t, detail::value::Input& in, unsigned depth = 0) {
  using K = TypeNode::Kind;
  if (depth > 200) in.fail(in.position(), "value nests too deeply");
  switch (t.kind) {
    case K::boolean:
      return read_scalar<bool>(in);
    case K::integer:
      return with_integer(t, [&]<class T>(std::type_identity<T>) { return Json(read_scalar<T>(in)); });
    case K::floating:
      if (t.bits == 32) return float_to_json(read_scalar<float>(in));
      return float_to_json(read_scalar<double>(in));
    case K::string:
      return string_to_json(read_scalar<std::string>(in));
    case K::unit:
      return nullptr;
    case K::sequence: {
      const std::size_t n = read_count(in, "element count");
      Json out = Json::array();
      for (std::size_t i = 0; i < n; ++i) out.push_back(value_to_json(t.elems[0], in, depth + 1));
      return out;
    }
    case K::map: {
      const std::size_t n = read_count(in, "map size");
      const bool named = t.elems[0].kind == K::string;
      Json pairs = Json::array();
      Json obj = Json::object();
      bool all_text = named;
      for (std::size_t i = 0; i < n; ++i) {
        Json k = value_to_json(t.elems[0], in, depth + 1);
        Json v = value_to_json(t.elems[1], in, depth + 1);
        if (all_text && k.is_string()) obj[k.get<std::string>()] = v;
        all_text = all_text && k.is_string();
        pairs.push_back(Json::array({std::move(k), std::move(v)}));
      }
      return all_text ? obj : pairs;
    }
    case K::array:
    case K::tuple:
    case K::object: {
      if (t.kind == K::object) {
        const auto at = in.position();
        const std::uint64_t version = in.r.varint("version");
        if (version != t.version)
          in.fail(at, "object at version " + std::to_string(version) + " where the MANIFEST describes version " +
                          std::to_string(t.version));
      }
      Json out = Json::array();
      const std::size_t n = t.kind == K::array ? static_cast<std::size_t>(t.count) : t.elems.size();
      for (std::size_t i = 0; i < n; ++i) {
        // An array's length comes from the MANIFEST, not the bytes: stop at their end.
        if (t.kind == K::array && in.r.empty()) in.fail(in.position(), "truncated array");
        out.push_back(value_to_json(t.kind == K::array ? t.elems[0] : t.elems[i], in, depth + 1));
      }
      return out;
    }
    case K::optional: {
      const auto at = in.position();
      const auto flag = in.r.u8("optional flag");
      if (flag > 1) in.fail(at, "bad optional flag");
      const bool nested = t.elems[0].kind == K::optional;
      if (flag == 0) return nested ? Json::array() : Json(nullptr);
      Json v = value_to_json(t.elems[0], in, depth + 1);
      return nested ? Json::array({v}) : v;
    }
    case K::variant: {
      const auto at = in.position();
      const std::uint64_t index = in.r.varint("variant index");
      if (index >= t.elems.size()) in.fail(at, "variant index out of range");
      return Json{{"index", index}, {"value", value_to_json(t.elems[static_cast<std::size_t>(index)], in, depth + 1)}};
    }
  }
  throw Error("stowage: unknown type node");
}

inline void value_from_json(const TypeNode& t, const Json& j, std::string& out) {
  using K = TypeNode::Kind;
  switch (t.kind) {
    case K::boolean:
      if (!j.is_boolean()) bad_json(j, "true or false");
      write_scalar(out, j.get<bool>());
      return;
    case K::integer:
      with_integer(t, [&]<class T>(std::type_identity<T>) { write_scalar(out, integer_from_json<T>(j)); });
      return;
    case K::floating:
      if (t.bits == 32)
        write_scalar(out, float_from_json<float>(j));
      else
        write_scalar(out, float_from_json<double>(j));
      return;
    case K::string:
      write_scalar(out, string_from_json(j));
      return;
    case K::unit:
      if (!j.is_null()) bad_json(j, "null");
      return;
    case K::sequence:
      expect_array(j, SIZE_MAX, "an array");
      detail::put_varint(out, j.size());
      for (const auto& e : j) value_from_json(t.elems[0], e, out);
      return;
    case K::map:
      if (j.is_object()) {
        if (t.elems[0].kind != K::string) bad_json(j, "an array of [key, value] pairs");
        detail::put_varint(out, j.size());
        for (const auto& [k, v] : j.items()) {
          write_scalar(out, std::string(k));
          value_from_json(t.elems[1], v, out);
        }
        return;
      }
      expect_array(j, SIZE_MAX, "an object or an array of [key, value] pairs");
      detail::put_varint(out, j.size());
      for (const auto& kv : j) {
        expect_array(kv, 2, "a [key, value] pair");
        value_from_json(t.elems[0], kv[0], out);
        value_from_json(t.elems[1], kv[1], out);
      }
      return;
    case K::array:
    case K::tuple:
    case K::object: {
      const std::size_t n = t.kind == K::array ? static_cast<std::size_t>(t.count) : t.elems.size();
      expect_array(j, n, t.kind == K::object ? "an array of the object's fields" : "an array");
      if (t.kind == K::object) detail::put_varint(out, t.version);
      for (std::size_t i = 0; i < n; ++i) value_from_json(t.kind == K::array ? t.elems[0] : t.elems[i], j[i], out);
      return;
    }
    case K::optional: {
      const Json* v = optional_payload(t, j);
      out.push_back(v ? '\1' : '\0');
      if (v) value_from_json(t.elems[0], *v, out);
      return;
    }
    case K::variant: {
      if (!j.is_object() || !j.contains("index") || !j.contains("value")) bad_json(j, "{\"index\": i, \"value\": v}");
      const auto index = integer_from_json<std::uint64_t>(j["index"]);
      if (index >= t.elems.size()) bad_json(j, "a variant with index below " + std::to_string(t.elems.size()));
      detail::put_varint(out, index);
      value_from_json(t.elems[static_cast<std::size_t>(index)], j["value"], out);
      return;
    }
  }
}

}  // namespace record_json_detail

/// Renders a store's encoded keys and values as JSON and parses them back,
/// from the key order name and value type description in its MANIFEST (see
/// the top of this file).
class RecordJson {
 public:
  /// key_order: KeyCodec<Key>::name(); value_type: type_description<Value>()
  /// (empty when unknown); serializer: the store's Serializer::id().
  RecordJson(std::string_view key_order, std::string_view value_type, std::string_view serializer) {
    if (auto k = record_json_detail::TypeParser(key_order, false).parse_all()) key_ = std::move(*k);
    if (serializer == BinarySerializer::id() && !value_type.empty())
      if (auto v = record_json_detail::TypeParser(value_type, true).parse_all()) value_ = std::move(*v);
  }

  /// Whether keys render as JSON (else as hex).
  bool keys_as_json() const { return key_.has_value(); }
  /// Whether values render as JSON (else as hex).
  bool values_as_json() const { return value_.has_value(); }

  /// The key as JSON; nullopt when its order is not known or the bytes do
  /// not decode (render it as hex then).
  std::optional<Json> key(std::string_view bytes) const {
    if (!key_) return std::nullopt;
    try {
      std::string_view in = bytes;
      Json j = record_json_detail::key_to_json(*key_, in, 0);
      if (!in.empty()) return std::nullopt;
      return j;
    } catch (const CorruptionError&) {
      return std::nullopt;
    }
  }
  /// The value as JSON; nullopt when its type is not known or the bytes do
  /// not decode (render it as hex then).
  std::optional<Json> value(std::string_view bytes) const {
    if (!value_) return std::nullopt;
    try {
      detail::value::Input in(bytes);
      Json j = record_json_detail::value_to_json(*value_, in);
      if (!in.r.empty()) return std::nullopt;
      return j;
    } catch (const CorruptionError&) {
      return std::nullopt;
    }
  }
  /// The encoded key for JSON; ValidationError when it does not fit the key
  /// order, or when the order is not known.
  std::string key_bytes(const Json& j) const {
    if (!key_) throw ValidationError("stowage: the store's key order is not one the tool knows; give keys as key_hex");
    std::string out;
    record_json_detail::key_from_json(*key_, j, out);
    return out;
  }
  /// The encoded value for JSON; ValidationError when it does not fit the
  /// value type, or when the type is not known.
  std::string value_bytes(const Json& j) const {
    if (!value_)
      throw ValidationError("stowage: the store's value type is not one the tool can encode (it needs BinarySerializer "
                            "and a value type description without user codecs); give values as value_hex");
    std::string out;
    record_json_detail::value_from_json(*value_, j, out);
    return out;
  }

  /// One JSON-lines record: {"key": ..., "value": ...}, or key_hex / value_hex.
  Json record(std::string_view key_bytes, std::string_view value_bytes) const {
    Json line = Json::object();
    if (auto k = key(key_bytes))
      line["key"] = std::move(*k);
    else
      line["key_hex"] = to_hex(key_bytes);
    if (auto v = value(value_bytes))
      line["value"] = std::move(*v);
    else
      line["value_hex"] = to_hex(value_bytes);
    return line;
  }
  /// The encoded key of a record line (its "key" or "key_hex").
  std::string record_key(const Json& line) const {
    if (line.contains("key_hex")) return from_hex(line["key_hex"].get<std::string>());
    if (!line.contains("key")) throw ValidationError("stowage: record " + line.dump() + " has no \"key\"");
    return key_bytes(line["key"]);
  }
  /// The encoded value of a record line (its "value" or "value_hex").
  std::string record_value(const Json& line) const {
    if (line.contains("value_hex")) return from_hex(line["value_hex"].get<std::string>());
    if (!line.contains("value")) throw ValidationError("stowage: record " + line.dump() + " has no \"value\"");
    return value_bytes(line["value"]);
  }

 private:
  std::optional<TypeNode> key_;
  std::optional<TypeNode> value_;
};

}  // namespace stowage::tool

// Tests of the stowage tool's RecordJson (tools/stowage/record_json.hpp):
// keys and values of many C++ types, encoded by the library, render as the
// documented JSON and parse back to exactly the same bytes; types the
// description cannot render (user codecs, recursive types, user key orders)
// and bytes that do not decode fall back to hex.
#if defined(__GNUC__) && !defined(__clang__)
// g++ 12 -O2 reports a false -Wrestrict inside libstdc++'s string operator+
// when it inlines type_description<> of integer containers (GCC bug 105329).
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <variant>

#include <stowage/stowage.hpp>

#include "record_json.hpp"

using namespace stowage;
using stowage::tool::Json;
using stowage::tool::RecordJson;

namespace {

enum class Color : std::int16_t { red = -1, green = 7 };

struct Inner {
  std::vector<std::int32_t> xs;
  std::optional<std::string> tag;
  template <class A>
  void serialize(A& ar, unsigned) {
    ar & xs & tag;
  }
};

struct Reading {
  static constexpr unsigned version = 3;
  std::string sensor;
  double celsius = 0;
  Inner inner;
  Color color = Color::red;
  template <class A>
  void serialize(A& ar, unsigned) {
    ar & sensor & celsius & inner & color;
  }
};

struct Opaque {
  int v = 0;
};

// The value's bytes render as `expected` and parse back to the same bytes.
template <class T>
void value_round_trip(const T& v, const Json& expected) {
  std::string bytes;
  BinarySerializer::serialize(v, bytes);
  const RecordJson codec("u64", type_description<T>(), BinarySerializer::id());
  INFO(type_description<T>());
  REQUIRE(codec.values_as_json());
  const auto j = codec.value(bytes);
  REQUIRE(j.has_value());
  CHECK(*j == expected);
  CHECK(codec.value_bytes(*j) == bytes);
  CHECK(codec.value_bytes(Json::parse(j->dump())) == bytes);  // through text
}

template <class K>
void key_round_trip(const K& k, const Json& expected) {
  const std::string bytes = encode_key(k);
  const RecordJson codec(key_name<K>(), "", BinarySerializer::id());
  INFO(key_name<K>());
  REQUIRE(codec.keys_as_json());
  const auto j = codec.key(bytes);
  REQUIRE(j.has_value());
  CHECK(*j == expected);
  CHECK(codec.key_bytes(Json::parse(j->dump())) == bytes);
}

}  // namespace

template <>
struct stowage::ValueCodec<Opaque> {
  static void encode(const Opaque& o, std::string& out) { out.push_back(static_cast<char>(o.v)); }
  static Opaque decode(std::string_view& in) {
    Opaque o{static_cast<unsigned char>(in[0])};
    in.remove_prefix(1);
    return o;
  }
};

TEST_CASE("values of the default serializer render as JSON and parse back to the same bytes") {
  value_round_trip(std::uint64_t{18446744073709551615ull}, Json(18446744073709551615ull));
  value_round_trip(std::int32_t{-42}, Json(-42));
  value_round_trip(true, Json(true));
  value_round_trip(21.5, Json(21.5));
  value_round_trip(0.1f, Json(0.1));
  value_round_trip(std::numeric_limits<double>::infinity(), Json("Infinity"));
  value_round_trip(std::string("caf\xc3\xa9"), Json("caf\xc3\xa9"));
  value_round_trip(std::string("\xff\x00x", 3), Json{{"hex", "ff0078"}});
  value_round_trip(std::vector<std::uint8_t>{1, 2, 3}, Json::array({1, 2, 3}));
  value_round_trip(std::array<std::int64_t, 2>{-1, 1}, Json::array({-1, 1}));
  value_round_trip(std::pair<std::string, int>{"a", 1}, Json::array({"a", 1}));
  value_round_trip(std::tuple<bool, std::string, double>{false, "x", -0.5}, Json::array({false, "x", -0.5}));
  value_round_trip(std::optional<int>{}, Json(nullptr));
  value_round_trip(std::optional<int>{5}, Json(5));
  value_round_trip(std::optional<std::optional<int>>{std::optional<int>{}}, Json::array({nullptr}));
  value_round_trip(std::optional<std::optional<int>>{}, Json::array());
  value_round_trip(std::map<std::string, int>{{"b", 2}, {"a", 1}}, Json{{"a", 1}, {"b", 2}});
  value_round_trip(std::map<int, std::string>{{2, "b"}, {1, "a"}}, Json::array({Json::array({1, "a"}), Json::array({2, "b"})}));
  value_round_trip(std::set<std::uint16_t>{3, 1}, Json::array({1, 3}));
  value_round_trip(std::variant<int, std::string>{std::string("v")}, Json{{"index", 1}, {"value", "v"}});
  value_round_trip(Color::green, Json(7));
  value_round_trip(Reading{"roof", 21.5, Inner{{1, -2}, "t"}, Color::red},
                   Json::array({"roof", 21.5, Json::array({Json::array({1, -2}), "t"}), -1}));
  // NaN has no JSON number: a string, which reads back as a NaN.
  std::string nan_bytes;
  BinarySerializer::serialize(std::numeric_limits<double>::quiet_NaN(), nan_bytes);
  const RecordJson f64("u64", "f64", "binary-1");
  CHECK(*f64.value(nan_bytes) == Json("NaN"));
  CHECK(std::isnan(BinarySerializer::deserialize<double>(f64.value_bytes(Json("NaN")))));
}

TEST_CASE("keys of every built-in key order render as JSON and parse back to the same bytes") {
  key_round_trip(std::uint64_t{42}, Json(42));
  key_round_trip(std::int16_t{-3}, Json(-3));
  key_round_trip(-2.25, Json(-2.25));
  key_round_trip(true, Json(true));
  key_round_trip(std::string("a\0b", 3), Json(std::string("a\0b", 3)));
  key_round_trip(std::pair<std::string, std::int32_t>{"x", -1}, Json::array({"x", -1}));
  key_round_trip(std::tuple<std::uint8_t, std::string, bool>{1, "y", false}, Json::array({1, "y", false}));
  key_round_trip(std::array<std::uint32_t, 2>{5, 6}, Json::array({5, 6}));
  key_round_trip(std::vector<std::string>{"p", "q"}, Json::array({"p", "q"}));
  key_round_trip(std::optional<std::int64_t>{}, Json(nullptr));
  key_round_trip(std::optional<std::int64_t>{-7}, Json(-7));
}

TEST_CASE("what the description cannot render, or bytes that do not decode, fall back to hex") {
  // A user codec and a user key order: hex.
  const RecordJson opaque("my-order", type_description<Opaque>(), "binary-1");
  CHECK(!opaque.keys_as_json());
  CHECK(!opaque.values_as_json());
  const Json line = opaque.record("\x01\x02", "\x09");
  CHECK(line == Json{{"key_hex", "0102"}, {"value_hex", "09"}});
  CHECK(opaque.record_key(line) == "\x01\x02");
  CHECK(opaque.record_value(line) == "\x09");
  CHECK_THROWS_AS(opaque.key_bytes(Json(1)), ValidationError);
  // Another serializer: values are hex, keys still JSON.
  const RecordJson boost("u64", "i32", "boost-binary");
  CHECK(boost.keys_as_json());
  CHECK(!boost.values_as_json());
  // Bytes that do not decode as the type: hex for that record only.
  const RecordJson u32("u32", "str", "binary-1");
  CHECK(!u32.key("\x01\x02").has_value());
  CHECK(u32.record("\x01\x02", "\x05" "ab").contains("key_hex"));
  CHECK(!u32.value("\x05" "ab").has_value());
  // JSON of the wrong shape is a ValidationError naming it.
  CHECK_THROWS_WITH(u32.key_bytes(Json(-1)), Catch::Contains("-1") && Catch::Contains("integer"));
  CHECK_THROWS_AS(u32.key_bytes(Json(4294967296ull)), ValidationError);
  CHECK_THROWS_AS(u32.value_bytes(Json(3)), ValidationError);
  const RecordJson obj("u64", "obj@2{i32,str}", "binary-1");
  CHECK_THROWS_AS(obj.value_bytes(Json::array({1})), ValidationError);
  // An object stored at another version than the description's: hex.
  std::string other_version("\x01\x05\x00\x00\x00\x00", 6);
  CHECK(!obj.value(other_version).has_value());
  CHECK(tool::valid_utf8("\xe2\x82\xac"));
  CHECK(!tool::valid_utf8("\xe2\x82"));
  CHECK(!tool::valid_utf8("\xc0\x80"));  // overlong
  CHECK(!tool::valid_utf8("\xed\xa0\x80"));  // a surrogate
}

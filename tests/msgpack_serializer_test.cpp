// Tests for msgpack_serializer.hpp: MsgpackSerializer round trips through
// every value type BinarySerializer supports, schema versions, msgpack-c's
// MSGPACK_DEFINE types, a store using it, malformed input -> CorruptionError,
// and records checked by an independent reader: tests/tools/msgpack_dump.c,
// a C program on msgpack-c's C library, prints what it decodes.
#include <stowage/msgpack_serializer.hpp>
#include <stowage/stowage.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

namespace {

using stowage::CorruptionError;
using stowage::MsgpackSerializer;

template <class T>
std::string bytes_of(const T& v) {
  std::string out;
  MsgpackSerializer::serialize(v, out);
  return out;
}
template <class T>
T round_trip(const T& v) {
  return MsgpackSerializer::deserialize<T>(bytes_of(v));
}

enum class Color : std::uint8_t { red = 1, green = 2 };

struct Inner {
  std::int32_t id = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & id & label;
  }
  bool operator==(const Inner&) const = default;
  bool operator<(const Inner& o) const { return id < o.id; }
};

// A name-value wrapper like boost::serialization::nvp.
template <class T>
struct Nvp {
  const char* n;
  T* p;
  const char* name() const { return n; }
  T& value() const { return *p; }
  const T& const_value() const { return *p; }
};

struct Point {  // a ValueCodec type: two int16 in 4 bytes
  std::int16_t x = 0, y = 0;
  bool operator==(const Point&) const = default;
};

}  // namespace

template <>
struct stowage::ValueCodec<Point> {
  static void encode(const Point& p, std::string& out) {
    for (std::int16_t v : {p.x, p.y}) {
      out.push_back(static_cast<char>(v & 0xff));
      out.push_back(static_cast<char>((v >> 8) & 0xff));
    }
  }
  static Point decode(std::string_view& in) {
    if (in.size() < 4) throw stowage::CorruptionError({}, 0, "short point");
    auto get = [&](std::size_t i) {
      return static_cast<std::int16_t>(static_cast<unsigned char>(in[i]) | (static_cast<unsigned char>(in[i + 1]) << 8));
    };
    Point p{get(0), get(2)};
    in.remove_prefix(4);
    return p;
  }
};

namespace {

struct Everything {
  bool flag = false;
  std::int8_t i8 = 0;
  std::uint8_t u8 = 0;
  std::int16_t i16 = 0;
  std::uint16_t u16 = 0;
  std::int32_t i32 = 0;
  std::uint32_t u32 = 0;
  std::int64_t i64 = 0;
  std::uint64_t u64 = 0;
  char c = 0;
  float f = 0;
  double d = 0;
  long double ld = 0;
  Color color = Color::red;
  std::string text;
  std::vector<std::int32_t> ints;
  std::vector<std::uint8_t> blob;
  std::vector<bool> bits;
  std::array<double, 3> triple{};
  std::array<std::uint8_t, 4> quad{};
  std::pair<std::string, std::int64_t> pair;
  std::tuple<int, std::string, std::optional<double>> tuple;
  std::optional<std::string> maybe;
  std::optional<Inner> maybe_inner;
  std::variant<std::monostate, std::int32_t, std::string, Inner> variant;
  std::map<std::string, std::vector<Inner>> map;
  std::unordered_map<std::int32_t, std::string> umap;
  std::set<Inner> set;
  std::unordered_set<std::string> uset;
  std::monostate unit;
  std::vector<std::vector<std::string>> nested;
  Point point;
  std::string wrapped;

  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    Nvp<std::string> w{"wrapped", &wrapped};
    ar & flag & i8 & u8 & i16 & u16 & i32 & u32 & i64 & u64 & c & f & d & ld & color & text & ints & blob & bits &
        triple & quad & pair & tuple & maybe & maybe_inner & variant & map & umap & set & uset & unit & nested &
        point & w;
  }
  bool operator==(const Everything&) const = default;
};

Everything sample() {
  Everything e;
  e.flag = true;
  e.i8 = -128;
  e.u8 = 255;
  e.i16 = -32768;
  e.u16 = 65535;
  e.i32 = -2147483647 - 1;
  e.u32 = 4294967295u;
  e.i64 = std::numeric_limits<std::int64_t>::min();
  e.u64 = std::numeric_limits<std::uint64_t>::max();
  e.c = 'z';
  e.f = 1.5f;
  e.d = -0.1;
  e.ld = 1.0L / 3.0L;  // not a double: written as hex-float text
  e.color = Color::green;
  e.text = std::string("with \0 nul and \xff", 16);
  e.ints = {1, -2, 300000};
  e.blob = {0, 1, 254, 255};
  e.bits = {true, false, true};
  e.triple = {1, 2.5, -3};
  e.quad = {9, 8, 7, 6};
  e.pair = {"p", -5};
  e.tuple = {7, "t", std::nullopt};
  e.maybe = "here";
  e.maybe_inner = Inner{4, "inner"};
  e.variant = Inner{5, "alt"};
  e.map = {{"a", {Inner{1, "x"}, Inner{2, "y"}}}, {"b", {}}};
  e.umap = {{1, "one"}, {-1, "minus one"}};
  e.set = {Inner{3, "s"}, Inner{1, "t"}};
  e.uset = {"u", "v"};
  e.nested = {{"a", "b"}, {}, {"c"}};
  e.point = Point{-3, 4};
  e.wrapped = "by nvp";
  return e;
}

// Version 1 of a record, and version 2 that added a field.
struct RecordV1 {
  static constexpr unsigned version = 1;
  std::string name;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & name;
  }
};
struct RecordV2 {
  static constexpr unsigned version = 2;
  std::string name;
  std::int32_t score = -1;
  template <class Archive>
  void serialize(Archive& ar, unsigned v) {
    ar & name;
    if (v >= 2) ar & score;
  }
};

// A type adapted with msgpack-c's own macro.
struct Legacy {
  std::string key;
  std::int32_t count = 0;
  std::vector<double> samples;
  MSGPACK_DEFINE(key, count, samples)
};

struct Sensor {
  static constexpr unsigned version = 3;
  std::string name;
  double celsius = 0;
  std::vector<std::uint8_t> raw;
  std::optional<std::string> note;
  std::map<std::string, std::int64_t> counters;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar(name, celsius, raw, note, counters);
  }
};

#ifdef STOWAGE_MSGPACK_DUMP
// What the independent C reader prints for the file's objects, one line each.
std::string dump(const std::string& bytes) {
  const auto file = std::filesystem::path(STOWAGE_TEST_BINARY_DIR) / "msgpack-dump-input.bin";
  std::ofstream(file, std::ios::binary) << bytes;
  const std::string cmd = std::string(STOWAGE_MSGPACK_DUMP) + " " + file.string();
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  REQUIRE(::pclose(p) == 0);
  return out;
}
#endif

}  // namespace

TEST_CASE("MsgpackSerializer round-trips every value type BinarySerializer supports", "[msgpack]") {
  const Everything e = sample();
  static_assert(MsgpackSerializer::supports<Everything>);
  static_assert(stowage::BinarySerializer::supports<Everything>);
  CHECK(round_trip(e) == e);
  CHECK(round_trip(Everything{}) == Everything{});
  CHECK(round_trip(std::string()) == "");
  CHECK(round_trip(std::vector<Inner>{{1, "a"}, {2, "b"}}) == std::vector<Inner>{{1, "a"}, {2, "b"}});
  CHECK(round_trip(std::optional<std::int32_t>{}) == std::nullopt);
  using Nested = std::optional<std::optional<std::int32_t>>;
  CHECK(round_trip(Nested{}) == Nested{});
  CHECK(round_trip(Nested{std::optional<std::int32_t>{}}) == Nested{std::optional<std::int32_t>{}});
  CHECK(round_trip(Nested{7}) == Nested{7});
  CHECK(round_trip(2.0L) == 2.0L);  // a long double that is a double travels as float 64
  CHECK(bytes_of(2.0L) == bytes_of(2.0));
  const Legacy l{"k", 3, {0.5, 1.5}};
  const Legacy back = round_trip(l);
  CHECK(back.key == "k");
  CHECK(back.count == 3);
  CHECK(back.samples == l.samples);
}

TEST_CASE("MsgpackSerializer records the schema version and passes it to serialize()", "[msgpack]") {
  const std::string v1 = bytes_of(RecordV1{"old"});
  CHECK(v1 == std::string("\x92\x01\xa3old", 6));  // [1, "old"]
  const RecordV2 up = MsgpackSerializer::deserialize<RecordV2>(v1);
  CHECK(up.name == "old");
  CHECK(up.score == -1);  // the field version 1 did not write keeps its default
  const RecordV2 v2 = MsgpackSerializer::deserialize<RecordV2>(bytes_of(RecordV2{"new", 7}));
  CHECK(v2.score == 7);
}

TEST_CASE("A store with MsgpackSerializer", "[msgpack]") {
  const auto dir = std::filesystem::path(STOWAGE_TEST_BINARY_DIR) / "msgpack-store";
  std::filesystem::remove_all(dir);
  {
    stowage::Storage<std::string, Everything, MsgpackSerializer> db(dir);
    db.put("all", sample());
  }
  {
    stowage::Storage<std::string, Everything, MsgpackSerializer> db(dir);
    CHECK(db.get("all") == sample());
  }
  // The serializer is recorded in the manifest: another one is refused.
  CHECK_THROWS_AS((stowage::Storage<std::string, Everything>(dir)), stowage::MigrationError);
}

TEST_CASE("MsgpackSerializer reports malformed input as CorruptionError", "[msgpack]") {
  const std::string good = bytes_of(sample());
  for (std::size_t cut = 0; cut < good.size(); ++cut)
    CHECK_THROWS_AS(MsgpackSerializer::deserialize<Everything>(good.substr(0, cut)), CorruptionError);
  CHECK_THROWS_AS(MsgpackSerializer::deserialize<Everything>(good + "x"), CorruptionError);
  CHECK_THROWS_AS(MsgpackSerializer::deserialize<std::uint8_t>(bytes_of(300)), CorruptionError);
  CHECK_THROWS_AS(MsgpackSerializer::deserialize<std::uint32_t>(bytes_of(-1)), CorruptionError);
  CHECK_THROWS_AS(MsgpackSerializer::deserialize<std::string>(bytes_of(1)), CorruptionError);
  CHECK_THROWS_AS(MsgpackSerializer::deserialize<RecordV1>(bytes_of(RecordV2{"x", 1})), CorruptionError);
  CHECK_THROWS_AS(MsgpackSerializer::deserialize<std::vector<int>>(std::string("\xdd\xff\xff\xff\xff", 5)),
                  CorruptionError);  // claims 4G elements in 5 bytes
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += '\x91';
  CHECK_THROWS_AS(MsgpackSerializer::deserialize<std::vector<int>>(deep), CorruptionError);
  // Random damage never crashes: it decodes or throws CorruptionError.
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string bad = good;
    bad[rng() % bad.size()] = static_cast<char>(rng());
    try {
      (void)MsgpackSerializer::deserialize<Everything>(bad);
    } catch (const CorruptionError&) {
    }
  }
}

#ifdef STOWAGE_MSGPACK_DUMP
TEST_CASE("Records written by stowage decode with an independent MessagePack reader (msgpack-c's C library)",
          "[msgpack]") {
  const auto dir = std::filesystem::path(STOWAGE_TEST_BINARY_DIR) / "msgpack-interop-store";
  std::filesystem::remove_all(dir);
  {
    stowage::Storage<std::uint32_t, Sensor, MsgpackSerializer> db(dir);
    db.put(1, Sensor{"roof", 21.5, {1, 2, 255}, std::nullopt, {{"errors", 0}, {"reads", 120}}});
    db.put(2, Sensor{"cellar", -3.25, {}, "damp", {}});
  }
  // Read the records back through the store, write the bytes a record holds, and decode them in C.
  stowage::Storage<std::uint32_t, Sensor, MsgpackSerializer> db(dir);
  std::string bytes;
  for (const auto& [k, v] : db.scan()) MsgpackSerializer::serialize(v, bytes);
  CHECK(dump(bytes) ==
        "[3,\"roof\",f64:21.5,bin:0102ff,nil,{\"errors\":0,\"reads\":120}]\n"
        "[3,\"cellar\",f64:-3.25,bin:,\"damp\",{}]\n");
  // Scalars, containers and the type with everything.
  CHECK(dump(bytes_of(-1) + bytes_of(std::uint64_t{1} << 40) + bytes_of(true) + bytes_of(1.5f) + bytes_of(2.0) +
             bytes_of(std::make_tuple(1, std::string("a"), std::monostate{})) +
             bytes_of(std::variant<int, std::string>(std::string("v"))) + bytes_of(Legacy{"k", 2, {0.5}})) ==
        "-1\n1099511627776\ntrue\nf32:1.5\nf64:2\n[1,\"a\",nil]\n[1,\"v\"]\n[\"k\",2,[f64:0.5]]\n");
  const std::string all = dump(bytes_of(sample()));
  CHECK(all.rfind("[0,true,-128,255,-32768,65535,-2147483648,4294967295,-9223372036854775808,18446744073709551615,"
                  "122,f32:1.5,f64:-0.10000000000000001,\"0xa.aaaaaaaaaaaaaabp-5\",2,\"with \\x00 nul and \\xff\",",
                  0) == 0);
  CHECK(all.find(",bin:09080706,") != std::string::npos);
  CHECK(all.find("[3,[0,5,\"alt\"]]") != std::string::npos);
  CHECK(all.find("{\"a\":[[0,1,\"x\"],[0,2,\"y\"]],\"b\":[]}") != std::string::npos);
}
#endif

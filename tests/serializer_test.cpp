// Tests for serializer.hpp: BinarySerializer round trips, the exact byte
// format, user types (serialize member, ValueCodec, recursive), versions,
// type_description strings, and hostile input (truncation, byte flips, huge
// lengths, deep nesting) that must end in CorruptionError, never in a crash or a
// huge allocation.
#include <stowage/serializer.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <random>

#include <catch2/catch.hpp>

// Record the largest single allocation so hostile-length tests can prove that
// nothing was sized from an unchecked length (not under sanitizers, which own
// operator new).
#ifndef STOWAGE_SANITIZED
namespace {
std::atomic<std::size_t> g_largest_allocation{0};
}
// noinline: GCC would otherwise pair the inlined malloc with callers' deletes
// and warn (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t n) {
  std::size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
  while (n > seen && !g_largest_allocation.compare_exchange_weak(seen, n, std::memory_order_relaxed)) {
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#define STOWAGE_TRACK_ALLOCATIONS 1
#endif

namespace {

using stowage::BinarySerializer;
using stowage::CorruptionError;

template <class T>
std::string ser(const T& v) {
  std::string out;
  BinarySerializer::serialize(v, out);
  return out;
}
template <class T>
T de(std::string_view bytes) {
  return BinarySerializer::deserialize<T>(bytes);
}
template <class T>
T round_trip(const T& v) {
  return de<T>(ser(v));
}
template <class T>
void check_round_trip(const T& v) {
  CHECK(round_trip(v) == v);
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

enum class Color : std::uint8_t { red = 1, green = 2, blue = 200 };
enum Plain { plain_a = -5, plain_b = 70000 };

// --- user types -----------------------------------------------------------

struct Point {
  std::int32_t x = 0;
  std::int32_t y = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & x & y;
  }
  bool operator==(const Point&) const = default;
};

// Call syntax ar(a, b) and a private member reached through the access class.
class Person {
 public:
  Person() = default;
  Person(std::string name, std::optional<Point> home, std::vector<std::string> tags)
      : name_(std::move(name)), home_(home), tags_(std::move(tags)) {}
  bool operator==(const Person&) const = default;

 private:
  friend class stowage::serialization_access;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar(name_, home_, tags_);
  }
  std::string name_;
  std::optional<Point> home_;
  std::vector<std::string> tags_;
};

struct Node {
  std::int32_t value = 0;
  std::vector<Node> kids;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & value & kids;
  }
  bool operator==(const Node&) const = default;
};

// A look-alike of boost::serialization::nvp: stored as just its value.
template <class T>
struct Labelled {
  const char* label;
  T* ptr;
  const char* name() const { return label; }
  T& value() const { return *ptr; }
  const T& const_value() const { return *ptr; }
};
template <class T>
const Labelled<T> label(const char* n, T& v) {  // const, as boost::serialization::make_nvp returns
  return {n, &v};
}
struct WithLabels {
  std::int16_t a = 0;
  std::string b;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & label("a", a) & label("b", b);
  }
  bool operator==(const WithLabels&) const = default;
};

// A type with a hand-written codec: a 24-bit colour packed into 3 bytes.
struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};
struct Named {
  std::string text;
  bool operator==(const Named&) const = default;
};
// A codec type without a default constructor.
struct NoDefault {
  explicit NoDefault(int v) : value(v) {}
  int value;
  bool operator==(const NoDefault&) const = default;
};

}  // namespace

template <>
struct stowage::ValueCodec<Rgb> {
  static void encode(const Rgb& c, std::string& out) {
    out.push_back(static_cast<char>(c.r));
    out.push_back(static_cast<char>(c.g));
    out.push_back(static_cast<char>(c.b));
  }
  static Rgb decode(std::string_view& in) {
    if (in.size() < 3) throw stowage::CorruptionError({}, 0, "truncated Rgb");
    Rgb c{static_cast<std::uint8_t>(in[0]), static_cast<std::uint8_t>(in[1]), static_cast<std::uint8_t>(in[2])};
    in.remove_prefix(3);
    return c;
  }
};
template <>
struct stowage::ValueCodec<Named> {
  static void encode(const Named& n, std::string& out) { stowage::detail::put_bytes(out, n.text); }
  static Named decode(std::string_view& in) {
    stowage::detail::Reader r(in);
    Named n{std::string(r.length_prefixed("named"))};
    in.remove_prefix(r.position());
    return n;
  }
  static std::string name() { return "named-v1"; }
};
template <>
struct stowage::ValueCodec<NoDefault> {
  static void encode(const NoDefault& n, std::string& out) { stowage::detail::put_fixed32(out, static_cast<std::uint32_t>(n.value)); }
  static NoDefault decode(std::string_view& in) {
    stowage::detail::Reader r(in);
    NoDefault n(static_cast<int>(r.u32()));
    in.remove_prefix(r.position());
    return n;
  }
};

namespace {

struct WithCodecs {
  Rgb colour;
  std::vector<Rgb> palette;
  std::map<std::string, Named> names;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & colour & palette & names;
  }
  bool operator==(const WithCodecs&) const = default;
};

// Versioned types: V2 adds a field; it reads V1 data with version 1.
struct Versioned {
  static constexpr unsigned version = 3;
  int a = 0;
  unsigned seen = 99;  // version passed to the last serialize() call (not stored)
  template <class Archive>
  void serialize(Archive& ar, unsigned v) {
    seen = v;
    ar & a;
  }
};
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
  std::int64_t size = -1;
  template <class Archive>
  void serialize(Archive& ar, unsigned v) {
    ar & name;
    if (v >= 2) ar & size;
  }
};

struct Everything {
  bool flag = false;
  std::int8_t i8 = 0;
  std::uint16_t u16 = 0;
  std::int64_t i64 = 0;
  double d = 0;
  float f = 0;
  Color color = Color::red;
  std::string text;
  std::vector<std::uint32_t> numbers;
  std::vector<std::string> words;
  std::array<std::uint8_t, 4> quad{};
  std::pair<int, std::string> pair;
  std::tuple<int, std::string, double> tuple;
  std::optional<std::string> maybe;
  std::map<std::string, std::int64_t> map;
  std::set<int> set;
  std::variant<std::monostate, int, std::string> variant;
  std::vector<Point> points;
  Node tree;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & flag & i8 & u16 & i64 & d & f & color & text & numbers & words & quad & pair & tuple & maybe & map & set &
        variant & points & tree;
  }
  bool operator==(const Everything&) const = default;
};

Everything sample_everything() {
  Everything e;
  e.flag = true;
  e.i8 = -7;
  e.u16 = 65535;
  e.i64 = std::numeric_limits<std::int64_t>::min();
  e.d = -1.5e300;
  e.f = 3.25f;
  e.color = Color::blue;
  e.text = std::string("nul\0byte", 8);
  e.numbers = {1, 2, 0xffffffffu};
  e.words = {"", "a", "hello"};
  e.quad = {1, 2, 3, 255};
  e.pair = {42, "answer"};
  e.tuple = {-1, "x", 0.5};
  e.maybe = "here";
  e.map = {{"a", 1}, {"b", -2}};
  e.set = {3, 1, 2};
  e.variant = std::string("alt");
  e.points = {{1, 2}, {-3, 4}};
  e.tree = Node{1, {Node{2, {}}, Node{3, {Node{4, {}}}}}};
  return e;
}

// Constructing it from an int throws, so a variant emplacing one becomes valueless.
struct Fragile {
  Fragile() = default;
  explicit Fragile(int) { throw 1; }
  Fragile(const Fragile&) = default;
  Fragile(Fragile&&) noexcept(false) = default;
  int v = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & v;
  }
};

struct NotSerializable {
  int x;
};

}  // namespace

static_assert(BinarySerializer::supports<int>);
static_assert(BinarySerializer::supports<std::map<std::string, std::vector<Point>>>);
static_assert(BinarySerializer::supports<Node>);
static_assert(BinarySerializer::supports<Rgb>);
static_assert(BinarySerializer::supports<std::vector<NoDefault>>);
static_assert(!BinarySerializer::supports<NotSerializable>);
static_assert(!BinarySerializer::supports<std::vector<NotSerializable>>);
static_assert(!BinarySerializer::supports<int*>);
static_assert(!BinarySerializer::supports<std::vector<std::tuple<>>>);
static_assert(stowage::value_version<Versioned> == 3);
static_assert(stowage::value_version<Point> == 0);
static_assert(BinarySerializer::id() == "binary-1");

TEST_CASE("arithmetic types round trip at their extremes", "[serializer]") {
  auto ints = []<class T>(T*) {
    check_round_trip(std::numeric_limits<T>::min());
    check_round_trip(std::numeric_limits<T>::max());
    check_round_trip(T{0});
    check_round_trip(T{1});
    CHECK(ser(T{}).size() == sizeof(T));
  };
  ints(static_cast<char*>(nullptr));
  ints(static_cast<signed char*>(nullptr));
  ints(static_cast<unsigned char*>(nullptr));
  ints(static_cast<short*>(nullptr));
  ints(static_cast<unsigned short*>(nullptr));
  ints(static_cast<int*>(nullptr));
  ints(static_cast<unsigned*>(nullptr));
  ints(static_cast<long*>(nullptr));
  ints(static_cast<unsigned long*>(nullptr));
  ints(static_cast<long long*>(nullptr));
  ints(static_cast<unsigned long long*>(nullptr));
  ints(static_cast<char8_t*>(nullptr));
  ints(static_cast<char16_t*>(nullptr));
  ints(static_cast<char32_t*>(nullptr));
  ints(static_cast<wchar_t*>(nullptr));

  check_round_trip(true);
  check_round_trip(false);
  for (double d : {0.0, -0.0, 1.0, -2.5, 1e-310, std::numeric_limits<double>::max(),
                   std::numeric_limits<double>::lowest(), std::numeric_limits<double>::denorm_min(),
                   std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()}) {
    CHECK(std::bit_cast<std::uint64_t>(round_trip(d)) == std::bit_cast<std::uint64_t>(d));
    const float f = static_cast<float>(d);
    CHECK(std::bit_cast<std::uint32_t>(round_trip(f)) == std::bit_cast<std::uint32_t>(f));
    const long double ld = static_cast<long double>(d) / 3;
    CHECK(round_trip(ld) == ld);
  }
  CHECK(std::isnan(round_trip(std::numeric_limits<double>::quiet_NaN())));
  CHECK(std::isnan(round_trip(std::numeric_limits<float>::quiet_NaN())));

  check_round_trip(Color::blue);
  check_round_trip(plain_a);
  check_round_trip(plain_b);
  check_round_trip(std::byte{0xab});
}

TEST_CASE("standard containers round trip", "[serializer]") {
  check_round_trip(std::string());
  check_round_trip(std::string("hello"));
  check_round_trip(std::string("\0\xff\x01", 3));
  check_round_trip(std::string(100000, 'z'));
  check_round_trip(std::vector<int>{});
  check_round_trip(std::vector<int>{1, -2, 3});
  check_round_trip(std::vector<bool>{true, false, true, true});
  check_round_trip(std::vector<std::uint8_t>{0, 1, 255});
  check_round_trip(std::vector<std::byte>{std::byte{0}, std::byte{255}});
  check_round_trip(std::vector<double>{0.5, -1e10});
  check_round_trip(std::vector<std::string>{"a", "", "ccc"});
  check_round_trip(std::vector<std::vector<int>>{{}, {1}, {2, 3}});
  check_round_trip(std::array<std::uint8_t, 16>{1, 2, 3});
  check_round_trip(std::array<std::string, 2>{"x", "y"});
  check_round_trip(std::array<int, 0>{});
  check_round_trip(std::pair<int, std::string>{7, "seven"});
  check_round_trip(std::tuple<>{});
  check_round_trip(std::tuple<int, std::string, double, bool>{1, "one", 1.0, true});
  check_round_trip(std::optional<int>{});
  check_round_trip(std::optional<int>{5});
  check_round_trip(std::optional<std::vector<std::string>>{{"a"}});
  check_round_trip(std::map<std::string, std::int64_t>{{"a", 1}, {"b", 2}});
  check_round_trip(std::map<int, std::map<int, std::string>>{{1, {{2, "x"}}}, {3, {}}});
  check_round_trip(std::unordered_map<std::string, int>{{"a", 1}, {"b", 2}, {"c", 3}});
  check_round_trip(std::set<std::string>{"x", "y", ""});
  check_round_trip(std::unordered_set<int>{1, 2, 3, 4});
  check_round_trip(std::variant<int, std::string>{5});
  check_round_trip(std::variant<int, std::string>{"five"});
  check_round_trip(std::variant<int, int>{std::in_place_index<1>, 3});
  check_round_trip(std::variant<std::monostate, Point>{});
  check_round_trip(std::monostate{});
}

TEST_CASE("the byte format is the documented one", "[serializer]") {
  CHECK(ser(std::int32_t{1}) == bytes({1, 0, 0, 0}));
  CHECK(ser(std::int16_t{-2}) == bytes({0xfe, 0xff}));
  CHECK(ser(std::uint64_t{0x0102030405060708}) == bytes({8, 7, 6, 5, 4, 3, 2, 1}));
  CHECK(ser(true) == bytes({1}));
  CHECK(ser(1.0) == bytes({0, 0, 0, 0, 0, 0, 0xf0, 0x3f}));
  CHECK(ser(1.0f) == bytes({0, 0, 0x80, 0x3f}));
  CHECK(ser(Color::blue) == bytes({200}));
  CHECK(ser(std::string("ab")) == bytes({2, 'a', 'b'}));
  CHECK(ser(std::string(200, 'q')).substr(0, 2) == bytes({0xc8, 0x01}));
  CHECK(ser(std::vector<std::uint16_t>{1, 0x203}) == bytes({2, 1, 0, 3, 2}));
  CHECK(ser(std::vector<bool>{true, false}) == bytes({2, 1, 0}));
  CHECK(ser(std::array<std::uint8_t, 3>{7, 8, 9}) == bytes({7, 8, 9}));
  CHECK(ser(std::pair<std::uint8_t, bool>{5, true}) == bytes({5, 1}));
  CHECK(ser(std::optional<std::uint8_t>{}) == bytes({0}));
  CHECK(ser(std::optional<std::uint8_t>{9}) == bytes({1, 9}));
  CHECK(ser(std::variant<std::uint8_t, std::string>{"a"}) == bytes({1, 1, 'a'}));
  CHECK(ser(std::map<std::uint8_t, std::uint8_t>{{1, 2}, {3, 4}}) == bytes({2, 1, 2, 3, 4}));
  CHECK(ser(Point{1, -1}) == bytes({0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}));
  CHECK(ser(Versioned{}).substr(0, 1) == bytes({3}));
  CHECK(ser(Rgb{1, 2, 3}) == bytes({1, 2, 3}));
}

TEST_CASE("serialize appends and leaves earlier bytes alone", "[serializer]") {
  std::string out = "prefix";
  BinarySerializer::serialize(std::uint8_t{7}, out);
  CHECK(out == "prefix\x07");
  // A value that cannot be written leaves `out` unchanged.
  std::variant<int, Fragile> broken = 1;
  try {
    broken.emplace<Fragile>(1);
  } catch (int) {
  }
  REQUIRE(broken.valueless_by_exception());
  CHECK_THROWS_AS((BinarySerializer::serialize(std::pair<int, const std::variant<int, Fragile>&>{1, broken}, out)),
                  stowage::ValidationError);
  CHECK(out == "prefix\x07");
}

TEST_CASE("user types: serialize members, private members, codecs, recursion", "[serializer]") {
  check_round_trip(Point{3, -4});
  check_round_trip(Person("ada", Point{1, 2}, {"math", "engines"}));
  check_round_trip(Person("bob", std::nullopt, {}));
  check_round_trip(std::vector<Person>{Person("a", {}, {}), Person("b", Point{}, {"t"})});
  check_round_trip(Node{});
  check_round_trip(Node{1, {Node{2, {Node{3, {}}}}, Node{4, {}}}});
  check_round_trip(WithLabels{-3, "labelled"});
  CHECK(ser(WithLabels{1, "x"}) == bytes({0, 1, 0, 1, 'x'}));
  CHECK(stowage::type_description<WithLabels>() == "obj{i16,str}");
  check_round_trip(Rgb{10, 20, 30});
  check_round_trip(Named{"hi"});
  check_round_trip(WithCodecs{{1, 2, 3}, {{4, 5, 6}, {7, 8, 9}}, {{"k", Named{"v"}}}});
  check_round_trip(NoDefault(-42));
  check_round_trip(std::vector<NoDefault>{NoDefault(1), NoDefault(2)});
  check_round_trip(std::optional<NoDefault>{NoDefault(3)});
  check_round_trip(std::map<int, NoDefault>{{1, NoDefault(5)}});
  check_round_trip(sample_everything());
  check_round_trip(Everything{});
}

TEST_CASE("value_version is written and handed back to serialize", "[serializer]") {
  Versioned v;
  v.a = 5;
  std::string out = ser(v);
  Versioned back = de<Versioned>(out);
  CHECK(back.a == 5);
  CHECK(back.seen == 3);

  // Schema evolution: V2 reads V1 bytes with version 1 and keeps its default.
  RecordV1 old;
  old.name = "file";
  RecordV2 upgraded = de<RecordV2>(ser(old));
  CHECK(upgraded.name == "file");
  CHECK(upgraded.size == -1);
  RecordV2 now;
  now.name = "new";
  now.size = 12;
  RecordV2 again = de<RecordV2>(ser(now));
  CHECK(again.size == 12);
  // Bytes from a newer program are refused rather than misread.
  CHECK_THROWS_AS(de<RecordV1>(ser(now)), CorruptionError);
}

TEST_CASE("type_description gives fixed portable strings", "[serializer]") {
  using stowage::type_description;
  CHECK(type_description<std::int32_t>() == "i32");
  CHECK(type_description<std::uint64_t>() == "u64");
  CHECK(type_description<std::int8_t>() == "i8");
  CHECK(type_description<double>() == "f64");
  CHECK(type_description<float>() == "f32");
  CHECK(type_description<bool>() == "bool");
  CHECK(type_description<char>() == "char");
  CHECK(type_description<std::string>() == "str");
  CHECK(type_description<Color>() == "enum<u8>");
  CHECK(type_description<std::vector<double>>() == "vec<f64>");
  CHECK(type_description<std::array<std::uint8_t, 16>>() == "arr<u8,16>");
  CHECK(type_description<std::pair<std::int32_t, std::string>>() == "pair<i32,str>");
  CHECK(type_description<std::tuple<>>() == "tup<>");
  CHECK(type_description<std::tuple<std::int16_t, bool, std::string>>() == "tup<i16,bool,str>");
  CHECK(type_description<std::optional<std::uint32_t>>() == "opt<u32>");
  CHECK(type_description<std::map<std::string, std::int64_t>>() == "map<str,i64>");
  CHECK(type_description<std::unordered_map<std::string, std::int64_t>>() == "map<str,i64>");
  CHECK(type_description<std::set<std::int32_t>>() == "set<i32>");
  CHECK(type_description<std::variant<std::monostate, std::int32_t, std::string>>() == "var<unit,i32,str>");
  CHECK(type_description<Point>() == "obj{i32,i32}");
  CHECK(type_description<Person>() == "obj{str,opt<obj{i32,i32}>,vec<str>}");
  CHECK(type_description<Node>() == "obj{i32,vec<rec>}");
  CHECK(type_description<std::vector<Node>>() == "vec<obj{i32,vec<rec>}>");
  CHECK(type_description<Versioned>() == "obj@3{i32}");
  CHECK(type_description<Rgb>() == "codec3");
  CHECK(type_description<Named>() == "codec:named-v1");
  CHECK(type_description<WithCodecs>() == "obj{codec3,vec<codec3>,map<str,codec:named-v1>}");
  CHECK(type_description<Everything>() ==
        "obj{bool,i8,u16,i64,f64,f32,enum<u8>,str,vec<u32>,vec<str>,arr<u8,4>,pair<i32,str>,tup<i32,str,f64>,"
        "opt<str>,map<str,i64>,set<i32>,var<unit,i32,str>,vec<obj{i32,i32}>,obj{i32,vec<rec>}}");
}

TEST_CASE("malformed bytes are CorruptionErrors at the right offset", "[serializer]") {
  auto offset_of = [](auto f) -> std::uint64_t {
    try {
      f();
    } catch (const CorruptionError& e) {
      CHECK(e.file().empty());
      return e.offset();
    }
    FAIL("no CorruptionError");
    return 0;
  };
  CHECK(offset_of([] { de<bool>(bytes({2})); }) == 0);
  CHECK(offset_of([] { de<std::pair<std::int16_t, bool>>(bytes({0, 0, 7})); }) == 2);
  CHECK(offset_of([] { de<std::optional<int>>(bytes({2})); }) == 0);
  CHECK(offset_of([] { de<std::variant<int, bool>>(bytes({2, 0})); }) == 0);
  CHECK(offset_of([] { de<std::uint8_t>(bytes({1, 2})); }) == 1);  // trailing byte
  CHECK(offset_of([] { de<std::int32_t>(bytes({1, 2})); }) == 0);  // truncated
  CHECK(offset_of([] { de<std::map<std::uint8_t, std::uint8_t>>(bytes({2, 1, 2, 1, 3})); }) == 3);  // duplicate key
  CHECK(offset_of([] { de<std::set<std::uint8_t>>(bytes({2, 1, 1})); }) == 2);
  CHECK(offset_of([] { de<std::string>(bytes({5, 'a'})); }) == 1);
  CHECK(offset_of([] { de<std::vector<std::uint32_t>>(bytes({3, 0, 0, 0, 0})); }) == 0);
  CHECK(offset_of([] { de<std::vector<int>>(bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})); }) == 0);
  CHECK_THROWS_AS(de<std::vector<int>>(bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})),
                  CorruptionError);  // overlong varint
  CHECK_THROWS_AS(de<std::string>(""), CorruptionError);
  CHECK_THROWS_AS(de<Rgb>(bytes({1, 2})), CorruptionError);  // the codec's own error
  CHECK_THROWS_AS(de<std::uint8_t>(""), CorruptionError);
}

TEST_CASE("every truncation of a valid encoding is refused", "[serializer]") {
  const std::string full = ser(sample_everything());
  REQUIRE(de<Everything>(full) == sample_everything());
  for (std::size_t n = 0; n < full.size(); ++n)
    CHECK_THROWS_AS(de<Everything>(std::string_view(full).substr(0, n)), CorruptionError);
  CHECK_THROWS_AS(de<Everything>(full + '\0'), CorruptionError);
}

TEST_CASE("random byte flips give a CorruptionError or some valid value", "[serializer]") {
  std::mt19937_64 rng(20240611);
  const std::string full = ser(sample_everything());
  const std::string people = ser(std::vector<Person>{Person("ada", Point{1, 2}, {"x", "y"}), Person("b", {}, {})});
  int corrupt = 0, valid = 0;
  for (int round = 0; round < 20000; ++round) {
    const bool everything = round % 2 == 0;
    std::string s = everything ? full : people;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < flips; ++i) s[rng() % s.size()] = static_cast<char>(rng());
    try {
      if (everything)
        (void)de<Everything>(s);
      else
        (void)de<std::vector<Person>>(s);
      ++valid;
    } catch (const CorruptionError&) {
      ++corrupt;
    }
  }
  CHECK(corrupt > 0);
  CHECK(corrupt + valid == 20000);
}

TEST_CASE("random garbage never crashes", "[serializer]") {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20000; ++round) {
    std::string s(rng() % 40, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 4 == 0 ? 0xff : rng() % 6);
    try {
      (void)de<std::map<std::string, std::vector<std::optional<std::variant<int, std::string, Node>>>>>(s);
    } catch (const CorruptionError&) {
    }
  }
  SUCCEED();
}

TEST_CASE("huge declared lengths never become huge allocations", "[serializer]") {
  std::string huge;
  stowage::detail::put_varint(huge, std::uint64_t{1} << 60);
  std::string big;
  stowage::detail::put_varint(big, 100000000);  // 100M, more than the bytes that follow
  big += std::string(1000, '\x01');
#ifdef STOWAGE_TRACK_ALLOCATIONS
  g_largest_allocation = 0;
#endif
  CHECK_THROWS_AS(de<std::string>(huge), CorruptionError);
  CHECK_THROWS_AS(de<std::vector<std::uint64_t>>(huge), CorruptionError);
  CHECK_THROWS_AS(de<std::vector<std::string>>(huge), CorruptionError);
  CHECK_THROWS_AS((de<std::map<int, int>>(huge)), CorruptionError);
  CHECK_THROWS_AS(de<std::set<std::string>>(huge), CorruptionError);
  CHECK_THROWS_AS(de<std::vector<std::uint8_t>>(big), CorruptionError);
  CHECK_THROWS_AS(de<std::vector<bool>>(big), CorruptionError);
  CHECK_THROWS_AS(de<std::vector<Node>>(big), CorruptionError);
  // 1000 one-byte elements claim a count the bytes can hold, but each element
  // of vector<vector<Node>> is an empty vector: reservations stay bounded.
  std::string many;
  stowage::detail::put_varint(many, 1000);
  many += std::string(1000, '\0');
  CHECK(de<std::vector<std::vector<Node>>>(many).size() == 1000);
#ifdef STOWAGE_TRACK_ALLOCATIONS
  CHECK(g_largest_allocation.load() < 64 * 1024);
#endif
}

TEST_CASE("nesting deeper than max_depth is refused, not a stack overflow", "[serializer]") {
  // Hand-made bytes for Node{0, {Node{0, {...}}}} nested 100000 deep.
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += bytes({0, 0, 0, 0, 0, 1});
  CHECK_THROWS_AS(de<Node>(deep), CorruptionError);

  Node ok;
  Node* at = &ok;
  for (unsigned i = 1; i < BinarySerializer::max_depth; ++i) {
    at->kids.emplace_back();
    at = &at->kids.back();
  }
  check_round_trip(ok);
  at->kids.emplace_back();  // one level too deep
  std::string out;
  CHECK_THROWS_AS(BinarySerializer::serialize(ok, out), stowage::ValidationError);
  CHECK(out.empty());
}

TEST_CASE("deserialize_into decodes into an existing object exactly as deserialize does", "[serializer]") {
  // Reused where that is exact: strings, containers, optionals, tuples of them.
  using T = std::tuple<std::string, std::vector<std::string>, std::optional<std::int32_t>, std::map<int, int>,
                       std::array<std::string, 2>>;
  T out{std::string(100, 'x'), {"a", "b", "c"}, 5, {{1, 1}, {2, 2}}, {"p", "q"}};
  for (const T& v : {T{"", {}, std::nullopt, {}, {"", ""}}, T{"y", {"z"}, 3, {{7, 8}}, {"s", ""}},
                     T{std::string(1000, 'w'), {}, std::nullopt, {}, {"", "t"}}}) {
    BinarySerializer::deserialize_into(ser(v), out);
    CHECK(out == v);
  }
  std::string s = "previous";
  BinarySerializer::deserialize_into(ser(std::string()), s);
  CHECK(s.empty());
  // A user object written by an older version keeps its defaults, not the previous value's fields.
  RecordV2 r;
  BinarySerializer::deserialize_into(ser(RecordV2{"new", 42}), r);
  CHECK(r.size == 42);
  BinarySerializer::deserialize_into(ser(RecordV1{"old"}), r);
  CHECK(r.name == "old");
  CHECK(r.size == -1);
  std::pair<std::string, RecordV2> pr{"k", RecordV2{"n", 9}};
  BinarySerializer::deserialize_into(ser(std::pair<std::string, RecordV1>{"k2", RecordV1{"m"}}), pr);
  CHECK(pr.first == "k2");
  CHECK(pr.second.size == -1);
  // Damage is a CorruptionError, as with deserialize.
  CHECK_THROWS_AS(BinarySerializer::deserialize_into(ser(std::string("abc")) + "x", s), CorruptionError);
  CHECK_THROWS_AS(BinarySerializer::deserialize_into(std::string_view("\x05" "ab", 3), s), CorruptionError);
}

// ---- describe_value: the value type description a store records ------------

namespace {

// A user serializer without the describe hook (the bytes do not matter here).
struct HooklessSerializer {
  static constexpr std::string_view id() { return "hookless-1"; }
  template <class T>
  static void serialize(const T&, std::string& out) {
    out += 'x';
  }
  template <class T>
  static T deserialize(std::string_view) {
    return T{};
  }
};

// The same with the hook: it describes every type itself.
struct DescribingSerializer {
  static constexpr std::string_view id() { return "describing-1"; }
  template <class T>
  static void serialize(const T&, std::string& out) {
    out += 'x';
  }
  template <class T>
  static T deserialize(std::string_view) {
    return T{};
  }
  template <class T>
  static std::string describe() {
    return "described:" + std::to_string(sizeof(T));
  }
};

// Plain structs: no serialize member, no ValueCodec.
struct PlainNamed {
  std::int32_t x = 0;
};
struct PlainUnnamed {
  std::int64_t x = 0;
};
// A serialize member but no default constructor: the rules cannot describe it.
struct ObjectWithoutDefault {
  explicit ObjectWithoutDefault(int v) : x(v) {}
  int x;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & x;
  }
};

}  // namespace

namespace stowage {
template <>
inline constexpr std::string_view value_type_name<PlainNamed> = "plain-named-v1";
template <>
inline constexpr std::string_view value_type_name<ObjectWithoutDefault> = "no-default-v1";
// Point is describable by the rules: its name is never used.
template <>
inline constexpr std::string_view value_type_name<Point> = "ignored";
}  // namespace stowage

TEST_CASE("describe_value: the hook, else the structural description, else the serializer id and a name",
          "[serializer]") {
  using stowage::describe_value;
  using stowage::type_description;
  using stowage::detail::value::describable;
  static_assert(stowage::SerializerDescribes<DescribingSerializer, PlainUnnamed>);
  static_assert(!stowage::SerializerDescribes<HooklessSerializer, PlainNamed>);
  static_assert(!stowage::SerializerDescribes<BinarySerializer, Point>);
  static_assert(stowage::SerializerFor<HooklessSerializer, PlainNamed>);
  static_assert(describable<Point>() && describable<Node>() && describable<std::vector<std::tuple<>>>());
  static_assert(describable<Rgb>() && describable<NoDefault>() && describable<Everything>());
  static_assert(!describable<PlainNamed>() && !describable<NotSerializable>());
  static_assert(!describable<std::vector<NotSerializable>>() && !describable<std::map<std::string, PlainNamed>>());
  static_assert(!describable<ObjectWithoutDefault>() && !describable<std::optional<ObjectWithoutDefault>>());
  static_assert(stowage::value_type_name<PlainUnnamed>.empty());

  // Types the rules describe keep their exact description, whatever the
  // serializer (stores written before the hook existed open unchanged).
  CHECK(describe_value<BinarySerializer, std::int32_t>() == "i32");
  CHECK(describe_value<HooklessSerializer, std::int32_t>() == "i32");
  CHECK(describe_value<HooklessSerializer, std::string>() == "str");
  CHECK(stowage::value_type_name<Point> == "ignored");
  CHECK(describe_value<HooklessSerializer, Point>() == "obj{i32,i32}");  // its value_type_name is ignored
  CHECK(describe_value<BinarySerializer, Person>() == "obj{str,opt<obj{i32,i32}>,vec<str>}");
  CHECK(describe_value<HooklessSerializer, Node>() == "obj{i32,vec<rec>}");
  CHECK(describe_value<HooklessSerializer, Versioned>() == "obj@3{i32}");
  CHECK(describe_value<HooklessSerializer, Named>() == "codec:named-v1");
  CHECK(describe_value<HooklessSerializer, std::tuple<>>() == "tup<>");
  CHECK(describe_value<BinarySerializer, WithCodecs>() == type_description<WithCodecs>());
  CHECK(describe_value<HooklessSerializer, Everything>() == type_description<Everything>());
  CHECK(describe_value<BinarySerializer, std::map<std::string, std::int64_t>>() ==
        type_description<std::map<std::string, std::int64_t>>());

  // The hook wins, for describable types too.
  CHECK(describe_value<DescribingSerializer, PlainUnnamed>() == "described:8");
  CHECK(describe_value<DescribingSerializer, PlainNamed>() == "described:4");
  CHECK(describe_value<DescribingSerializer, Point>() == "described:8");

  // Else the serializer's id and the user's name.
  CHECK(describe_value<HooklessSerializer, PlainNamed>() == "hookless-1:plain-named-v1");
  CHECK(describe_value<BinarySerializer, ObjectWithoutDefault>() == "binary-1:no-default-v1");
  // (describe_value<HooklessSerializer, PlainUnnamed>() does not compile: the
  // static_assert asks for the hook or a value_type_name.)
}

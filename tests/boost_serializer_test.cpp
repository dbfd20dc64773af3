// Tests for boost_serializer.hpp: BoostSerializer round trips (including the
// std::optional / std::tuple / std::variant support this header adds), the
// same user type through both serializers, versions, compatibility with plain
// boost::archive::binary_iarchive, and malformed input → CorruptionError.
#include <stowage/boost_serializer.hpp>

#include <random>
#include <sstream>

#include <boost/archive/binary_iarchive.hpp>

#include <catch2/catch.hpp>

namespace {

using stowage::BinarySerializer;
using stowage::BoostSerializer;
using stowage::CorruptionError;

template <class S, class T>
T round_trip(const T& v) {
  std::string out;
  S::serialize(v, out);
  return S::template deserialize<T>(out);
}
template <class T>
std::string boost_bytes(const T& v) {
  std::string out;
  BoostSerializer::serialize(v, out);
  return out;
}

struct Inner {
  std::int32_t id = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & id & label;
  }
  bool operator==(const Inner&) const = default;
};

// One user type, one serialize member, used with both serializers.
struct Record {
  std::string name;
  std::uint64_t count = 0;
  double ratio = 0;
  bool flag = false;
  std::vector<std::int32_t> numbers;
  std::vector<std::string> words;
  std::map<std::string, std::int64_t> totals;
  std::set<int> ids;
  std::array<std::uint8_t, 4> quad{};
  std::pair<int, std::string> pair;
  std::optional<std::string> maybe;
  std::optional<Inner> maybe_inner;
  std::tuple<int, std::string, double> tuple;
  std::variant<std::monostate, int, std::string, Inner> variant;
  std::vector<Inner> inners;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & name & count & ratio & flag & numbers & words & totals & ids & quad & pair & maybe & maybe_inner & tuple &
        variant & inners;
  }
  bool operator==(const Record&) const = default;
};

Record sample() {
  Record r;
  r.name = std::string("rec\0ord", 7);
  r.count = 1ull << 40;
  r.ratio = -0.125;
  r.flag = true;
  r.numbers = {1, -2, 3};
  r.words = {"", "two"};
  r.totals = {{"a", -1}, {"b", 2}};
  r.ids = {5, 6};
  r.quad = {1, 2, 3, 4};
  r.pair = {9, "nine"};
  r.maybe = "present";
  r.maybe_inner = Inner{7, "seven"};
  r.tuple = {1, "uno", 1.5};
  r.variant = Inner{3, "three"};
  r.inners = {{1, "a"}, {2, "b"}};
  return r;
}

struct Versioned {
  static constexpr unsigned version = 4;
  int a = 0;
  unsigned seen = 99;
  template <class Archive>
  void serialize(Archive& ar, unsigned v) {
    seen = v;
    ar & a;
  }
};

class Private {
 public:
  Private() = default;
  explicit Private(int v) : v_(v) {}
  bool operator==(const Private&) const = default;

 private:
  friend class boost::serialization::access;
  friend class stowage::serialization_access;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & v_;
  }
  int v_ = 0;
};

// Boost idioms in a shared serialize member: NVP wrappers and base_object.
struct Base {
  std::int32_t base_field = 0;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & BOOST_SERIALIZATION_NVP(base_field);
  }
  bool operator==(const Base&) const = default;
};
struct Derived : Base {
  std::string text;
  std::vector<double> values;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & boost::serialization::make_nvp("base", boost::serialization::base_object<Base>(*this));
    ar & BOOST_SERIALIZATION_NVP(text) & BOOST_SERIALIZATION_NVP(values);
  }
  bool operator==(const Derived&) const = default;
};

}  // namespace

static_assert(BoostSerializer::id() == "boost-binary-1");
static_assert(BoostSerializer::supports<Record>);
static_assert(BoostSerializer::supports<std::map<std::string, std::vector<std::optional<int>>>>);
static_assert(!BoostSerializer::supports<int*>);
static_assert(!BoostSerializer::supports<std::vector<int*>>);

TEST_CASE("BoostSerializer round trips scalars and standard containers", "[boost_serializer]") {
  using S = BoostSerializer;
  CHECK(round_trip<S>(42) == 42);
  CHECK(round_trip<S>(true) == true);
  CHECK(round_trip<S>(-1.5) == -1.5);
  CHECK(round_trip<S>(std::string("a\0b", 3)) == std::string("a\0b", 3));
  CHECK(round_trip<S>(std::vector<int>{1, 2, 3}) == std::vector<int>{1, 2, 3});
  CHECK(round_trip<S>(std::vector<bool>{true, false}) == std::vector<bool>{true, false});
  CHECK(round_trip<S>(std::map<std::string, int>{{"x", 1}}) == std::map<std::string, int>{{"x", 1}});
  CHECK(round_trip<S>(std::unordered_map<int, std::string>{{1, "a"}}) ==
        std::unordered_map<int, std::string>{{1, "a"}});
  CHECK(round_trip<S>(std::optional<int>{}) == std::nullopt);
  CHECK(round_trip<S>(std::optional<int>{3}) == 3);
  CHECK(round_trip<S>(std::tuple<>{}) == std::tuple<>{});
  CHECK(round_trip<S>(std::tuple<int, std::string>{1, "x"}) == std::tuple<int, std::string>{1, "x"});
  CHECK(round_trip<S>(std::variant<int, std::string>{"s"}) == std::variant<int, std::string>{"s"});
  CHECK(round_trip<S>(std::variant<int, std::string>{4}) == std::variant<int, std::string>{4});
  CHECK(round_trip<S>(std::variant<std::monostate, int>{}) == std::variant<std::monostate, int>{});
  CHECK(round_trip<S>(std::array<int, 3>{1, 2, 3}) == std::array<int, 3>{1, 2, 3});
  CHECK(round_trip<S>(Private(5)) == Private(5));
}

TEST_CASE("the same user type works with both serializers", "[boost_serializer]") {
  const Record r = sample();
  CHECK(round_trip<BoostSerializer>(r) == r);
  CHECK(round_trip<BinarySerializer>(r) == r);
  CHECK(round_trip<BoostSerializer>(Record{}) == Record{});
  CHECK(round_trip<BoostSerializer>(std::vector<Record>{r, Record{}, r}) == std::vector<Record>{r, Record{}, r});
  CHECK(round_trip<BinarySerializer>(Private(8)) == Private(8));
}

TEST_CASE("Boost NVP wrappers and base_object work with both serializers", "[boost_serializer]") {
  Derived d;
  d.base_field = 3;
  d.text = "t";
  d.values = {1.5, -2};
  CHECK(round_trip<BoostSerializer>(d) == d);
  CHECK(round_trip<BinarySerializer>(d) == d);
  CHECK(stowage::type_description<Derived>() == "obj{obj{i32},str,vec<f64>}");
}

TEST_CASE("Boost passes the stored class version, taken from T::version", "[boost_serializer]") {
  static_assert(boost::serialization::version<Versioned>::value == 4);
  Versioned v;
  v.a = 11;
  Versioned back = round_trip<BoostSerializer>(v);
  CHECK(back.a == 11);
  CHECK(back.seen == 4);
}

TEST_CASE("bytes are plain binary_oarchive output, readable by binary_iarchive", "[boost_serializer]") {
  const Record r = sample();
  const std::string bytes = boost_bytes(r);
  std::istringstream is(bytes);
  boost::archive::binary_iarchive plain(is, boost::archive::no_header | boost::archive::no_codecvt);
  Record back;
  plain >> back;
  CHECK(back == r);
  // serialize appends
  std::string out = "xy";
  BoostSerializer::serialize(7, out);
  CHECK(out.substr(0, 2) == "xy");
  CHECK(BoostSerializer::deserialize<int>(std::string_view(out).substr(2)) == 7);
}

TEST_CASE("BoostSerializer reports malformed input as CorruptionError", "[boost_serializer]") {
  const std::string full = boost_bytes(sample());
  for (std::size_t n = 0; n < full.size(); ++n)
    CHECK_THROWS_AS(BoostSerializer::deserialize<Record>(std::string_view(full).substr(0, n)), CorruptionError);
  CHECK_THROWS_AS(BoostSerializer::deserialize<Record>(full + "x"), CorruptionError);

  // A string length of 2^60 and a vector count of 2^40: refused before allocating.
  std::string huge = boost_bytes(std::string("abc"));
  huge[7] = 0x10;
  CHECK_THROWS_AS(BoostSerializer::deserialize<std::string>(huge), CorruptionError);
  std::string many = boost_bytes(std::vector<std::uint64_t>{1, 2});
  REQUIRE(static_cast<unsigned char>(many[0]) == 2);
  many[5] = 0x01;
  CHECK_THROWS_AS(BoostSerializer::deserialize<std::vector<std::uint64_t>>(many), CorruptionError);

  std::string badbool = boost_bytes(true);
  badbool[0] = 5;
  CHECK_THROWS_AS(BoostSerializer::deserialize<bool>(badbool), CorruptionError);

  std::string badvariant = boost_bytes(std::variant<int, std::string>{1});
  REQUIRE(badvariant.size() == 13);
  badvariant[5] = 9;  // "which" follows the class info (1 tracking byte, 4 version bytes)
  CHECK_THROWS_AS((BoostSerializer::deserialize<std::variant<int, std::string>>(badvariant)), CorruptionError);
}

TEST_CASE("random byte flips never crash BoostSerializer", "[boost_serializer]") {
  std::mt19937_64 rng(1234);
  const std::string full = boost_bytes(sample());
  int corrupt = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string s = full;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < flips; ++i) s[rng() % s.size()] = static_cast<char>(rng());
    try {
      (void)BoostSerializer::deserialize<Record>(s);
    } catch (const CorruptionError&) {
      ++corrupt;
    }
  }
  CHECK(corrupt > 0);
}

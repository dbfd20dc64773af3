// Tests for key_codec.hpp: for every built-in key type, random pairs (fixed
// seed) must compare by memcmp of their encodings exactly as std::less orders
// them, equal values must encode identically, and decode(encode(x)) == x.
// NaN keys are refused; malformed bytes are CorruptionErrors.
#include <stowage/key_codec.hpp>

#include <cmath>
#include <limits>
#include <random>

#include <catch2/catch.hpp>

namespace {

using stowage::CorruptionError;
using stowage::decode_key;
using stowage::encode_key;

constexpr int kPairs = 12000;

int sign(int c) { return (c > 0) - (c < 0); }

template <class T>
int less_order(const T& a, const T& b) {
  std::less<T> lt;
  return lt(a, b) ? -1 : lt(b, a) ? 1 : 0;
}

// Unsigned byte-wise comparison with shorter-prefix-first, i.e. memcmp order.
int byte_order(const std::string& a, const std::string& b) { return sign(a.compare(b)); }

// Checks the key invariant on `n` pairs drawn from `gen`, plus each value's
// round trip. Returns how many pairs were equal / ordered, so the caller can
// check both cases were exercised.
template <class T, class Gen>
std::pair<int, int> check_keys(Gen&& gen, int n = kPairs) {
  int equal = 0, ordered = 0, failures = 0;
  for (int i = 0; i < n; ++i) {
    const T a = gen();
    const T b = gen();
    const std::string ea = encode_key(a);
    const std::string eb = encode_key(b);
    const int want = less_order(a, b);
    const int got = byte_order(ea, eb);
    (want == 0 ? equal : ordered)++;
    if (got != want && failures++ < 5) {
      INFO("pair " << i << ": std::less order " << want << ", byte order " << got);
      CHECK(got == want);
    }
    const T back = decode_key<T>(ea);
    if (!(back == a) && failures++ < 5) {  // == : -0.0 comes back as the equivalent +0.0
      INFO("pair " << i << " does not round trip");
      CHECK(false);
    }
  }
  CHECK(failures == 0);
  return {equal, ordered};
}

std::mt19937_64& rng() {
  static std::mt19937_64 r(0x5eed5eedULL);
  return r;
}

// Integers: a mix of full-range values, extremes and a small range (so equal
// pairs and neighbours occur).
template <class T>
T random_int() {
  using L = std::numeric_limits<T>;
  switch (rng()() % 4) {
    case 0: {
      const T pool[] = {L::min(), static_cast<T>(L::min() + 1), T{0}, T{1}, static_cast<T>(L::max() - 1), L::max(),
                        static_cast<T>(-1)};
      return pool[rng()() % std::size(pool)];
    }
    case 1:
      return static_cast<T>(static_cast<int>(rng()() % 7) - 3);
    default:
      return static_cast<T>(rng()());
  }
}

double random_double() {
  using L = std::numeric_limits<double>;
  switch (rng()() % 5) {
    case 0: {
      const double pool[] = {0.0,          -0.0,           L::infinity(),    -L::infinity(),    L::max(),
                             L::lowest(),  L::min(),       -L::min(),        L::denorm_min(),   -L::denorm_min(),
                             1.0,          -1.0,           L::epsilon(),     1e-310,            -1e-310,
                             std::nextafter(0.0, 1.0), std::nextafter(1.0, 2.0), std::nextafter(-1.0, -2.0)};
      return pool[rng()() % std::size(pool)];
    }
    case 1: {  // any bit pattern that is not NaN (denormals included)
      double d;
      do d = std::bit_cast<double>(rng()());
      while (std::isnan(d));
      return d;
    }
    case 2:
      return static_cast<double>(static_cast<int>(rng()() % 9) - 4) / 2;
    default:
      return std::uniform_real_distribution<double>(-1e6, 1e6)(rng());
  }
}

float random_float() {
  if (rng()() % 2) return static_cast<float>(random_double());
  float f;
  do f = std::bit_cast<float>(static_cast<std::uint32_t>(rng()()));
  while (std::isnan(f));
  return f;
}

// Strings over an alphabet rich in 0x00, 0x01 and 0xFF, often prefixes of
// each other.
std::string random_string() {
  static const char alphabet[] = {'\0', '\x01', '\xff', 'a', 'b', '\xfe', '\x02'};
  static std::string last;
  std::string s;
  switch (rng()() % 4) {
    case 0:  // a prefix of the previous string
      s = last.substr(0, rng()() % (last.size() + 1));
      break;
    case 1:  // the previous string extended
      s = last;
      s.push_back(alphabet[rng()() % std::size(alphabet)]);
      break;
    default: {
      const std::size_t n = rng()() % 7;
      for (std::size_t i = 0; i < n; ++i) s.push_back(alphabet[rng()() % std::size(alphabet)]);
    }
  }
  last = s;
  return s;
}

enum class Level : std::int16_t { low = -300, mid = 0, high = 300 };

struct UserKey {
  std::uint32_t id;
  bool operator<(const UserKey& o) const { return id < o.id; }
  bool operator==(const UserKey&) const = default;
};

struct NotAKey {};

}  // namespace

template <>
struct stowage::KeyCodec<UserKey> {
  static void encode(const UserKey& k, std::string& out) { KeyCodec<std::uint32_t>::encode(k.id, out); }
  static UserKey decode(std::string_view& in) { return UserKey{KeyCodec<std::uint32_t>::decode(in)}; }
  static std::string name() { return "user-id"; }
};

static_assert(stowage::EncodableKey<int>);
static_assert(stowage::EncodableKey<std::string>);
static_assert(stowage::EncodableKey<std::tuple<std::string, std::int64_t, double>>);
static_assert(stowage::EncodableKey<std::vector<std::pair<Level, std::optional<UserKey>>>>);
static_assert(!stowage::EncodableKey<NotAKey>);
static_assert(!stowage::EncodableKey<std::pair<int, NotAKey>>);
static_assert(!stowage::EncodableKey<long double>);
static_assert(!stowage::EncodableKey<std::string_view>);

TEMPLATE_TEST_CASE("integer keys sort like std::less", "[key_codec]", std::int8_t, std::int16_t, std::int32_t,
                   std::int64_t, std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t, char, wchar_t, char16_t) {
  auto [equal, ordered] = check_keys<TestType>(random_int<TestType>);
  CHECK(equal > 100);
  CHECK(ordered > 100);
  CHECK(encode_key(TestType{}).size() == sizeof(TestType));
}

TEST_CASE("bool and enum keys", "[key_codec]") {
  check_keys<bool>([] { return rng()() % 2 == 0; }, 1000);
  check_keys<Level>([] { return static_cast<Level>(random_int<std::int16_t>()); });
  CHECK(encode_key(false) == std::string(1, '\0'));
  CHECK(encode_key(true) == "\x01");
  CHECK(stowage::KeyCodec<Level>::name() == "i16");
}

TEST_CASE("fixed encodings", "[key_codec]") {
  CHECK(encode_key(std::uint16_t{0x0102}) == "\x01\x02");
  CHECK(encode_key(std::int32_t{0}) == std::string("\x80\0\0\0", 4));
  CHECK(encode_key(std::int32_t{-1}) == "\x7f\xff\xff\xff");
  CHECK(encode_key(std::int8_t{-128}) == std::string(1, '\0'));
  CHECK(encode_key(1.0) == std::string("\xbf\xf0\0\0\0\0\0\0", 8));
  CHECK(encode_key(-1.0) == std::string("\x40\x0f\xff\xff\xff\xff\xff\xff", 8));
  CHECK(encode_key(0.0) == encode_key(-0.0));
  CHECK(encode_key(std::string("a\0b", 3)) == std::string("a\0\xff" "b\0\x01", 6));
  CHECK(encode_key(std::string()) == std::string("\0\x01", 2));
  CHECK(encode_key(std::vector<std::uint8_t>{7, 8}) == std::string("\x01\x07\x01\x08\0", 5));
  CHECK(encode_key(std::vector<std::uint8_t>{}) == std::string(1, '\0'));
  CHECK(encode_key(std::optional<std::uint8_t>{}) == std::string(1, '\0'));
  CHECK(encode_key(std::optional<std::uint8_t>{3}) == "\x01\x03");
  CHECK(encode_key(std::pair<std::uint8_t, std::string>{1, "x"}) == std::string("\x01x\0\x01", 4));
  std::string appended = "p";
  stowage::encode_key(std::uint8_t{9}, appended);
  CHECK(appended == "p\x09");
}

TEST_CASE("names", "[key_codec]") {
  using stowage::KeyCodec;
  CHECK(KeyCodec<std::int64_t>::name() == "i64");
  CHECK(KeyCodec<std::uint8_t>::name() == "u8");
  CHECK(KeyCodec<bool>::name() == "bool");
  CHECK(KeyCodec<double>::name() == "f64");
  CHECK(KeyCodec<float>::name() == "f32");
  CHECK(KeyCodec<std::string>::name() == "str");
  CHECK(KeyCodec<std::tuple<std::int32_t, std::string>>::name() == "tup<i32,str>");
  CHECK(KeyCodec<std::tuple<>>::name() == "tup<>");
  CHECK(KeyCodec<std::pair<std::int32_t, std::string>>::name() == "pair<i32,str>");
  CHECK(KeyCodec<std::array<std::uint8_t, 4>>::name() == "arr<u8,4>");
  CHECK(KeyCodec<std::vector<std::string>>::name() == "vec<str>");
  CHECK(KeyCodec<std::optional<UserKey>>::name() == "opt<user-id>");
  CHECK(stowage::key_name<std::vector<double>>() == "vec<f64>");
}

TEST_CASE("double and float keys sort like std::less", "[key_codec]") {
  auto [equal, ordered] = check_keys<double>(random_double);
  CHECK(equal > 50);
  CHECK(ordered > 100);
  check_keys<float>(random_float);
  // -0.0 and +0.0 share an encoding and decode to +0.0.
  CHECK(!std::signbit(decode_key<double>(encode_key(-0.0))));
  CHECK(decode_key<double>(encode_key(std::numeric_limits<double>::infinity())) ==
        std::numeric_limits<double>::infinity());
}

TEST_CASE("NaN cannot be a key", "[key_codec]") {
  CHECK_THROWS_AS(encode_key(std::numeric_limits<double>::quiet_NaN()), stowage::ValidationError);
  CHECK_THROWS_AS(encode_key(-std::numeric_limits<float>::signaling_NaN()), stowage::ValidationError);
  CHECK_THROWS_WITH(encode_key(std::tuple<int, double>{1, std::nan("")}), Catch::Contains("NaN cannot be a key"));
}

TEST_CASE("string keys with NULs, 0xFF bytes and prefixes sort like std::less", "[key_codec]") {
  auto [equal, ordered] = check_keys<std::string>(random_string);
  CHECK(equal > 100);
  CHECK(ordered > 100);
}

TEST_CASE("compound keys sort like std::less", "[key_codec]") {
  check_keys<std::pair<int, std::string>>(
      [] { return std::pair<int, std::string>{static_cast<int>(rng()() % 3) - 1, random_string()}; });
  auto [equal, ordered] = check_keys<std::tuple<std::string, std::int64_t, double>>([] {
    const double small[] = {0.0, -0.0, 1.5, -2.0, std::numeric_limits<double>::infinity()};
    return std::tuple<std::string, std::int64_t, double>{
        random_string(), random_int<std::int64_t>() % 3,
        rng()() % 2 ? small[rng()() % std::size(small)] : random_double()};
  });
  CHECK(equal > 10);
  CHECK(ordered > 100);
  check_keys<std::array<std::uint8_t, 4>>([] {
    std::array<std::uint8_t, 4> a{};
    for (auto& x : a) x = static_cast<std::uint8_t>(rng()() % 3 == 0 ? rng()() : rng()() % 2);
    return a;
  });
  auto [veq, vord] = check_keys<std::vector<std::string>>([] {
    std::vector<std::string> v(rng()() % 4);
    for (auto& s : v) s = random_string();
    return v;
  });
  CHECK(veq > 100);
  CHECK(vord > 100);
  check_keys<std::vector<std::int8_t>>([] {
    std::vector<std::int8_t> v(rng()() % 4);
    for (auto& x : v) x = static_cast<std::int8_t>(static_cast<int>(rng()() % 5) - 2);
    return v;
  });
  check_keys<std::optional<std::pair<UserKey, std::string>>>([] {
    return rng()() % 4 == 0 ? std::nullopt
                            : std::optional<std::pair<UserKey, std::string>>(
                                  std::pair<UserKey, std::string>{UserKey{static_cast<std::uint32_t>(rng()() % 3)},
                                                                  random_string()});
  });
  check_keys<std::tuple<>>([] { return std::tuple<>{}; }, 10);
}

TEST_CASE("malformed key bytes are CorruptionErrors", "[key_codec]") {
  auto offset_of = [](auto f) -> std::uint64_t {
    try {
      f();
    } catch (const CorruptionError& e) {
      return e.offset();
    }
    FAIL("no CorruptionError");
    return 0;
  };
  CHECK(offset_of([] { decode_key<std::int32_t>("\x80\0\0"); }) == 0);                           // truncated
  CHECK(offset_of([] { decode_key<std::uint8_t>("\x01\x02"); }) == 1);                           // trailing
  CHECK(offset_of([] { decode_key<bool>("\x02"); }) == 0);                                       // bad bool
  CHECK(offset_of([] { decode_key<std::string>("abc"); }) == 3);                                 // no terminator
  CHECK(offset_of([] { decode_key<std::string>(std::string("ab\0", 3)); }) == 3);                // cut escape
  CHECK(offset_of([] { decode_key<std::string>(std::string("ab\0\x05", 4)); }) == 3);            // bad escape
  CHECK(offset_of([] { decode_key<std::string>(std::string("a\0\x01z", 4)); }) == 3);            // trailing
  CHECK(offset_of([] { decode_key<std::vector<std::uint8_t>>("\x01\x05\x02"); }) == 2);          // bad marker
  CHECK(offset_of([] { decode_key<std::vector<std::uint8_t>>("\x01\x05"); }) == 2);              // no end
  CHECK(offset_of([] { decode_key<std::optional<std::uint8_t>>("\x07"); }) == 0);                // bad flag
  CHECK(offset_of([] {
          decode_key<std::pair<std::string, std::int16_t>>(std::string("x\0\x01\x80", 4));
        }) == 3);  // truncated second element, offset inside the whole key
  CHECK(offset_of([] { decode_key<std::tuple<std::uint8_t, bool>>("\x01\x09"); }) == 1);
  // NaN and -0.0 are never written, so reading them is corruption.
  CHECK(offset_of([] { decode_key<double>(std::string("\xff\xf8\0\0\0\0\0\0", 8)); }) == 0);
  CHECK(offset_of([] { decode_key<double>(std::string("\x7f\xff\xff\xff\xff\xff\xff\xff", 8)); }) == 0);
  CHECK_THROWS_AS(decode_key<std::string>(""), CorruptionError);
  CHECK_THROWS_AS(decode_key<UserKey>("\x01\x02"), CorruptionError);
}

TEST_CASE("random bytes decode to a canonical key or fail cleanly", "[key_codec]") {
  std::mt19937_64 r(99);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s(r() % 12, '\0');
    for (auto& c : s) c = static_cast<char>(r() % 3 == 0 ? r() : r() % 3);
    try {
      auto k = decode_key<std::vector<std::pair<std::string, std::optional<std::int16_t>>>>(s);
      CHECK(encode_key(k) == s);  // whatever decodes is exactly what encode writes
      ++decoded;
    } catch (const CorruptionError&) {
    }
  }
  CHECK(decoded > 0);
}

TEST_CASE("decode_key_into reuses the key object and agrees with decode_key", "[key_codec]") {
  std::string out = "a much longer previous key that leaves capacity behind";
  for (const std::string& k : {std::string("short"), std::string(), std::string("a\0b\0", 4), std::string(300, 'z')}) {
    stowage::decode_key_into<std::string>(encode_key(k), out);
    CHECK(out == k);
    CHECK(out == decode_key<std::string>(encode_key(k)));
  }
  // Codecs without decode_into go through decode_key.
  std::pair<std::string, int> p{"x", 1};
  stowage::decode_key_into(encode_key(std::pair<std::string, int>{"yy", -5}), p);
  CHECK(p == std::pair<std::string, int>{"yy", -5});
  int i = 7;
  stowage::decode_key_into(encode_key(-42), i);
  CHECK(i == -42);
  // Damage is reported the same way.
  CHECK_THROWS_AS(stowage::decode_key_into(encode_key(std::string("abc")) + "x", out), CorruptionError);
  CHECK_THROWS_AS(stowage::decode_key_into(std::string("abc"), out), CorruptionError);
  CHECK_THROWS_AS(stowage::decode_key_into(std::string("ab\0\x02", 4), out), CorruptionError);
}

// serializer_types.hpp: the value types fuzz_serializer decodes (shared with
// make_corpus, which writes their encodings as seeds), and a structural,
// NaN-safe equality for the round-trip check.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include <stowage/serializer.hpp>

namespace stowage_fuzz {

/// A tree: a user object holding a vector of itself.
struct Node {
  int v = 0;
  std::vector<Node> kids;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & v & kids;
  }
  auto fields() const { return std::tie(v, kids); }
};

enum class Color : std::uint8_t { red = 1, green = 2, blue = 200 };

/// Nested inside Big under an optional (a second user type, version 0).
struct Inner {
  std::array<std::uint8_t, 4> tag{};
  Node tree;
  std::tuple<bool, std::int64_t> flags{};
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar(tag, tree, flags);
  }
  auto fields() const { return std::tie(tag, tree, flags); }
};

/// The main fuzzed type. Version 2: fields added in versions 1 and 2 are read
/// only when the encoded version has them (so old encodings stay readable).
struct Big {
  static constexpr unsigned version = 2;
  // version 0
  std::string name;
  std::vector<std::pair<int, std::string>> pairs;
  std::map<std::string, std::optional<double>> opts;
  std::array<std::uint8_t, 4> tag{};
  Node tree;
  std::tuple<bool, std::int64_t> flags{};
  std::variant<int, std::string> choice;
  // version 1
  std::set<std::int64_t> ids;
  std::unordered_map<std::string, std::uint16_t> counts;
  // version 2
  std::vector<double> samples;  // bulk-copied floats
  std::vector<bool> bits;
  Color color = Color::red;
  std::optional<Inner> inner;
  float f = 0;
  long double ld = 0;
  std::monostate unit;

  template <class Archive>
  void serialize(Archive& ar, unsigned v) {
    ar & name & pairs & opts & tag & tree & flags & choice;
    if (v >= 1) ar(ids, counts);
    if (v >= 2) ar & samples & bits & color & inner & f & ld & unit;
  }
  auto fields() const {
    return std::tie(name, pairs, opts, tag, tree, flags, choice, ids, counts, samples, bits, color, inner, f, ld, unit);
  }
};

/// Plain containers, no user object at the top.
using Mixed = std::tuple<std::vector<std::uint32_t>, std::set<std::string>, std::unordered_set<std::int32_t>,
                         std::array<std::string, 2>, std::vector<std::variant<std::monostate, std::string, Node>>,
                         std::optional<std::pair<std::int8_t, char16_t>>, std::vector<std::vector<std::uint8_t>>>;

template <class T>
bool eq(const T& a, const T& b);

template <class Tup, std::size_t... I>
bool eq_tuple(const Tup& a, const Tup& b, std::index_sequence<I...>) {
  return (true && ... && eq(std::get<I>(a), std::get<I>(b)));
}

template <class T>
bool eq(const T& a, const T& b) {
  namespace sv = stowage::detail::value;
  using K = sv::Kind;
  constexpr K k = sv::kind_v<T>;
  if constexpr (std::is_same_v<T, long double>) {
    return std::memcmp(&a, &b, sv::long_double_bytes()) == 0;  // the value bytes, not the padding
  } else if constexpr (k == K::floating) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;  // bit patterns: NaN payloads and -0.0 must survive
  } else if constexpr (k == K::boolean || k == K::integer || k == K::enumeration || k == K::string || k == K::unit) {
    return a == b;
  } else if constexpr (std::is_same_v<T, std::vector<bool>>) {
    return a == b;
  } else if constexpr (k == K::vector || k == K::array) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!eq(a[i], b[i])) return false;
    return true;
  } else if constexpr (k == K::pair) {
    return eq(a.first, b.first) && eq(a.second, b.second);
  } else if constexpr (k == K::tuple) {
    return eq_tuple(a, b, std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (k == K::optional) {
    return a.has_value() == b.has_value() && (!a || eq(*a, *b));
  } else if constexpr (k == K::variant) {
    if (a.index() != b.index()) return false;
    return std::visit(
        [&](const auto& x) {
          using X = std::remove_cvref_t<decltype(x)>;
          return eq(x, *std::get_if<X>(&b));
        },
        a);
  } else if constexpr (k == K::map) {
    if (a.size() != b.size()) return false;
    for (const auto& [key, val] : a) {
      auto it = b.find(key);
      if (it == b.end() || !eq(val, it->second)) return false;
    }
    return true;
  } else if constexpr (k == K::set) {
    return a == b;
  } else if constexpr (k == K::object) {
    const auto fa = a.fields();
    const auto fb = b.fields();
    return eq_tuple(fa, fb, std::make_index_sequence<std::tuple_size_v<decltype(fa)>>{});
  } else {
    static_assert(sizeof(T) == 0, "eq: unhandled kind");
  }
}

}  // namespace stowage_fuzz

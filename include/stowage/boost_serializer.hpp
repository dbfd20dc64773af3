// SPDX-License-Identifier: BSL-1.0
// boost_serializer.hpp: BoostSerializer (id "boost-binary-1"), a value format
// built on Boost.Serialization's binary archives, so a type's Boost-style
// `template <class Archive> void serialize(Archive&, unsigned)` member serves
// both this and BinarySerializer. Needs libboost_serialization: link
// stowage::boost_serializer.
//
// Format: exactly what boost::archive::binary_oarchive writes with the
// no_header flag (native byte order and widths, Boost's archive library
// version of the build), one value per archive. Reading uses a hardened
// binary_iarchive that accepts the same bytes but checks every collection
// count and string length against the bytes that remain before allocating and
// rejects bool bytes other than 0/1, so hostile input ends in CorruptionError
// instead of a huge allocation or an assertion. Deserialize consumes its input
// exactly. Because there is no header, the bytes carry no Boost library
// version: read them with the Boost release (archive version) that wrote them.
//
// This header also teaches Boost 1.74 std::optional (laid out like
// boost::optional), std::tuple, std::variant (laid out like boost::variant)
// and std::monostate, unless the installed Boost provides them; and it makes
// Boost's class version of a type with `static constexpr unsigned version = N`
// equal to N, matching stowage::value_version.
#pragma once

#include <cstddef>
#include <deque>
#include <filesystem>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <streambuf>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive_impl.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/archive/detail/register_archive.hpp>
#include <boost/archive/impl/archive_serializer_map.ipp>
#include <boost/archive/impl/basic_binary_iarchive.ipp>
#include <boost/archive/impl/basic_binary_iprimitive.ipp>
#include <boost/mpl/int.hpp>
#include <boost/mpl/integral_c_tag.hpp>
#include <boost/serialization/array.hpp>
#include <boost/serialization/array_optimization.hpp>
#include <boost/serialization/bitset.hpp>
#include <boost/serialization/collection_size_type.hpp>
#include <boost/serialization/complex.hpp>
#include <boost/serialization/deque.hpp>
#include <boost/serialization/list.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/nvp.hpp>
#include <boost/serialization/set.hpp>
#include <boost/serialization/split_free.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/throw_exception.hpp>
#include <boost/serialization/unordered_map.hpp>
#include <boost/serialization/unordered_set.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>
#include <boost/serialization/version.hpp>

#include "error.hpp"
#include "serializer.hpp"

#if __has_include(<boost/serialization/std_optional.hpp>)
#include <boost/serialization/std_optional.hpp>
#define STOWAGE_BOOST_HAS_STD_OPTIONAL 1
#endif
#if __has_include(<boost/serialization/std_variant.hpp>)
#include <boost/serialization/std_variant.hpp>
#define STOWAGE_BOOST_HAS_STD_VARIANT 1
#endif

namespace stowage::detail::boost_io {

/// Thrown inside Boost code paths for malformed input; BoostSerializer turns
/// it into CorruptionError.
inline boost::archive::archive_exception bad_input(const char* what) {
  return boost::archive::archive_exception(boost::archive::archive_exception::other_exception, what);
}

/// Output stream buffer appending to a std::string.
class StringSink : public std::streambuf {
 public:
  /// Appends to `out`.
  explicit StringSink(std::string& out) : out_(out) {}

 protected:
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) out_.push_back(traits_type::to_char_type(c));
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.append(s, static_cast<std::size_t>(n));
    return n;
  }

 private:
  std::string& out_;
};

/// Input stream buffer over a byte range (never written through).
class ViewSource : public std::streambuf {
 public:
  /// Reads `bytes`, which must outlive the buffer.
  explicit ViewSource(std::string_view bytes) {
    char* p = const_cast<char*>(bytes.data());
    setg(p, p, p + bytes.size());
  }
  /// Bytes not read yet.
  std::size_t remaining() const { return static_cast<std::size_t>(egptr() - gptr()); }
  /// Bytes read so far.
  std::size_t consumed() const { return static_cast<std::size_t>(gptr() - eback()); }
};

/// boost::archive::binary_iarchive with every length checked against the
/// remaining bytes and strict bools; reads what binary_oarchive writes.
class InputArchive
    : public boost::archive::binary_iarchive_impl<InputArchive, char, std::char_traits<char>> {
  using Base = boost::archive::binary_iarchive_impl<InputArchive, char, std::char_traits<char>>;
  friend class boost::archive::detail::interface_iarchive<InputArchive>;
  friend class boost::archive::basic_binary_iarchive<InputArchive>;
  friend class boost::archive::basic_binary_iprimitive<InputArchive, char, std::char_traits<char>>;
  friend class boost::archive::load_access;

 public:
  /// The archive flags BoostSerializer reads and writes with.
  static constexpr unsigned flags = boost::archive::no_header | boost::archive::no_codecvt;

  /// Reads from `source`.
  explicit InputArchive(ViewSource& source) : Base(source, flags), source_(source) { init(flags); }

 protected:
  template <class T>
  void load_override(T& t) {
    Base::load_override(t);
  }
  void load_override(boost::serialization::collection_size_type& t) {
    Base::load_override(t);
    if (static_cast<std::size_t>(t) > source_.remaining())
      boost::serialization::throw_exception(bad_input("stowage: collection size exceeds the remaining bytes"));
  }

  using Base::load;
  void load(bool& b) {
    unsigned char c = 0;
    this->load_binary(&c, 1);
    if (c > 1) boost::serialization::throw_exception(bad_input("stowage: bad bool byte"));
    b = c == 1;
  }
  void load(std::string& s) {
    std::size_t n = 0;
    load(n);
    if (n > source_.remaining())
      boost::serialization::throw_exception(bad_input("stowage: string length exceeds the remaining bytes"));
    s.resize(n);
    if (n) this->load_binary(s.data(), n);
  }
  void load(std::wstring& s) {
    std::size_t n = 0;
    load(n);
    if (n > source_.remaining() / sizeof(wchar_t))
      boost::serialization::throw_exception(bad_input("stowage: string length exceeds the remaining bytes"));
    s.resize(n);
    if (n) this->load_binary(s.data(), n * sizeof(wchar_t));
  }
  // C strings have no bound to check against: refused.
  void load(char*) {
    boost::serialization::throw_exception(bad_input("stowage: C strings cannot be deserialized safely"));
  }
  void load(wchar_t*) {
    boost::serialization::throw_exception(bad_input("stowage: C strings cannot be deserialized safely"));
  }

 private:
  ViewSource& source_;
};

template <class T, template <class...> class Tpl>
inline constexpr bool is_spec_v = detail::value::is_spec_v<T, Tpl>;

/// Best-effort check that Boost can store T: scalars, the std types whose
/// Boost headers this file includes (element types checked), and any
/// default-constructible class (its member or free serialize is only found
/// when Boost instantiates it). Pointers, references and C arrays are refused.
template <class T>
constexpr bool supported() {
  if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>)
    return true;
  else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::wstring>)
    return true;
  else if constexpr (is_spec_v<T, std::vector> || is_spec_v<T, std::deque> || is_spec_v<T, std::list> ||
                     is_spec_v<T, std::set> || is_spec_v<T, std::multiset> || is_spec_v<T, std::unordered_set> ||
                     is_spec_v<T, std::unordered_multiset> || is_spec_v<T, std::optional> ||
                     detail::value::is_std_array<T>::value)
    return supported<typename T::value_type>();
  else if constexpr (is_spec_v<T, std::map> || is_spec_v<T, std::multimap> || is_spec_v<T, std::unordered_map> ||
                     is_spec_v<T, std::unordered_multimap>)
    return supported<typename T::key_type>() && supported<typename T::mapped_type>();
  else if constexpr (is_spec_v<T, std::pair>)
    return supported<typename T::first_type>() && supported<typename T::second_type>();
  else if constexpr (is_spec_v<T, std::tuple> || is_spec_v<T, std::variant>)
    return []<template <class...> class Tpl, class... E>(Tpl<E...>*) { return (true && ... && supported<E>()); }(
        static_cast<T*>(nullptr));
  else if constexpr (std::is_class_v<T>)
    return std::is_default_constructible_v<T>;
  else
    return false;
}

template <class Archive, class V, std::size_t... I>
void load_variant(Archive& ar, V& v, int which, std::index_sequence<I...>) {
  using Fn = void (*)(Archive&, V&);
  static constexpr Fn table[] = {[](Archive& a, V& out) {
    using Alt = std::variant_alternative_t<I, V>;
    Alt value{};
    a >> boost::serialization::make_nvp("value", value);
    out.template emplace<I>(std::move(value));
    a.reset_object_address(&std::get<I>(out), &value);
  }...};
  table[which](ar, v);
}

}  // namespace stowage::detail::boost_io

BOOST_SERIALIZATION_REGISTER_ARCHIVE(stowage::detail::boost_io::InputArchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(stowage::detail::boost_io::InputArchive)

namespace boost::serialization {

/// Boost's class version of a type declaring `static constexpr unsigned
/// version = N` is N (the same number BinarySerializer passes).
template <class T>
  requires stowage::detail::value::has_static_version<T>
struct version<T> {
  static_assert(T::version < 256, "stowage: Boost.Serialization class versions are limited to 0..255");
  typedef mpl::integral_c_tag tag;
  typedef mpl::int_<static_cast<int>(T::version)> type;
  BOOST_STATIC_CONSTANT(int, value = static_cast<int>(T::version));
};

#ifndef STOWAGE_BOOST_HAS_STD_OPTIONAL
/// std::optional: an "initialized" bool, then the value when present.
template <class Archive, class T>
void save(Archive& ar, const std::optional<T>& t, const unsigned int /*version*/) {
  const bool initialized = t.has_value();
  ar << boost::serialization::make_nvp("initialized", initialized);
  if (initialized) ar << boost::serialization::make_nvp("value", *t);
}
/// std::optional: an "initialized" bool, then the value when present.
template <class Archive, class T>
void load(Archive& ar, std::optional<T>& t, const unsigned int /*version*/) {
  bool initialized = false;
  ar >> boost::serialization::make_nvp("initialized", initialized);
  if (!initialized) {
    t.reset();
    return;
  }
  if (!t) t.emplace();
  ar >> boost::serialization::make_nvp("value", *t);
}
/// std::optional: split into save and load.
template <class Archive, class T>
void serialize(Archive& ar, std::optional<T>& t, const unsigned int version) {
  boost::serialization::split_free(ar, t, version);
}
/// Version 1, as for boost::optional (no item version in the stream).
template <class T>
struct version<std::optional<T>> {
  typedef mpl::integral_c_tag tag;
  typedef mpl::int_<1> type;
  BOOST_STATIC_CONSTANT(int, value = 1);
};
#endif

#ifndef STOWAGE_BOOST_HAS_STD_VARIANT
/// std::variant: the alternative index as an int ("which"), then the value.
template <class Archive, class... T>
void save(Archive& ar, const std::variant<T...>& v, const unsigned int /*version*/) {
  if (v.valueless_by_exception())
    boost::serialization::throw_exception(
        stowage::detail::boost_io::bad_input("stowage: cannot serialize a valueless std::variant"));
  const int which = static_cast<int>(v.index());
  ar << boost::serialization::make_nvp("which", which);
  std::visit([&](const auto& value) { ar << boost::serialization::make_nvp("value", value); }, v);
}
/// std::variant: the alternative index as an int ("which"), then the value.
template <class Archive, class... T>
void load(Archive& ar, std::variant<T...>& v, const unsigned int /*version*/) {
  int which = 0;
  ar >> boost::serialization::make_nvp("which", which);
  if (which < 0 || which >= static_cast<int>(sizeof...(T)))
    boost::serialization::throw_exception(
        stowage::detail::boost_io::bad_input("stowage: std::variant index out of range"));
  stowage::detail::boost_io::load_variant(ar, v, which, std::index_sequence_for<T...>{});
}
/// std::variant: split into save and load.
template <class Archive, class... T>
void serialize(Archive& ar, std::variant<T...>& v, const unsigned int version) {
  boost::serialization::split_free(ar, v, version);
}
/// std::monostate: nothing to store.
template <class Archive>
void serialize(Archive&, std::monostate&, const unsigned int /*version*/) {}
#endif

/// std::tuple: the elements in order.
template <class Archive, class... T>
void serialize(Archive& ar, std::tuple<T...>& t, const unsigned int /*version*/) {
  std::apply([&](auto&... element) { ((ar & boost::serialization::make_nvp("element", element)), ...); }, t);
}

}  // namespace boost::serialization

namespace stowage {

/// Value format built on Boost.Serialization binary archives (see the top of
/// this header). Same static interface as BinarySerializer.
struct BoostSerializer {
  /// Format name recorded in the store's manifest.
  static constexpr std::string_view id() { return "boost-binary-1"; }

  /// True when Boost can (as far as can be told at compile time) store a T.
  template <class T>
  static constexpr bool supports = detail::boost_io::supported<T>();

  /// Appends the archive of `v` to `out` (on an exception, `out` is left as it
  /// was; Boost's own errors become ValidationError).
  template <class T>
  static void serialize(const T& v, std::string& out) {
    if constexpr (!supports<T>) {
      static_assert(detail::value::always_false<T>,
                    "stowage: BoostSerializer cannot store T: give it a Boost.Serialization `template <class "
                    "Archive> void serialize(Archive&, unsigned)` and a default constructor (pointers, references "
                    "and C arrays are not values)");
    } else {
      const auto size = out.size();
      try {
        detail::boost_io::StringSink sink(out);
        boost::archive::binary_oarchive archive(sink, detail::boost_io::InputArchive::flags);
        archive << v;
      } catch (const boost::archive::archive_exception& e) {
        out.resize(size);
        throw ValidationError(std::string("stowage: Boost.Serialization could not serialize the value: ") + e.what());
      } catch (...) {
        out.resize(size);
        throw;
      }
    }
  }

  /// Decodes a T that must take exactly `bytes`; CorruptionError otherwise.
  template <class T>
  static T deserialize(std::string_view bytes) {
    if constexpr (!supports<T>) {
      static_assert(detail::value::always_false<T>,
                    "stowage: BoostSerializer cannot load T: give it a Boost.Serialization `template <class "
                    "Archive> void serialize(Archive&, unsigned)` and a default constructor");
      throw Error("stowage: unsupported type");  // never compiled
    } else {
      detail::boost_io::ViewSource source(bytes);
      T v{};
      try {
        detail::boost_io::InputArchive archive(source);
        archive >> v;
      } catch (const boost::archive::archive_exception& e) {
        throw CorruptionError(std::filesystem::path{}, source.consumed(),
                              std::string("Boost.Serialization could not read the value: ") + e.what());
      }
      if (source.remaining() != 0)
        throw CorruptionError(std::filesystem::path{}, source.consumed(),
                              std::to_string(source.remaining()) + " trailing bytes after the value");
      return v;
    }
  }
};

}  // namespace stowage

// SPDX-License-Identifier: BSL-1.0
// digest.hpp: Digest, the 32-byte SHA-256 value that names content in a
// ContentStore (content_store.hpp), and the SHA-256 function computing it.
//
// SHA-256 comes from OpenSSL's libcrypto through its EVP interface (the one
// OpenSSL 3 keeps stable and accelerates with SHA-NI / AVX2 where present), so
// this header is optional: link stowage::content to use it. The core
// (stowage.hpp) never includes it.
//
// A Digest is a plain value: 32 bytes, ordered and compared bytewise, hashed
// for unordered containers (its first 8 bytes; SHA-256 output is uniform), shown
// and parsed as 64 lowercase hex digits, usable as a Storage key (KeyCodec:
// the raw 32 bytes, so memcmp order is byte order) and inside user values
// (a serialize member: BinarySerializer writes a version byte and 32 bytes).
#pragma once

#include <openssl/evp.h>

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "error.hpp"
#include "key_codec.hpp"

namespace stowage {

/// A SHA-256 digest: 32 bytes. Value type with hex round-trip and hashing.
struct Digest {
  /// Length of a digest in bytes.
  static constexpr std::size_t size = 32;
  /// The digest's bytes, most significant first (as SHA-256 outputs them).
  std::array<std::uint8_t, size> bytes{};

  /// The 64 lowercase hex digits of the bytes.
  std::string hex() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(2 * size, '0');
    for (std::size_t i = 0; i < size; ++i) {
      out[2 * i] = digits[bytes[i] >> 4];
      out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    return out;
  }

  /// Parses 64 hex digits (either case); std::nullopt for anything else.
  static std::optional<Digest> parse_hex(std::string_view text) noexcept {
    if (text.size() != 2 * size) return std::nullopt;
    Digest d;
    for (std::size_t i = 0; i < size; ++i) {
      const int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
      if (hi < 0 || lo < 0) return std::nullopt;
      d.bytes[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return d;
  }

  /// Parses 64 hex digits; ValidationError naming the text otherwise.
  static Digest from_hex(std::string_view text) {
    if (auto d = parse_hex(text)) return *d;
    throw ValidationError("stowage: \"" + std::string(text.substr(0, 80)) +
                          "\" is not a SHA-256 digest (expected 64 hex digits)");
  }

  /// A digest from exactly 32 raw bytes; ValidationError otherwise.
  static Digest from_bytes(std::string_view raw) {
    if (raw.size() != size)
      throw ValidationError("stowage: a digest has 32 bytes, not " + std::to_string(raw.size()));
    Digest d;
    std::memcpy(d.bytes.data(), raw.data(), size);
    return d;
  }

  /// The raw 32 bytes as a string view (valid while this Digest lives).
  std::string_view raw() const noexcept { return {reinterpret_cast<const char*>(bytes.data()), size}; }

  /// Bytewise order and equality.
  friend auto operator<=>(const Digest&, const Digest&) = default;
  /// Bytewise equality.
  friend bool operator==(const Digest&, const Digest&) = default;

  /// Lets a Digest be a field of a user value (BinarySerializer, BoostSerializer).
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & bytes;
  }

 private:
  static int nibble(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
};

namespace detail {

/// OpenSSL's SHA-256 implementation, looked up once per process. (With
/// OpenSSL 3, EVP_sha256() makes every digest look the algorithm up again:
/// 0.9 us per 100-byte digest against 0.27 us with this and a reused context.)
/// Never freed: it serves until the process ends.
inline const EVP_MD* sha256_md() {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  static const EVP_MD* md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched ? fetched : EVP_sha256();
  }();
  return md;
#else
  return EVP_sha256();
#endif
}

struct FreeMdCtx {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, FreeMdCtx>;

}  // namespace detail

/// Incremental SHA-256 over OpenSSL's EVP interface: update() any number of
/// times, then finish() once. Throws Error if libcrypto fails (out of memory,
/// or a FIPS configuration that refuses SHA-256).
class Sha256 {
 public:
  /// Starts a new digest.
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), detail::sha256_md(), nullptr) != 1)
      throw Error("stowage: OpenSSL could not start a SHA-256 digest (EVP_DigestInit_ex failed; check libcrypto)");
  }
  /// Adds bytes.
  Sha256& update(std::string_view data) {
    if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1)
      throw Error("stowage: OpenSSL's EVP_DigestUpdate failed during SHA-256");
    return *this;
  }
  /// The digest of everything added; the object may not be updated afterwards.
  Digest finish() {
    Digest d;
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), d.bytes.data(), &len) != 1 || len != Digest::size)
      throw Error("stowage: OpenSSL's EVP_DigestFinal_ex failed during SHA-256");
    return d;
  }

 private:
  detail::MdCtx ctx_;
};

/// SHA-256 of data in one call (on a context kept per thread).
inline Digest sha256(std::string_view data) {
  thread_local detail::MdCtx ctx(EVP_MD_CTX_new());
  Digest d;
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), detail::sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), d.bytes.data(), &len) != 1 || len != Digest::size)
    throw Error("stowage: OpenSSL could not compute a SHA-256 digest (check libcrypto)");
  return d;
}

/// A Digest as a Storage key: its 32 raw bytes (memcmp order = Digest order).
template <>
struct KeyCodec<Digest> {
  /// Appends the 32 bytes.
  static void encode(const Digest& d, std::string& out) { out.append(d.raw()); }
  /// Consumes 32 bytes; CorruptionError when fewer remain.
  static Digest decode(std::string_view& in) {
    if (in.size() < Digest::size) throw CorruptionError({}, 0, "a digest key needs 32 bytes, " + std::to_string(in.size()) + " remain");
    Digest d = Digest::from_bytes(in.substr(0, Digest::size));
    in.remove_prefix(Digest::size);
    return d;
  }
  /// "sha256".
  static std::string name() { return "sha256"; }
};

}  // namespace stowage

/// Hashes a Digest by its first 8 bytes (SHA-256 output is uniform).
template <>
struct std::hash<stowage::Digest> {
  /// The first 8 bytes of the digest as a size_t.
  std::size_t operator()(const stowage::Digest& d) const noexcept {
    std::size_t h = 0;
    std::memcpy(&h, d.bytes.data(), sizeof h);
    return h;
  }
};

// SPDX-License-Identifier: BSL-1.0
// latency_histogram_test.cpp: checks bench_util.hpp's LatencyHistogram, which
// db_bench's p50 / p99 / p99.9 / max come from: every value falls in a bucket
// that holds it and is at most 1/128 of its values wide, buckets are ordered,
// and the percentiles are the ranks they claim to be (within a bucket,
// never below). Exits 1 with a message on the first failure.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench_util.hpp"

using stowage_bench::LatencyHistogram;

namespace {

int failures = 0;

void check(bool ok, const char* what, std::uint64_t a = 0, std::uint64_t b = 0) {
  if (ok) return;
  ++failures;
  if (failures <= 20)
    std::fprintf(stderr, "FAIL: %s (%llu, %llu)\n", what, static_cast<unsigned long long>(a),
                 static_cast<unsigned long long>(b));
}

/// v lies in its bucket, and the bucket is narrow enough.
void check_bucket(std::uint64_t v) {
  const std::size_t i = LatencyHistogram::index(v);
  check(i < LatencyHistogram::kBuckets, "index in range", v, i);
  const std::uint64_t lo = LatencyHistogram::lower(i), hi = LatencyHistogram::upper(i);
  check(lo <= v && v <= hi, "value inside its bucket", v, i);
  check(LatencyHistogram::index(lo) == i && LatencyHistogram::index(hi) == i, "bucket ends map back", v, i);
  // width hi - lo + 1 at most lo / 128 (exact buckets below 128 have width 1)
  check(lo < LatencyHistogram::kSub ? hi == lo : (hi - lo + 1) * LatencyHistogram::kSub <= lo, "bucket width", v, i);
}

}  // namespace

int main() {
  // Every value below 2^20 and the neighbourhood of each power of two.
  std::size_t prev = 0;
  for (std::uint64_t v = 0; v < (std::uint64_t{1} << 20); ++v) {
    check_bucket(v);
    const std::size_t i = LatencyHistogram::index(v);
    check(v == 0 || i == prev || i == prev + 1, "buckets consecutive and ordered", v, i);
    prev = i;
  }
  for (unsigned k = 1; k < 64; ++k) {
    const std::uint64_t p = std::uint64_t{1} << k;
    for (std::uint64_t d = 0; d < 3; ++d) {
      check_bucket(p - 1 - d);
      check_bucket(p + d);
    }
    check(LatencyHistogram::index(p - 1) < LatencyHistogram::index(p), "ordered across powers of two", p);
  }
  check_bucket(~std::uint64_t{0});
  check(LatencyHistogram::index(~std::uint64_t{0}) == LatencyHistogram::kBuckets - 1, "last bucket");
  check(LatencyHistogram::upper(LatencyHistogram::kBuckets - 1) == ~std::uint64_t{0}, "last bucket ends at max");
  std::uint64_t state = 7;
  for (int n = 0; n < 200000; ++n) check_bucket(stowage_bench::splitmix64(state) >> (n % 64));

  // Empty, and a single value (exact: the percentiles clamp to [min, max]).
  LatencyHistogram h;
  check(h.count() == 0 && h.percentile(0.5) == 0 && h.max() == 0 && h.min() == 0, "empty histogram");
  h.record(123456);
  check(h.percentile(0.5) == 123456 && h.percentile(0.999) == 123456 && h.max() == 123456, "single value");

  // 1..100 ns (each its own bucket): the ranks are exact.
  LatencyHistogram small;
  for (std::uint64_t v = 1; v <= 100; ++v) small.record(v);
  check(small.percentile(0.5) == 50 && small.percentile(0.99) == 99 && small.percentile(0.999) == 100 &&
            small.percentile(0.01) == 1 && small.percentile(1.0) == 100,
        "exact ranks of 1..100", small.percentile(0.5), small.percentile(0.99));

  // 1..100000 ns: the q-quantile is ceil(q * n), reported within one bucket above.
  h.clear();
  const std::uint64_t n = 100000;
  for (std::uint64_t v = n; v >= 1; --v) h.record(v);
  check(h.count() == n && h.max() == n && h.min() == 1, "count, min, max", h.count(), h.max());
  check(h.mean() == (static_cast<double>(n) + 1) / 2, "mean");
  for (double q : {0.01, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    const auto exact = static_cast<std::uint64_t>(q * static_cast<double>(n) + 0.5);
    const std::uint64_t got = h.percentile(q);
    check(got >= exact && got <= exact + exact / 128, "percentile of 1..n", exact, got);
  }
  check(h.percentile(1.0) == n, "p100 is the max");

  // A long tail: 999 fast values and one slow one; p99.9 is fast, max is slow.
  LatencyHistogram tail;
  for (int i = 0; i < 999; ++i) tail.record(2000);
  tail.record(3000000000ULL);
  check(tail.percentile(0.999) >= 2000 && tail.percentile(0.999) <= 2000 + 2000 / 128, "p99.9 below the outlier",
        tail.percentile(0.999));
  check(tail.max() == 3000000000ULL && tail.percentile(1.0) == 3000000000ULL, "outlier is the max");

  // merge() is the same as recording everything in one.
  LatencyHistogram a, b, all;
  state = 11;
  for (int i = 0; i < 50000; ++i) {
    const std::uint64_t v = stowage_bench::splitmix64(state) % 5000000;
    (i % 3 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  check(a.count() == all.count() && a.max() == all.max() && a.min() == all.min() && a.mean() == all.mean(),
        "merge totals");
  for (double q : {0.5, 0.99, 0.999}) check(a.percentile(q) == all.percentile(q), "merge percentiles");

  if (failures) {
    std::fprintf(stderr, "latency_histogram_test: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("latency_histogram_test: ok\n");
  return 0;
}

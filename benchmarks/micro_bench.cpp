// micro_bench.cpp: Google Benchmark runs of stowage's components on their
// own, through their detail:: APIs, to tell where the time of a db_bench
// workload goes:
//   - chunk encode / decode, with LZ4 and without: ChunkWriter writing a
//     256 KiB chunk of db_bench records (block building, compression, XXH3,
//     Bloom filter), ChunkTable::read_block (read, checksum, decompress, parse
//     and validate one 4 KiB block), and the bare LZ4 codec on one block;
//   - the block cache's hit path (BlockCache::lookup), one and two threads,
//     per eviction policy, and a std::list + std::unordered_map LRU under a
//     mutex for comparison;
//   - index lookups: ChunkIndex::find over the chunk directory (sealed: the
//     flat prefix search the store uses; unsealed: the map), and inside a
//     chunk find_block + Bloom may_contain + Block::lower_bound, and
//     Block::lower_bound alone over blocks far beyond the CPU caches;
//   - WAL append: one put record encoded, checksummed and written (to memory,
//     and to a file through write(2)), and with fdatasync per record;
//   - the write buffer: WriteBuffer::apply of db_bench records in key order
//     and in random order (a fresh buffer every 400,000 records, about what
//     a 256 MiB cache_bytes lets it hold), and WriteBuffer::find of present
//     keys in a buffer of 400,000.
// Chunks and in-memory WALs live in a MemoryFileSystem (below), so the figures
// are CPU cost only, except the *Posix* ones.
#include <stowage/cache.hpp>
#include <stowage/chunk.hpp>
#include <stowage/compression.hpp>
#include <stowage/eviction.hpp>
#include <stowage/file.hpp>
#include <stowage/index.hpp>
#include <stowage/wal.hpp>
#include <stowage/write_buffer.hpp>

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench_util.hpp"

namespace fs = std::filesystem;
namespace sd = stowage::detail;
using stowage_bench::splitmix64;

namespace {

// ---- an in-memory file system (only what chunks and the WAL use) -------------

class MemoryFileSystem final : public stowage::FileSystem {
 public:
  std::unique_ptr<stowage::WritableFile> create(const fs::path& p) override {
    auto data = std::make_shared<std::string>();
    files_[p.string()] = data;
    return std::make_unique<Writable>(std::move(data));
  }
  std::unique_ptr<stowage::WritableFile> open_append(const fs::path& p) override {
    return std::make_unique<Writable>(file(p));
  }
  std::unique_ptr<stowage::RandomAccessFile> open_read(const fs::path& p) override {
    return std::make_unique<Readable>(file(p), p);
  }
  void rename(const fs::path& from, const fs::path& to) override {
    files_[to.string()] = file(from);
    files_.erase(from.string());
  }
  void remove(const fs::path& p) override { files_.erase(p.string()); }
  void truncate(const fs::path& p, std::uint64_t size) override { file(p)->resize(size); }
  void sync_dir(const fs::path&) override {}
  void create_dirs(const fs::path&) override {}
  std::vector<std::string> list(const fs::path&) override { return {}; }
  bool exists(const fs::path& p) override { return files_.count(p.string()) != 0; }
  bool is_directory(const fs::path&) override { return false; }

 private:
  class Writable final : public stowage::WritableFile {
   public:
    explicit Writable(std::shared_ptr<std::string> d) : d_(std::move(d)) {}
    void append(std::string_view data) override { d_->append(data); }
    void flush() override {}
    void sync() override {}
    void sync_flushed() override {}
    void close() override {}
    std::uint64_t size() const override { return d_->size(); }

   private:
    std::shared_ptr<std::string> d_;
  };
  class Readable final : public stowage::RandomAccessFile {
   public:
    Readable(std::shared_ptr<std::string> d, fs::path p) : d_(std::move(d)), path_(std::move(p)) {}
    std::size_t read(std::uint64_t offset, std::size_t n, char* dst) const override {
      if (offset >= d_->size()) return 0;
      n = std::min<std::size_t>(n, d_->size() - static_cast<std::size_t>(offset));
      std::memcpy(dst, d_->data() + offset, n);
      return n;
    }
    std::uint64_t size() const override { return d_->size(); }
    const fs::path& path() const override { return path_; }

   private:
    std::shared_ptr<std::string> d_;
    fs::path path_;
  };
  std::shared_ptr<std::string> file(const fs::path& p) {
    auto it = files_.find(p.string());
    if (it == files_.end()) throw std::runtime_error("MemoryFileSystem: no file " + p.string());
    return it->second;
  }
  std::map<std::string, std::shared_ptr<std::string>> files_;
};

// ---- db_bench-like records ----------------------------------------------------

/// Key i as db_bench makes it (16 zero-padded decimal digits).
std::string key_of(std::uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llu", static_cast<unsigned long long>(i));
  return std::string(buf, 16);
}

/// A 100-byte value, 50 random printable bytes repeated (compresses to about half).
std::string value_of(std::uint64_t i) {
  std::uint64_t seed = i;
  std::uint64_t state = splitmix64(seed);  // well apart for neighbouring i
  std::string half;
  for (int j = 0; j < 50; ++j) half.push_back(static_cast<char>(' ' + splitmix64(state) % 95));
  return half + half;
}

constexpr std::uint64_t kChunkRecords = 2000;  // about 256 KiB of records, stowage's default chunk size

/// Writes a chunk of kChunkRecords records (keys first..first+n-1) into fs at path.
template <class C>
sd::ChunkInfo write_chunk(stowage::FileSystem& fs, const fs::path& path, std::uint64_t first = 0) {
  sd::ChunkWriter<C> w(fs, path);
  for (std::uint64_t i = 0; i < kChunkRecords; ++i) w.add(key_of(first + i), first + i + 1, value_of(first + i));
  return w.finish();
}

// ---- chunk encode / decode -----------------------------------------------------

template <class C>
void BM_ChunkWrite(benchmark::State& state) {
  MemoryFileSystem mfs;
  std::vector<std::string> keys, values;
  for (std::uint64_t i = 0; i < kChunkRecords; ++i) {
    keys.push_back(key_of(i));
    values.push_back(value_of(i));
  }
  std::uint64_t file_bytes = 0;
  for (auto _ : state) {
    sd::ChunkWriter<C> w(mfs, "c.chunk");
    for (std::uint64_t i = 0; i < kChunkRecords; ++i) w.add(keys[i], i + 1, values[i]);
    file_bytes = w.finish().file_bytes;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kChunkRecords));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kChunkRecords * 116));
  state.counters["file_bytes"] = static_cast<double>(file_bytes);
}
BENCHMARK_TEMPLATE(BM_ChunkWrite, stowage::Lz4Compression)->Name("ChunkWrite/lz4");
BENCHMARK_TEMPLATE(BM_ChunkWrite, stowage::NoCompression)->Name("ChunkWrite/none");

template <class C>
void BM_ChunkReadBlock(benchmark::State& state) {
  MemoryFileSystem mfs;
  write_chunk<C>(mfs, "c.chunk");
  auto table = sd::ChunkTable<C>::open(mfs, "c.chunk");
  const std::size_t blocks = table->block_count();
  std::size_t i = 0, records = 0;
  for (auto _ : state) {
    auto block = table->read_block(i);
    records += block->size();
    benchmark::DoNotOptimize(block);
    if (++i == blocks) i = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["records_per_block"] = static_cast<double>(records) / static_cast<double>(state.iterations());
}
BENCHMARK_TEMPLATE(BM_ChunkReadBlock, stowage::Lz4Compression)->Name("ChunkReadBlock/lz4");
BENCHMARK_TEMPLATE(BM_ChunkReadBlock, stowage::NoCompression)->Name("ChunkReadBlock/none");

template <class C>
void BM_ChunkOpen(benchmark::State& state) {
  MemoryFileSystem mfs;
  write_chunk<C>(mfs, "c.chunk");
  for (auto _ : state) benchmark::DoNotOptimize(sd::ChunkTable<C>::open(mfs, "c.chunk"));
}
BENCHMARK_TEMPLATE(BM_ChunkOpen, stowage::Lz4Compression)->Name("ChunkOpen/lz4");

/// The raw 4 KiB a data block holds (records of db_bench shape, concatenated).
std::string block_sample() {
  std::string raw;
  for (std::uint64_t i = 0; raw.size() < 4096; ++i) raw += key_of(i) + value_of(i);
  raw.resize(4096);
  return raw;
}

void BM_Lz4Compress(benchmark::State& state) {
  const std::string raw = block_sample();
  std::string out;
  for (auto _ : state) {
    stowage::Lz4Compression::compress(raw, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * raw.size()));
  state.counters["ratio"] = static_cast<double>(raw.size()) / static_cast<double>(out.size());
}
BENCHMARK(BM_Lz4Compress)->Name("Lz4Compress/4KiB");

void BM_Lz4Decompress(benchmark::State& state) {
  const std::string raw = block_sample();
  std::string packed;
  stowage::Lz4Compression::compress(raw, packed);
  std::string out(raw.size(), '\0');
  for (auto _ : state) {
    stowage::Lz4Compression::decompress(packed, out.size(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * raw.size()));
}
BENCHMARK(BM_Lz4Decompress)->Name("Lz4Decompress/4KiB");

void BM_Checksum(benchmark::State& state) {
  const std::string raw = block_sample();
  for (auto _ : state) benchmark::DoNotOptimize(sd::checksum(raw, 1));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * raw.size()));
}
BENCHMARK(BM_Checksum)->Name("XXH3/4KiB");

// ---- the block cache's hit path ----------------------------------------------------

/// A cache holding `entries` entries (the blocks of one chunk, each under
/// many keys (file, offset), as a store of entries blocks would have them).
template <class Policy>
struct CacheFixture {
  std::unique_ptr<sd::BlockCache<Policy>> cache;
  std::vector<sd::CacheKey> keys;
  explicit CacheFixture(std::size_t entries) {
    MemoryFileSystem mfs;
    write_chunk<stowage::Lz4Compression>(mfs, "c.chunk");
    auto table = sd::ChunkTable<stowage::Lz4Compression>::open(mfs, "c.chunk");
    std::vector<std::shared_ptr<const sd::Block>> blocks;
    for (std::size_t b = 0; b < table->block_count(); ++b) blocks.push_back(table->read_block(b));
    cache = std::make_unique<sd::BlockCache<Policy>>(std::size_t{1} << 30);
    for (std::size_t i = 0; i < entries; ++i) {
      const auto& block = blocks[i % blocks.size()];
      sd::CacheKey k{1 + i / blocks.size(), 4096 * (i % blocks.size())};
      cache->insert(k, block, block->charge());
      keys.push_back(k);
    }
  }
};

/// BlockCache<Policy>::lookup of a present block (shard lock, hash map, the
/// policy's touch, shared_ptr copy), from one thread and from two (each
/// thread its own keys order).
template <class Policy>
void BM_CacheHit(benchmark::State& state) {
  static CacheFixture<Policy> fixture(30000);  // built once, thread-safe (a function-local static)
  std::uint64_t rng = 1234 + static_cast<std::uint64_t>(state.thread_index());
  const std::size_t n = fixture.keys.size();
  for (auto _ : state) {
    auto b = fixture.cache->template lookup<sd::Block>(fixture.keys[splitmix64(rng) % n]);
    benchmark::DoNotOptimize(b);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK_TEMPLATE(BM_CacheHit, stowage::LruEviction)->Name("CacheHit")->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_CacheHit, stowage::SieveEviction)->Name("CacheHit/sieve")->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_CacheHit, stowage::S3FifoEviction)->Name("CacheHit/s3-fifo")->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_CacheHit, stowage::WTinyLfuEviction)->Name("CacheHit/w-tinylfu")->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_CacheHit, stowage::ShadowTinyLfuEviction)
    ->Name("CacheHit/shadow-tinylfu")
    ->Threads(1)
    ->Threads(2);

/// The textbook LRU the hit path is measured against: a std::list of keys in
/// recency order and a std::unordered_map from key to (list position,
/// object), one std::mutex around both (as any cache shared by threads
/// needs); a hit splices the key to the front and copies the shared_ptr.
class StdListLru {
 public:
  void insert(const sd::CacheKey& k, std::shared_ptr<const void> v) {
    std::lock_guard lock(mutex_);
    order_.push_front(k);
    map_[k] = {order_.begin(), std::move(v)};
  }
  std::shared_ptr<const void> lookup(const sd::CacheKey& k) {
    std::lock_guard lock(mutex_);
    auto it = map_.find(k);
    if (it == map_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second.first);
    return it->second.second;
  }

 private:
  std::mutex mutex_;
  std::list<sd::CacheKey> order_;
  std::unordered_map<sd::CacheKey, std::pair<std::list<sd::CacheKey>::iterator, std::shared_ptr<const void>>,
                     sd::CacheKeyHash>
      map_;
};

/// The same hits as BM_CacheHit on StdListLru holding the same 30,000 keys.
void BM_StdListLruHit(benchmark::State& state) {
  static const auto fixture = [] {
    auto f = std::make_unique<std::pair<StdListLru, std::vector<sd::CacheKey>>>();
    const auto object = std::make_shared<const int>(0);
    for (std::size_t i = 0; i < 30000; ++i) {
      const sd::CacheKey k{1 + i / 64, 4096 * (i % 64)};
      f->first.insert(k, object);
      f->second.push_back(k);
    }
    return f;
  }();
  std::uint64_t rng = 1234 + static_cast<std::uint64_t>(state.thread_index());
  const std::size_t n = fixture->second.size();
  for (auto _ : state) {
    auto b = fixture->first.lookup(fixture->second[splitmix64(rng) % n]);
    benchmark::DoNotOptimize(b);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_StdListLruHit)->Name("CacheHit/std-list-lru")->Threads(1)->Threads(2);

// ---- index lookups -------------------------------------------------------------------

void BM_ChunkIndexFind(benchmark::State& state) {
  // One entry per chunk of 2,000 records, like a store of range(0) records.
  const std::uint64_t records = static_cast<std::uint64_t>(state.range(0));
  sd::ChunkIndex index;
  for (std::uint64_t first = 0, file = 1; first < records; first += kChunkRecords, ++file) {
    sd::ChunkRef c;
    c.file = file;
    c.records = kChunkRecords;
    c.first_key = key_of(first);
    c.last_key = key_of(std::min(records, first + kChunkRecords) - 1);
    index.add(std::move(c));
  }
  if (state.range(1) != 0) index.seal();  // as the store installs it
  std::vector<std::string> probes;
  std::uint64_t rng = 99;
  for (int i = 0; i < 4096; ++i) probes.push_back(key_of(splitmix64(rng) % records));
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(index.find(probes[i]));
    i = (i + 1) & 4095;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["chunks"] = static_cast<double>(index.chunks());
}
BENCHMARK(BM_ChunkIndexFind)
    ->Name("ChunkIndexFind")
    ->ArgNames({"records", "sealed"})
    ->Args({1000000, 0})
    ->Args({1000000, 1})
    ->Args({10000000, 0})
    ->Args({10000000, 1});

void BM_InChunkLookup(benchmark::State& state) {
  // Bloom check, block index search and the binary search inside a cached block.
  MemoryFileSystem mfs;
  write_chunk<stowage::Lz4Compression>(mfs, "c.chunk");
  auto table = sd::ChunkTable<stowage::Lz4Compression>::open(mfs, "c.chunk");
  std::vector<std::shared_ptr<const sd::Block>> blocks;
  for (std::size_t b = 0; b < table->block_count(); ++b) blocks.push_back(table->read_block(b));
  std::vector<std::string> probes;
  std::uint64_t rng = 7;
  for (int i = 0; i < 4096; ++i) probes.push_back(key_of(splitmix64(rng) % kChunkRecords));
  std::size_t i = 0, hits = 0;
  for (auto _ : state) {
    const std::string& k = probes[i];
    i = (i + 1) & 4095;
    if (!table->may_contain(k)) continue;
    const std::size_t b = table->find_block(k);
    const std::size_t r = blocks[b]->lower_bound(k);
    hits += r < blocks[b]->size() && blocks[b]->key(r) == k;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  benchmark::DoNotOptimize(hits);
}
BENCHMARK(BM_InChunkLookup)->Name("InChunkLookup");

/// Block::lower_bound alone over many cached blocks (range(0) records, about
/// 140 bytes each in memory: 1M records is far beyond the CPU caches, as in a
/// warm db_bench readrandom), a random block and key each time.
void BM_BlockSeek(benchmark::State& state) {
  MemoryFileSystem mfs;
  const auto records = static_cast<std::uint64_t>(state.range(0));
  std::vector<std::shared_ptr<const sd::Block>> blocks;
  std::vector<std::pair<std::uint32_t, std::string>> probes;  // block, key
  std::uint64_t rng = 13;
  for (std::uint64_t first = 0; first < records; first += kChunkRecords) {
    write_chunk<stowage::Lz4Compression>(mfs, "c.chunk", first);
    auto table = sd::ChunkTable<stowage::Lz4Compression>::open(mfs, "c.chunk");
    for (std::size_t b = 0; b < table->block_count(); ++b) blocks.push_back(table->read_block(b));
  }
  for (int i = 0; i < 65536; ++i) {
    const auto b = static_cast<std::uint32_t>(splitmix64(rng) % blocks.size());
    probes.emplace_back(b, std::string(blocks[b]->key(splitmix64(rng) % blocks[b]->size())));
  }
  std::size_t i = 0, hits = 0;
  for (auto _ : state) {
    const auto& [b, k] = probes[i];
    i = (i + 1) & 65535;
    const std::size_t r = blocks[b]->lower_bound(k);
    hits += r < blocks[b]->size() && blocks[b]->key(r) == k;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["blocks"] = static_cast<double>(blocks.size());
  benchmark::DoNotOptimize(hits);
}
BENCHMARK(BM_BlockSeek)->Name("BlockSeek")->Arg(20000)->Arg(1000000);

void BM_BloomMiss(benchmark::State& state) {
  MemoryFileSystem mfs;
  write_chunk<stowage::Lz4Compression>(mfs, "c.chunk");
  auto table = sd::ChunkTable<stowage::Lz4Compression>::open(mfs, "c.chunk");
  std::vector<std::string> probes;
  std::uint64_t rng = 11;
  for (int i = 0; i < 4096; ++i) probes.push_back(key_of(splitmix64(rng) % kChunkRecords) + ".");
  std::size_t i = 0, false_positives = 0;
  for (auto _ : state) {
    false_positives += table->may_contain(probes[i]);
    i = (i + 1) & 4095;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["fp_rate"] = static_cast<double>(false_positives) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_BloomMiss)->Name("BloomMiss");

// ---- WAL append --------------------------------------------------------------------

/// One put record of db_bench shape: the batch payload built and appended.
void append_put(sd::WalWriter& w, sd::WalBatch& batch, std::uint64_t seq, const std::string& k,
                const std::string& v) {
  batch.reset(seq);
  batch.put(k, v);
  w.append(batch.finish());
}

void BM_WalAppendMemory(benchmark::State& state) {
  MemoryFileSystem mfs;
  auto w = std::make_unique<sd::WalWriter>(mfs, "wal", 1);
  sd::WalBatch batch;
  const std::string k = key_of(42), v = value_of(42);
  std::uint64_t seq = 1, n = 0;
  for (auto _ : state) {
    append_put(*w, batch, seq++, k, v);
    if (++n == 100000) {  // keep the memory file small
      state.PauseTiming();
      w = std::make_unique<sd::WalWriter>(mfs, "wal", 1);
      n = 0;
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_WalAppendMemory)->Name("WalAppend/memory");

/// A scratch directory under /tmp, removed at exit.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("stowage_micro_bench-" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void BM_WalAppendPosix(benchmark::State& state) {
  TempDir dir;
  auto pfs = stowage::default_file_system();
  sd::WalWriter w(*pfs, dir.path, 1);
  sd::WalBatch batch;
  const std::string k = key_of(42), v = value_of(42);
  std::uint64_t seq = 1;
  for (auto _ : state) append_put(w, batch, seq++, k, v);
  w.close();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_WalAppendPosix)->Name("WalAppend/posix_write");

void BM_WalAppendSync(benchmark::State& state) {
  TempDir dir;
  auto pfs = stowage::default_file_system();
  sd::WalWriter w(*pfs, dir.path, 1);
  sd::WalBatch batch;
  const std::string k = key_of(42), v = value_of(42);
  std::uint64_t seq = 1;
  for (auto _ : state) {
    append_put(w, batch, seq++, k, v);
    w.sync();
  }
  w.close();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_WalAppendSync)->Name("WalAppend/posix_fdatasync")->Iterations(200)->Unit(benchmark::kMicrosecond);

// ---- write buffer ---------------------------------------------------------------

constexpr std::uint64_t kBufferRecords = 400000;

/// The encoded form of key_of(n), as the store keeps it (a string key's
/// escaped terminator appended).
std::string buffer_key(std::uint64_t n) { return key_of(n) + std::string("\0\1", 2); }

/// apply() of db_bench records: ascending keys (arg 0) or random ones (arg 1).
void BM_WriteBufferApply(benchmark::State& state) {
  const bool random = state.range(0) != 0;
  std::vector<std::string> keys(kBufferRecords);
  std::uint64_t rng = 7;
  for (std::uint64_t i = 0; i < kBufferRecords; ++i)
    keys[i] = buffer_key(random ? splitmix64(rng) % 1000000 : i);
  const std::string v = value_of(1);
  auto b = std::make_unique<sd::WriteBuffer>();
  std::uint64_t seq = 0, i = 0;
  for (auto _ : state) {
    b->apply(keys[i], ++seq, false, v);
    if (++i == kBufferRecords) {
      state.PauseTiming();
      b = std::make_unique<sd::WriteBuffer>();
      i = 0;
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_WriteBufferApply)->Name("WriteBufferApply/ascending")->Arg(0);
BENCHMARK(BM_WriteBufferApply)->Name("WriteBufferApply/random")->Arg(1);

/// find() of random present keys in a buffer of kBufferRecords.
void BM_WriteBufferFind(benchmark::State& state) {
  sd::WriteBuffer b;
  std::vector<std::string> keys(kBufferRecords);
  std::uint64_t rng = 9;
  const std::string v = value_of(1);
  for (std::uint64_t i = 0; i < kBufferRecords; ++i) {
    keys[i] = buffer_key(splitmix64(rng) % 10000000);
    b.apply(keys[i], i + 1, false, v);
  }
  std::uint64_t i = 0, found = 0;
  for (auto _ : state) {
    found += b.find(keys[i]) != nullptr;
    if (++i == kBufferRecords) i = 0;
  }
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_WriteBufferFind)->Name("WriteBufferFind");

}  // namespace

BENCHMARK_MAIN();

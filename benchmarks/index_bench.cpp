// index_bench.cpp: secondary indexes, stowage against SQLite and LevelDB.
//
// One collection of users (a uint64 id -> {name, email, city, age, bio},
// about 120 bytes serialized) with two indexes: a unique one on email and a
// non-unique one on city (--cities distinct values, 1,000 by default). Each
// engine, in a process of its own (forked, so one engine's memory and
// threads do not weigh on the next), runs the same three workloads in order
// on a fresh store:
//
//   insert  --num records with random-ish ids (a fixed-seed permutation of
//           [0, 2^40)), each written with its two index entries in the same
//           atomic commit; the time includes a final flush that makes every
//           record durable. Reported as records per second.
//   lookup  --lookups random emails of stored records -> the whole record
//           (id and User). Reported as lookups per second.
//   range   --ranges queries "the first --range_len (100) records of a
//           random city, in id order" through the city index, each record
//           read whole. Reported as queries per second.
//
// The engines, each with its default options (as users run them; --cache_bytes
// sets all three caches to one size instead):
//   stowage  stowage::Database db(dir); auto users = db.collection<
//            std::uint64_t, User>("users"); users.index("by_email",
//            &User::email, stowage::unique); users.index("by_city",
//            &User::city); users.put(id, user) (a batch of --batch puts with
//            users.batch() when --batch > 1).
//   sqlite   a table users(id INTEGER PRIMARY KEY, name, email, city, age,
//            bio) with CREATE UNIQUE INDEX on email and CREATE INDEX on city;
//            journal_mode=WAL, synchronous=NORMAL, prepared statements; each
//            put an UPSERT (INSERT ... ON CONFLICT(id) DO UPDATE: replace by
//            id, refuse a taken email, as users.put does), --batch puts per
//            transaction (1: autocommit).
//   leveldb  the index kept by hand, as users of a plain key-value store do:
//            "r/<id>" -> the record (BinarySerializer bytes, the same bytes
//            stowage stores), "e/<email>" -> id and "c/<city>/<id>" -> "",
//            written in one WriteBatch per --batch records; before writing,
//            each put reads the record's old version (to delete its stale
//            entries) and the email's entry (to refuse a taken email): the
//            work stowage's index does for its caller. Lookups read the
//            index key, then the record; ranges seek an iterator to
//            "c/<city>/" and read each record.
//
// Durability is the same in all three (stowage's default,
// Durability::none): every commit that returned survives a process crash
// (stowage: its WAL record is written to the OS; SQLite: WAL mode with
// synchronous=NORMAL writes each transaction to the WAL file without an
// fsync; LevelDB: WriteOptions::sync=false writes each batch to its log),
// a power cut may lose the recent ones, and all three group the same number
// of puts (--batch, 1 by default: one commit per put, as users.put makes)
// into one commit. The insert time ends with each engine's call that makes
// everything durable (stowage flush(), SQLite wal_checkpoint(TRUNCATE), a
// synced empty LevelDB write).
//
// Every engine hands back what a typed caller needs: the id and a whole
// User per record. The ids the lookups and ranges return are summed per
// engine and must agree across engines (each query has one right answer).
//
//   usage: index_bench [--num=N] [--lookups=N] [--ranges=N] [--range_len=N] [--cities=N]
//                      [--batch=N] [--cache_bytes=N] [--engines=stowage,sqlite,leveldb] [--compact] [--dir=PATH] [--keep]
#include <stowage/stowage.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#ifdef STOWAGE_BENCH_HAVE_LEVELDB
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/write_batch.h>
#endif
#ifdef STOWAGE_BENCH_HAVE_SQLITE
#include <sqlite3.h>
#endif

#include "bench_util.hpp"

namespace fs = std::filesystem;
using namespace stowage_bench;

namespace {

// ---- the data ------------------------------------------------------------------

/// The record every engine stores.
struct User {
  std::string name;
  std::string email;
  std::string city;
  std::uint32_t age = 0;
  std::string bio;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar & name & email & city & age & bio;
  }
};

/// The ids are a fixed-seed permutation of [0, 2^40), plus one: distinct,
/// scattered over the key space (not in insertion order), and positive in
/// SQLite's signed INTEGER.
constexpr std::uint64_t kIdSpace = std::uint64_t{1} << 40;

/// What the workloads draw from: the i-th record's id and fields, made on
/// the fly from i (so a lookup can name the email of record j without any
/// table kept in memory).
class Dataset {
 public:
  explicit Dataset(std::uint64_t cities) : cities_(cities), ids_(kIdSpace, 0x1d5eed) {}

  std::uint64_t id_of(std::uint64_t i) const { return ids_(i) + 1; }

  /// A random-looking local part (so emails do not arrive in index order)
  /// ending with i (so each is unique), at one of eight domains.
  static std::string email_of(std::uint64_t i) {
    static constexpr const char* kDomains[] = {"example.com", "mail.test",    "post.example", "inbox.test",
                                               "corp.example", "users.test", "web.example",  "home.test"};
    std::uint64_t state = i ^ 0xe3a11;
    std::string out;
    for (int c = 0; c < 6; ++c) out.push_back(static_cast<char>('a' + uniform(state, 26)));
    out += '.';
    out += std::to_string(i);
    out += '@';
    out += kDomains[i % 8];
    return out;
  }

  /// The name of city c ("city-0042").
  static std::string city_name(std::uint64_t c) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "city-%04llu", static_cast<unsigned long long>(c));
    return buf;
  }

  /// The i-th record: about 120 bytes serialized, its bio half repetitive
  /// (compressible, as text is).
  User user_of(std::uint64_t i) const {
    std::uint64_t state = i * 0x9e3779b97f4a7c15ULL + 7;
    User u;
    u.name = "user " + std::to_string(i);
    u.email = email_of(i);
    u.city = city_name(uniform(state, cities_));
    u.age = static_cast<std::uint32_t>(18 + uniform(state, 70));
    u.bio.resize(60);
    for (std::size_t c = 0; c < 30; ++c) u.bio[c] = static_cast<char>('a' + uniform(state, 26));
    for (std::size_t c = 30; c < 60; ++c) u.bio[c] = u.bio[c - 30];
    return u;
  }

 private:
  std::uint64_t cities_;
  Permutation ids_;
};

/// One record of a put: id and value.
struct Row {
  std::uint64_t id = 0;
  User user;
};

/// Receives each record of a range query.
using Visit = std::function<void(std::uint64_t id, const User& user)>;

// ---- the engine interface ------------------------------------------------------

/// A store of users with a unique email index and a city index.
class IndexedStore {
 public:
  /// cache_bytes: the engine's memory budget (--cache_bytes); 0: its default.
  explicit IndexedStore(std::uint64_t cache_bytes) : cache_bytes_(cache_bytes) {}
  virtual ~IndexedStore() = default;
  /// Short name, as given to --engines.
  virtual std::string name() const = 0;
  /// The configuration, one line.
  virtual std::string description() const = 0;
  /// Opens (creating) the store in dir, an empty directory, with its indexes.
  virtual void open(const fs::path& dir) = 0;
  /// Puts rows (replacing any record of the same id; a taken email is an
  /// error) and their index entries as one atomic commit.
  virtual void put(std::span<const Row> rows) = 0;
  /// Makes every put so far durable.
  virtual void flush() = 0;
  /// Untimed, with --compact: the engine's full compaction, if it has one.
  virtual void compact() {}
  /// The record whose email is email: fills id and user, returns whether found.
  virtual bool find_email(const std::string& email, std::uint64_t& id, User& user) = 0;
  /// The first n records of city, in id order; returns how many there were.
  virtual std::uint64_t city_range(const std::string& city, std::uint64_t n, const Visit& visit) = 0;
  /// The engine's own counters after the reads, one line (may be empty).
  virtual std::string counters() { return {}; }
  /// Closes the store.
  virtual void close() = 0;

 protected:
  std::uint64_t cache_bytes_;
};

[[noreturn, maybe_unused]] void engine_error(const std::string& engine, const std::string& what) {
  throw std::runtime_error(engine + ": " + what);
}

// ---- stowage -----------------------------------------------------------------

class StowageStore final : public IndexedStore {
  using Users = stowage::Collection<std::uint64_t, User>;
  using ByEmail = Users::Index<std::string, true>;
  using ByCity = Users::Index<std::string, false>;

 public:
  using IndexedStore::IndexedStore;
  ~StowageStore() override { close(); }
  std::string name() const override { return "stowage"; }
  std::string description() const override {
    return "stowage::Database (Lz4Compression, LruEviction, ThreadLock), " +
           (cache_bytes_ != 0 ? "Options{.cache_bytes = " + mib(cache_bytes_) + "} (--cache_bytes)"
                              : "default Options (cache_bytes " + mib(stowage::Options{}.cache_bytes) + ")") +
           ", Durability::none; collection<uint64_t, User>(\"users\") with "
           "index(\"by_email\", &User::email, unique) and index(\"by_city\", &User::city)";
  }
  void open(const fs::path& dir) override {
    stowage::Options options;
    if (cache_bytes_ != 0) options.cache_bytes = static_cast<std::size_t>(cache_bytes_);
    db_.emplace(dir, std::move(options));
    users_ = db_->collection<std::uint64_t, User>("users");
    by_email_.emplace(users_.index("by_email", &User::email, stowage::unique));
    by_city_.emplace(users_.index("by_city", &User::city));
  }
  void put(std::span<const Row> rows) override {
    if (rows.size() == 1) {
      users_.put(rows[0].id, rows[0].user);
      return;
    }
    auto batch = users_.batch();
    for (const Row& r : rows) batch.put(r.id, r.user);
    batch.commit();
  }
  void flush() override { db_->flush(); }
  void compact() override { db_->compact(); }
  bool find_email(const std::string& email, std::uint64_t& id, User& user) override {
    std::optional<std::pair<std::uint64_t, User>> hit = by_email_->find(email);
    if (!hit) return false;
    id = hit->first;
    user = std::move(hit->second);
    return true;
  }
  std::uint64_t city_range(const std::string& city, std::uint64_t n, const Visit& visit) override {
    std::uint64_t got = 0;
    if (n == 0) return 0;
    for (const auto& [id, user] : by_city_->find(city)) {
      visit(id, user);
      if (++got == n) break;
    }
    return got;
  }
  std::string counters() override {
    const stowage::Stats s = db_->stats();  // (counts each index's entries by walking them: untimed here)
    static constexpr const char* kForms[] = {"decoded", "stored", "packed"};
    std::string out = "block_form=" + std::string(kForms[static_cast<int>(s.block_form)]) +
                      " cache_hits=" + std::to_string(s.cache_hits) + " cache_misses=" + std::to_string(s.cache_misses) +
                      " cache=" + mib(s.cache_bytes) + "/" + mib(s.cache_capacity) +
                      " chunks=" + std::to_string(s.chunks) + " files_per_level=";
    for (std::size_t l = 0; l < s.levels.size(); ++l) out += (l ? "," : "") + std::to_string(s.levels[l].files);
    out += " flushes=" + std::to_string(s.flushes) + " compactions=" + std::to_string(s.compactions) +
           " write_slowdowns=" + std::to_string(s.write_slowdowns);
    return out;
  }
  void close() override {
    by_email_.reset();
    by_city_.reset();
    users_ = Users();
    db_.reset();
  }

 private:
  std::optional<stowage::Database<>> db_;
  Users users_;
  std::optional<ByEmail> by_email_;
  std::optional<ByCity> by_city_;
};

// ---- SQLite --------------------------------------------------------------------

#ifdef STOWAGE_BENCH_HAVE_SQLITE
class SqliteStore final : public IndexedStore {
 public:
  using IndexedStore::IndexedStore;
  ~SqliteStore() override { close(); }
  std::string name() const override { return "sqlite"; }
  std::string description() const override {
    return std::string("SQLite ") + sqlite3_libversion() +
           ", journal_mode=WAL, synchronous=NORMAL, page cache " +
           (cache_bytes_ != 0 ? mib(cache_bytes_) + " (--cache_bytes)" : std::string("its default (2 MiB)")) + "; table users(id INTEGER "
           "PRIMARY KEY, name, email, city, age, bio), CREATE UNIQUE INDEX on email, CREATE INDEX on city; "
           "prepared statements; puts as UPSERTs";
  }
  void open(const fs::path& dir) override {
    fs::create_directories(dir);
    const std::string path = (dir / "users.sqlite").string();
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      engine_error("sqlite", "open " + path + ": " + msg);
    }
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    if (cache_bytes_ != 0) exec("PRAGMA cache_size=-" + std::to_string(std::max<std::uint64_t>(1, cache_bytes_ / 1024)));
    exec("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, "
         "city TEXT NOT NULL, age INTEGER NOT NULL, bio TEXT NOT NULL)");
    exec("CREATE UNIQUE INDEX users_email ON users(email)");
    exec("CREATE INDEX users_city ON users(city)");
    // users.put: replace the record of this id; a taken email fails (the
    // UNIQUE index), as stowage's ConstraintError does.
    put_ = prepare(
        "INSERT INTO users(id, name, email, city, age, bio) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT(id) DO UPDATE SET name = excluded.name, email = excluded.email, city = excluded.city, "
        "age = excluded.age, bio = excluded.bio");
    by_email_ = prepare("SELECT id, name, email, city, age, bio FROM users WHERE email = ?1");
    // The city index holds (city, rowid): it yields a city's rows in id
    // order, so neither a sort nor a table scan is needed.
    by_city_ = prepare("SELECT id, name, email, city, age, bio FROM users WHERE city = ?1 ORDER BY id LIMIT ?2");
    begin_ = prepare("BEGIN");
    commit_ = prepare("COMMIT");
  }
  void put(std::span<const Row> rows) override {
    if (rows.size() > 1) step_done(begin_, "begin");
    for (const Row& r : rows) {
      sqlite3_bind_int64(put_, 1, static_cast<sqlite3_int64>(r.id));
      bind_text(put_, 2, r.user.name);
      bind_text(put_, 3, r.user.email);
      bind_text(put_, 4, r.user.city);
      sqlite3_bind_int64(put_, 5, r.user.age);
      bind_text(put_, 6, r.user.bio);
      step_done(put_, "insert");
    }
    if (rows.size() > 1) step_done(commit_, "commit");
  }
  void flush() override {
    // synchronous=NORMAL syncs the WAL only at a checkpoint.
    if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr) != SQLITE_OK)
      fail("checkpoint");
  }
  bool find_email(const std::string& email, std::uint64_t& id, User& user) override {
    bind_text(by_email_, 1, email);
    const int rc = sqlite3_step(by_email_);
    const bool found = rc == SQLITE_ROW;
    if (found) read_row(by_email_, id, user);
    sqlite3_reset(by_email_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail("select by email");
    return found;
  }
  std::uint64_t city_range(const std::string& city, std::uint64_t n, const Visit& visit) override {
    bind_text(by_city_, 1, city);
    sqlite3_bind_int64(by_city_, 2, static_cast<sqlite3_int64>(n));
    std::uint64_t got = 0;
    std::uint64_t id = 0;
    int rc;
    while ((rc = sqlite3_step(by_city_)) == SQLITE_ROW) {
      read_row(by_city_, id, row_);
      visit(id, row_);
      ++got;
    }
    sqlite3_reset(by_city_);
    if (rc != SQLITE_DONE) fail("select by city");
    return got;
  }
  std::string counters() override {
    int cur = 0, hi = 0;
    std::string out;
    sqlite3_db_status(db_, SQLITE_DBSTATUS_CACHE_HIT, &cur, &hi, 0);
    out += "page_cache_hits=" + std::to_string(cur);
    sqlite3_db_status(db_, SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 0);
    out += " page_cache_misses=" + std::to_string(cur);
    sqlite3_db_status(db_, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0);
    return out + " page_cache_used=" + mib(static_cast<std::uint64_t>(cur));
  }
  void close() override {
    for (sqlite3_stmt** s : {&put_, &by_email_, &by_city_, &begin_, &commit_}) {
      sqlite3_finalize(*s);
      *s = nullptr;
    }
    if (db_) sqlite3_close(db_);
    db_ = nullptr;
  }

 private:
  static void read_row(sqlite3_stmt* s, std::uint64_t& id, User& u) {
    id = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
    column(s, 1, u.name);
    column(s, 2, u.email);
    column(s, 3, u.city);
    u.age = static_cast<std::uint32_t>(sqlite3_column_int64(s, 4));
    column(s, 5, u.bio);
  }
  static void column(sqlite3_stmt* s, int i, std::string& out) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
    out.assign(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
  }
  void bind_text(sqlite3_stmt* s, int i, const std::string& v) {
    if (sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC) != SQLITE_OK) fail("bind");
  }
  void step_done(sqlite3_stmt* s, const char* what) {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) fail(what);
  }
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) fail(sql);
    return s;
  }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string msg = err ? err : "?";
      sqlite3_free(err);
      engine_error("sqlite", sql + ": " + msg);
    }
  }
  [[noreturn]] void fail(const char* what) { engine_error("sqlite", std::string(what) + ": " + sqlite3_errmsg(db_)); }

  sqlite3* db_ = nullptr;
  sqlite3_stmt *put_ = nullptr, *by_email_ = nullptr, *by_city_ = nullptr, *begin_ = nullptr, *commit_ = nullptr;
  User row_;  // a range's records are read into this one User in turn
};
#endif

// ---- LevelDB -------------------------------------------------------------------

#ifdef STOWAGE_BENCH_HAVE_LEVELDB
/// An id as 8 big-endian bytes (LevelDB keys sort by them as ids sort).
std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int b = 7; b >= 0; --b, v >>= 8) out[static_cast<std::size_t>(b)] = static_cast<char>(v & 0xff);
  return out;
}
std::uint64_t from_be64(std::string_view s) {
  std::uint64_t v = 0;
  for (unsigned char c : s.substr(0, 8)) v = (v << 8) | c;
  return v;
}

class LevelDbStore final : public IndexedStore {
 public:
  using IndexedStore::IndexedStore;
  ~LevelDbStore() override { close(); }
  std::string name() const override { return "leveldb"; }
  std::string description() const override {
    return "LevelDB default Options (Snappy, 4 MiB write buffer, " +
           (cache_bytes_ != 0 ? "NewLRUCache(" + mib(cache_bytes_) + ") (--cache_bytes)" : std::string("8 MiB block cache")) +
           ", no Bloom filter), "
           "WriteOptions.sync=false; index kept by hand: r/<id> -> record, e/<email> -> id, c/<city>/<id>, "
           "one WriteBatch per commit, old record and email entry read before each put";
  }
  void open(const fs::path& dir) override {
    cache_.reset(cache_bytes_ != 0 ? leveldb::NewLRUCache(static_cast<std::size_t>(cache_bytes_)) : nullptr);
    leveldb::Options o;
    o.create_if_missing = true;
    o.block_cache = cache_.get();  // null: LevelDB makes its own of 8 MiB
    leveldb::DB* db = nullptr;
    check(leveldb::DB::Open(o, dir.string(), &db), "open");
    db_.reset(db);
  }
  void put(std::span<const Row> rows) override {
    // Single-threaded here; a program with several writers would hold a
    // mutex from the reads to the Write, or two puts could race on an email.
    leveldb::WriteBatch batch;
    std::string old, owner, bytes;
    for (const Row& r : rows) {
      const std::string id = be64(r.id);
      const std::string record_key = "r/" + id;
      // The old version's entries go (when its email or city changes).
      leveldb::Status s = db_->Get(leveldb::ReadOptions(), record_key, &old);
      std::optional<User> before;
      if (s.ok()) {
        before = stowage::BinarySerializer::deserialize<User>(old);
      } else if (!s.IsNotFound()) {
        check(s, "get record");
      }
      if (before && before->email != r.user.email) batch.Delete("e/" + before->email);
      if (before && before->city != r.user.city) batch.Delete("c/" + before->city + "/" + id);
      // The email must be free, or this record's own.
      const std::string email_key = "e/" + r.user.email;
      s = db_->Get(leveldb::ReadOptions(), email_key, &owner);
      if (s.ok() && owner != id) engine_error("leveldb", "email " + r.user.email + " belongs to another record");
      if (!s.ok() && !s.IsNotFound()) check(s, "get email");
      bytes.clear();
      stowage::BinarySerializer::serialize(r.user, bytes);
      batch.Put(record_key, bytes);
      batch.Put(email_key, id);
      batch.Put("c/" + r.user.city + "/" + id, leveldb::Slice());
    }
    check(db_->Write(leveldb::WriteOptions(), &batch), "write");
  }
  void flush() override {
    // No public memtable flush: a synced empty write makes the log durable.
    leveldb::WriteOptions w;
    w.sync = true;
    leveldb::WriteBatch empty;
    check(db_->Write(w, &empty), "sync");
  }
  void compact() override { db_->CompactRange(nullptr, nullptr); }
  bool find_email(const std::string& email, std::uint64_t& id, User& user) override {
    std::string owner, bytes;
    leveldb::Status s = db_->Get(leveldb::ReadOptions(), "e/" + email, &owner);
    if (s.IsNotFound()) return false;
    check(s, "get email");
    s = db_->Get(leveldb::ReadOptions(), "r/" + owner, &bytes);
    if (s.IsNotFound()) return false;  // a dangling entry: a writer between the two reads
    check(s, "get record");
    id = from_be64(owner);
    user = stowage::BinarySerializer::deserialize<User>(bytes);
    return true;
  }
  std::uint64_t city_range(const std::string& city, std::uint64_t n, const Visit& visit) override {
    const std::string prefix = "c/" + city + "/";
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    std::uint64_t got = 0;
    std::string bytes;
    for (it->Seek(prefix); got < n && it->Valid() && it->key().starts_with(prefix); it->Next()) {
      const std::string_view id(it->key().data() + prefix.size(), it->key().size() - prefix.size());
      leveldb::Status s = db_->Get(leveldb::ReadOptions(), "r/" + std::string(id), &bytes);
      if (s.IsNotFound()) continue;  // a dangling entry
      check(s, "get record");
      visit(from_be64(id), stowage::BinarySerializer::deserialize<User>(bytes));
      ++got;
    }
    check(it->status(), "iterate");
    return got;
  }
  std::string counters() override {
    std::string out = "files_per_level=", v;
    for (int l = 0; l < 7; ++l)
      out += (l ? "," : "") + (db_->GetProperty("leveldb.num-files-at-level" + std::to_string(l), &v) ? v : "?");
    if (db_->GetProperty("leveldb.approximate-memory-usage", &v)) out += " approximate_memory_usage=" + v;
    return out;
  }
  void close() override {
    db_.reset();
    cache_.reset();
  }

 private:
  static void check(const leveldb::Status& s, const char* what) {
    if (!s.ok()) engine_error("leveldb", std::string(what) + ": " + s.ToString());
  }
  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<leveldb::DB> db_;
};
#endif

// ---- the engine list -----------------------------------------------------------

std::unique_ptr<IndexedStore> make_store(const std::string& name, std::uint64_t cache_bytes) {
  if (name == "stowage") return std::make_unique<StowageStore>(cache_bytes);
#ifdef STOWAGE_BENCH_HAVE_SQLITE
  if (name == "sqlite") return std::make_unique<SqliteStore>(cache_bytes);
#endif
#ifdef STOWAGE_BENCH_HAVE_LEVELDB
  if (name == "leveldb") return std::make_unique<LevelDbStore>(cache_bytes);
#endif
  return nullptr;
}

/// The Debian package a peer needs (for the message when it was not built).
const char* package_of(const std::string& name) {
  if (name == "sqlite") return "libsqlite3-dev";
  if (name == "leveldb") return "libleveldb-dev";
  return nullptr;
}

// ---- flags ---------------------------------------------------------------------

struct Flags {
  std::uint64_t num = 1000000;
  std::uint64_t lookups = 200000;
  std::uint64_t ranges = 20000;
  std::uint64_t range_len = 100;
  std::uint64_t cities = 1000;
  std::uint64_t batch = 1;
  std::uint64_t cache_bytes = 0;  // 0: each engine's default
  std::vector<std::string> engines{"stowage", "sqlite", "leveldb"};
  bool compact = false;
  std::string dir;  // empty: a fresh directory under /tmp
  bool keep = false;
};

void usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: index_bench [flags]\n"
      "  --num=N          records inserted (default 1000000); K/M/G suffixes\n"
      "  --lookups=N      lookups by email (default 200000)\n"
      "  --ranges=N       range queries through the city index (default 20000)\n"
      "  --range_len=N    records per range query (default 100)\n"
      "  --cities=N       distinct cities (default 1000)\n"
      "  --batch=N        puts per commit in every engine (default 1: users.put, one SQLite\n"
      "                   autocommit transaction, one LevelDB WriteBatch per record)\n"
      "  --cache_bytes=N  every engine's cache: stowage Options::cache_bytes, SQLite PRAGMA cache_size,\n"
      "                   LevelDB NewLRUCache (default: each engine's own, 64 MiB, 2 MiB, 8 MiB)\n"
      "  --engines=LIST   comma list of stowage, sqlite, leveldb (default: all three)\n"
      "  --compact        before the reads, untimed: stowage compact(), LevelDB CompactRange\n"
      "                   (default: the reads run on the store as the inserts left it)\n"
      "  --dir=PATH       where the stores go (subdirectories index_bench-<engine>, replaced);\n"
      "                   default a fresh directory under /tmp, removed at the end\n"
      "  --keep           keep the temporary directory\n");
}

[[noreturn]] void bad_flag(const std::string& what) {
  std::fprintf(stderr, "index_bench: %s\n", what.c_str());
  usage(stderr);
  std::exit(2);
}

std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const std::size_t comma = s.find(',');
    if (comma != 0) out.emplace_back(s.substr(0, comma));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](std::string_view flag) -> std::optional<std::string_view> {
      if (arg.substr(0, flag.size()) == flag) return arg.substr(flag.size());
      return std::nullopt;
    };
    auto number = [&](std::string_view text, std::uint64_t& out, bool allow_zero) {
      if (!parse_size(text, out) || (!allow_zero && out == 0)) bad_flag("bad value in " + std::string(arg));
    };
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (auto v = value("--num=")) {
      number(*v, f.num, false);
    } else if (auto v = value("--lookups=")) {
      number(*v, f.lookups, true);
    } else if (auto v = value("--ranges=")) {
      number(*v, f.ranges, true);
    } else if (auto v = value("--range_len=")) {
      number(*v, f.range_len, false);
    } else if (auto v = value("--cities=")) {
      number(*v, f.cities, false);
    } else if (auto v = value("--batch=")) {
      number(*v, f.batch, false);
    } else if (auto v = value("--cache_bytes=")) {
      number(*v, f.cache_bytes, false);
    } else if (auto v = value("--engines=")) {
      f.engines = split_list(*v);
      if (f.engines.empty()) bad_flag("--engines is empty");
    } else if (arg == "--compact") {
      f.compact = true;
    } else if (auto v = value("--dir=")) {
      f.dir = std::string(*v);
    } else if (arg == "--keep") {
      f.keep = true;
    } else {
      bad_flag("unknown flag " + std::string(arg));
    }
  }
  return f;
}

// ---- one engine's run ----------------------------------------------------------

/// What one engine's run measured (sent from the child process to the
/// parent through a pipe, so plain data only).
struct Measured {
  double insert_seconds = 0;  ///< the puts and the final flush
  double flush_seconds = 0;   ///< the final flush alone
  double lookup_seconds = 0;
  double range_seconds = 0;
  std::uint64_t lookups_found = 0;
  std::uint64_t lookup_checksum = 0;  ///< sum of the ids the lookups returned
  std::uint64_t range_records = 0;
  std::uint64_t range_checksum = 0;  ///< sum of the ids the ranges returned
  std::uint64_t disk_bytes = 0;      ///< the store's files after the inserts and the flush
  std::uint64_t peak_rss = 0;
  char counters[480] = {};  ///< the engine's counters() after the reads
  char error[480] = {};     ///< empty: the run succeeded
};

Measured run_engine(const Flags& f, IndexedStore& store, const fs::path& dir) {
  Measured m;
  const Dataset data(f.cities);
  store.open(dir);

  // insert: --num records, --batch per commit, then a durable flush.
  {
    std::vector<Row> rows(static_cast<std::size_t>(std::min(f.batch, f.num)));
    Stopwatch w;
    for (std::uint64_t i = 0; i < f.num;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(f.batch, f.num - i));
      for (std::size_t k = 0; k < n; ++k, ++i) {
        rows[k].id = data.id_of(i);
        rows[k].user = data.user_of(i);
      }
      store.put(std::span<const Row>(rows.data(), n));
    }
    Stopwatch flush;
    store.flush();
    m.flush_seconds = flush.seconds();
    m.insert_seconds = w.seconds();
  }
  m.disk_bytes = directory_bytes(dir);
  if (f.compact) store.compact();

  // lookup: random emails of stored records -> the whole record.
  {
    std::uint64_t state = 0x100c;
    std::vector<std::uint64_t> which(static_cast<std::size_t>(f.lookups));
    for (auto& j : which) j = uniform(state, f.num);
    std::vector<std::string> emails;
    emails.reserve(which.size());
    for (auto j : which) emails.push_back(Dataset::email_of(j));
    User user;
    std::uint64_t id = 0;
    std::uint64_t wrong = 0;
    Stopwatch w;
    for (std::size_t q = 0; q < emails.size(); ++q) {
      if (!store.find_email(emails[q], id, user)) continue;
      ++m.lookups_found;
      m.lookup_checksum += id;
      if (id != data.id_of(which[q]) || user.email != emails[q]) ++wrong;
    }
    m.lookup_seconds = w.seconds();
    if (wrong != 0) throw std::runtime_error(std::to_string(wrong) + " lookups returned the wrong record");
  }

  // range: the first --range_len records of random cities, in id order.
  {
    std::uint64_t state = 0x4a17e;
    std::vector<std::string> cities;
    cities.reserve(static_cast<std::size_t>(f.ranges));
    for (std::uint64_t q = 0; q < f.ranges; ++q) cities.push_back(Dataset::city_name(uniform(state, f.cities)));
    std::uint64_t wrong = 0;
    std::uint64_t last = 0;
    const std::string* city = nullptr;
    const Visit visit = [&](std::uint64_t id, const User& u) {
      m.range_checksum += id;
      if (u.city != *city || id <= last) ++wrong;  // its city, ascending ids
      last = id;
    };
    Stopwatch w;
    for (const std::string& c : cities) {
      city = &c;
      last = 0;
      m.range_records += store.city_range(c, f.range_len, visit);
    }
    m.range_seconds = w.seconds();
    if (wrong != 0) throw std::runtime_error(std::to_string(wrong) + " range records were out of their city or order");
  }
  std::snprintf(m.counters, sizeof m.counters, "%s", store.counters().c_str());
  store.close();
  m.peak_rss = PeakRss().overall();
  return m;
}

/// Runs engine name in a child process (fork) and returns what it measured.
Measured run_in_child(const Flags& f, const std::string& name, const fs::path& dir) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    ::close(fds[0]);
    Measured m;
    try {
      std::unique_ptr<IndexedStore> store = make_store(name, f.cache_bytes);
      m = run_engine(f, *store, dir);
    } catch (const std::exception& e) {
      m = Measured{};
      std::snprintf(m.error, sizeof m.error, "%s", e.what());
    }
    const char* p = reinterpret_cast<const char*>(&m);
    std::size_t left = sizeof m;
    while (left > 0) {
      const ssize_t n = ::write(fds[1], p, left);
      if (n <= 0) ::_exit(3);
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  Measured m;
  char* p = reinterpret_cast<char*>(&m);
  std::size_t got = 0;
  while (got < sizeof m) {
    const ssize_t n = ::read(fds[0], p + got, sizeof m - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (got != sizeof m || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(name + ": the child process died (status " + std::to_string(status) + ")");
  if (m.error[0] != '\0') throw std::runtime_error(name + ": " + m.error);
  return m;
}

// ---- output --------------------------------------------------------------------

std::string rate(double per_second) {
  char buf[32];
  if (per_second >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM/s", per_second / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.1fK/s", per_second / 1e3);
  return buf;
}

std::string with_commas(std::uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return in ? a + " " + b + " " + c : std::string("?");
}

fs::path make_temp_dir() {
  std::error_code ec;
  fs::path base = fs::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string pattern = (base / "stowage_index_bench-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  return fs::path(buf.data());
}

}  // namespace

int main(int argc, char** argv) {
  const Flags f = parse_flags(argc, argv);
  std::vector<std::unique_ptr<IndexedStore>> stores;
  for (const std::string& name : f.engines) {
    auto store = make_store(name, f.cache_bytes);
    if (!store) {
      if (const char* pkg = package_of(name)) {
        std::fprintf(stderr,
                     "index_bench: this index_bench was not built with %s (%s was not found when it was configured;\n"
                     "install it, e.g. bash scripts/deps.sh %s, and re-run cmake)\n",
                     name.c_str(), pkg, pkg);
        return 2;
      }
      bad_flag("unknown engine '" + name + "'");
    }
    stores.push_back(std::move(store));
  }

  fs::path root;
  bool temporary = false;
  int status = 0;
  try {
    if (f.dir.empty()) {
      root = make_temp_dir();
      temporary = true;
    } else {
      root = f.dir;
      fs::create_directories(root);
    }
    std::printf("index_bench: %s records (ids a fixed-seed permutation of [1, 2^40]), %s distinct cities,\n"
                "  %s lookups by email, %s range queries of %s records by city; %s put%s per commit in every "
                "engine\n",
                with_commas(f.num).c_str(), with_commas(f.cities).c_str(), with_commas(f.lookups).c_str(),
                with_commas(f.ranges).c_str(), with_commas(f.range_len).c_str(), with_commas(f.batch).c_str(),
                f.batch == 1 ? "" : "s");
    for (const auto& s : stores) std::printf("  %-8s %s\n", s->name().c_str(), s->description().c_str());
    std::printf("Durability: the same in every engine: each commit that returned survives a process crash, a power\n"
                "  cut may lose the recent ones (stowage Durability::none, its default; SQLite WAL +\n"
                "  synchronous=NORMAL; LevelDB sync=false); the insert time includes a final durable flush.\n");
    std::printf("Reads: %s\n", f.compact ? "after an untimed full compaction (--compact)"
                                         : "on the store as the inserts left it (no compaction, no reopen)");
    std::printf("Directory: %s%s\nLoad average at start: %s\n", root.string().c_str(),
                temporary ? (f.keep ? " (temporary, kept)" : " (temporary, removed at the end)") : "",
                load_average().c_str());
    std::printf("------------------------------------------------\n");

    // Each engine in its own child process, in the order of --engines.
    std::vector<std::pair<std::string, Measured>> results;
    for (const auto& s : stores) {
      const std::string name = s->name();
      const fs::path dir = root / ("index_bench-" + name);
      fs::remove_all(dir);
      const Measured m = run_in_child(f, name, dir);
      results.emplace_back(name, m);
      std::printf("%-8s insert %s (flush %.0f ms), lookup %s (%s of %s found), range %s (%s records), disk %s, "
                  "peak RSS %s\n",
                  name.c_str(), rate(static_cast<double>(f.num) / m.insert_seconds).c_str(), m.flush_seconds * 1e3,
                  rate(static_cast<double>(f.lookups) / m.lookup_seconds).c_str(), with_commas(m.lookups_found).c_str(),
                  with_commas(f.lookups).c_str(), rate(static_cast<double>(f.ranges) / m.range_seconds).c_str(),
                  with_commas(m.range_records).c_str(), mib(m.disk_bytes).c_str(), mib(m.peak_rss).c_str());
      if (m.counters[0] != '\0') std::printf("         stats: %s\n", m.counters);
      std::fflush(stdout);
      if (!f.keep) fs::remove_all(dir);
    }

    // Every engine must have returned the same records.
    const auto& [first_name, first] = results.front();
    for (const auto& [name, m] : results)
      if (m.lookups_found != first.lookups_found || m.lookup_checksum != first.lookup_checksum ||
          m.range_records != first.range_records || m.range_checksum != first.range_checksum) {
        std::fprintf(stderr, "index_bench: %s returned other records than %s\n", name.c_str(), first_name.c_str());
        status = 1;
      }

    // The table: ops/s per engine, then stowage's ratio to each peer that ran.
    const Measured* stowage_run = nullptr;
    std::vector<std::pair<std::string, const Measured*>> peers;
    for (const auto& [name, m] : results) {
      if (name == "stowage")
        stowage_run = &m;
      else
        peers.emplace_back(name, &m);
    }
    if (!stowage_run) peers.clear();  // no ratios without stowage
    const bool versus_sqlite =
        std::any_of(peers.begin(), peers.end(), [](const auto& p) { return p.first == "sqlite"; });
    struct Op {
      std::string label;
      double count;                 // operations timed
      double Measured::*seconds;    // their time
      double goal;                  // stowage / SQLite wanted
    };
    const std::vector<Op> ops = {
        {"insert with 2 indexes (" + with_commas(f.num) + " records)", static_cast<double>(f.num),
         &Measured::insert_seconds, 3},
        {"lookup by email -> record (" + with_commas(f.lookups) + ")", static_cast<double>(f.lookups),
         &Measured::lookup_seconds, 3},
        {"range of " + with_commas(f.range_len) + " records by city (" + with_commas(f.ranges) + " queries)",
         static_cast<double>(f.ranges), &Measured::range_seconds, 1},
    };
    std::printf("\n| operation |");
    for (const auto& [name, m] : results) std::printf(" %s |", name.c_str());
    for (const auto& [name, m] : peers) std::printf(" stowage / %s |", name.c_str());
    if (versus_sqlite) std::printf(" goal |");
    std::printf("\n|---|");
    for (std::size_t i = 0; i < results.size() + peers.size(); ++i) std::printf("---:|");
    if (versus_sqlite) std::printf("---|");
    std::printf("\n");
    for (const Op& op : ops) {
      std::printf("| %s |", op.label.c_str());
      for (const auto& [name, m] : results) std::printf(" %s |", rate(op.count / (m.*op.seconds)).c_str());
      for (const auto& [name, m] : peers) {
        const double ratio = (m->*op.seconds) / (stowage_run->*op.seconds);  // the same count: a ratio of rates
        std::printf(" %.2fx |", ratio);
      }
      if (versus_sqlite) {
        const auto& sqlite = *std::find_if(peers.begin(), peers.end(), [](const auto& p) { return p.first == "sqlite"; });
        const double ratio = (sqlite.second->*op.seconds) / (stowage_run->*op.seconds);
        std::printf(" >= %gx: %s |", op.goal, ratio >= op.goal ? "met" : "**not met**");
      }
      std::printf("\n");
    }
    std::printf("| bytes on disk after the inserts |");
    for (const auto& [name, m] : results) std::printf(" %s |", mib(m.disk_bytes).c_str());
    for (const auto& [name, m] : peers)
      std::printf(" %.2fx |", static_cast<double>(stowage_run->disk_bytes) /
                                  static_cast<double>(std::max<std::uint64_t>(1, m->disk_bytes)));
    if (versus_sqlite) std::printf(" - |");
    std::printf("\n(ops/s: records inserted, lookups, range queries per second; each range query returns up to %s "
                "records)\n",
                with_commas(f.range_len).c_str());
    std::printf("Load average at the end: %s\n", load_average().c_str());
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "index_bench: error: %s\n", e.what());
    status = 1;
  }
  if (temporary) {
    std::error_code ec;
    if (f.keep) {
      std::fprintf(stderr, "index_bench: kept %s\n", root.string().c_str());
    } else {
      fs::remove_all(root, ec);
    }
  }
  return status;
}

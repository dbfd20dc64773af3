// fault_fs.hpp: a stowage::FileSystem for power-loss and fault-injection tests,
// and the reference model the crash, power-loss and corruption tests check
// recovered stores against.
//
// FaultFileSystem wraps the POSIX file system (stowage::default_file_system())
// and remembers, for the files of ONE directory (the store's, given to the
// constructor), what a power cut would keep:
//
//  - per file, how many bytes are durable: WritableFile::sync() makes every
//    appended byte durable, sync_flushed() only what earlier flush() calls
//    handed over (exactly the contract in include/stowage/file.hpp);
//  - which names are durable: create, rename and remove change the live name
//    table at once (and are logged), FileSystem::sync_dir(dir) copies the
//    live table to the durable one and clears the log. A file replaced by a
//    rename or removed is kept aside (in memory), so a power cut can bring it
//    back, as a real one can.
//
// simulate_power_loss(tail, seed, dirs) then rewrites the directory to what
// the disk could hold after the cut: the durable names, each pointing at the
// file it named when the directory was last synced, plus what the DirMode
// keeps of the logged operations (none; an in-order prefix, as a journaling
// file system; any subset; or a suffix, the newest persisted before older
// ones); each file truncated to its durable length, the unsynced bytes after
// it handled by the TailMode (dropped, a random prefix kept, or torn: random
// garbage, zeros, or page-granular holes). Files the FS never saw (the LOCK
// file, which FileLock creates directly) are left alone. power_loss_image()
// writes the same into another directory and leaves everything as it was,
// so one crash point can be checked under several modes.
//
// Faults: fail_at(mask, n, crash) makes the n-th later operation whose kind is
// in mask throw stowage::IoError (without doing anything). With crash = true
// every operation after it fails too (the machine is off): destroy the
// Storage (its close() fails quietly), then call simulate_power_loss() (power
// cut) or revive() (a process crash: the page cache survives, nothing is
// lost, durability stays what it was). set_hook() calls a function before
// each operation of a mask (the crash test uses it to stop a child process
// exactly there).
//
// Optional fault flavours (all off by default; the defaults above are unchanged):
//  - set_fault_errno(e): injected faults throw the IoError the POSIX layer would
//    for errno e (stowage::detail::throw_io: strerror text, plus the "disk is
//    full" hint for ENOSPC and the permissions hint for EACCES/EPERM).
//  - set_short_writes(true): a fault injected into append, flush, sync or
//    close of a file lets about half of that handle's pending bytes reach the
//    file first (a short write), and the handle then behaves as a sticky one.
//  - set_sticky_handles(true): after a fault injected into one of its calls, a
//    WritableFile refuses every later call with IoError and drops its unflushed
//    bytes, as PosixWritableFile does (file.hpp: "a failed sync is final for
//    that handle"). Without it such a handle keeps working, and
//    syncs_after_fault() counts the syncs that then succeed on it.
//
// Simplifications (documented, deliberate):
//  - create() over an existing name truncates that file in place and the
//    truncation counts as durable at once (ext4's "zero-length file" case);
//    truncate() likewise (the old tail is gone even without an fsync).
//  - Directory creation (create_dirs) is durable at once. Only the directory
//    given to the constructor is tracked, plus those track() adds (see
//    "Several directories" below); files elsewhere pass straight through.
//  - Writes are buffered by the wrapper until flush(); a crash drops that
//    buffer (as a killed process loses its user-space buffers).
//  - WritableFile::write_at (the WAL's writes into its preallocated zeros)
//    counts as an append (kOpAppend) and reaches the file at once. Bytes it
//    overwrites below the durable length are remembered (their durable
//    content): until a later sync() or sync_flushed() covers the write, a
//    power cut handles the range as the TailMode says (dropped means the old
//    bytes come back; a kept prefix is followed by the old bytes; torn). Zeros
//    written and synced are durable zeros like any other bytes.
//  - Hard links (link()) only into a tracked directory: a link into any
//    other directory is the copy FileSystem::link() makes through this FS,
//    as before (creates, appends, a sync and a close, all counted).
//  - By default the real fdatasync/fsync calls are skipped (durability is
//    simulated, so they would only cost time); set_real_sync(true) makes them.
//
// Several directories (for backups, which build `<target>.partial` and
// rename it to target): track(dir) adds a directory path. Its files are
// tracked exactly like the store directory's (durable once synced, names
// durable once the directory is synced), once a directory exists there:
// already (its files count as durable), or by create_dirs() (durable at
// once). The model keeps directories as objects: rename() of a tracked
// directory moves the object and its files to the new path, and is a
// directory operation of the parent: durable once the parent of the new path
// is synced (sync_dir), else subject to the DirMode like any other (a cut
// that loses it leaves the directory, with its durable files, at its old
// path). link(from, to) into a tracked directory (kOpLink) makes a new name
// for from's data: the same inode when from is tracked, so it is as durable
// as from's bytes (an untracked source counts as durable), and the new name
// is a directory operation like a create. simulate_power_loss() rewrites
// every tracked directory (moving it back when its rename is lost; a
// directory that held only tracked files is removed from the path it
// leaves); power_loss_image() writes only the constructor's directory, as
// before, and power_loss_image_tree() writes all of them below another root.
// A file renamed from one tracked directory into another is a remove in the
// first and a create in the second. Removing a directory outside the FS
// (std::filesystem) is not seen: its object stays, and a create_dirs() at the
// path reuses it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <stowage/database.hpp>
#include <stowage/error.hpp>
#include <stowage/file.hpp>
#include <stowage/manifest.hpp>
#include <stowage/options.hpp>
#include <stowage/store_files.hpp>
#include <stowage/wal.hpp>

namespace stowage_test {

/// The POSIX file system (stowage::default_file_system()), every call
/// forwarded: tests derive from it and override the calls they change.
class ForwardingFileSystem : public stowage::FileSystem {
 public:
  std::unique_ptr<stowage::WritableFile> create(const std::filesystem::path& p) override { return base_->create(p); }
  std::unique_ptr<stowage::WritableFile> open_append(const std::filesystem::path& p) override {
    return base_->open_append(p);
  }
  std::unique_ptr<stowage::WritableFile> open_write(const std::filesystem::path& p) override {
    return base_->open_write(p);
  }
  std::unique_ptr<stowage::RandomAccessFile> open_read(const std::filesystem::path& p) override {
    return base_->open_read(p);
  }
  void rename(const std::filesystem::path& a, const std::filesystem::path& b) override { base_->rename(a, b); }
  void remove(const std::filesystem::path& p) override { base_->remove(p); }
  void truncate(const std::filesystem::path& p, std::uint64_t n) override { base_->truncate(p, n); }
  void sync_dir(const std::filesystem::path& d) override { base_->sync_dir(d); }
  void create_dirs(const std::filesystem::path& d) override { base_->create_dirs(d); }
  std::vector<std::string> list(const std::filesystem::path& d) override { return base_->list(d); }
  bool exists(const std::filesystem::path& p) override { return base_->exists(p); }
  bool is_directory(const std::filesystem::path& p) override { return base_->is_directory(p); }
  void link(const std::filesystem::path& from, const std::filesystem::path& to) override { base_->link(from, to); }

 protected:
  std::shared_ptr<stowage::FileSystem> base_ = stowage::default_file_system();
};

/// Kinds of file-system operation, as bits (for fail_at() masks and counts).
enum FaultOp : unsigned {
  kOpCreate = 1u << 0,
  kOpOpenAppend = 1u << 1,
  kOpAppend = 1u << 2,
  kOpFlush = 1u << 3,
  kOpSync = 1u << 4,  // WritableFile::sync and sync_flushed
  kOpRename = 1u << 5,
  kOpRemove = 1u << 6,
  kOpTruncate = 1u << 7,
  kOpSyncDir = 1u << 8,
  kOpCreateDirs = 1u << 9,
  kOpClose = 1u << 10,
  kOpRead = 1u << 11,  // open_read, list, exists, is_directory
  kOpLink = 1u << 12,  // link() into a tracked directory (others are copies: creates, appends, ...)
  /// Everything that changes the disk.
  kOpMutating = kOpCreate | kOpOpenAppend | kOpAppend | kOpFlush | kOpSync | kOpRename | kOpRemove | kOpTruncate |
                kOpSyncDir | kOpCreateDirs | kOpClose | kOpLink,
  /// The operations that order data on disk: syncs and renames.
  kOpDurability = kOpSync | kOpRename | kOpSyncDir,
};

inline const char* fault_op_name(unsigned op) {
  switch (op) {
    case kOpCreate: return "create";
    case kOpOpenAppend: return "open_append";
    case kOpAppend: return "append";
    case kOpFlush: return "flush";
    case kOpSync: return "sync";
    case kOpRename: return "rename";
    case kOpRemove: return "remove";
    case kOpTruncate: return "truncate";
    case kOpSyncDir: return "sync_dir";
    case kOpCreateDirs: return "create_dirs";
    case kOpClose: return "close";
    case kOpRead: return "read";
    case kOpLink: return "link";
    default: return "?";
  }
}

/// What a power cut leaves of the bytes appended after a file's durable length.
enum class TailMode {
  drop,     ///< nothing: the file ends at its durable length
  prefix,   ///< a random prefix of them (some pages were written back)
  garbage,  ///< random bytes instead (a torn page)
  zeros,    ///< zero bytes instead (size updated, data never written)
  holes,    ///< every 4 KiB page independently kept, zeroed or garbage; full length
  mixed,    ///< per file, one of drop, prefix, garbage, zeros
};

inline const char* tail_mode_name(TailMode m) {
  switch (m) {
    case TailMode::drop: return "drop";
    case TailMode::prefix: return "prefix";
    case TailMode::garbage: return "garbage";
    case TailMode::zeros: return "zeros";
    case TailMode::holes: return "holes";
    case TailMode::mixed: return "mixed";
  }
  return "?";
}

/// What a power cut leaves of the directory operations (create, rename,
/// remove) made since the directory was last synced.
enum class DirMode {
  lose,    ///< none of them
  prefix,  ///< the first n of them, in order (a journaling file system)
  subset,  ///< any of them, each independently (no ordering at all)
  suffix,  ///< the last n of them (n >= 1), plus the creations the kept renames need:
           ///< the newest operations persisted, older ones not (reordered)
};

inline const char* dir_mode_name(DirMode m) {
  switch (m) {
    case DirMode::lose: return "lose";
    case DirMode::prefix: return "prefix";
    case DirMode::subset: return "subset";
    case DirMode::suffix: return "suffix";
  }
  return "?";
}

class FaultFileSystem final : public stowage::FileSystem, public std::enable_shared_from_this<FaultFileSystem> {
 public:
  /// Tracks the files of `root` (the store directory). Files already there
  /// count as durable.
  static std::shared_ptr<FaultFileSystem> make(const std::filesystem::path& root) {
    return std::shared_ptr<FaultFileSystem>(new FaultFileSystem(root));
  }

  /// Tracks the directory at `dir` too (see "Several directories" in the file
  /// comment): now, when one exists there (its files count as durable), and
  /// whenever create_dirs() makes one there. The path is made absolute and
  /// canonical, as backup.hpp names its directories.
  void track(const std::filesystem::path& dir) {
    std::lock_guard g(mu_);
    const auto p = canonical_dir(dir);
    track_paths_.push_back(p);
    std::error_code ec;
    if (!dir_at(p) && std::filesystem::is_directory(p, ec)) adopt_dir_locked(p);
  }

  // ---- fault control -------------------------------------------------------

  /// The n-th (1-based) operation from now whose kind is in mask throws
  /// IoError without taking effect; with crash, so does every later one.
  void fail_at(unsigned mask, std::uint64_t n, bool crash) {
    std::lock_guard g(mu_);
    arm_mask_ = mask;
    arm_left_ = n;
    arm_crash_ = crash;
  }
  /// Cancels fail_at().
  void disarm() {
    std::lock_guard g(mu_);
    arm_mask_ = 0;
  }
  /// From now on every operation fails (the power is off).
  void crash_now() {
    std::lock_guard g(mu_);
    crashed_ = true;
  }
  bool crashed() const {
    std::lock_guard g(mu_);
    return crashed_;
  }
  /// How many injected faults fired so far.
  std::uint64_t faults() const {
    std::lock_guard g(mu_);
    return faults_;
  }
  /// Which operation the last injected fault hit (for messages).
  std::string last_fault() const {
    std::lock_guard g(mu_);
    return last_fault_;
  }
  /// Operations of the kinds in mask run so far (failed ones included).
  std::uint64_t count(unsigned mask) const {
    std::lock_guard g(mu_);
    std::uint64_t n = 0;
    for (unsigned bit = 0; bit < 32; ++bit)
      if (mask & (1u << bit)) n += counts_[bit];
    return n;
  }
  /// Records every mutating operation (kind and file name) while on.
  void set_trace(bool on) {
    std::lock_guard g(mu_);
    trace_on_ = on;
    trace_.clear();
  }
  std::vector<std::string> trace() const {
    std::lock_guard g(mu_);
    return trace_;
  }
  /// Calls hook(kind, path) before every operation whose kind is in mask
  /// (outside the FS's lock, so the hook may block). Set it before use.
  void set_hook(unsigned mask, std::function<void(unsigned, const std::filesystem::path&)> hook) {
    hook_mask_ = mask;
    hook_ = std::move(hook);
  }
  /// errno injected faults report (0, the default: the plain "injected fault" message).
  void set_fault_errno(int e) {
    std::lock_guard g(mu_);
    fault_errno_ = e;
  }
  /// The errno set by set_fault_errno.
  int fault_errno() const {
    std::lock_guard g(mu_);
    return fault_errno_;
  }
  /// See the file comment (short writes).
  void set_short_writes(bool on) { short_writes_ = on; }
  bool short_writes() const { return short_writes_; }
  /// See the file comment (sticky handles).
  void set_sticky_handles(bool on) { sticky_handles_ = on; }
  bool sticky_handles() const { return sticky_handles_; }
  /// sync()/sync_flushed() calls that succeeded on a handle after a fault was
  /// injected into an earlier call on that same handle (a retried fsync).
  std::uint64_t syncs_after_fault() const { return syncs_after_fault_.load(); }
  /// The ranges (offset, length) WritableFile::write_back() was asked to
  /// start writing, in order, on any file.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> write_backs() const {
    std::lock_guard g(mu_);
    return write_backs_;
  }
  /// Whether sync(), sync_flushed() and sync_dir() also reach the disk.
  void set_real_sync(bool on) { real_sync_ = on; }
  bool real_sync() const { return real_sync_; }

  /// A process crash: the files stay exactly as the OS has them (flushed
  /// bytes kept, nothing made durable); operations work again.
  void revive() {
    std::lock_guard g(mu_);
    require_no_writers("revive");
    crashed_ = false;
    arm_mask_ = 0;
  }

  /// A power cut: rewrites the tracked directory to what the disk may hold
  /// (see the file comment). Call it with no Storage open on this FS. After
  /// it, everything on disk counts as durable and operations work again.
  void simulate_power_loss(TailMode mode, std::uint64_t seed, DirMode dirs = DirMode::lose) {
    std::lock_guard g(mu_);
    require_no_writers("simulate_power_loss");
    const auto image = survivors_locked(mode, seed, dirs);
    std::set<Name> names;
    for (const auto& [name, ino] : live_) names.insert(name);
    for (const auto& [name, ino] : durable_) names.insert(name);
    for (const auto& name : names) {
      if (!dirs_[name.first].live) continue;
      std::error_code ec;
      std::filesystem::remove(path_of(name), ec);
    }
    for (std::size_t id = 1; id < dirs_.size(); ++id) {
      std::error_code ec;
      if (dirs_[id].live) std::filesystem::remove(*dirs_[id].live, ec);  // only when empty now
      dirs_[id].live.reset();
      dirs_[id].durable.reset();
    }
    live_.clear();
    durable_.clear();
    inodes_.clear();
    dirlog_.clear();
    for (const auto& [id, img] : image) {
      if (id != 0) {
        std::filesystem::create_directories(img.at);
        dirs_[id].live = dirs_[id].durable = img.at;
      }
      for (const auto& [name, content] : img.files) {
        write_file(img.at / name, content);
        auto ino = next_inode_++;
        inodes_[ino].durable = content.size();
        live_[Name{id, name}] = ino;
        durable_[Name{id, name}] = ino;
      }
    }
    crashed_ = false;
    arm_mask_ = 0;
    ++power_losses_;
  }

  /// What simulate_power_loss(mode, seed, dirs) would leave, written into
  /// `target` (created or emptied) instead; this FS and its directory stay as
  /// they are, so one crash point can yield several images.
  void power_loss_image(const std::filesystem::path& target, TailMode mode, std::uint64_t seed,
                        DirMode dirs = DirMode::lose) {
    std::lock_guard g(mu_);
    require_no_writers("power_loss_image");
    const auto image = survivors_locked(mode, seed, dirs);
    std::filesystem::remove_all(target);
    std::filesystem::create_directories(target);
    for (const auto& [name, content] : image.at(0).files) write_file(target / name, content);
  }

  /// As power_loss_image(), for every tracked directory: each one a cut
  /// leaves at path P (which must lie below `base`) is written to
  /// target / P.lexically_relative(base); target is created or emptied.
  void power_loss_image_tree(const std::filesystem::path& base, const std::filesystem::path& target, TailMode mode,
                             std::uint64_t seed, DirMode dirs = DirMode::lose) {
    std::lock_guard g(mu_);
    require_no_writers("power_loss_image_tree");
    const auto image = survivors_locked(mode, seed, dirs);
    std::filesystem::remove_all(target);
    std::filesystem::create_directories(target);
    for (const auto& [id, img] : image) {
      const auto rel = img.at.lexically_relative(base);
      if (rel.empty() || *rel.begin() == "..")
        throw std::logic_error("FaultFileSystem::power_loss_image_tree: " + img.at.string() + " is not below " +
                               base.string());
      const auto out = target / rel;
      std::filesystem::create_directories(out);
      for (const auto& [name, content] : img.files) write_file(out / name, content);
    }
  }

  /// Names the last simulate_power_loss() took from unsynced directory
  /// operations (for messages and coverage counts).
  std::size_t kept_dir_ops() const {
    std::lock_guard g(mu_);
    return kept_dir_ops_;
  }

  /// Bytes of `name` (in the tracked directory) that would survive a power
  /// cut now, and whether the name itself would.
  std::uint64_t durable_bytes(const std::string& name) const {
    std::lock_guard g(mu_);
    auto it = durable_.find(Name{0, name});
    if (it == durable_.end()) return 0;
    return inodes_.at(it->second).durable;
  }
  bool name_durable(const std::string& name) const {
    std::lock_guard g(mu_);
    return durable_.count(Name{0, name}) != 0;
  }

  // ---- stowage::FileSystem -----------------------------------------------

  std::unique_ptr<stowage::WritableFile> create(const std::filesystem::path& p) override {
    gate(kOpCreate, p);
    auto inner = base_->create(p);
    std::optional<std::uint64_t> ino;
    {
      std::lock_guard g(mu_);
      if (auto name = tracked(p)) {
        auto it = live_.find(*name);
        if (it != live_.end()) {
          ino = it->second;
          inodes_[*ino].durable = 0;  // O_TRUNC; see the file comment
          inodes_[*ino].stash.reset();
          inodes_[*ino].dirty.clear();
        } else {
          ino = next_inode_++;
          inodes_[*ino];
          live_[*name] = *ino;
          dirlog_.push_back(DirOp::file(DirOp::create, *name, {}, *ino));
        }
      }
      ++writers_;
    }
    return std::make_unique<Writable>(shared_from_this(), std::move(inner), p, ino, 0);
  }

  std::unique_ptr<stowage::WritableFile> open_append(const std::filesystem::path& p) override {
    gate(kOpOpenAppend, p);
    return wrap_existing(p, base_->open_append(p));
  }

  std::unique_ptr<stowage::WritableFile> open_write(const std::filesystem::path& p) override {
    gate(kOpOpenAppend, p);
    return wrap_existing(p, base_->open_write(p));
  }

  // Tracks an existing file opened for writing (a file made behind our back
  // is adopted as durable).
  std::unique_ptr<stowage::WritableFile> wrap_existing(const std::filesystem::path& p,
                                                       std::unique_ptr<stowage::WritableFile> inner) {
    const std::uint64_t size = inner->size();
    std::optional<std::uint64_t> ino;
    {
      std::lock_guard g(mu_);
      if (auto name = tracked(p)) {
        auto it = live_.find(*name);
        if (it == live_.end()) {  // made behind our back: adopt as durable
          ino = next_inode_++;
          inodes_[*ino].durable = size;
          live_[*name] = *ino;
          durable_[*name] = *ino;
        } else {
          ino = it->second;
        }
      }
      ++writers_;
    }
    return std::make_unique<Writable>(shared_from_this(), std::move(inner), p, ino, size);
  }

  std::unique_ptr<stowage::RandomAccessFile> open_read(const std::filesystem::path& p) override {
    gate(kOpRead, p);
    return base_->open_read(p);
  }

  void rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    gate(kOpRename, from);
    std::lock_guard g(mu_);
    if (const auto moved = dir_at(from)) {  // a tracked directory, whole
      base_->rename(from, to);
      const auto dest = canonical_dir(to);
      if (const auto displaced = dir_at(dest)) dirs_[*displaced].live.reset();  // an empty directory replaced
      dirlog_.push_back(DirOp::dir_move(*moved, *dirs_[*moved].live, dest));
      dirs_[*moved].live = dest;
      collect_locked();
      return;
    }
    auto fname = tracked(from), tname = tracked(to);
    if (tname) {
      auto t = live_.find(*tname);
      if (t != live_.end()) stash_locked(t->second, path_of(*tname));
    }
    base_->rename(from, to);
    std::optional<std::uint64_t> ino;
    if (fname) {
      auto f = live_.find(*fname);
      if (f != live_.end()) {
        ino = f->second;
        live_.erase(f);
      }
    }
    if (tname) {
      if (!ino) {  // untracked source: adopt, not durable
        ino = next_inode_++;
        inodes_[*ino];
        dirlog_.push_back(DirOp::file(DirOp::create, *tname, {}, *ino));
      } else if (fname && fname->first == tname->first) {
        dirlog_.push_back(DirOp::file(DirOp::rename, *fname, *tname, *ino));
      } else if (fname) {  // from one tracked directory into another
        dirlog_.push_back(DirOp::file(DirOp::remove, *fname, {}, *ino));
        dirlog_.push_back(DirOp::file(DirOp::create, *tname, {}, *ino));
      }
      live_[*tname] = *ino;
    } else if (fname && ino) {
      dirlog_.push_back(DirOp::file(DirOp::remove, *fname, {}, *ino));
    }
    collect_locked();
  }

  void remove(const std::filesystem::path& p) override {
    gate(kOpRemove, p);
    std::lock_guard g(mu_);
    auto name = tracked(p);
    std::optional<std::uint64_t> ino;
    if (name) {
      auto it = live_.find(*name);
      if (it != live_.end()) {
        ino = it->second;
        stash_locked(*ino, p);
      }
    }
    base_->remove(p);
    if (ino) {
      live_.erase(*name);
      dirlog_.push_back(DirOp::file(DirOp::remove, *name, {}, *ino));
    }
    collect_locked();
  }

  void truncate(const std::filesystem::path& p, std::uint64_t size) override {
    gate(kOpTruncate, p);
    std::lock_guard g(mu_);
    base_->truncate(p, size);
    if (auto name = tracked(p)) {
      auto it = live_.find(*name);
      if (it != live_.end()) {
        auto& in = inodes_[it->second];
        in.durable = std::min(in.durable, size);
        for (auto d = in.dirty.begin(); d != in.dirty.end();) {
          if (d->first >= size) {
            d = in.dirty.erase(d);
            continue;
          }
          if (d->first + d->second.old.size() > size) d->second.old.resize(static_cast<std::size_t>(size - d->first));
          ++d;
        }
      }
    }
  }

  void sync_dir(const std::filesystem::path& dir) override {
    gate(kOpSyncDir, dir);
    if (real_sync_) base_->sync_dir(dir);
    std::lock_guard g(mu_);
    bool changed = false;
    const auto id = dir_at(dir);
    if (id) {
      for (auto it = durable_.begin(); it != durable_.end();)
        it = it->first.first == *id ? durable_.erase(it) : std::next(it);
      for (const auto& [name, ino] : live_)
        if (name.first == *id) durable_[name] = ino;
      changed = true;
    }
    for (auto it = dirlog_.begin(); it != dirlog_.end();) {
      bool durable = false;
      if (it->kind == DirOp::move_dir) {
        durable = same_dir(it->to_path.parent_path(), dir);
        if (durable) {
          for (auto& d : dirs_)
            if (d.durable && *d.durable == it->to_path) d.durable.reset();  // replaced
          dirs_[it->dir].durable = it->to_path;
        }
      } else {
        durable = id && it->name.first == *id;
      }
      changed = changed || durable;
      it = durable ? dirlog_.erase(it) : std::next(it);
    }
    if (changed) collect_locked();
  }

  void create_dirs(const std::filesystem::path& dir) override {
    gate(kOpCreateDirs, dir);
    base_->create_dirs(dir);
    std::lock_guard g(mu_);
    if (track_paths_.empty()) return;
    const auto p = canonical_dir(dir);
    if (dir_at(p)) return;
    for (const auto& t : track_paths_)
      if (t == p) {
        dirs_.push_back(Dir{p, p});  // durable at once (see the file comment)
        return;
      }
  }

  /// Into a tracked directory: a hard link (see the file comment). Elsewhere
  /// the copy FileSystem::link() makes through this FS.
  void link(const std::filesystem::path& from, const std::filesystem::path& to) override {
    bool into_tracked = false;
    {
      std::lock_guard g(mu_);
      into_tracked = tracked(to).has_value();
    }
    if (!into_tracked) {  // not under the lock: the copy runs through this FS's operations
      stowage::FileSystem::link(from, to);
      return;
    }
    gate(kOpLink, to);
    {
      std::lock_guard g(mu_);
      const auto tname = tracked(to);
      base_->link(from, to);
      if (!tname) return;
      std::optional<std::uint64_t> ino;
      if (const auto fname = tracked(from)) {
        auto f = live_.find(*fname);
        if (f != live_.end()) ino = f->second;
      }
      if (!ino) {  // an untracked source: its bytes count as durable
        ino = next_inode_++;
        inodes_[*ino].durable = std::filesystem::file_size(to);
      }
      live_[*tname] = *ino;
      dirlog_.push_back(DirOp::file(DirOp::create, *tname, {}, *ino));
      collect_locked();
    }
  }
  std::vector<std::string> list(const std::filesystem::path& dir) override {
    gate(kOpRead, dir);
    return base_->list(dir);
  }
  bool exists(const std::filesystem::path& p) override {
    gate(kOpRead, p);
    return base_->exists(p);
  }
  bool is_directory(const std::filesystem::path& p) override {
    gate(kOpRead, p);
    return base_->is_directory(p);
  }

 private:
  // A file: (directory id, name in it).
  using Name = std::pair<std::size_t, std::string>;
  // The durable content of a range overwritten in place (write_at) since the
  // last sync that covered the write numbered `gen`.
  struct Dirty {
    std::string old;
    std::uint64_t gen = 0;
  };
  struct Inode {
    std::uint64_t durable = 0;          // bytes that survive a power cut
    std::optional<std::string> stash;   // content, once no live name holds it
    std::map<std::uint64_t, Dirty> dirty;  // offset -> unsynced overwrite below `durable` (disjoint)
  };

  // Appends are buffered here until flush(); flush() hands them to the POSIX
  // file and flushes it, so the inner buffer is always empty between calls.
  class Writable final : public stowage::WritableFile {
   public:
    Writable(std::shared_ptr<FaultFileSystem> fs, std::unique_ptr<stowage::WritableFile> inner,
             std::filesystem::path path, std::optional<std::uint64_t> ino, std::uint64_t size)
        : fs_(std::move(fs)), inner_(std::move(inner)), path_(std::move(path)), ino_(ino), size_(size), flushed_(size) {}
    ~Writable() override {
      if (open_ && !fs_->crashed() && !dead_) {
        try {
          push();
        } catch (...) {
        }
      }
      fs_->writer_gone();
    }
    void append(std::string_view data) override {
      check(kOpAppend, data);
      buf_.append(data);
      size_ += data.size();
    }
    void flush() override {
      check(kOpFlush);
      push();
    }
    // A sync counts as "after a fault" only when the fault came before the
    // sync was issued: one that another thread's failing write overtakes
    // (group commit, the background WAL sync) was issued before the engine
    // could know, and covers only what was written before that write.
    void sync() override {
      const bool after_fault = failed_.load();
      check(kOpSync);
      if (after_fault) ++fs_->syncs_after_fault_;
      push();
      const std::uint64_t gen = fs_->write_gen();
      if (fs_->real_sync()) inner_->sync();
      fs_->made_durable(ino_, size_, gen);
    }
    void sync_flushed() override {
      const bool after_fault = failed_.load();  // see sync()
      check(kOpSync);
      if (after_fault) ++fs_->syncs_after_fault_;
      const std::uint64_t gen = fs_->write_gen();
      const std::uint64_t n = flushed_.load();
      if (fs_->real_sync()) inner_->sync_flushed();
      fs_->made_durable(ino_, n, gen);
    }
    void close() override {
      if (!open_) return;
      check(kOpClose);
      push();
      inner_->close();
      open_ = false;
    }
    std::uint64_t size() const override { return size_; }
    // A hint: recorded, passed on, and nothing made durable.
    void write_back(std::uint64_t offset, std::uint64_t length) override {
      {
        std::lock_guard g(fs_->mu_);
        fs_->write_backs_.emplace_back(offset, length);
      }
      inner_->write_back(offset, length);
    }
    bool write_at(std::uint64_t offset, std::string_view data) override {
      if (data.empty()) return !dead_ && inner_->write_at(offset, data);
      if (!buf_.empty()) flush();
      check(kOpAppend, data, offset);
      if (!fs_->write_in_place(ino_, *inner_, offset, data)) return false;
      size_ = std::max<std::uint64_t>(size_, offset + data.size());
      flushed_ = size_;  // nothing is buffered
      return true;
    }

   private:
    // fs_->gate(op), plus the optional flavours (see the file comment) when a
    // fault is injected into this call. `data`: what append() or write_at()
    // (then `at` is its offset) was handed.
    void check(unsigned op, std::string_view data = {}, std::optional<std::uint64_t> at = std::nullopt) {
      if (dead_) {
        // As a real device that failed a call with errno e fails the next
        // ones the same way (a write racing the background failure of its
        // handle then reports the disk full, as the first did).
        if (const int e = fs_->fault_errno(); e != 0)
          stowage::detail::throw_io("stowage-test: an earlier injected fault left this handle unusable:", path_, e);
        throw stowage::IoError("stowage-test: " + path_.string() +
                               " had an earlier injected fault; this handle is not usable any more");
      }
      const std::uint64_t before = fs_->faults();
      try {
        fs_->gate(op, path_);
      } catch (const stowage::IoError&) {
        if (fs_->faults() != before) {  // injected here (not "the power is off")
          failed_ = true;
          if (fs_->short_writes() && at) {
            try {
              fs_->write_in_place(ino_, *inner_, *at, data.substr(0, data.size() / 2));
            } catch (...) {
            }
            dead_ = true;
          } else if (fs_->short_writes()) {
            std::string pending = buf_;
            pending.append(data);
            pending.resize(pending.size() / 2);
            buf_.clear();
            try {
              inner_->append(pending);
              inner_->flush();
            } catch (...) {
            }
            dead_ = true;
          } else if (fs_->sticky_handles()) {
            buf_.clear();
            dead_ = true;
          }
        }
        throw;
      }
    }
    void push() {
      if (!buf_.empty()) {
        inner_->append(buf_);
        buf_.clear();
      }
      inner_->flush();
      flushed_ = size_;
    }
    std::shared_ptr<FaultFileSystem> fs_;
    std::unique_ptr<stowage::WritableFile> inner_;
    std::filesystem::path path_;
    std::optional<std::uint64_t> ino_;
    std::string buf_;
    std::uint64_t size_;
    std::atomic<std::uint64_t> flushed_;
    bool open_ = true;
    std::atomic<bool> failed_{false};  // a fault was injected into a call on this handle
    bool dead_ = false;    // ...and the handle is sticky (refuses later calls)
  };

  explicit FaultFileSystem(const std::filesystem::path& root)
      : base_(stowage::default_file_system()), root_(root.lexically_normal()) {
    if (!root_.has_filename()) root_ = root_.parent_path();  // "dir/" -> "dir"
    std::error_code ec;
    if (std::filesystem::is_directory(root_, ec)) {
      adopt_dir_locked(root_);
    } else {
      dirs_.push_back(Dir{root_, root_});
    }
  }

  // A directory object for the existing directory at p, its regular files
  // adopted as durable.
  void adopt_dir_locked(const std::filesystem::path& p) {
    const std::size_t id = dirs_.size();
    dirs_.push_back(Dir{p, p});
    for (const auto& e : std::filesystem::directory_iterator(p)) {
      if (!e.is_regular_file()) continue;
      auto ino = next_inode_++;
      inodes_[ino].durable = e.file_size();
      live_[Name{id, e.path().filename().string()}] = ino;
      durable_[Name{id, e.path().filename().string()}] = ino;
    }
  }
  static std::filesystem::path canonical_dir(const std::filesystem::path& dir) {
    std::error_code ec;
    auto p = std::filesystem::weakly_canonical(std::filesystem::absolute(dir), ec);
    if (ec) p = std::filesystem::absolute(dir).lexically_normal();
    if (!p.has_filename()) p = p.parent_path();
    return p;
  }
  // The directory object now at d, if any.
  std::optional<std::size_t> dir_at(const std::filesystem::path& d) const {
    for (std::size_t i = 0; i < dirs_.size(); ++i)
      if (dirs_[i].live && same_dir(*dirs_[i].live, d)) return i;
    return std::nullopt;
  }
  // Where a live name is now (its directory must have a live path).
  std::filesystem::path path_of(const Name& n) const { return *dirs_[n.first].live / n.second; }

  static bool same_dir(const std::filesystem::path& a, const std::filesystem::path& b) {
    auto na = a.lexically_normal(), nb = b.lexically_normal();
    if (!na.has_filename()) na = na.parent_path();
    if (!nb.has_filename()) nb = nb.parent_path();
    return na == nb;
  }
  std::optional<Name> tracked(const std::filesystem::path& p) const {
    if (!p.has_filename()) return std::nullopt;
    const auto id = dir_at(p.parent_path());
    if (!id) return std::nullopt;
    return Name{*id, p.filename().string()};
  }

  void gate(unsigned op, const std::filesystem::path& p) {
    if ((hook_mask_ & op) && hook_) hook_(op, p);
    std::lock_guard g(mu_);
    for (unsigned bit = 0; bit < 32; ++bit)
      if (op == (1u << bit)) ++counts_[bit];
    if (crashed_)
      throw stowage::IoError("stowage-test: " + std::string(fault_op_name(op)) + " " + p.string() +
                             " failed: simulated power loss (the machine is off)");
    if (trace_on_ && (op & kOpMutating)) trace_.push_back(std::string(fault_op_name(op)) + " " + p.filename().string());
    if (arm_mask_ & op) {
      if (--arm_left_ == 0) {
        arm_mask_ = 0;
        ++faults_;
        if (arm_crash_) crashed_ = true;
        last_fault_ = std::string(fault_op_name(op)) + " " + p.filename().string();
        if (fault_errno_ != 0)
          stowage::detail::throw_io(std::string("stowage-test: injected fault: ") + fault_op_name(op) +
                                        (arm_crash_ ? " (and the power went off)" : "") + " on",
                                    p, fault_errno_);
        throw stowage::IoError("stowage-test: injected fault: " + std::string(fault_op_name(op)) + " " + p.string() +
                               " failed" + (arm_crash_ ? " (and the power went off)" : ""));
      }
    }
  }

  // A sync made the first n bytes durable, and every in-place write up to
  // number gen (write_gen() when it began).
  void made_durable(std::optional<std::uint64_t> ino, std::uint64_t n, std::uint64_t gen) {
    if (!ino) return;
    std::lock_guard g(mu_);
    auto it = inodes_.find(*ino);
    if (it == inodes_.end()) return;
    it->second.durable = std::max(it->second.durable, n);
    auto& dirty = it->second.dirty;
    for (auto d = dirty.begin(); d != dirty.end();) d = d->second.gen <= gen ? dirty.erase(d) : std::next(d);
  }
  std::uint64_t write_gen() const {
    std::lock_guard g(mu_);
    return write_gen_;
  }
  // write_at() of a Writable: remembers the durable bytes it overwrites, then
  // writes (under the lock, so a sync that began after it covers it).
  bool write_in_place(std::optional<std::uint64_t> ino, stowage::WritableFile& inner, std::uint64_t offset,
                      std::string_view data) {
    std::lock_guard g(mu_);
    const std::uint64_t gen = ++write_gen_;
    if (ino) {
      auto in = inodes_.find(*ino);
      std::optional<Name> name;
      for (const auto& [n, i] : live_)
        if (i == *ino) name = n;
      if (in != inodes_.end() && name) note_overwrite_locked(in->second, path_of(*name), offset, offset + data.size(), gen);
    }
    return inner.write_at(offset, data);
  }
  // Saves the durable content of [a, b) below the durable length that no
  // earlier unsynced write saved yet; marks the range as written by `gen`.
  static void note_overwrite_locked(Inode& in, const std::filesystem::path& p, std::uint64_t a, std::uint64_t b,
                                    std::uint64_t gen) {
    b = std::min(b, in.durable);
    if (a >= b) return;
    auto it = in.dirty.upper_bound(a);
    if (it != in.dirty.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second.old.size() > a) it = prev;
    }
    std::uint64_t pos = a;
    while (pos < b) {
      if (it != in.dirty.end() && it->first <= pos) {
        it->second.gen = gen;
        pos = std::max<std::uint64_t>(pos, it->first + std::max<std::uint64_t>(it->second.old.size(), 1));
        ++it;
        continue;
      }
      const std::uint64_t next = it != in.dirty.end() ? std::min(b, it->first) : b;
      std::string old(static_cast<std::size_t>(next - pos), '\0');
      std::ifstream f(p, std::ios::binary);
      f.seekg(static_cast<std::streamoff>(pos));
      f.read(old.data(), static_cast<std::streamsize>(old.size()));
      old.resize(f ? old.size() : static_cast<std::size_t>(std::max<std::streamsize>(f.gcount(), 0)));
      if (!old.empty()) in.dirty.emplace(pos, Dirty{std::move(old), gen});
      pos = next;
    }
  }
  void writer_gone() {
    std::lock_guard g(mu_);
    --writers_;
  }
  void require_no_writers(const char* what) const {
    if (writers_ != 0)
      throw std::logic_error(std::string("FaultFileSystem::") + what + " with " + std::to_string(writers_) +
                             " file(s) still open for writing: destroy the Storage first");
  }

  // What a power cut leaves of one tracked directory: where it is, and its
  // files (name -> bytes).
  struct DirImage {
    std::filesystem::path at;
    std::map<std::string, std::string> files;
  };
  // What a power cut leaves (directory id -> image; the constructor's
  // directory, id 0, always); see simulate_power_loss.
  std::map<std::size_t, DirImage> survivors_locked(TailMode mode, std::uint64_t seed, DirMode dirs) {
    std::mt19937_64 rng(seed);
    // The names the disk holds: the synced table, plus what `dirs` keeps of
    // the operations since; likewise where the directories are.
    std::map<Name, std::uint64_t> table = durable_;
    std::map<std::size_t, std::filesystem::path> where;
    for (std::size_t id = 0; id < dirs_.size(); ++id)
      if (dirs_[id].durable) where[id] = *dirs_[id].durable;
    const std::size_t n_ops = dirlog_.size();
    std::size_t kept_moves = 0;
    std::vector<bool> keep(n_ops, false);
    if (dirs == DirMode::prefix) {
      const auto n = static_cast<std::size_t>(rng() % (n_ops + 1));
      for (std::size_t i = 0; i < n; ++i) keep[i] = true;
    } else if (dirs == DirMode::subset) {
      for (std::size_t i = 0; i < n_ops; ++i) keep[i] = rng() % 2 == 0;
    } else if (dirs == DirMode::suffix && n_ops > 0) {
      // Half the time only the newest operation: the most reordered case.
      const auto from = rng() % 2 ? n_ops - 1 : static_cast<std::size_t>(rng() % n_ops);
      for (std::size_t i = from; i < n_ops; ++i) {
        keep[i] = true;
        if (dirlog_[i].kind != DirOp::rename) continue;
        for (std::size_t j = i; j-- > 0;)  // the creation of the renamed file
          if (dirlog_[j].kind == DirOp::create && dirlog_[j].ino == dirlog_[i].ino) {
            keep[j] = true;
            break;
          }
      }
    }
    for (std::size_t i = 0; i < n_ops; ++i) {
      if (!keep[i]) continue;
      const DirOp& op = dirlog_[i];
      switch (op.kind) {
        case DirOp::create: table[op.name] = op.ino; break;
        case DirOp::remove: table.erase(op.name); break;
        case DirOp::rename: {
          auto it = table.find(op.name);
          if (it == table.end() || it->second != op.ino) break;  // its creation was not kept
          table.erase(it);
          table[op.to] = op.ino;
          break;
        }
        case DirOp::move_dir: {
          auto it = where.find(op.dir);
          if (it == where.end() || it->second != op.from_path) break;  // an earlier move was not kept
          for (auto w = where.begin(); w != where.end();)  // an empty directory it replaced
            w = w->first != op.dir && w->second == op.to_path ? where.erase(w) : std::next(w);
          where[op.dir] = op.to_path;
          ++kept_moves;
          break;
        }
      }
    }
    kept_dir_ops_ = kept_moves;
    for (const auto& [name, ino] : table) kept_dir_ops_ += durable_.count(name) && durable_.at(name) == ino ? 0 : 1;
    std::map<std::size_t, DirImage> survivors;
    for (const auto& [id, at] : where) survivors[id].at = at;
    survivors[0].at = root_;
    for (const auto& [name, ino] : table) {
      std::string content = content_locked(ino);
      const std::uint64_t keep = std::min<std::uint64_t>(inodes_[ino].durable, content.size());
      // Unsynced overwrites below the durable length: torn like a tail, the
      // old bytes where nothing new survives.
      for (const auto& [start, d] : inodes_[ino].dirty) {
        if (start >= keep) continue;
        const auto at = static_cast<std::size_t>(start);
        const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(d.old.size(), keep - start));
        std::string torn = torn_tail(content.substr(at, len), start, mode, rng);
        if (torn.size() > len) torn.resize(len);
        content.replace(at, torn.size(), torn);
        content.replace(at + torn.size(), len - torn.size(), d.old, torn.size(), len - torn.size());
      }
      std::string lost = content.substr(static_cast<std::size_t>(keep));
      content.resize(static_cast<std::size_t>(keep));
      content += torn_tail(lost, keep, mode, rng);
      if (where.count(name.first)) survivors[name.first].files[name.second] = std::move(content);
    }
    return survivors;
  }

  // Keeps the content of `ino` in memory when its live name is about to go:
  // a power cut may bring the name back.
  void stash_locked(std::uint64_t ino, const std::filesystem::path& p) { inodes_[ino].stash = read_file(p); }
  // Forgets inodes neither table nor the unsynced operations name.
  void collect_locked() {
    std::set<std::uint64_t> used;
    for (const auto& [n, i] : live_) used.insert(i);
    for (const auto& [n, i] : durable_) used.insert(i);
    for (const auto& op : dirlog_) used.insert(op.ino);
    for (auto it = inodes_.begin(); it != inodes_.end();)
      it = used.count(it->first) ? std::next(it) : inodes_.erase(it);
  }
  std::string content_locked(std::uint64_t ino) {
    for (const auto& [n, i] : live_)
      if (i == ino && dirs_[n.first].live) return read_file(path_of(n));
    auto& in = inodes_[ino];
    return in.stash ? *in.stash : std::string();
  }

  static std::string torn_tail(const std::string& lost, std::uint64_t file_offset, TailMode mode,
                               std::mt19937_64& rng) {
    if (lost.empty()) return {};
    auto below = [&](std::uint64_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
    if (mode == TailMode::mixed) {
      static constexpr TailMode kinds[] = {TailMode::drop, TailMode::prefix, TailMode::garbage, TailMode::zeros};
      mode = kinds[rng() % 4];
    }
    switch (mode) {
      case TailMode::drop:
        return {};
      case TailMode::prefix:
        return lost.substr(0, below(lost.size() + 1));
      case TailMode::garbage: {
        std::string g(1 + below(lost.size()), '\0');
        for (auto& c : g) c = static_cast<char>(rng());
        return g;
      }
      case TailMode::zeros:
        return std::string(1 + below(lost.size()), '\0');
      case TailMode::holes: {
        std::string out = lost;
        constexpr std::uint64_t kPage = 4096;
        std::uint64_t pos = 0;
        while (pos < out.size()) {
          const std::uint64_t page_end = ((file_offset + pos) / kPage + 1) * kPage - file_offset;
          const std::uint64_t end = std::min<std::uint64_t>(page_end, out.size());
          switch (rng() % 3) {
            case 0: break;  // written back
            case 1:
              for (auto i = pos; i < end; ++i) out[static_cast<std::size_t>(i)] = 0;
              break;
            default:
              for (auto i = pos; i < end; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>(rng());
          }
          pos = end;
        }
        return out;
      }
      case TailMode::mixed:
        break;
    }
    return {};
  }

  static std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void write_file(const std::filesystem::path& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) throw std::runtime_error("FaultFileSystem: cannot write " + p.string());
  }

  std::shared_ptr<stowage::FileSystem> base_;
  std::filesystem::path root_;
  std::atomic<bool> real_sync_{false};
  std::atomic<bool> short_writes_{false};
  std::atomic<bool> sticky_handles_{false};
  std::atomic<std::uint64_t> syncs_after_fault_{0};
  int fault_errno_ = 0;  // mu_
  unsigned hook_mask_ = 0;
  std::function<void(unsigned, const std::filesystem::path&)> hook_;

  mutable std::mutex mu_;
  // A tracked directory: where it is now, and where a power cut leaves it
  // (unset: nowhere, as one a rename replaced).
  struct Dir {
    std::optional<std::filesystem::path> live, durable;
  };
  std::vector<Dir> dirs_;  // [0]: the constructor's (its path never changes)
  std::vector<std::filesystem::path> track_paths_;  // track()'s, canonical
  std::map<Name, std::uint64_t> live_, durable_;  // (directory, file name) -> inode
  std::map<std::uint64_t, Inode> inodes_;
  struct DirOp {
    enum Kind { create, rename, remove, move_dir } kind;
    Name name, to;  // rename: name -> to (one directory)
    std::uint64_t ino;
    std::size_t dir;  // move_dir: the directory moved from from_path to to_path (in to_path's parent)
    std::filesystem::path from_path, to_path;
    static DirOp file(Kind k, Name name, Name to, std::uint64_t ino) {
      return DirOp{k, std::move(name), std::move(to), ino, 0, {}, {}};
    }
    static DirOp dir_move(std::size_t dir, std::filesystem::path from, std::filesystem::path to) {
      return DirOp{move_dir, {}, {}, 0, dir, std::move(from), std::move(to)};
    }
  };
  std::vector<DirOp> dirlog_;  // directory operations since the last sync_dir
  std::size_t kept_dir_ops_ = 0;
  std::uint64_t next_inode_ = 1;
  std::uint64_t write_gen_ = 0;  // in-place writes so far
  std::int64_t writers_ = 0;
  std::uint64_t counts_[32] = {};
  unsigned arm_mask_ = 0;
  std::uint64_t arm_left_ = 0;
  bool arm_crash_ = false;
  bool crashed_ = false;
  std::uint64_t faults_ = 0;
  std::uint64_t power_losses_ = 0;
  std::string last_fault_;
  bool trace_on_ = false;
  std::vector<std::string> trace_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> write_backs_;
};

// ---- the reference model --------------------------------------------------

/// One acknowledged (or attempted) write: a put, an erase or an atomic batch.
struct ModelOp {
  enum Kind { put, erase, batch } kind = put;
  int key = 0;                                      // put, erase
  std::string value;                                // put
  std::vector<std::pair<int, std::string>> pairs;   // batch
  std::vector<int> erases;                          // batch: keys erased after the puts (Storage::Batch)
  std::uint64_t batch_id = 0;                       // batch
};

using ModelState = std::map<int, std::string>;

/// Runs one model op against a store (any Storage<int, std::string, ...>).
template <class Store>
void run_op(Store& db, const ModelOp& op) {
  switch (op.kind) {
    case ModelOp::put: db.put(op.key, op.value); break;
    case ModelOp::erase: db.erase(op.key); break;
    case ModelOp::batch:
      if (op.erases.empty()) {
        db.put_batch(op.pairs);
      } else {
        auto batch = db.batch();
        for (const auto& [k, v] : op.pairs) batch.put(k, v);
        for (int k : op.erases) batch.erase(k);
        batch.commit();
      }
      break;
  }
}

/// How random_op() draws a write. The defaults are power_loss_test's mix:
/// 70% put, 15% erase, 15% batch of 10..50 puts, a third of the batches
/// also erasing 1..4 keys; keys in [0, 600).
struct OpMix {
  int key_lo = 0, key_hi = 600;       ///< keys drawn from [key_lo, key_hi)
  std::uint64_t roll = 100;           ///< r = rng() % roll ...
  std::uint64_t put_below = 70;       ///< ... a put when r < put_below,
  std::uint64_t erase_below = 85;     ///< an erase when r < erase_below, else a batch (roll <= this: none)
  int batch_min = 10, batch_spread = 41;  ///< batch_min + rng() % batch_spread puts in a batch
  bool batch_erases = true;           ///< a third of the batches also erase 1..4 keys (Storage::Batch)
  std::uint64_t value_spread = 160;   ///< values padded by (nonce * 131 + key) % value_spread bytes
};

/// The value random_op() puts under key (batches append "b"): names the key
/// and the nonce, padded to a length of their own.
inline std::string model_value(int key, std::uint64_t nonce, std::uint64_t spread) {
  std::string v = "k" + std::to_string(key) + "/n" + std::to_string(nonce) + "/";
  v.append(static_cast<std::size_t>((nonce * 131 + static_cast<std::uint64_t>(key)) % spread),
           static_cast<char>('a' + nonce % 26));
  return v;
}

/// A random write drawn from rng as mix says, its values tagged with nonce.
/// The same rng state and mix give the same op.
inline ModelOp random_op(std::mt19937_64& rng, std::uint64_t nonce, const OpMix& mix = {}) {
  ModelOp op;
  const auto r = rng() % mix.roll;
  auto key = [&] { return mix.key_lo + static_cast<int>(rng() % static_cast<std::uint64_t>(mix.key_hi - mix.key_lo)); };
  if (r < mix.put_below) {
    op.kind = ModelOp::put;
    op.key = key();
    op.value = model_value(op.key, nonce, mix.value_spread);
  } else if (r < mix.erase_below) {
    op.kind = ModelOp::erase;
    op.key = key();
  } else {
    op.kind = ModelOp::batch;
    op.batch_id = nonce;
    const int n = mix.batch_min + static_cast<int>(rng() % static_cast<std::uint64_t>(mix.batch_spread));
    for (int i = 0; i < n; ++i) {
      const int k = key();
      op.pairs.emplace_back(k, model_value(k, nonce, mix.value_spread) + "b");
    }
    if (mix.batch_erases && rng() % 3 == 0)
      for (int j = 1 + static_cast<int>(rng() % 4); j > 0; --j) op.erases.push_back(key());
  }
  return op;
}

inline void apply_op(ModelState& s, const ModelOp& op) {
  switch (op.kind) {
    case ModelOp::put: s[op.key] = op.value; break;
    case ModelOp::erase: s.erase(op.key); break;
    case ModelOp::batch:
      for (const auto& [k, v] : op.pairs) s[k] = v;
      for (int k : op.erases) s.erase(k);
      break;
  }
}

/// The smallest p in [lo, hi] such that base + ops[0, p) equals `got`, or -1.
/// Linear in the ops and the two states (a running count of differing keys).
inline long find_prefix(const ModelState& base, const std::vector<ModelOp>& ops, std::size_t lo, std::size_t hi,
                        const ModelState& got) {
  ModelState cur = base;
  for (std::size_t i = 0; i < lo && i < ops.size(); ++i) apply_op(cur, ops[i]);
  auto same = [&](int k) {
    auto a = cur.find(k);
    auto b = got.find(k);
    if (a == cur.end() || b == got.end()) return a == cur.end() && b == got.end();
    return a->second == b->second;
  };
  long diff = 0;
  for (const auto& [k, v] : cur) diff += same(k) ? 0 : 1;
  for (const auto& [k, v] : got)
    if (!cur.count(k)) ++diff;
  if (diff == 0) return static_cast<long>(lo);
  for (std::size_t p = lo; p < hi && p < ops.size(); ++p) {
    auto touch = [&](int k, const std::function<void()>& change) {
      const bool before = same(k);
      change();
      diff += (same(k) ? 0 : 1) - (before ? 0 : 1);
    };
    const ModelOp& op = ops[p];
    switch (op.kind) {
      case ModelOp::put: touch(op.key, [&] { cur[op.key] = op.value; }); break;
      case ModelOp::erase: touch(op.key, [&] { cur.erase(op.key); }); break;
      case ModelOp::batch:
        for (const auto& pr : op.pairs) touch(pr.first, [&] { cur[pr.first] = pr.second; });
        for (int k : op.erases) touch(k, [&] { cur.erase(k); });
        break;
    }
    if (diff == 0) return static_cast<long>(p + 1);
  }
  return -1;
}

/// A short description of how `got` differs from `want` (for failure messages).
inline std::string describe_diff(const ModelState& want, const ModelState& got, std::size_t max_items = 6) {
  std::ostringstream out;
  std::size_t missing = 0, extra = 0, wrong = 0, shown = 0;
  auto show = [&](const std::string& s) {
    if (shown++ < max_items) out << "\n    " << s;
  };
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    if (it == got.end()) {
      ++missing;
      show("key " + std::to_string(k) + " missing (want '" + v.substr(0, 40) + "')");
    } else if (it->second != v) {
      ++wrong;
      show("key " + std::to_string(k) + " = '" + it->second.substr(0, 40) + "', want '" + v.substr(0, 40) + "'");
    }
  }
  for (const auto& [k, v] : got)
    if (!want.count(k)) {
      ++extra;
      show("key " + std::to_string(k) + " present ('" + v.substr(0, 40) + "') but should be absent");
    }
  std::ostringstream head;
  head << missing << " missing, " << wrong << " wrong, " << extra << " extra (of " << want.size() << " wanted)";
  return head.str() + out.str();
}

/// Copies a store directory (regular files only) into `to`, replacing it.
inline void copy_dir(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::remove_all(to);
  std::filesystem::create_directories(to);
  for (const auto& e : std::filesystem::directory_iterator(from))
    if (e.is_regular_file()) std::filesystem::copy_file(e.path(), to / e.path().filename());
}

/// Removes what the next writable open of the closed store at dir would:
/// chunk files the MANIFEST does not name and WAL segments before its WAL
/// start. A close leaves the files its last compactions made obsolete and an
/// open removes them on its flush thread, at a time of its own; a test that
/// copies a store and then counts its file operations, or damages its files,
/// starts from this.
inline void remove_unneeded_files(const std::filesystem::path& dir) {
  const auto m = stowage::detail::read_manifest(*stowage::default_file_system(), dir);
  std::set<std::uint64_t> named;
  for (const auto& ks : m.keyspaces)
    for (const auto& c : ks.chunks) named.insert(c.file);
  std::vector<std::filesystem::path> unneeded;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    const auto chunk = stowage::detail::parse_chunk_file_name(name);
    const auto wal = stowage::detail::parse_wal_file_name(name);
    if ((chunk && named.count(*chunk) == 0) || (wal && *wal < m.wal_start)) unneeded.push_back(e.path());
  }
  for (const auto& path : unneeded) std::filesystem::remove(path);
}

/// A power cut while write(db) writes to the Database at dir: opens it over
/// a FaultFileSystem with options (file_system set to it, durability sync
/// for an odd seed, none for an even one) and arms the fail_after-th
/// mutating operation from then on, and every later one, to fail (the
/// machine goes off there). When write returns first, the power goes off
/// then (crash_now), with the store still open. The store is closed (its
/// close fails quietly) and the power cut applied: simulate_power_loss(mode,
/// seed), mode one of drop, prefix, garbage, zeros, mixed by seed. Returns
/// whether the fault fired first (an IoError left the open or write).
template <class Write>
bool power_cut_during(const std::filesystem::path& dir, stowage::Options options, std::uint64_t seed,
                      std::uint64_t fail_after, Write&& write) {
  static constexpr TailMode kModes[] = {TailMode::drop, TailMode::prefix, TailMode::garbage, TailMode::zeros,
                                        TailMode::mixed};
  auto fs = FaultFileSystem::make(dir);
  fs->fail_at(kOpMutating, fail_after, true);
  bool cut = false;
  try {
    options.file_system = fs;
    options.durability = seed % 2 ? stowage::Durability::sync : stowage::Durability::none;
    stowage::Database db(dir, options);
    write(db);
    fs->crash_now();
  } catch (const stowage::IoError&) {
    cut = true;
  }
  fs->simulate_power_loss(kModes[seed % 5], seed);
  return cut;
}

}  // namespace stowage_test

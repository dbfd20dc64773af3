// SPDX-License-Identifier: BSL-1.0
// file.hpp: the file layer. Every read, write, fsync, rename and directory
// listing stowage does goes through a FileSystem, so tests can inject faults
// (fail the Nth write or fsync, drop unsynced bytes) and later media (memory,
// a single SQLite file, a remote store) can stand in for the POSIX one.
//
// Rules the callers rely on:
//  - WritableFile::append buffers; flush() hands the bytes to the OS (after it
//    returns, a process crash loses nothing); sync() makes them durable
//    (fdatasync). A failed sync is final for that handle: later calls throw too.
//  - WritableFile::map (POSIX: mmap MAP_SHARED) gives the same guarantees to
//    stores into the map as write_at() gives to its bytes; a medium that
//    cannot map says so (nullptr) and its callers write instead.
//  - FileSystem::sync_dir makes creations, renames and unlinks in a directory
//    durable.
//  - Every error is an IoError naming the path, the operation and errno's text.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/vfs.h>
#endif
#include <unistd.h>

#include "error.hpp"

namespace stowage {

/// Bytes of a file mapped into memory, shared and writable (see
/// WritableFile::map): a store into data() reaches the file's page cache, as
/// write_at() would. Unmapped when destroyed.
class WritableMap {
 public:
  virtual ~WritableMap() = default;
  virtual char* data() = 0;
  /// Bytes mapped, from the file's start; may run past the file's end.
  virtual std::uint64_t size() const = 0;
  /// Gives back the memory of [offset, offset + length) (page-aligned):
  /// the bytes stay the file's and the OS's (stores already made are kept),
  /// but stop counting in the process's resident memory until touched
  /// again. Default: nothing.
  virtual void release(std::uint64_t offset, std::uint64_t length) {
    (void)offset;
    (void)length;
  }
};

/// A file opened for appending.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  /// Appends bytes (may buffer).
  virtual void append(std::string_view data) = 0;
  /// Hands buffered bytes to the operating system.
  virtual void flush() = 0;
  /// flush(), then makes everything appended durable (fdatasync).
  virtual void sync() = 0;
  /// Makes durable what earlier flush() calls handed to the OS, without
  /// touching the buffer: safe while another thread appends and flushes (the
  /// WAL's group commit syncs outside the writers' lock this way).
  virtual void sync_flushed() = 0;
  /// Has the OS write the bytes of [offset, offset + length) it holds to
  /// the device, and waits for that, without making anything durable (no
  /// device cache flush, no metadata: sync() is still what makes bytes
  /// durable); a later sync() then has little left to write. Safe while
  /// another thread writes. Default: nothing.
  virtual void write_back(std::uint64_t offset, std::uint64_t length) {
    (void)offset;
    (void)length;
  }
  /// flush() and release the handle; idempotent.
  virtual void close() = 0;
  /// Bytes appended so far, including the file's length when opened (after
  /// write_at(): at least the end of the furthest write).
  virtual std::uint64_t size() const = 0;
  /// Writes data at offset over whatever is there (the file grows if it ends
  /// before offset + data.size()) and hands it straight to the OS, as flush()
  /// would. Not to be mixed with unflushed append()s. Returns false and does
  /// nothing where the medium can only append (the default; so does an empty
  /// write, which only asks): the WAL then appends instead of writing into
  /// preallocated space.
  virtual bool write_at(std::uint64_t offset, std::string_view data) {
    (void)offset;
    (void)data;
    return false;
  }
  /// Maps the file's first `length` bytes into memory, shared and writable:
  /// a store into the map is in the OS's hands at once (a process crash
  /// keeps it; sync_flushed() makes it durable), with no system call. length
  /// may run past the file's end; the caller touches only bytes the file
  /// holds (a store past its end is a SIGBUS). Returns nullptr where the
  /// medium cannot map (the default, and test file systems that must see
  /// every write): the caller then uses write_at().
  virtual std::unique_ptr<WritableMap> map(std::uint64_t length) {
    (void)length;
    return nullptr;
  }
};

/// A file opened for positional reads.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  /// Reads up to n bytes at offset into dst; returns the count read (short
  /// only at end of file).
  virtual std::size_t read(std::uint64_t offset, std::size_t n, char* dst) const = 0;
  /// The file's length when opened.
  virtual std::uint64_t size() const = 0;
  /// The path it was opened from, for error messages.
  virtual const std::filesystem::path& path() const = 0;
};

/// The operations stowage needs from a file system.
class FileSystem {
 public:
  virtual ~FileSystem() = default;
  /// Creates (or truncates) a file for writing.
  virtual std::unique_ptr<WritableFile> create(const std::filesystem::path& p) = 0;
  /// Opens an existing file for appending at its end.
  virtual std::unique_ptr<WritableFile> open_append(const std::filesystem::path& p) = 0;
  virtual std::unique_ptr<RandomAccessFile> open_read(const std::filesystem::path& p) = 0;
  /// Opens an existing file for writing without truncating it or forcing
  /// appends to its end, so write_at() may place bytes anywhere (a WAL
  /// segment continued after replay). The default is open_append().
  virtual std::unique_ptr<WritableFile> open_write(const std::filesystem::path& p) { return open_append(p); }
  virtual void rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  virtual void remove(const std::filesystem::path& p) = 0;
  virtual void truncate(const std::filesystem::path& p, std::uint64_t size) = 0;
  virtual void sync_dir(const std::filesystem::path& dir) = 0;
  virtual void create_dirs(const std::filesystem::path& dir) = 0;
  /// Names (not paths) of the entries of dir.
  virtual std::vector<std::string> list(const std::filesystem::path& dir) = 0;
  virtual bool exists(const std::filesystem::path& p) = 0;
  virtual bool is_directory(const std::filesystem::path& p) = 0;
  /// Makes `to` a new name of the file `from` (a hard link), or a durable copy
  /// of it where links are not possible. Used for backups of immutable files.
  /// The default copies through create/open_read; the caller syncs the directory.
  virtual void link(const std::filesystem::path& from, const std::filesystem::path& to);
};

/// Copies the file `from` to a new file `to` through fs, in pieces of at
/// most 1 MiB, and makes the copy durable (the caller syncs the directory).
inline void copy_file(FileSystem& fs, const std::filesystem::path& from, const std::filesystem::path& to) {
  auto in = fs.open_read(from);
  auto out = fs.create(to);
  std::string buf;
  for (std::uint64_t off = 0, size = in->size(); off < size;) {
    buf.resize(static_cast<std::size_t>(std::min<std::uint64_t>(size - off, std::uint64_t{1} << 20)));
    std::size_t n = in->read(off, buf.size(), buf.data());
    if (n == 0) break;  // the file shrank while being copied
    out->append(std::string_view(buf.data(), n));
    off += n;
  }
  out->sync();
  out->close();
}

inline void FileSystem::link(const std::filesystem::path& from, const std::filesystem::path& to) {
  copy_file(*this, from, to);
}

namespace detail {

/// The first `size` bytes of a file, as a file of that size: a reader of a
/// WAL segment that is still being written sees no record after the
/// moment it was given.
class FilePrefix final : public RandomAccessFile {
 public:
  FilePrefix(const RandomAccessFile& file, std::uint64_t size) : file_(&file), size_(std::min(size, file.size())) {}
  std::size_t read(std::uint64_t offset, std::size_t n, char* dst) const override {
    if (offset >= size_) return 0;
    return file_->read(offset, static_cast<std::size_t>(std::min<std::uint64_t>(n, size_ - offset)), dst);
  }
  std::uint64_t size() const override { return size_; }
  const std::filesystem::path& path() const override { return file_->path(); }

 private:
  const RandomAccessFile* file_;
  std::uint64_t size_;
};

[[noreturn]] inline void throw_io(const std::string& op, const std::filesystem::path& p, int err) {
  throw IoError("stowage: " + op + " " + p.string() + " failed: " + std::strerror(err) +
                (err == ENOSPC ? " (the disk is full: free space, then retry or reopen)" : "") +
                (err == EACCES || err == EPERM ? " (check the permissions of the store's directory)" : ""));
}

class PosixWritableFile final : public WritableFile {
 public:
  /// positional: the descriptor was opened without O_APPEND, so pwrite()
  /// lands where it is told (write_at()).
  PosixWritableFile(std::filesystem::path p, int fd, std::uint64_t size, bool positional = false)
      : path_(std::move(p)), fd_(fd), size_(size), positional_(positional) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) {
      try {
        flush();
      } catch (...) {
      }
      ::close(fd_);
    }
  }
  void append(std::string_view data) override {
    check_usable();
    size_ += data.size();
    if (buf_.size() + data.size() <= kBuffer) {
      buf_.append(data);
      return;
    }
    flush();
    if (data.size() >= kBuffer) {
      write_all(data);
    } else {
      buf_.append(data);
    }
  }
  void flush() override {
    check_usable();
    if (buf_.empty()) return;
    std::string_view b = buf_;
    write_all(b);
    buf_.clear();
  }
  void sync() override {
    flush();
    sync_flushed();
  }
  void sync_flushed() override {
    if (int f = failed_.load()) throw_io("earlier failure of", path_, f);
    if (::fdatasync(fd_) != 0) {
      int e = errno;
      failed_ = e;
      throw_io("fdatasync", path_, e);
    }
  }
  void close() override {
    if (fd_ < 0) return;
    flush();
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw_io("close", path_, errno);
  }
  std::uint64_t size() const override { return size_; }
  void write_back(std::uint64_t offset, std::uint64_t length) override {
#if defined(__linux__)
    if (fd_ >= 0 && length > 0)
      (void)::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(length),
                              SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
#else
    (void)offset;
    (void)length;
#endif
  }
  std::unique_ptr<WritableMap> map(std::uint64_t length) override;
  bool write_at(std::uint64_t offset, std::string_view data) override {
    if (!positional_) return false;  // O_APPEND: Linux pwrite() would append regardless of offset
    if (data.empty()) return true;
    flush();
    write_all(data, static_cast<std::int64_t>(offset));
    size_ = std::max(size_, offset + data.size());
    return true;
  }

 private:
  static constexpr std::size_t kBuffer = 64 * 1024;
  void check_usable() const {
    if (int f = failed_.load())
      throw IoError("stowage: " + path_.string() + " had an earlier write or sync error (" + std::strerror(f) +
                    "); it is not retried: reopen the store to recover");
    if (fd_ < 0) throw IoError("stowage: " + path_.string() + " is closed");
  }
  // Writes all of data at the file position (offset < 0) or with pwrite at offset.
  void write_all(std::string_view data, std::int64_t offset = -1) {
    while (!data.empty()) {
      ssize_t n = offset < 0 ? ::write(fd_, data.data(), data.size())
                             : ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        failed_ = e;
        throw_io("write", path_, e);
      }
      data.remove_prefix(static_cast<std::size_t>(n));
      if (offset >= 0) offset += n;
    }
  }
  std::filesystem::path path_;
  int fd_;
  std::uint64_t size_;
  bool positional_;
  std::string buf_;
  std::atomic<int> failed_{0};
};

/// A region of a PosixWritableFile mapped with mmap(MAP_SHARED).
class PosixWritableMap final : public WritableMap {
 public:
  PosixWritableMap(char* data, std::uint64_t size) : data_(data), size_(size) {}
  ~PosixWritableMap() override { ::munmap(data_, static_cast<std::size_t>(size_)); }
  PosixWritableMap(const PosixWritableMap&) = delete;
  PosixWritableMap& operator=(const PosixWritableMap&) = delete;
  char* data() override { return data_; }
  std::uint64_t size() const override { return size_; }
  void release(std::uint64_t offset, std::uint64_t length) override {
    // On a shared map, MADV_DONTNEED drops only the page table entries; the
    // pages' dirty state passes to the page cache, which writes them back.
    if (length > 0 && offset + length <= size_) (void)::madvise(data_ + offset, static_cast<std::size_t>(length), MADV_DONTNEED);
  }

 private:
  char* data_;
  std::uint64_t size_;
};

/// True if stores into a shared map of fd's preallocated (written) bytes
/// need no new space on its file system: ext2/3/4, XFS and tmpfs overwrite
/// such bytes in place. Copy-on-write and log-structured file systems
/// (btrfs, ZFS, F2FS, ...) allocate at the store, and a full disk would end
/// the process with SIGBUS where pwrite() reports ENOSPC: those, and any
/// file system not named here, are written with pwrite().
inline bool maps_in_place(int fd) {
#ifdef __linux__
  struct statfs st;
  if (::fstatfs(fd, &st) != 0) return false;
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0xEF53UL:      // ext2, ext3, ext4
    case 0x58465342UL:  // XFS
    case 0x01021994UL:  // tmpfs
      return true;
    default:
      return false;
  }
#else
  (void)fd;
  return false;
#endif
}

inline std::unique_ptr<WritableMap> PosixWritableFile::map(std::uint64_t length) {
  // Positional handles only (created or opened for writing in place, and
  // read-write: a shared writable map needs a readable descriptor).
  if (!positional_ || fd_ < 0 || length == 0 || length > (std::uint64_t{1} << 40) || failed_.load() != 0) return nullptr;
  if (!maps_in_place(fd_)) return nullptr;
  flush();
  void* p = ::mmap(nullptr, static_cast<std::size_t>(length), PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) return nullptr;  // e.g. out of address space: the caller writes instead
  return std::make_unique<PosixWritableMap>(static_cast<char*>(p), length);
}

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::filesystem::path p, int fd, std::uint64_t size) : path_(std::move(p)), fd_(fd), size_(size) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }
  std::size_t read(std::uint64_t offset, std::size_t n, char* dst) const override {
    std::size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, dst + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        throw_io("read", path_, errno);
      }
      if (r == 0) break;
      done += static_cast<std::size_t>(r);
    }
    return done;
  }
  std::uint64_t size() const override { return size_; }
  const std::filesystem::path& path() const override { return path_; }

 private:
  std::filesystem::path path_;
  int fd_;
  std::uint64_t size_;
};

/// The real file system, through POSIX calls.
class PosixFileSystem final : public FileSystem {
  // Opens an existing file; returns the descriptor and the file's size.
  static std::pair<int, std::uint64_t> open_sized(const std::filesystem::path& p, int flags) {
    int fd = ::open(p.c_str(), flags);
    if (fd < 0) throw_io("open", p, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int e = errno;
      ::close(fd);
      throw_io("stat", p, e);
    }
    return {fd, static_cast<std::uint64_t>(st.st_size)};
  }

 public:
  std::unique_ptr<WritableFile> create(const std::filesystem::path& p) override {
    int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw_io("create", p, errno);
    return std::make_unique<PosixWritableFile>(p, fd, 0, /*positional=*/true);
  }
  std::unique_ptr<WritableFile> open_append(const std::filesystem::path& p) override {
    auto [fd, size] = open_sized(p, O_WRONLY | O_APPEND | O_CLOEXEC);
    return std::make_unique<PosixWritableFile>(p, fd, size);
  }
  std::unique_ptr<WritableFile> open_write(const std::filesystem::path& p) override {
    auto [fd, size] = open_sized(p, O_RDWR | O_CLOEXEC);
    return std::make_unique<PosixWritableFile>(p, fd, size, /*positional=*/true);
  }
  std::unique_ptr<RandomAccessFile> open_read(const std::filesystem::path& p) override {
    auto [fd, size] = open_sized(p, O_RDONLY | O_CLOEXEC);
    return std::make_unique<PosixRandomAccessFile>(p, fd, size);
  }
  void rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) throw_io("rename to " + to.string() + " of", from, errno);
  }
  void remove(const std::filesystem::path& p) override {
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) throw_io("unlink", p, errno);
  }
  void truncate(const std::filesystem::path& p, std::uint64_t size) override {
    if (::truncate(p.c_str(), static_cast<off_t>(size)) != 0) throw_io("truncate", p, errno);
  }
  void sync_dir(const std::filesystem::path& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw_io("open directory", dir, errno);
    if (::fsync(fd) != 0) {
      int e = errno;
      ::close(fd);
      throw_io("fsync directory", dir, e);
    }
    ::close(fd);
  }
  // (std::filesystem's error_code overloads are noexcept in libstdc++: an
  // allocation failing inside them terminates the process. The throwing
  // overloads and plain POSIX calls let std::bad_alloc reach the caller.)
  void create_dirs(const std::filesystem::path& dir) override {
    try {
      std::filesystem::create_directories(dir);
    } catch (const std::filesystem::filesystem_error& e) {
      throw_io("create directory", dir, e.code().value());
    }
  }
  std::vector<std::string> list(const std::filesystem::path& dir) override {
    std::vector<std::string> names;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) throw_io("list directory", dir, errno);
    try {
      for (;;) {
        errno = 0;
        const dirent* entry = ::readdir(d);
        if (entry == nullptr) {
          if (errno != 0) throw_io("list directory", dir, errno);
          break;
        }
        std::string_view name = entry->d_name;
        if (name != "." && name != "..") names.emplace_back(name);
      }
    } catch (...) {
      ::closedir(d);
      throw;
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }
  bool exists(const std::filesystem::path& p) override {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
  }
  bool is_directory(const std::filesystem::path& p) override {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }
  void link(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (::link(from.c_str(), to.c_str()) == 0) return;
    const int e = errno;
    // Another file system, or one without hard links: copy instead.
    if (e == EXDEV || e == EPERM || e == EMLINK || e == EOPNOTSUPP) {
      copy_file(*this, from, to);
      return;
    }
    throw_io("hard link to " + to.string() + " of", from, e);
  }
};

}  // namespace detail

/// The process-wide POSIX file system (the default of Options::file_system).
inline std::shared_ptr<FileSystem> default_file_system() {
  static const std::shared_ptr<FileSystem> fs = std::make_shared<detail::PosixFileSystem>();
  return fs;
}

/// Reads a whole file of at most max_bytes; larger is a CorruptionError.
inline std::string read_file(FileSystem& fs, const std::filesystem::path& p, std::uint64_t max_bytes) {
  auto f = fs.open_read(p);
  if (f->size() > max_bytes)
    throw CorruptionError(p, max_bytes, "file is " + std::to_string(f->size()) + " bytes, more than the " +
                                            std::to_string(max_bytes) + " this kind of file may hold");
  std::string s(static_cast<std::size_t>(f->size()), '\0');
  s.resize(f->read(0, s.size(), s.data()));
  return s;
}

}  // namespace stowage

// The I/O seam: every byte streamkit reads or writes to a file goes through Io/File.
//
// Three implementations:
//   - UringIo  (io_uring via liburing; reads, writes and syncs are ring operations),
//   - PosixIo  (pread/pwrite/fdatasync; the portable fallback: containers whose
//               seccomp profile blocks io_uring, old kernels, macOS),
//   - FaultIo  (wraps another Io and injects EIO, ENOSPC, short writes and failed
//               syncs, so tests can prove that a failed append loses nothing).
// DefaultIo() picks io_uring when a ring can be set up, else posix with one line on
// stderr saying so; STREAMKIT_IO=posix|io_uring forces a choice.
//
// Thread safety: an Io may be shared by all threads. A File may be used from several
// threads at once for ReadAt; writers must be serialised by the caller (the log has
// one writer per shard). Directory operations are plain syscalls in every backend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

namespace streamkit::io {

enum class OpenMode {
  kRead,          // read only; the file must exist
  kReadWrite,     // read and write; the file must exist
  kCreate,        // read and write; created (empty) when missing
  kCreateTrunc,   // read and write; created or truncated to zero
};

class File {
 public:
  virtual ~File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Writes all n bytes at `offset`, retrying short transfers; a failure leaves an
  // unknown prefix of the range written (the caller truncates it away).
  virtual Status WriteAt(const void* data, size_t n, uint64_t offset) = 0;
  // Reads up to n bytes at `offset`; fewer only at end of file.
  virtual Result<size_t> ReadAt(void* buf, size_t n, uint64_t offset) = 0;
  // Makes the file's data durable (fdatasync, or F_FULLFSYNC on macOS).
  virtual Status DataSync() = 0;
  virtual Status Truncate(uint64_t size) = 0;
  virtual Result<uint64_t> Size() = 0;
  // Reserves disk blocks for [offset, offset + n) without changing the file's size
  // (fallocate with FALLOC_FL_KEEP_SIZE), so that later writes there find their
  // blocks allocated. Best effort: kUnsupported where the system or filesystem has
  // no such call. Truncate(Size()) gives back what was reserved beyond the end.
  virtual Status Preallocate(uint64_t offset, uint64_t n) {
    (void)offset;
    (void)n;
    return Status::Unsupported(fmt::format("preallocate {}: not supported here", path_));
  }
  // Bytes of disk the file occupies (st_blocks * 512): with Preallocate, may exceed Size().
  virtual Result<uint64_t> Allocated() {
    return Status::Unsupported(fmt::format("allocated size of {}: not known here", path_));
  }

  // The descriptor, for zero-copy sends (sendfile/splice) by a server.
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 protected:
  File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

class Io {
 public:
  virtual ~Io() = default;
  virtual Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) = 0;
  virtual Status Remove(const std::string& path) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status CreateDirs(const std::string& path) = 0;  // mkdir -p
  virtual Status RemoveDirRecursive(const std::string& path) = 0;
  virtual Status SyncDir(const std::string& path) = 0;     // fsync a directory entry list
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) = 0;  // names only
  virtual bool Exists(const std::string& path) = 0;
  virtual const char* name() const = 0;  // "io_uring", "posix", "fault(...)"
};

// Writes `data` to `path` atomically: temp file in the same directory, fsync,
// rename over `path`, fsync the directory. A reader sees the old or the new file.
// With durable=false the fsyncs are skipped: still all-or-nothing for readers and
// process crashes, but a power cut may leave the old file (use only for files that
// are verified on load and have a fallback).
Status WriteFileAtomic(Io& io, const std::string& path, const void* data, size_t n, bool durable = true);
// Reads a whole (small) file.
Result<std::string> ReadSmallFile(Io& io, const std::string& path, size_t max_bytes);

std::shared_ptr<Io> PosixIo();
// Fails with kUnsupported (and the errno) when no ring can be set up here.
Result<std::shared_ptr<Io>> UringIo();
// io_uring when possible, else posix (one line on stderr); STREAMKIT_IO forces.
std::shared_ptr<Io> DefaultIo();

// Fault injection for tests.
class FaultIo : public Io {
 public:
  explicit FaultIo(std::shared_ptr<Io> base);
  ~FaultIo() override;

  // The next `count` writes fail with `err`. When `partial` >= 0 each failing write
  // first writes that many bytes of its data (a short write), then fails.
  void FailWrites(int err, int count = 1, long partial = -1);
  void FailSyncs(int err, int count = 1);
  void FailReads(int err, int count = 1);
  void Clear();

  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  Status Remove(const std::string& path) override { return base_->Remove(path); }
  Status Rename(const std::string& f, const std::string& t) override { return base_->Rename(f, t); }
  Status CreateDirs(const std::string& path) override { return base_->CreateDirs(path); }
  Status RemoveDirRecursive(const std::string& p) override { return base_->RemoveDirRecursive(p); }
  Status SyncDir(const std::string& path) override { return base_->SyncDir(path); }
  Result<std::vector<std::string>> ListDir(const std::string& p) override { return base_->ListDir(p); }
  bool Exists(const std::string& path) override { return base_->Exists(path); }
  const char* name() const override { return name_.c_str(); }

  struct State;  // shared with the files it opened

 private:
  std::shared_ptr<Io> base_;
  std::shared_ptr<State> state_;
  std::string name_;
};

}  // namespace streamkit::io

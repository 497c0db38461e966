// The portable backend's classes, shared with the io_uring backend, which reuses
// PosixIo's directory operations and PosixFile's truncate/size/close.
#pragma once

#include "io/io.h"

namespace streamkit::io {

class PosixFile : public File {
 public:
  PosixFile(int fd, std::string path) : File(fd, std::move(path)) {}
  ~PosixFile() override;
  Status WriteAt(const void* data, size_t n, uint64_t offset) override;
  Result<size_t> ReadAt(void* buf, size_t n, uint64_t offset) override;
  Status DataSync() override;
  Status Truncate(uint64_t size) override;
  Result<uint64_t> Size() override;
  Result<uint64_t> Allocated() override;
#if defined(__linux__)
  Status Preallocate(uint64_t offset, uint64_t n) override;
#endif
};

class PosixIoImpl : public Io {
 public:
  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  Status Remove(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status CreateDirs(const std::string& path) override;
  Status RemoveDirRecursive(const std::string& path) override;
  Status SyncDir(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& path) override;
  bool Exists(const std::string& path) override;
  const char* name() const override { return "posix"; }

 protected:
  // Opens the descriptor; shared by both backends.
  Result<int> OpenFd(const std::string& path, OpenMode mode);
};

}  // namespace streamkit::io

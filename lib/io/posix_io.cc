#include "io/posix_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

namespace streamkit::io {

PosixFile::~PosixFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status PosixFile::WriteAt(const void* data, size_t n, uint64_t offset) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = ::pwrite(fd_, p, n, off_t(offset));
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Status::FromErrno(errno, fmt::format("write {}", path_));
    }
    if (w == 0) return Status::FromErrno(EIO, fmt::format("write {} (no progress)", path_));
    p += w;
    n -= size_t(w);
    offset += uint64_t(w);
  }
  return Status::OK();
}

Result<size_t> PosixFile::ReadAt(void* buf, size_t n, uint64_t offset) {
  auto* p = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd_, p + done, n - done, off_t(offset + done));
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Status::FromErrno(errno, fmt::format("read {}", path_));
    }
    if (r == 0) break;  // end of file
    done += size_t(r);
  }
  return done;
}

Status PosixFile::DataSync() {
#if defined(__APPLE__)
  int rc = ::fcntl(fd_, F_FULLFSYNC);
#else
  int rc = ::fdatasync(fd_);
#endif
  if (rc != 0) return Status::FromErrno(errno, fmt::format("sync {}", path_));
  return Status::OK();
}

Status PosixFile::Truncate(uint64_t size) {
  if (::ftruncate(fd_, off_t(size)) != 0)
    return Status::FromErrno(errno, fmt::format("truncate {} to {}", path_, size));
  return Status::OK();
}

#if defined(__linux__)
Status PosixFile::Preallocate(uint64_t offset, uint64_t n) {
  if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, off_t(offset), off_t(n)) == 0) return Status::OK();
  if (errno == EOPNOTSUPP || errno == ENOSYS)
    return Status::Unsupported(fmt::format("preallocate {}: not supported by the filesystem", path_), errno);
  return Status::FromErrno(errno, fmt::format("preallocate {} bytes at {} of {}", n, offset, path_));
}
#endif

Result<uint64_t> PosixFile::Allocated() {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Status::FromErrno(errno, fmt::format("stat {}", path_));
  return uint64_t(st.st_blocks) * 512;
}

Result<uint64_t> PosixFile::Size() {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Status::FromErrno(errno, fmt::format("stat {}", path_));
  return uint64_t(st.st_size);
}

Result<int> PosixIoImpl::OpenFd(const std::string& path, OpenMode mode) {
  int flags = O_CLOEXEC;
  switch (mode) {
    case OpenMode::kRead: flags |= O_RDONLY; break;
    case OpenMode::kReadWrite: flags |= O_RDWR; break;
    case OpenMode::kCreate: flags |= O_RDWR | O_CREAT; break;
    case OpenMode::kCreateTrunc: flags |= O_RDWR | O_CREAT | O_TRUNC; break;
  }
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status::FromErrno(errno, fmt::format("open {}", path));
  return fd;
}

Result<std::unique_ptr<File>> PosixIoImpl::Open(const std::string& path, OpenMode mode) {
  SK_ASSIGN_OR_RETURN(int fd, OpenFd(path, mode));
  return std::unique_ptr<File>(new PosixFile(fd, path));
}

Status PosixIoImpl::Remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, fmt::format("remove {}", path));
  return Status::OK();
}

Status PosixIoImpl::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    return Status::FromErrno(errno, fmt::format("rename {} to {}", from, to));
  return Status::OK();
}

Status PosixIoImpl::CreateDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::FromErrno(ec.value(), fmt::format("create directory {}", path));
  return Status::OK();
}

Status PosixIoImpl::RemoveDirRecursive(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return Status::FromErrno(ec.value(), fmt::format("remove directory {}", path));
  return Status::OK();
}

Status PosixIoImpl::SyncDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, fmt::format("open directory {}", path));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::FromErrno(err, fmt::format("sync directory {}", path));
  return Status::OK();
}

Result<std::vector<std::string>> PosixIoImpl::ListDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return Status::FromErrno(errno, fmt::format("list directory {}", path));
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n(e->d_name);
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  ::closedir(d);
  return names;
}

bool PosixIoImpl::Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::shared_ptr<Io> PosixIo() {
  static std::shared_ptr<Io> io = std::make_shared<PosixIoImpl>();
  return io;
}

}  // namespace streamkit::io

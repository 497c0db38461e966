// The io_uring backend: file reads, writes and syncs are ring operations.
//
// Each thread that touches a file gets its own small ring (created on first use),
// so files can be shared across threads without locking a ring. Every completion is
// one of three cases: -EAGAIN/-EINTR (resubmit), a short transfer (advance and
// resubmit), or an error naming the operation and the path.
#include <liburing.h>

#include <atomic>
#include <cerrno>

#include "io/posix_io.h"

namespace streamkit::io {
namespace {

constexpr unsigned kRingDepth = 16;  // synchronous use: one operation in flight per thread

struct ThreadRing {
  io_uring ring{};
  int init_err = 0;
  ThreadRing() {
    int rc = io_uring_queue_init(kRingDepth, &ring, 0);
    init_err = rc < 0 ? -rc : 0;
  }
  ~ThreadRing() {
    if (init_err == 0) io_uring_queue_exit(&ring);
  }
};

ThreadRing& Ring() {
  thread_local ThreadRing r;
  return r;
}

enum class Op { kRead, kWrite, kWriteNowait, kSync };

// Submits one operation and waits for it; returns the completion's res (>= 0) or -errno.
int RunOne(Op op, int fd, void* buf, unsigned n, uint64_t offset) {
  ThreadRing& tr = Ring();
  if (tr.init_err != 0) return -tr.init_err;
  for (;;) {
    io_uring_sqe* sqe = io_uring_get_sqe(&tr.ring);
    if (sqe == nullptr) return -EBUSY;  // cannot happen: one op in flight per thread
    switch (op) {
      case Op::kRead: io_uring_prep_read(sqe, fd, buf, n, offset); break;
      case Op::kWrite: io_uring_prep_write(sqe, fd, buf, n, offset); break;
      case Op::kWriteNowait:
        io_uring_prep_write(sqe, fd, buf, n, offset);
        sqe->rw_flags = RWF_NOWAIT;
        break;
      case Op::kSync: io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC); break;
    }
    int rc = io_uring_submit_and_wait(&tr.ring, 1);
    if (rc < 0 && rc != -EINTR) return rc;
    io_uring_cqe* cqe = nullptr;
    do {
      rc = io_uring_wait_cqe(&tr.ring, &cqe);
    } while (rc == -EINTR);
    if (rc < 0) return rc;
    int res = cqe->res;
    io_uring_cqe_seen(&tr.ring, cqe);
    if ((res == -EAGAIN && op != Op::kWriteNowait) || res == -EINTR) continue;
    return res;
  }
}

constexpr size_t kMaxChunk = 1u << 30;  // keep each transfer within an unsigned

class UringFile final : public PosixFile {
 public:
  using PosixFile::PosixFile;

  // Buffered appends: the ring completes a write inline only when the filesystem
  // can take it without blocking (RWF_NOWAIT); otherwise io_uring hands it to a
  // kernel worker thread, which costs ~10x a pwrite (ext4 here: 24 us vs 2.4 us
  // for 2 KiB). So a write is offered to the ring with RWF_NOWAIT and written with
  // pwrite when the filesystem refuses. Refusals back off: after k refusals in a
  // row the next 2^k - 1 writes (at most 1023) go straight to pwrite, so a
  // filesystem that mostly refuses (ext4 with delayed allocation accepts the odd
  // write that needs no new block) costs a wasted submission per ~1,000 writes,
  // not per write; one that accepts keeps every write on the ring. Reads and
  // fdatasync always go through the ring.
  Status WriteAt(const void* data, size_t n, uint64_t offset) override {
    if (nowait_unsupported_.load(std::memory_order_relaxed)) return PosixFile::WriteAt(data, n, offset);
    if (skip_.load(std::memory_order_relaxed) > 0) {
      skip_.fetch_sub(1, std::memory_order_relaxed);
      return PosixFile::WriteAt(data, n, offset);
    }
    auto* p = static_cast<uint8_t*>(const_cast<void*>(data));
    while (n > 0) {
      int res = RunOne(Op::kWriteNowait, fd_, p, unsigned(std::min(n, kMaxChunk)), offset);
      if (res == -EAGAIN) {
        int k = std::min(refusals_.fetch_add(1, std::memory_order_relaxed) + 1, kMaxBackoffShift);
        skip_.store((1 << k) - 1, std::memory_order_relaxed);
        return PosixFile::WriteAt(p, n, offset);
      }
      if (res == -EOPNOTSUPP || res == -EINVAL) {
        // The filesystem takes no RWF_NOWAIT writes at all (tmpfs on some kernels).
        nowait_unsupported_ = true;
        return PosixFile::WriteAt(p, n, offset);
      }
      if (res < 0) return Status::FromErrno(-res, fmt::format("write {}", path_));
      if (res == 0) return Status::FromErrno(EIO, fmt::format("write {} (no progress)", path_));
      refusals_.store(0, std::memory_order_relaxed);
      p += res;
      n -= size_t(res);
      offset += uint64_t(res);
    }
    return Status::OK();
  }

  Result<size_t> ReadAt(void* buf, size_t n, uint64_t offset) override {
    auto* p = static_cast<uint8_t*>(buf);
    size_t done = 0;
    while (done < n) {
      int res = RunOne(Op::kRead, fd_, p + done, unsigned(std::min(n - done, kMaxChunk)),
                       offset + done);
      if (res < 0) return Status::FromErrno(-res, fmt::format("read {}", path_));
      if (res == 0) break;  // end of file
      done += size_t(res);
    }
    return done;
  }

  Status DataSync() override {
    int res = RunOne(Op::kSync, fd_, nullptr, 0, 0);
    if (res < 0) return Status::FromErrno(-res, fmt::format("sync {}", path_));
    return Status::OK();
  }

 private:
  static constexpr int kMaxBackoffShift = 10;
  std::atomic<int> refusals_{0};  // RWF_NOWAIT refusals in a row
  std::atomic<int> skip_{0};      // writes left to send straight to pwrite
  std::atomic<bool> nowait_unsupported_{false};
};

class UringIoImpl final : public PosixIoImpl {
 public:
  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override {
    SK_ASSIGN_OR_RETURN(int fd, OpenFd(path, mode));
    return std::unique_ptr<File>(new UringFile(fd, path));
  }
  const char* name() const override { return "io_uring"; }
};

}  // namespace

Result<std::shared_ptr<Io>> UringIo() {
  // Probe with a ring of our own: ENOSYS (old kernel), EPERM (seccomp, e.g. Docker's
  // default profile, or kernel.io_uring_disabled) and ENOMEM (memlock) all land here.
  io_uring probe;
  int rc = io_uring_queue_init(2, &probe, 0);
  if (rc < 0) return Status::Unsupported("io_uring_queue_init", -rc);
  io_uring_queue_exit(&probe);
  static std::shared_ptr<Io> io = std::make_shared<UringIoImpl>();
  return io;
}

}  // namespace streamkit::io

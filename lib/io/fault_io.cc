#include <mutex>

#include "io/io.h"

namespace streamkit::io {

struct FaultIo::State {
  std::mutex mu;
  int write_err = 0, write_count = 0;
  long write_partial = -1;
  int sync_err = 0, sync_count = 0;
  int read_err = 0, read_count = 0;

  // Returns the errno to inject for this operation (0 = none) and consumes one.
  int Take(int& err, int& count) {
    std::lock_guard<std::mutex> g(mu);
    if (count <= 0 || err == 0) return 0;
    count--;
    return err;
  }
};

namespace {

class FaultFile final : public File {
 public:
  FaultFile(std::unique_ptr<File> base, std::shared_ptr<FaultIo::State> st)
      : File(base->fd(), base->path()), base_(std::move(base)), st_(std::move(st)) {}

  Status WriteAt(const void* data, size_t n, uint64_t offset) override {
    long partial;
    {
      std::lock_guard<std::mutex> g(st_->mu);
      partial = st_->write_partial;
    }
    int err = st_->Take(st_->write_err, st_->write_count);
    if (err == 0) return base_->WriteAt(data, n, offset);
    if (partial > 0) {
      size_t k = std::min(n, size_t(partial));
      SK_TRY(base_->WriteAt(data, k, offset));  // the short write really lands
      return Status::FromErrno(err, fmt::format("write {} (injected, short write of {} of {} bytes)",
                                                path_, k, n));
    }
    return Status::FromErrno(err, fmt::format("write {} (injected)", path_));
  }
  Result<size_t> ReadAt(void* buf, size_t n, uint64_t offset) override {
    if (int err = st_->Take(st_->read_err, st_->read_count))
      return Status::FromErrno(err, fmt::format("read {} (injected)", path_));
    return base_->ReadAt(buf, n, offset);
  }
  Status DataSync() override {
    if (int err = st_->Take(st_->sync_err, st_->sync_count))
      return Status::FromErrno(err, fmt::format("sync {} (injected)", path_));
    return base_->DataSync();
  }
  Status Truncate(uint64_t size) override { return base_->Truncate(size); }
  Result<uint64_t> Size() override { return base_->Size(); }
  Status Preallocate(uint64_t offset, uint64_t n) override { return base_->Preallocate(offset, n); }
  Result<uint64_t> Allocated() override { return base_->Allocated(); }

 private:
  std::unique_ptr<File> base_;
  std::shared_ptr<FaultIo::State> st_;
};

}  // namespace

FaultIo::FaultIo(std::shared_ptr<Io> base)
    : base_(std::move(base)), state_(std::make_shared<State>()),
      name_(fmt::format("fault({})", base_->name())) {}
FaultIo::~FaultIo() = default;

void FaultIo::FailWrites(int err, int count, long partial) {
  std::lock_guard<std::mutex> g(state_->mu);
  state_->write_err = err;
  state_->write_count = count;
  state_->write_partial = partial;
}
void FaultIo::FailSyncs(int err, int count) {
  std::lock_guard<std::mutex> g(state_->mu);
  state_->sync_err = err;
  state_->sync_count = count;
}
void FaultIo::FailReads(int err, int count) {
  std::lock_guard<std::mutex> g(state_->mu);
  state_->read_err = err;
  state_->read_count = count;
}
void FaultIo::Clear() {
  std::lock_guard<std::mutex> g(state_->mu);
  state_->write_count = state_->sync_count = state_->read_count = 0;
}

Result<std::unique_ptr<File>> FaultIo::Open(const std::string& path, OpenMode mode) {
  SK_ASSIGN_OR_RETURN(auto f, base_->Open(path, mode));
  return std::unique_ptr<File>(new FaultFile(std::move(f), state_));
}

}  // namespace streamkit::io

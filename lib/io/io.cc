#include "io/io.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace streamkit::io {

Status WriteFileAtomic(Io& io, const std::string& path, const void* data, size_t n, bool durable) {
  std::string tmp = path + ".tmp";
  {
    SK_ASSIGN_OR_RETURN(auto f, io.Open(tmp, OpenMode::kCreateTrunc));
    SK_TRY(f->WriteAt(data, n, 0));
    if (durable) SK_TRY(f->DataSync());
  }
  SK_TRY(io.Rename(tmp, path));
  if (!durable) return Status::OK();
  auto slash = path.find_last_of('/');
  return io.SyncDir(slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash));
}

Result<std::string> ReadSmallFile(Io& io, const std::string& path, size_t max_bytes) {
  SK_ASSIGN_OR_RETURN(auto f, io.Open(path, OpenMode::kRead));
  SK_ASSIGN_OR_RETURN(uint64_t size, f->Size());
  if (size > max_bytes)
    return Status::Corruption(fmt::format("{}: {} bytes, more than the {} expected", path, size,
                                          max_bytes));
  std::string s(size, '\0');
  SK_ASSIGN_OR_RETURN(size_t got, f->ReadAt(s.data(), s.size(), 0));
  s.resize(got);
  return s;
}

std::shared_ptr<Io> DefaultIo() {
  static std::shared_ptr<Io> chosen = [] {
    const char* env = std::getenv("STREAMKIT_IO");
    std::string_view want = env ? env : "";
    if (want == "posix") return PosixIo();
    auto uring = UringIo();
    if (uring.ok()) return uring.value();
    if (want == "io_uring" || want == "uring") {
      std::fprintf(stderr, "streamkit: STREAMKIT_IO=%s but io_uring is unavailable (%s)\n",
                   env, std::strerror(uring.status().err()));
      std::exit(1);
    }
    std::fprintf(stderr,
                 "streamkit: io_uring unavailable (%s); using the portable posix backend\n",
                 std::strerror(uring.status().err()));
    return PosixIo();
  }();
  return chosen;
}

}  // namespace streamkit::io

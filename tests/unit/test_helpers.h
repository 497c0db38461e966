// Shared test fixtures: a temporary directory removed on exit, the backend under test,
// and a deterministic random source.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "io/io.h"
#include "log/batch.h"

namespace streamkit::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "streamkit-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The backend chosen by STREAMKIT_IO (posix or io_uring).
inline std::shared_ptr<io::Io> TestIo() { return io::DefaultIo(); }

inline std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = char(rng());
  return s;
}

// A batch of `n` records "key-i" / "value-i", arrival stamped by the log.
inline Bytes MakeBatch(int n, int first = 0, log::BatchOptions opts = {}, int64_t ts = 1000) {
  log::BatchBuilder b(opts);
  for (int i = 0; i < n; i++) {
    std::string k = "key-" + std::to_string(first + i);
    std::string v = "value-" + std::to_string(first + i);
    b.Add(k, nullptr, v, ts);
  }
  return b.Finish();
}

}  // namespace streamkit::testing

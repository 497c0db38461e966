// Sparse indexes beside each segment (FORMAT.md §3):
//   .index      8-byte entries  (u32 relative offset, u32 byte position): a batch
//               starts at `position` and its base offset is segment base + relative;
//   .timeindex 12-byte entries  (i64 timestamp, u32 relative offset): every batch
//               up to and including the one at that offset arrived at or before
//               `timestamp` (a running maximum), so a lookup never skips a record.
// One entry is added per index_interval bytes of log. Entries live in memory and are
// written out in bulk (Flush); an index lost or torn in a crash is rebuilt from the
// log, so index files are hints checked on load, never trusted blindly. The file is
// opened only to load, write or sync it: a shard holds one open file per segment
// (its log), not three, so 10,000 shards fit under a 20,000 open-file limit.
//
// Thread safety: none; the owning Segment serialises access.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/io.h"

namespace streamkit::log {

struct OffsetEntry {
  static constexpr size_t kSize = 8;
  uint32_t rel_offset;
  uint32_t position;
};

struct TimeEntry {
  static constexpr size_t kSize = 12;
  int64_t timestamp;
  uint32_t rel_offset;
};

template <class E>
class SparseIndex {
 public:
  // Opens (creating if missing) and loads the file. A file whose size is not a whole
  // number of entries, or whose entries do not increase, yields kCorruption; the
  // caller then Reset()s and rebuilds it from the log.
  Status Open(io::Io& io, const std::string& path);
  Status Reset();  // forget every entry and empty the file
  void Add(const E& e) { entries_.push_back(e); }
  void KeepFirst(size_t n);  // drop entries from n on
  Status Flush();            // write entries not yet in the file
  Status Sync();
  const std::vector<E>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  const std::string& path() const { return path_; }

 private:
  io::Io* io_ = nullptr;
  std::string path_;
  std::vector<E> entries_;
  size_t in_file_ = 0;      // entries [0, in_file_) are in the file
  bool shrink_ = false;     // the file holds more entries than in_file_
};

extern template class SparseIndex<OffsetEntry>;
extern template class SparseIndex<TimeEntry>;
using OffsetIndex = SparseIndex<OffsetEntry>;
using TimeIndex = SparseIndex<TimeEntry>;

}  // namespace streamkit::log

// A segment: one .log file of whole batches, with its sparse .index and .timeindex.
//
// The log appends to its last (active) segment only; older segments are sealed and
// immutable until retention removes them. Recovery on open scans only the tail past
// the last index entry: it validates each batch there (header and body CRC) and cuts
// the file at the first incomplete or damaged batch, unless the segment is sealed and
// known to be synced (the log's recovery point): then the damage is kept and reported.
//
// Thread safety: one writer (Append, Seal, Sync: serialised by the Log) and any
// number of concurrent readers (Find*, Read). Readers see only whole batches: the
// committed size is published after the bytes and index entries are in place.
// Durability: Append leaves data in the page cache; Sync() makes it durable.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "io/io.h"
#include "log/batch.h"
#include "log/segment_index.h"

namespace streamkit::log {

// What opening a log found and repaired.
struct RecoveryReport {
  uint64_t truncated_bytes = 0;  // bytes cut from the end of the active segment
  bool torn_tail = false;        // the cut began at an incomplete final batch
  std::string problem;           // what the first bad batch was (empty: none)
  int indexes_rebuilt = 0;       // index files found missing or damaged and rebuilt
  uint64_t scanned_bytes = 0;    // bytes read to validate the tail
  int producer_batches_replayed = 0;
  int segments_dropped = 0;      // segments after a cut one, removed
  // Sealed segments below the recovery point (synced) with a bad batch in the tail
  // that was scanned: kept as they are, reads through the bad batch fail (FORMAT.md §5).
  int damaged_kept = 0;
  std::string damage;            // what the first kept damage was (empty: none)

  bool clean() const {
    return truncated_bytes == 0 && indexes_rebuilt == 0 && segments_dropped == 0 && damaged_kept == 0;
  }
  std::string ToString() const;
};

class Segment {
 public:
  static Result<std::shared_ptr<Segment>> Create(io::Io& io, const std::string& dir,
                                                 uint64_t base_offset, size_t index_interval);
  // Opens a segment: validates the tail past the last index entry (headers and body
  // CRCs) and cuts it at the first bad batch. `synced_end` > 0: the segment is sealed
  // and was synced, ending where the next segment begins (= synced_end); a bad batch
  // is then damage to stored data, not a torn write: nothing is cut, the bytes stay
  // and reads through the bad batch fail (FORMAT.md §5).
  static Result<std::shared_ptr<Segment>> Open(io::Io& io, const std::string& dir,
                                               uint64_t base_offset, size_t index_interval,
                                               uint64_t synced_end, RecoveryReport* report);
  ~Segment();

  uint64_t base_offset() const { return base_; }
  uint64_t next_offset() const { return next_offset_.load(std::memory_order_acquire); }
  uint64_t size() const { return size_.load(std::memory_order_acquire); }
  bool empty() const { return size() == 0; }
  // A write failed and could not be cut back: reopen the log to recover.
  bool broken() const { return broken_; }
  // Newest arrival time of any record (INT64_MIN when empty); first batch's time.
  int64_t max_arrival_ms() const { return max_arrival_.load(std::memory_order_acquire); }
  int64_t first_arrival_ms() const { return first_arrival_.load(std::memory_order_acquire); }
  // Kept with damage at open (synced_end, Open): what lies past the damage was not
  // scanned, so its arrival times are unknown; the log bounds them from above with
  // the next segment's first arrival (RaiseMaxArrival), so that retention does not
  // remove the segment early.
  bool kept_damage() const { return kept_damage_; }
  void RaiseMaxArrival(int64_t ms) {
    if (ms > max_arrival_.load(std::memory_order_relaxed)) max_arrival_.store(ms, std::memory_order_release);
  }
  // The newest append_time_ms stamped by the log (not create times): the floor for the
  // next stamp, so arrival times never go backwards across a restart.
  int64_t last_append_time_ms() const { return last_append_time_.load(std::memory_order_acquire); }

  // Writes one validated, stamped batch whose base offset is next_offset(). On a
  // failed write the file is cut back; if that fails too the segment is broken and
  // returns kIoError from then on. Blocks are reserved ahead of the end up to
  // `reserve_limit` (the size at which the log rolls this segment); 0: none.
  Status Append(std::span<const uint8_t> batch, const BatchHeader& h, uint64_t reserve_limit);

  // Position of the batch holding `offset` (base_offset() <= offset < next_offset()).
  Result<uint64_t> FindPosition(uint64_t offset);
  // The first offset whose arrival time is >= ts, or next_offset() if none.
  Result<uint64_t> FindOffsetForTime(int64_t ts);
  // Reads whole batches from `pos`: at least one, then more while the total stays
  // within max_bytes and base offsets stay below `offset_limit`. Appends to `out`.
  // Returns the offset after the last batch read.
  Result<uint64_t> ReadBatches(uint64_t pos, size_t max_bytes, uint64_t offset_limit, Bytes* out);

  Status FlushIndexes();
  Status Sync();  // data, then indexes
  // Writes out the indexes and gives back the blocks reserved beyond the end (unless
  // known to be at most 1/128 of the segment or 64 KiB); no appends after this. Data
  // is synced by the log later.
  Status Seal();
  // Gives back disk blocks reserved ahead of the end (see Append), unless they are
  // known to be at most `tolerate` bytes; e.g. when the log closes (0). Appends may
  // continue (and reserve again).
  Status ReleaseSpare(uint64_t tolerate = 0);
  Status RemoveFiles(io::Io& io);

  io::File& file() { return *file_; }
  const std::string& path() const { return file_->path(); }

 private:
  Segment(uint64_t base, size_t index_interval) : base_(base), index_interval_(index_interval) {}
  Status LoadIndexes(io::Io& io, const std::string& dir, uint64_t synced_end, RecoveryReport* report);
  // Walks batches from (pos, offset) to the end of the file, checking headers and body
  // CRCs and adding index entries. Stops at the first bad batch and describes it in
  // *problem (empty: none), *torn telling whether it looks like a torn write.
  Status ScanFrom(uint64_t pos, uint64_t offset, std::string* problem, bool* torn, RecoveryReport* report);
  void NoteBatch(uint64_t pos, const BatchHeader& h);  // index bookkeeping
  void ReserveAhead(uint64_t end, uint64_t limit);      // preallocate blocks beyond `end`, up to `limit`
  Status ReadHeaderAt(uint64_t pos, BatchHeader* h);   // read and check one header

  const uint64_t base_;
  const size_t index_interval_;
  std::unique_ptr<io::File> file_;
  std::atomic<uint64_t> size_{0};
  std::atomic<uint64_t> next_offset_{0};
  std::atomic<int64_t> max_arrival_{INT64_MIN};
  std::atomic<int64_t> first_arrival_{INT64_MIN};
  std::atomic<int64_t> last_append_time_{INT64_MIN};
  uint64_t bytes_since_entry_ = 0;
  static constexpr int kIndexFlushEvery = 1024;  // appends between index writes
  static constexpr uint64_t kSpareFrom = 1u << 20;  // reserve ahead once 1 MiB is written, in MiB steps
  static constexpr uint64_t kSpareMax = 8u << 20;  // at most this much reserved beyond the end (one fallocate 40-90 us here)
  int appends_since_flush_ = 0;
  bool broken_ = false;
  bool sealed_ = false;
  bool kept_damage_ = false;
  // Blocks reserved ahead of the end, up to spare_end_ (Append). An opened segment
  // may still hold some from before a crash, of unknown extent: crash_spare_ makes
  // Seal/Close give them back. preallocate_ turns off after the first failure.
  uint64_t spare_end_ = 0;
  bool crash_spare_ = false;
  bool preallocate_ = true;

  std::mutex index_mu_;  // guards the indexes' entry vectors
  OffsetIndex offset_index_;
  TimeIndex time_index_;
};

}  // namespace streamkit::log

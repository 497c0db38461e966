// Log: the append-only log of one shard, a directory of segments (FORMAT.md §1).
//
// Appends take a batch encoded by a producer, validate it, stamp its base offset and
// append time into the header and write it as is (no re-encoding). Reads return
// whole batches as bytes, ready to be sent to a socket. Recovery on open scans each
// segment's tail past its last index entry; it cuts a torn tail, but keeps (and
// reports) damage in sealed segments below the recovery point, which were synced.
// Retention removes whole segments, oldest first.
//
// Durability policy (per log):
//   always        an append is acknowledged once an fdatasync covers it; appenders
//                 waiting at the same time share one fdatasync (group commit);
//   interval=MS   acknowledged when written; a background thread syncs every MS;
//   never         acknowledged when written; synced only at roll and close.
// WaitDurable(end) blocks until the policy's promise holds for offsets below `end`.
// A failed fdatasync poisons the log (the kernel may have dropped the dirty pages):
// every later append fails until the log is reopened and recovered.
//
// Offsets: start_offset() <= synced_offset() <= end_offset(), asserted on update.
// Thread safety: every method may be called from any thread. Appends are serialised
// by one lock; reads run concurrently with appends and see a prefix of whole batches.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "io/io.h"
#include "log/batch.h"
#include "log/producer_state.h"
#include "log/segment.h"

namespace streamkit::log {

struct Durability {
  enum class Mode { kAlways, kInterval, kNever };
  Mode mode = Mode::kInterval;
  int interval_ms = 200;

  // "always", "never", "interval" (200 ms), "interval=MS", "interval=MSms".
  static Result<Durability> Parse(std::string_view text);
  std::string ToString() const;
};

constexpr int64_t kHourMs = 3600 * 1000;

struct LogOptions {
  uint64_t segment_bytes = 128u << 20;  // roll when the next batch would pass this
  int64_t segment_ms = kHourMs;         // roll when the first batch is older than this
  size_t index_interval_bytes = 4096;   // one sparse index entry per this many log bytes
  Durability durability;
  Limits limits;
  bool validate_records = true;         // walk every record on append, not only the CRCs
  int64_t retention_ms = 24 * kHourMs;  // Kinesis default
  uint64_t retention_bytes = 0;         // 0: no size cap
  // interval policy: run a thread that syncs every interval (a server with many logs
  // turns this off and calls Sync() from one thread of its own).
  bool background_sync = true;
  uint64_t initial_offset = 0;          // the first offset of a new (empty) log
  // Wall clock in ms since the epoch; tests substitute their own.
  std::function<int64_t()> clock;
};

struct AppendResult {
  uint64_t base_offset = 0;
  uint64_t last_offset = 0;
  int64_t append_time_ms = 0;
  bool duplicate = false;  // a retried batch, answered with its original offsets
};

struct ReadResult {
  uint64_t next_offset = 0;  // where the next read continues
  size_t bytes = 0;          // bytes appended to `out` (0: nothing at that offset yet)
};

struct RetentionResult {
  int segments_removed = 0;
  uint64_t bytes_removed = 0;
  uint64_t new_start_offset = 0;
};

class Log {
 public:
  static Result<std::unique_ptr<Log>> Open(std::shared_ptr<io::Io> io, std::string dir,
                                           LogOptions opts, RecoveryReport* report = nullptr);
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Validates, stamps in place and writes one batch.
  Result<AppendResult> Append(std::span<uint8_t> batch, bool keep_time = false);
  // Blocks until offsets below `end` are durable under the policy.
  Status WaitDurable(uint64_t end);
  // fdatasync now; everything appended before the call is durable when it returns OK.
  Status Sync();

  // Reads whole batches starting with the one that holds `offset`: at least one
  // batch, more while they fit in max_bytes, none at or past `limit` (default: the
  // end). A batch may begin before `offset` (RecordCursor skips those records).
  // kNotFound when `offset` is below start_offset() (removed by retention).
  Result<ReadResult> Read(uint64_t offset, size_t max_bytes, Bytes* out,
                          uint64_t limit = UINT64_MAX);
  // The first offset whose arrival time is >= ts_ms (end_offset() if none).
  Result<uint64_t> OffsetForTime(int64_t ts_ms);

  Result<RetentionResult> ApplyRetention();
  void SetRetention(int64_t retention_ms, uint64_t retention_bytes);
  Status Roll();
  // Syncs, writes the producer snapshot and stops the background syncer. Idempotent.
  Status Close();
  // A sealed log refuses appends (kOutOfRange) but for retries of batches it already
  // has; reads go on. Used when a reshard closes the shard.
  void Seal(bool sealed = true);

  uint64_t start_offset() const;
  uint64_t end_offset() const { return end_.load(std::memory_order_acquire); }
  uint64_t synced_offset() const { return synced_.load(std::memory_order_acquire); }
  // Offsets below this are acknowledged under the policy (what consumers may see).
  uint64_t durable_offset() const {
    return opts_.durability.mode == Durability::Mode::kAlways ? synced_offset() : end_offset();
  }
  uint64_t size_bytes() const;
  int64_t last_append_ms() const;  // newest arrival time (INT64_MIN when empty)
  size_t segment_count() const;
  const std::string& dir() const { return dir_; }
  const LogOptions& options() const { return opts_; }

 private:
  Log(std::shared_ptr<io::Io> io, std::string dir, LogOptions opts);
  Status Load(RecoveryReport* report);
  Status LoadProducerState(RecoveryReport* report);
  // The recovery point (FORMAT.md §5): sealed segments that end at or below it were
  // synced, so recovery keeps their bytes instead of cutting a bad tail.
  uint64_t ReadRecoveryPoint();
  Status WriteRecoveryPoint(uint64_t offset);
  Status WriteProducerSnapshotLocked();
  Status RollLocked();
  void PoisonLocked(const Status& s);
  int64_t Now() const { return opts_.clock(); }
  void SyncLoop();
  void AdvanceSynced(uint64_t to);

  std::shared_ptr<io::Io> io_;
  const std::string dir_;
  LogOptions opts_;

  mutable std::mutex mu_;  // segments_, producers_, appends
  std::map<uint64_t, std::shared_ptr<Segment>> segments_;  // by base offset
  std::shared_ptr<Segment> active_;
  ProducerState producers_;
  int64_t last_append_ms_ = INT64_MIN;
  Status failed_;  // set when the log must be reopened
  std::atomic<bool> failed_flag_{false};  // failed_ is set (read without mu_)
  std::vector<std::shared_ptr<Segment>> unsynced_sealed_;  // rolled, data not yet synced
  bool dir_dirty_ = false;  // a segment file was created since the last directory sync
  std::mutex sync_exec_mu_;  // one Sync() at a time (it hands off unsynced_sealed_)
  uint64_t recovery_point_ = 0;  // as last written (under sync_exec_mu_ after Load)
  bool closed_ = false;
  bool sealed_ = false;
  std::atomic<uint64_t> end_{0};
  std::atomic<uint64_t> synced_{0};

  // Group commit.
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool sync_running_ = false;

  // Background syncer (interval policy).
  std::thread syncer_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
};

}  // namespace streamkit::log

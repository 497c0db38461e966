// Batches: the unit that producers encode, the log stores and consumers receive.
//
// A producer builds a batch once with BatchBuilder. The log validates it
// (ValidateBatch), stamps base offset and append time into the header (StampBatch,
// which rewrites only the 28-byte header CRC) and writes the bytes as received. A
// consumer walks records with BatchRecords. Layout: docs/FORMAT.md §2.
//
// Thread safety: all functions are pure; a BatchBuilder or BatchRecords belongs to
// one thread.
#pragma once

#include <span>
#include <string_view>

#include "log/batch_format.h"
#include "util/coding.h"
#include "util/status.h"
#include "util/u128.h"

namespace streamkit::log {

// Per-stream limits checked on every batch (Kinesis defaults).
struct Limits {
  size_t max_record_bytes = 1u << 20;  // key + data of one record
  size_t min_key_bytes = 1;
  size_t max_key_bytes = 256;
  size_t max_batch_bytes = kMaxBatchBytes;
  // A shard's hash key range: each record's explicit hash key, or MD5 of its
  // partition key, must fall in [hash_start, hash_end] (kOutOfRange otherwise).
  bool check_hash_range = false;
  u128 hash_start = 0;
  u128 hash_end = ~u128(0);
};

struct BatchHeader {
  uint32_t batch_length = 0;
  uint8_t version = 0;
  uint64_t base_offset = 0;
  int64_t append_time_ms = 0;
  uint32_t body_crc = 0;
  uint32_t header_crc = 0;
  uint16_t attributes = 0;
  uint16_t producer_epoch = 0;
  uint32_t record_count = 0;
  int32_t base_sequence = -1;
  uint32_t records_size = 0;
  int64_t producer_id = -1;
  int64_t first_timestamp = 0;
  int64_t max_timestamp = 0;

  Codec codec() const { return Codec(attributes & kCodecMask); }
  TimestampType timestamp_type() const {
    return (attributes & kTimestampTypeBit) ? TimestampType::kCreate : TimestampType::kLogAppend;
  }
  uint64_t last_offset() const { return base_offset + record_count - 1; }
  uint64_t next_offset() const { return base_offset + record_count; }
  // The newest arrival time of any record in the batch (what retention and the time
  // index use).
  int64_t max_arrival_ms() const {
    return timestamp_type() == TimestampType::kCreate ? max_timestamp : append_time_ms;
  }
};

// Decodes the fixed header without any check. `p` must hold kBatchHeaderSize bytes.
BatchHeader DecodeHeader(const uint8_t* p);

// Checks the header alone: version, reserved bytes, header CRC, length bounds, known
// attributes, record count. Enough to walk a segment batch by batch.
Status CheckHeader(const uint8_t* p, BatchHeader* out);

// Full validation of one batch of exactly batch.size() bytes: header, body CRC and,
// when `limits` is given, every record (count, offset deltas, key and record sizes,
// timestamps). Compressed batches are decompressed into `scratch` for that.
Status ValidateBatch(std::span<const uint8_t> batch, const Limits* limits, BatchHeader* out,
                     Bytes* scratch);

// The two record walks of ValidateBatch over an uncompressed records section, for
// tests: RecordsValid is the fast yes/no check, CheckRecords the one that names the
// first fault (and is run only when RecordsValid says no). They accept the same.
bool RecordsValid(const uint8_t* p, size_t n, const BatchHeader& h, const Limits& limits);
Status CheckRecords(const uint8_t* p, size_t n, const BatchHeader& h, const Limits& limits);

// Writes base_offset and append_time into the header and recomputes the header CRC.
void StampBatch(uint8_t* batch, uint64_t base_offset, int64_t append_time_ms);

struct BatchOptions {
  Codec codec = Codec::kNone;
  int zstd_level = 1;
  TimestampType timestamp_type = TimestampType::kLogAppend;
  int64_t producer_id = -1;
  uint16_t producer_epoch = 0;
  int32_t base_sequence = -1;
};

// Encodes records into a batch, once. Records are appended straight after a
// reserved header, so an uncompressed Finish() only fills the header.
class BatchBuilder {
 public:
  explicit BatchBuilder(BatchOptions opts = {});
  void Reset(BatchOptions opts);

  void Add(std::string_view key, const u128* hash_key, std::string_view data, int64_t timestamp_ms);

  uint32_t record_count() const { return count_; }
  // Bytes the batch would take uncompressed.
  size_t size_bytes() const { return buf_.size(); }
  bool empty() const { return count_ == 0; }

  // Returns the finished batch (base offset 0, append time 0) and resets the builder
  // with the same options.
  Bytes Finish();

 private:
  BatchOptions opts_;
  Bytes buf_;
  size_t reserve_hint_ = 0;  // size of the last batch built
  uint32_t count_ = 0;
  int64_t first_ts_ = 0;
  int64_t max_ts_ = 0;
};

struct Record {
  uint64_t offset = 0;
  int64_t timestamp_ms = 0;  // the record's own time (first_timestamp + delta)
  int64_t arrival_ms = 0;    // append time, or the record's own time for create-time batches
  std::string_view key;
  bool has_hash_key = false;
  u128 hash_key = 0;
  std::string_view data;
};

// Walks the records of one batch. The batch bytes (and `scratch`, for compressed
// batches) must outlive the Record views.
class BatchRecords {
 public:
  // Checks header and body CRC, decompresses if needed.
  Status Open(std::span<const uint8_t> batch, Bytes* scratch);
  const BatchHeader& header() const { return h_; }
  // False at the end or on a malformed record (then status() says why).
  bool Next(Record* r);
  const Status& status() const { return status_; }

 private:
  BatchHeader h_;
  ByteReader rd_{nullptr, 0};
  uint32_t index_ = 0;
  Status status_;
};

// Walks the records of a byte range holding whole batches (what a log read returns),
// starting at the first record >= `from_offset`.
class RecordCursor {
 public:
  RecordCursor(std::span<const uint8_t> batches, uint64_t from_offset)
      : rest_(batches), from_(from_offset) {}
  bool Next(Record* r);
  const Status& status() const { return status_; }

 private:
  std::span<const uint8_t> rest_;
  uint64_t from_;
  bool in_batch_ = false;
  BatchRecords batch_;
  Bytes scratch_;
  Status status_;
};

}  // namespace streamkit::log

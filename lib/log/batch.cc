#include "log/batch.h"

#include <zstd.h>

#include <memory>

#include <algorithm>

#include "util/crc32c.h"
#include "util/md5.h"

namespace streamkit::log {
namespace {

// Decodes record number `index` of batch `h` (FORMAT.md §2.3).
Status DecodeRecord(ByteReader& rd, const BatchHeader& h, uint32_t index, Record* r) {
  uint64_t len;
  if (!rd.Varint(&len) || len > rd.remaining())
    return Status::Corruption(fmt::format("record {}: length runs past the batch", index));
  ByteReader in(rd.pos(), size_t(len));
  const uint8_t* skipped;
  (void)rd.Skip(size_t(len), &skipped);

  uint8_t attrs;
  uint64_t ts_zz, off_delta, key_len, data_len;
  if (!in.Fixed8(&attrs) || !in.Varint(&ts_zz) || !in.Varint(&off_delta))
    return Status::Corruption(fmt::format("record {}: truncated record header", index));
  if ((attrs & ~kRecordHasHashKey) != 0)
    return Status::Corruption(fmt::format("record {}: unknown attributes {:#x}", index, attrs));
  if (off_delta != index)
    return Status::Corruption(
        fmt::format("record {}: offset delta {} (expected {})", index, off_delta, index));
  const uint8_t* key;
  if (!in.Varint(&key_len) || !in.Skip(size_t(key_len), &key))
    return Status::Corruption(fmt::format("record {}: key runs past the record", index));
  r->has_hash_key = (attrs & kRecordHasHashKey) != 0;
  if (r->has_hash_key) {
    const uint8_t* hk;
    if (!in.Skip(kHashKeySize, &hk))
      return Status::Corruption(fmt::format("record {}: hash key runs past the record", index));
    r->hash_key = DecodeU128BE(hk);
  } else {
    r->hash_key = 0;
  }
  const uint8_t* data;
  if (!in.Varint(&data_len) || !in.Skip(size_t(data_len), &data))
    return Status::Corruption(fmt::format("record {}: data runs past the record", index));
  if (in.remaining() != 0)
    return Status::Corruption(fmt::format("record {}: {} stray bytes", index, in.remaining()));

  r->offset = h.base_offset + index;
  if (index == 0 && ts_zz != 0)
    return Status::Corruption("record 0: timestamp delta is not 0");
  // Unsigned arithmetic: a hostile delta wraps instead of overflowing.
  r->timestamp_ms = int64_t(uint64_t(h.first_timestamp) + uint64_t(ZigZagDecode(ts_zz)));
  r->arrival_ms =
      h.timestamp_type() == TimestampType::kCreate ? r->timestamp_ms : h.append_time_ms;
  r->key = std::string_view(reinterpret_cast<const char*>(key), size_t(key_len));
  r->data = std::string_view(reinterpret_cast<const char*>(data), size_t(data_len));
  return Status::OK();
}

}  // namespace

// The record checks of ValidateBatch without building Records: true when every
// record is well formed and within `limits` and the last one ends the section
// exactly. It accepts exactly what the checked walk (DecodeRecord and the limit
// checks) accepts; on false, that walk runs to name the first fault.
bool RecordsValid(const uint8_t* p, size_t n, const BatchHeader& h, const Limits& limits) {
  const uint8_t* const end = p + n;
  int64_t max_ts = INT64_MIN;
  for (uint32_t i = 0; i < h.record_count; i++) {
    uint64_t len, ts_zz, off_delta, key_len, data_len;
    p = DecodeVarint64(p, end, &len);
    if (p == nullptr || len > uint64_t(end - p) || len == 0) return false;
    const uint8_t* const rend = p + len;
    uint8_t attrs = *p++;
    if ((attrs & ~kRecordHasHashKey) != 0) return false;
    if ((p = DecodeVarint64(p, rend, &ts_zz)) == nullptr || (i == 0 && ts_zz != 0)) return false;
    if ((p = DecodeVarint64(p, rend, &off_delta)) == nullptr || off_delta != i) return false;
    if ((p = DecodeVarint64(p, rend, &key_len)) == nullptr || key_len > uint64_t(rend - p)) return false;
    const uint8_t* key = p;
    p += key_len;
    u128 hash_key = 0;
    const bool has_hash_key = (attrs & kRecordHasHashKey) != 0;
    if (has_hash_key) {
      if (uint64_t(rend - p) < kHashKeySize) return false;
      hash_key = DecodeU128BE(p);
      p += kHashKeySize;
    }
    if ((p = DecodeVarint64(p, rend, &data_len)) == nullptr || data_len != uint64_t(rend - p)) return false;
    p = rend;
    if (key_len < limits.min_key_bytes || key_len > limits.max_key_bytes ||
        key_len + data_len > limits.max_record_bytes)
      return false;
    if (limits.check_hash_range) {
      u128 hk = has_hash_key ? hash_key
                             : Md5HashKey(std::string_view(reinterpret_cast<const char*>(key), size_t(key_len)));
      if (hk < limits.hash_start || hk > limits.hash_end) return false;
    }
    max_ts = std::max(max_ts, int64_t(uint64_t(h.first_timestamp) + uint64_t(ZigZagDecode(ts_zz))));
  }
  return p == end && max_ts == h.max_timestamp;
}

namespace {

// Returns the uncompressed records section, decompressing into `scratch` if needed.
Status RecordsSection(std::span<const uint8_t> batch, const BatchHeader& h, Bytes* scratch,
                      const uint8_t** p, size_t* n) {
  const uint8_t* body = batch.data() + kBatchHeaderSize;
  size_t body_n = batch.size() - kBatchHeaderSize;
  switch (h.codec()) {
    case Codec::kNone:
      if (body_n != h.records_size)
        return Status::Corruption(fmt::format("records_size {} but {} bytes follow the header",
                                              h.records_size, body_n));
      *p = body;
      *n = body_n;
      return Status::OK();
    case Codec::kZstd: {
      scratch->resize(h.records_size);
      size_t got = ZSTD_decompress(scratch->data(), scratch->size(), body, body_n);
      if (ZSTD_isError(got))
        return Status::Corruption(fmt::format("zstd: {}", ZSTD_getErrorName(got)));
      if (got != h.records_size)
        return Status::Corruption(
            fmt::format("zstd: {} bytes decompressed, header says {}", got, h.records_size));
      *p = scratch->data();
      *n = got;
      return Status::OK();
    }
  }
  return Status::Corruption(fmt::format("unknown codec {}", int(h.codec())));
}

}  // namespace

BatchHeader DecodeHeader(const uint8_t* p) {
  BatchHeader h;
  h.batch_length = DecodeFixed32(p + kLengthPos);
  h.version = p[kVersionPos];
  h.base_offset = DecodeFixed64(p + kBaseOffsetPos);
  h.append_time_ms = int64_t(DecodeFixed64(p + kAppendTimePos));
  h.body_crc = DecodeFixed32(p + kBodyCrcPos);
  h.header_crc = DecodeFixed32(p + kHeaderCrcPos);
  h.attributes = DecodeFixed16(p + kAttributesPos);
  h.producer_epoch = DecodeFixed16(p + kProducerEpochPos);
  h.record_count = DecodeFixed32(p + kRecordCountPos);
  h.base_sequence = int32_t(DecodeFixed32(p + kBaseSequencePos));
  h.records_size = DecodeFixed32(p + kRecordsSizePos);
  h.producer_id = int64_t(DecodeFixed64(p + kProducerIdPos));
  h.first_timestamp = int64_t(DecodeFixed64(p + kFirstTimestampPos));
  h.max_timestamp = int64_t(DecodeFixed64(p + kMaxTimestampPos));
  return h;
}

Status CheckHeader(const uint8_t* p, BatchHeader* out) {
  BatchHeader h = DecodeHeader(p);
  if (h.version != kBatchVersion)
    return Status::Corruption(fmt::format("unsupported batch version {}", h.version));
  if (p[kReservedPos] != 0 || p[kReservedPos + 1] != 0 || p[kReservedPos + 2] != 0)
    return Status::Corruption("reserved header bytes are not zero");
  uint32_t crc = crc32c::Value(p, kHeaderCrcPos);
  if (crc != h.header_crc)
    return Status::Corruption(
        fmt::format("header crc mismatch (stored {:#010x}, computed {:#010x})", h.header_crc, crc));
  if (h.batch_length < kBatchHeaderSize || h.batch_length > kMaxBatchBytes)
    return Status::Corruption(fmt::format("batch length {} out of range", h.batch_length));
  if ((h.attributes & ~kKnownAttributes) != 0 || uint16_t(h.codec()) > uint16_t(Codec::kZstd))
    return Status::Corruption(fmt::format("unknown attributes {:#06x}", h.attributes));
  if (h.record_count == 0 || h.record_count > kMaxRecordsPerBatch)
    return Status::Corruption(fmt::format("record count {} out of range", h.record_count));
  if (h.records_size > kMaxRecordsSize)
    return Status::Corruption(fmt::format("records size {} out of range", h.records_size));
  if (out) *out = h;
  return Status::OK();
}

Status ValidateBatch(std::span<const uint8_t> batch, const Limits* limits, BatchHeader* out,
                     Bytes* scratch) {
  if (batch.size() < kBatchHeaderSize)
    return Status::Corruption(fmt::format("batch of {} bytes is shorter than its header", batch.size()));
  BatchHeader h;
  SK_TRY(CheckHeader(batch.data(), &h));
  if (h.batch_length != batch.size())
    return Status::Corruption(
        fmt::format("batch length {} but {} bytes given", h.batch_length, batch.size()));
  if (limits && h.batch_length > limits->max_batch_bytes)
    return Status::InvalidArgument(fmt::format("batch of {} bytes exceeds the limit of {}",
                                               h.batch_length, limits->max_batch_bytes));
  uint32_t crc = crc32c::Value(batch.data() + kBodyCrcStart, batch.size() - kBodyCrcStart);
  if (crc != h.body_crc)
    return Status::Corruption(
        fmt::format("body crc mismatch (stored {:#010x}, computed {:#010x})", h.body_crc, crc));
  if (limits) {
    const uint8_t* p;
    size_t n;
    SK_TRY(RecordsSection(batch, h, scratch, &p, &n));
    if (!RecordsValid(p, n, h, *limits)) SK_TRY(CheckRecords(p, n, h, *limits));
  }
  if (out) *out = h;
  return Status::OK();
}

Status CheckRecords(const uint8_t* p, size_t n, const BatchHeader& h, const Limits& limits) {
  ByteReader rd(p, n);
  int64_t max_ts = INT64_MIN;
  for (uint32_t i = 0; i < h.record_count; i++) {
    Record r;
    SK_TRY(DecodeRecord(rd, h, i, &r));
    if (r.key.size() < limits.min_key_bytes || r.key.size() > limits.max_key_bytes)
      return Status::InvalidArgument(fmt::format("record {}: partition key of {} bytes (allowed {}-{})", i,
                                                 r.key.size(), limits.min_key_bytes, limits.max_key_bytes));
    if (r.key.size() + r.data.size() > limits.max_record_bytes)
      return Status::InvalidArgument(fmt::format("record {}: {} bytes of key and data exceed the limit of {}", i,
                                                 r.key.size() + r.data.size(), limits.max_record_bytes));
    if (limits.check_hash_range) {
      u128 hk = r.has_hash_key ? r.hash_key : Md5HashKey(r.key);
      if (hk < limits.hash_start || hk > limits.hash_end)
        return Status::OutOfRange(fmt::format("record {}: hash key {} is outside the shard's range {}-{}", i,
                                              U128ToString(hk), U128ToString(limits.hash_start),
                                              U128ToString(limits.hash_end)));
    }
    max_ts = std::max(max_ts, r.timestamp_ms);
  }
  if (rd.remaining() != 0)
    return Status::Corruption(fmt::format("{} stray bytes after the last record", rd.remaining()));
  if (max_ts != h.max_timestamp)
    return Status::Corruption(fmt::format("max timestamp {} but records reach {}", h.max_timestamp, max_ts));
  return Status::OK();
}

void StampBatch(uint8_t* batch, uint64_t base_offset, int64_t append_time_ms) {
  EncodeFixed64(batch + kBaseOffsetPos, base_offset);
  EncodeFixed64(batch + kAppendTimePos, uint64_t(append_time_ms));
  EncodeFixed32(batch + kHeaderCrcPos, crc32c::Value(batch, kHeaderCrcPos));
}

BatchBuilder::BatchBuilder(BatchOptions opts) { Reset(opts); }

void BatchBuilder::Reset(BatchOptions opts) {
  opts_ = opts;
  // The last batch's size: one allocation instead of a chain of doublings (and
  // copies) when Finish() handed the buffer away.
  if (buf_.capacity() < reserve_hint_) buf_.reserve(reserve_hint_);
  buf_.assign(kBatchHeaderSize, 0);
  count_ = 0;
}

void BatchBuilder::Add(std::string_view key, const u128* hash_key, std::string_view data,
                       int64_t timestamp_ms) {
  if (count_ == 0) {
    first_ts_ = timestamp_ms;
    max_ts_ = timestamp_ms;
  }
  max_ts_ = std::max(max_ts_, timestamp_ms);
  uint64_t ts_zz = ZigZagEncode(int64_t(uint64_t(timestamp_ms) - uint64_t(first_ts_)));
  size_t body = 1 + size_t(VarintLength(ts_zz)) + size_t(VarintLength(count_)) +
                size_t(VarintLength(key.size())) + key.size() + (hash_key ? kHashKeySize : 0) +
                size_t(VarintLength(data.size())) + data.size();
  size_t at = buf_.size();
  buf_.resize(at + size_t(VarintLength(body)) + body);
  uint8_t* p = buf_.data() + at;
  p = EncodeVarint64(p, body);
  *p++ = hash_key ? kRecordHasHashKey : 0;
  p = EncodeVarint64(p, ts_zz);
  p = EncodeVarint64(p, count_);
  p = EncodeVarint64(p, key.size());
  std::memcpy(p, key.data(), key.size());
  p += key.size();
  if (hash_key) {
    EncodeU128BE(p, *hash_key);
    p += kHashKeySize;
  }
  p = EncodeVarint64(p, data.size());
  if (!data.empty()) std::memcpy(p, data.data(), data.size());
  p += data.size();
  SK_ASSERT(p == buf_.data() + buf_.size(), "record size miscomputed");
  count_++;
}

Bytes BatchBuilder::Finish() {
  SK_ASSERT(count_ > 0, "Finish() on an empty batch");
  size_t records_size = buf_.size() - kBatchHeaderSize;
  reserve_hint_ = buf_.size();
  Bytes out;
  if (opts_.codec == Codec::kZstd) {
    // One context per thread, freed when the thread ends.
    thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> ctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
    ZSTD_CCtx* cctx = ctx.get();
    size_t bound = ZSTD_compressBound(records_size);
    out.resize(kBatchHeaderSize + bound);
    size_t n = ZSTD_compressCCtx(cctx, out.data() + kBatchHeaderSize, bound,
                                 buf_.data() + kBatchHeaderSize, records_size, opts_.zstd_level);
    SK_ASSERT(!ZSTD_isError(n), "zstd compression failed: {}", ZSTD_getErrorName(n));
    out.resize(kBatchHeaderSize + n);
  } else {
    out.swap(buf_);
  }
  uint8_t* p = out.data();
  std::memset(p, 0, kBatchHeaderSize);
  EncodeFixed32(p + kLengthPos, uint32_t(out.size()));
  p[kVersionPos] = kBatchVersion;
  uint16_t attrs = uint16_t(opts_.codec) |
                   (opts_.timestamp_type == TimestampType::kCreate ? kTimestampTypeBit : 0);
  EncodeFixed16(p + kAttributesPos, attrs);
  EncodeFixed16(p + kProducerEpochPos, opts_.producer_epoch);
  EncodeFixed32(p + kRecordCountPos, count_);
  EncodeFixed32(p + kBaseSequencePos, uint32_t(opts_.base_sequence));
  EncodeFixed32(p + kRecordsSizePos, uint32_t(records_size));
  EncodeFixed64(p + kProducerIdPos, uint64_t(opts_.producer_id));
  EncodeFixed64(p + kFirstTimestampPos, uint64_t(first_ts_));
  EncodeFixed64(p + kMaxTimestampPos, uint64_t(max_ts_));
  EncodeFixed32(p + kBodyCrcPos,
                crc32c::Value(p + kBodyCrcStart, out.size() - kBodyCrcStart));
  StampBatch(p, 0, 0);
  Reset(opts_);
  return out;
}

Status BatchRecords::Open(std::span<const uint8_t> batch, Bytes* scratch) {
  index_ = 0;
  status_ = ValidateBatch(batch, nullptr, &h_, scratch);
  if (!status_.ok()) return status_;
  const uint8_t* p;
  size_t n;
  status_ = RecordsSection(batch, h_, scratch, &p, &n);
  if (!status_.ok()) return status_;
  rd_ = ByteReader(p, n);
  return Status::OK();
}

bool BatchRecords::Next(Record* r) {
  if (!status_.ok() || index_ >= h_.record_count) return false;
  status_ = DecodeRecord(rd_, h_, index_, r);
  if (!status_.ok()) return false;
  index_++;
  return true;
}

bool RecordCursor::Next(Record* r) {
  for (;;) {
    if (!status_.ok()) return false;
    if (in_batch_) {
      while (batch_.Next(r))
        if (r->offset >= from_) return true;
      if (!batch_.status().ok()) {
        status_ = batch_.status();
        return false;
      }
      in_batch_ = false;
    }
    if (rest_.empty()) return false;
    if (rest_.size() < kBatchHeaderSize) {
      status_ = Status::Corruption(fmt::format("{} bytes left, less than a batch header", rest_.size()));
      return false;
    }
    uint32_t len = DecodeFixed32(rest_.data() + kLengthPos);
    if (len < kBatchHeaderSize || len > rest_.size()) {
      status_ = Status::Corruption(fmt::format("batch length {} with {} bytes left", len, rest_.size()));
      return false;
    }
    status_ = batch_.Open(rest_.subspan(0, len), &scratch_);
    rest_ = rest_.subspan(len);
    if (!status_.ok()) return false;
    if (batch_.header().last_offset() < from_) continue;  // whole batch before the start
    in_batch_ = true;
  }
}

}  // namespace streamkit::log

// The on-disk and on-wire batch layout. docs/FORMAT.md §2 is the normative text;
// every constant here points back to it. All integers are little-endian.
#pragma once

#include <cstddef>
#include <cstdint>

namespace streamkit::log {

constexpr uint8_t kBatchVersion = 1;

// Batch header (FORMAT.md §2.1). Offsets in bytes from the start of the batch.
constexpr size_t kLengthPos = 0;          // u32 batch_length: whole batch, header included
constexpr size_t kVersionPos = 4;         // u8  version = 1
constexpr size_t kReservedPos = 5;        // 3 bytes, zero
constexpr size_t kBaseOffsetPos = 8;      // u64 base_offset       (stamped by the log)
constexpr size_t kAppendTimePos = 16;     // i64 append_time_ms    (stamped by the log)
constexpr size_t kBodyCrcPos = 24;        // u32 CRC-32C of bytes [32, batch_length)
constexpr size_t kHeaderCrcPos = 28;      // u32 CRC-32C of bytes [0, 28)
constexpr size_t kAttributesPos = 32;     // u16 attributes
constexpr size_t kProducerEpochPos = 34;  // u16 producer_epoch
constexpr size_t kRecordCountPos = 36;    // u32 record_count
constexpr size_t kBaseSequencePos = 40;   // i32 base_sequence (-1: none)
constexpr size_t kRecordsSizePos = 44;    // u32 records_size (uncompressed records section)
constexpr size_t kProducerIdPos = 48;     // i64 producer_id (-1: none)
constexpr size_t kFirstTimestampPos = 56; // i64 first_timestamp_ms
constexpr size_t kMaxTimestampPos = 64;   // i64 max_timestamp_ms
constexpr size_t kBatchHeaderSize = 72;
constexpr size_t kBodyCrcStart = 32;  // the body CRC covers [32, batch_length)

static_assert(4 + 1 + 3 + 8 + 8 + 4 + 4 == kAttributesPos, "stamped part of the header");
static_assert(kAttributesPos + 2 + 2 + 4 + 4 + 4 + 8 + 8 + 8 == kBatchHeaderSize,
              "header size must match docs/FORMAT.md");

// Attributes (FORMAT.md §2.2).
constexpr uint16_t kCodecMask = 0x0007;       // bits 0-2: compression of the records section
constexpr uint16_t kTimestampTypeBit = 0x0008;  // bit 3: 0 = log-append time, 1 = create time
constexpr uint16_t kKnownAttributes = kCodecMask | kTimestampTypeBit;

enum class Codec : uint8_t { kNone = 0, kZstd = 1 };
enum class TimestampType : uint8_t { kLogAppend = 0, kCreate = 1 };

// Record attributes (FORMAT.md §2.3).
constexpr uint8_t kRecordHasHashKey = 0x01;
constexpr size_t kHashKeySize = 16;  // u128, big-endian

// Hard ceilings of the format, whatever a stream's configured limits are.
constexpr size_t kMaxBatchBytes = 16u << 20;     // a batch on disk, header included
constexpr size_t kMaxRecordsSize = 16u << 20;    // uncompressed records section
constexpr uint32_t kMaxRecordsPerBatch = 1u << 20;

}  // namespace streamkit::log

// The stream-serve wire protocol (docs/PROTOCOL.md is the normative text).
//
// A connection is a Unix stream socket carrying frames in both directions:
//   frame := u32 length | u32 correlation_id | u16 type | payload
// `length` counts the bytes after itself (so >= 6). Requests have type < 0x8000;
// the response to a request has type | 0x8000 and the request's correlation id,
// and starts with u16 error code + string message (empty on success). Requests on
// one connection may be pipelined; responses can come back in any order.
// The first request on a connection must be Hello (version handshake).
#pragma once

#include <string>
#include <vector>

#include "proto/wire.h"
#include "util/status.h"

namespace streamkit::proto {

constexpr uint16_t kProtocolVersion = 2;  // 2: Reshard, SetScaling; ShardInfo and StreamInfo grew
constexpr size_t kFrameHeaderSize = 10;        // length, correlation id, type
constexpr uint32_t kMaxFrameBytes = 40u << 20;  // batches up to 16 MiB, fetches up to 32 MiB
constexpr uint32_t kMaxFetchBytes = 32u << 20;
constexpr uint16_t kResponseBit = 0x8000;

enum class Type : uint16_t {
  kHello = 1,
  kCreateStream = 2,
  kDeleteStream = 3,
  kListStreams = 4,
  kDescribeStream = 5,
  kProduce = 6,
  kFetch = 7,
  kListOffset = 8,
  kSetRetention = 9,
  kInitProducer = 10,
  kGroupHeartbeat = 11,
  kGroupCommit = 12,
  kGroupList = 13,
  kGroupReset = 14,
  kReshard = 15,
  kSetScaling = 16,
  kCreateMirror = 17,
  kMirrorProduce = 18,
};

enum class Err : uint16_t {
  kNone = 0,
  kUnknown = 1,
  kInvalidRequest = 2,     // malformed frame or field
  kStreamNotFound = 3,
  kStreamExists = 4,
  kWrongShard = 5,         // shard closed, unknown, or key outside its range: refresh the map
  kThrottled = 6,          // over the provisioned rate: retry with backoff
  kInvalidBatch = 7,       // CRC/format failure
  kLimitExceeded = 8,      // a record or batch over the stream's limits
  kOffsetOutOfRange = 9,   // before the trim horizon
  kOutOfOrderSequence = 10,
  kFenced = 11,
  kStorage = 12,           // the server's disk refused
  kUnsupportedVersion = 13,
  kShuttingDown = 14,
  kGroupNotFound = 15,
  kNotAssigned = 16,       // group member no longer owns that shard
  kGroupBusy = 17,         // group has live members (reset refused)
  kInjectedFailure = 18,   // --inject-faults
};
const char* ErrName(Err e);
// Maps a library Status to a wire error.
Err ErrFromStatus(const Status& s);

struct FrameHeader {
  uint32_t length = 0;
  uint32_t correlation_id = 0;
  uint16_t type = 0;
};
// Starts a frame in `out` (length patched by FinishFrame).
void BeginFrame(Bytes* out, uint32_t correlation_id, uint16_t type);
void FinishFrame(Bytes* out, size_t frame_start);
FrameHeader DecodeFrameHeader(const uint8_t* p);
// Begins a response frame with its error code and message.
void BeginResponse(Bytes* out, uint32_t correlation_id, Type request, Err err, std::string_view msg);

// Valid stream (and group) names: [A-Za-z0-9_.-]{1,128}, not made of dots only.
bool ValidName(std::string_view name);
// "invalid stream name 'X': use 1-128 characters of A-Z a-z 0-9 _ . - (not dots only)"
std::string InvalidNameMessage(std::string_view what, std::string_view name);
std::string ShardIdName(uint32_t index);  // "shardId-000000000003"
bool ParseShardId(std::string_view s, uint32_t* index);  // also accepts a bare number

// Sequence numbers: unique in the stream, increasing within a shard:
// shard index * 2^64 + offset, printed in decimal.
inline u128 SequenceNumber(uint32_t shard, uint64_t offset) { return (u128(shard) << 64) | offset; }
inline uint32_t SequenceShard(u128 seq) { return uint32_t(seq >> 64); }
inline uint64_t SequenceOffset(u128 seq) { return uint64_t(seq); }

enum ShardState : uint8_t { kOpen = 0, kClosed = 1 };

struct ShardInfo {
  uint32_t index = 0;
  int32_t parent = -1;
  int32_t adjacent_parent = -1;
  u128 start_hash = 0;
  u128 end_hash = 0;
  uint8_t state = kOpen;
  uint64_t start_offset = 0;
  uint64_t end_offset = 0;
  uint64_t bytes = 0;
  uint64_t write_bytes_per_s = 0;    // recent rate
  uint64_t write_records_per_s = 0;  // recent rate
  int64_t last_arrival_ms = 0;
  int64_t created_ms = 0;
  int64_t closed_ms = 0;
  void Encode(Writer& w) const;
  bool Decode(Reader& r);
};

// On-demand scaling policy (stream-reshard NAME auto / manual).
struct ScalingInfo {
  uint8_t on_demand = 0;
  uint32_t min_shards = 1;
  uint32_t max_shards = 64;
  uint64_t split_bytes_per_s = 1u << 20;
  uint64_t split_records_per_s = 1000;
  uint32_t merge_pct = 25;
  int64_t hot_ms = 30'000;
  int64_t cold_ms = 300'000;
  void Encode(Writer& w) const;
  bool Decode(Reader& r);
};

struct EventInfo {
  int64_t time_ms = 0;
  std::string text;
};

// One split or merge of a Reshard request/response.
struct ReshardStep {
  uint8_t kind = 1;  // 1 split, 2 merge
  uint32_t shard = 0;
  uint32_t adjacent = 0;
  u128 at = 0;  // split: first hash key of the second child; 0 = the middle
  uint32_t child1 = 0;
  int32_t child2 = -1;
  void Encode(Writer& w) const;
  bool Decode(Reader& r);
};

struct StreamInfo {
  std::string name;
  int64_t created_ms = 0;
  int64_t retention_ms = 0;
  uint8_t flags = 0;  // bit 0: enforce limits; bit 1: on-demand
  uint32_t max_record_bytes = 0;
  std::vector<ShardInfo> shards;
  ScalingInfo scaling;
  std::vector<EventInfo> events;  // recent topology changes, oldest first
  std::string origin;             // "SERVER_ID:STREAM" when stream-mirror keeps it; else empty
  uint32_t next_shard_index = 0;  // the index the next new shard gets
  void Encode(Writer& w) const;
  bool Decode(Reader& r);
};
constexpr uint8_t kFlagEnforceLimits = 1;
constexpr uint8_t kFlagOnDemand = 2;

struct ProduceResult {
  uint64_t base_offset = 0;
  uint64_t last_offset = 0;
  int64_t append_time_ms = 0;
  uint8_t duplicate = 0;
};

struct FetchResult {
  uint64_t next_offset = 0;
  uint64_t end_offset = 0;    // the durable end of the shard
  uint64_t start_offset = 0;  // the trim horizon
  uint8_t flags = 0;          // bit 0: shard closed and read to its end
};
constexpr uint8_t kFetchShardEnd = 1;
// Response flag bit 1: this Fetch stays parked at `next_offset`; more answers with the
// same correlation id follow (only for a request with kFetchStay, PROTOCOL.md §9).
constexpr uint8_t kFetchMore = 2;
// Request `fetch_flags` bit 0 (an optional trailing u8): after an answer that reaches
// the shard's durable end, keep the Fetch parked there instead of ending it.
constexpr uint8_t kFetchStay = 1;

enum class OffsetKind : uint8_t { kTrimHorizon = 0, kLatest = 1, kTime = 2 };

struct GroupAssignment {
  uint32_t shard = 0;
  uint64_t checkpoint = UINT64_MAX;  // next offset to read; UINT64_MAX: none yet
};

struct GroupMemberInfo {
  std::string member;
  std::vector<uint32_t> shards;
  int64_t last_heartbeat_ms = 0;
};

struct GroupInfo {
  std::string name;
  std::vector<GroupMemberInfo> members;
  std::vector<GroupAssignment> checkpoints;  // shard, checkpoint
  void Encode(Writer& w) const;
  bool Decode(Reader& r);
};

}  // namespace streamkit::proto

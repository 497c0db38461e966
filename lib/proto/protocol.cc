#include "proto/protocol.h"

#include <fmt/core.h>

namespace streamkit::proto {

const char* ErrName(Err e) {
  switch (e) {
    case Err::kNone: return "ok";
    case Err::kUnknown: return "unknown error";
    case Err::kInvalidRequest: return "invalid request";
    case Err::kStreamNotFound: return "stream not found";
    case Err::kStreamExists: return "stream exists";
    case Err::kWrongShard: return "wrong shard";
    case Err::kThrottled: return "throttled";
    case Err::kInvalidBatch: return "invalid batch";
    case Err::kLimitExceeded: return "limit exceeded";
    case Err::kOffsetOutOfRange: return "offset out of range";
    case Err::kOutOfOrderSequence: return "out of order sequence";
    case Err::kFenced: return "fenced";
    case Err::kStorage: return "storage error";
    case Err::kUnsupportedVersion: return "unsupported version";
    case Err::kShuttingDown: return "shutting down";
    case Err::kGroupNotFound: return "group not found";
    case Err::kNotAssigned: return "not assigned";
    case Err::kGroupBusy: return "group busy";
    case Err::kInjectedFailure: return "injected failure";
  }
  return "unknown error";
}

Err ErrFromStatus(const Status& s) {
  using C = Status::Code;
  switch (s.code()) {
    case C::kOk: return Err::kNone;
    case C::kCorruption: return Err::kInvalidBatch;
    case C::kInvalidArgument: return Err::kLimitExceeded;
    case C::kOutOfOrder: return Err::kOutOfOrderSequence;
    case C::kFenced: return Err::kFenced;
    case C::kIoError:
    case C::kNoSpace: return Err::kStorage;
    case C::kClosed: return Err::kShuttingDown;
    case C::kNotFound: return Err::kOffsetOutOfRange;
    case C::kOutOfRange: return Err::kWrongShard;
    default: return Err::kUnknown;
  }
}

void BeginFrame(Bytes* out, uint32_t correlation_id, uint16_t type) {
  Writer w(out);
  w.u32(0).u32(correlation_id).u16(type);
}

void FinishFrame(Bytes* out, size_t frame_start) {
  EncodeFixed32(out->data() + frame_start, uint32_t(out->size() - frame_start - 4));
}

FrameHeader DecodeFrameHeader(const uint8_t* p) {
  return FrameHeader{DecodeFixed32(p), DecodeFixed32(p + 4), DecodeFixed16(p + 8)};
}

void BeginResponse(Bytes* out, uint32_t correlation_id, Type request, Err err, std::string_view msg) {
  BeginFrame(out, correlation_id, uint16_t(uint16_t(request) | kResponseBit));
  Writer(out).u16(uint16_t(err)).str(msg);
}

std::string InvalidNameMessage(std::string_view what, std::string_view name) {
  return fmt::format("invalid {} name '{}': use 1-128 characters of A-Z a-z 0-9 _ . - (not dots only)", what, name);
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  bool only_dots = true;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
    if (c != '.') only_dots = false;
  }
  return !only_dots;
}

std::string ShardIdName(uint32_t index) { return fmt::format("shardId-{:012}", index); }

bool ParseShardId(std::string_view s, uint32_t* index) {
  if (s.substr(0, 8) == "shardId-") s.remove_prefix(8);
  if (s.empty() || s.size() > 12) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint64_t(c - '0');
  }
  if (v > UINT32_MAX) return false;
  *index = uint32_t(v);
  return true;
}

void ShardInfo::Encode(Writer& w) const {
  w.u32(index).i32(parent).i32(adjacent_parent).h128(start_hash).h128(end_hash).u8(state);
  w.u64(start_offset).u64(end_offset).u64(bytes).u64(write_bytes_per_s).u64(write_records_per_s);
  w.i64(last_arrival_ms).i64(created_ms).i64(closed_ms);
}

bool ShardInfo::Decode(Reader& r) {
  return r.u32(&index) && r.i32(&parent) && r.i32(&adjacent_parent) && r.h128(&start_hash) &&
         r.h128(&end_hash) && r.u8(&state) && r.u64(&start_offset) && r.u64(&end_offset) &&
         r.u64(&bytes) && r.u64(&write_bytes_per_s) && r.u64(&write_records_per_s) &&
         r.i64(&last_arrival_ms) && r.i64(&created_ms) && r.i64(&closed_ms);
}

void ScalingInfo::Encode(Writer& w) const {
  w.u8(on_demand).u32(min_shards).u32(max_shards).u64(split_bytes_per_s).u64(split_records_per_s);
  w.u32(merge_pct).i64(hot_ms).i64(cold_ms);
}

bool ScalingInfo::Decode(Reader& r) {
  return r.u8(&on_demand) && r.u32(&min_shards) && r.u32(&max_shards) && r.u64(&split_bytes_per_s) &&
         r.u64(&split_records_per_s) && r.u32(&merge_pct) && r.i64(&hot_ms) && r.i64(&cold_ms);
}

void ReshardStep::Encode(Writer& w) const {
  w.u8(kind).u32(shard).u32(adjacent).h128(at).u32(child1).i32(child2);
}

bool ReshardStep::Decode(Reader& r) {
  return r.u8(&kind) && r.u32(&shard) && r.u32(&adjacent) && r.h128(&at) && r.u32(&child1) && r.i32(&child2);
}

void StreamInfo::Encode(Writer& w) const {
  w.str(name).i64(created_ms).i64(retention_ms).u8(flags).u32(max_record_bytes);
  w.u32(uint32_t(shards.size()));
  for (const auto& s : shards) s.Encode(w);
  scaling.Encode(w);
  w.u32(uint32_t(events.size()));
  for (const auto& e : events) w.i64(e.time_ms).str(e.text);
  w.str(origin).u32(next_shard_index);
}

bool StreamInfo::Decode(Reader& r) {
  uint32_t n;
  if (!(r.str(&name) && r.i64(&created_ms) && r.i64(&retention_ms) && r.u8(&flags) &&
        r.u32(&max_record_bytes) && r.u32(&n)))
    return false;
  if (n > 100000) return false;
  shards.resize(n);
  for (auto& s : shards)
    if (!s.Decode(r)) return false;
  if (!scaling.Decode(r) || !r.u32(&n) || n > 100000) return false;
  events.resize(n);
  for (auto& e : events)
    if (!(r.i64(&e.time_ms) && r.str(&e.text))) return false;
  return r.str(&origin) && r.u32(&next_shard_index);
}

void GroupInfo::Encode(Writer& w) const {
  w.str(name).u32(uint32_t(members.size()));
  for (const auto& m : members) {
    w.str(m.member).i64(m.last_heartbeat_ms).u32(uint32_t(m.shards.size()));
    for (uint32_t s : m.shards) w.u32(s);
  }
  w.u32(uint32_t(checkpoints.size()));
  for (const auto& c : checkpoints) w.u32(c.shard).u64(c.checkpoint);
}

bool GroupInfo::Decode(Reader& r) {
  uint32_t n;
  if (!(r.str(&name) && r.u32(&n)) || n > 100000) return false;
  members.resize(n);
  for (auto& m : members) {
    uint32_t k;
    if (!(r.str(&m.member) && r.i64(&m.last_heartbeat_ms) && r.u32(&k)) || k > 100000) return false;
    m.shards.resize(k);
    for (auto& s : m.shards)
      if (!r.u32(&s)) return false;
  }
  if (!r.u32(&n) || n > 100000) return false;
  checkpoints.resize(n);
  for (auto& c : checkpoints)
    if (!(r.u32(&c.shard) && r.u64(&c.checkpoint))) return false;
  return true;
}

}  // namespace streamkit::proto

#include "log/producer_state.h"

#include <algorithm>

#include "util/crc32c.h"

namespace streamkit::log {
namespace {
constexpr uint8_t kSnapshotVersion = 1;
constexpr size_t kSnapshotHeader = 4 + 1 + 8 + 4;         // crc, version, end offset, count
constexpr size_t kProducerFixed = 8 + 2 + 8 + 1;          // id, epoch, last append, n
constexpr size_t kBatchEntry = 4 + 4 + 8 + 8;             // seq, count, offset, time

int64_t NextSeq(const ProducerBatch& b) {
  // Sequences wrap from INT32_MAX to 0, as in Kafka.
  int64_t n = int64_t(b.base_sequence) + b.record_count;
  return n > INT32_MAX ? n - int64_t(INT32_MAX) - 1 : n;
}
}  // namespace

Result<ProducerState::Verdict> ProducerState::Check(const BatchHeader& h,
                                                    ProducerBatch* original) const {
  if (h.producer_id < 0 || h.base_sequence < 0) return Verdict::kAppend;
  auto it = producers_.find(h.producer_id);
  if (it == producers_.end()) {
    // A producer's first batch on this log starts at sequence 0. Anything else means
    // an earlier batch is missing (it failed and is being resent): refuse, so the
    // producer resends in order instead of leaving a gap.
    if (h.base_sequence != 0)
      return Status::OutOfOrder(fmt::format("producer {} is new here; its first sequence must be 0, not {}",
                                            h.producer_id, h.base_sequence));
    return Verdict::kAppend;
  }
  const Entry& e = it->second;
  if (h.producer_epoch < e.epoch)
    return Status::Fenced(fmt::format("producer {} epoch {} is older than the current epoch {}",
                                      h.producer_id, h.producer_epoch, e.epoch));
  if (h.producer_epoch > e.epoch || e.recent.empty()) return Verdict::kAppend;
  for (const ProducerBatch& b : e.recent) {
    if (b.base_sequence == h.base_sequence) {
      if (b.record_count != h.record_count)
        return Status::OutOfOrder(fmt::format(
            "producer {} sequence {} was a batch of {} records, not {}", h.producer_id,
            h.base_sequence, b.record_count, h.record_count));
      *original = b;
      return Verdict::kDuplicate;
    }
  }
  int64_t expected = NextSeq(e.recent.back());
  if (h.base_sequence == expected) return Verdict::kAppend;
  return Status::OutOfOrder(fmt::format("producer {} sent sequence {} where {} was expected",
                                        h.producer_id, h.base_sequence, expected));
}

void ProducerState::Update(const BatchHeader& h) {
  if (h.producer_id < 0 || h.base_sequence < 0) return;
  if (producers_.size() >= kMaxProducers && !producers_.count(h.producer_id)) {
    // Forget the producer idle longest; a bound on memory, like Kafka's expiry.
    auto oldest = std::min_element(producers_.begin(), producers_.end(), [](auto& a, auto& b) {
      return a.second.last_append_ms < b.second.last_append_ms;
    });
    producers_.erase(oldest);
  }
  Entry& e = producers_[h.producer_id];
  if (h.producer_epoch != e.epoch) {
    e.epoch = h.producer_epoch;
    e.recent.clear();
  }
  e.last_append_ms = h.append_time_ms;
  e.recent.push_back(ProducerBatch{h.base_sequence, h.record_count, h.base_offset, h.append_time_ms});
  while (e.recent.size() > kProducerWindow) e.recent.pop_front();
}

Bytes ProducerState::Serialize(uint64_t end_offset) const {
  Bytes out(kSnapshotHeader);
  out[4] = kSnapshotVersion;
  EncodeFixed64(out.data() + 5, end_offset);
  EncodeFixed32(out.data() + 13, uint32_t(producers_.size()));
  for (const auto& [id, e] : producers_) {
    size_t at = out.size();
    out.resize(at + kProducerFixed + e.recent.size() * kBatchEntry);
    uint8_t* p = out.data() + at;
    EncodeFixed64(p, uint64_t(id));
    EncodeFixed16(p + 8, e.epoch);
    EncodeFixed64(p + 10, uint64_t(e.last_append_ms));
    p[18] = uint8_t(e.recent.size());
    p += kProducerFixed;
    for (const ProducerBatch& b : e.recent) {
      EncodeFixed32(p, uint32_t(b.base_sequence));
      EncodeFixed32(p + 4, b.record_count);
      EncodeFixed64(p + 8, b.base_offset);
      EncodeFixed64(p + 16, uint64_t(b.append_time_ms));
      p += kBatchEntry;
    }
  }
  EncodeFixed32(out.data(), crc32c::Value(out.data() + 4, out.size() - 4));
  return out;
}

Result<uint64_t> ProducerState::Deserialize(const uint8_t* p, size_t n) {
  if (n < kSnapshotHeader) return Status::Corruption("producer snapshot shorter than its header");
  if (DecodeFixed32(p) != crc32c::Value(p + 4, n - 4))
    return Status::Corruption("producer snapshot crc mismatch");
  if (p[4] != kSnapshotVersion)
    return Status::Corruption(fmt::format("producer snapshot version {}", p[4]));
  uint64_t end = DecodeFixed64(p + 5);
  uint32_t count = DecodeFixed32(p + 13);
  std::unordered_map<int64_t, Entry> m;
  size_t at = kSnapshotHeader;
  for (uint32_t i = 0; i < count; i++) {
    if (n - at < kProducerFixed) return Status::Corruption("producer snapshot truncated");
    const uint8_t* q = p + at;
    Entry e;
    int64_t id = int64_t(DecodeFixed64(q));
    e.epoch = DecodeFixed16(q + 8);
    e.last_append_ms = int64_t(DecodeFixed64(q + 10));
    size_t k = q[18];
    at += kProducerFixed;
    if (k > kProducerWindow || n - at < k * kBatchEntry)
      return Status::Corruption("producer snapshot truncated");
    for (size_t j = 0; j < k; j++) {
      const uint8_t* b = p + at;
      e.recent.push_back(ProducerBatch{int32_t(DecodeFixed32(b)), DecodeFixed32(b + 4),
                                       DecodeFixed64(b + 8), int64_t(DecodeFixed64(b + 16))});
      at += kBatchEntry;
    }
    m[id] = std::move(e);
  }
  if (at != n) return Status::Corruption("producer snapshot has trailing bytes");
  producers_ = std::move(m);
  return end;
}

}  // namespace streamkit::log

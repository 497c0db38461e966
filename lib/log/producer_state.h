// Idempotent-producer state of one shard log: for each producer id, its epoch and the
// last few batches it wrote (base sequence, record count, base offset, append time),
// so that a retried batch is recognised and answered with its original offsets
// instead of being written twice (the Kafka idempotence model, 5-batch window).
//
// Persistence: a snapshot file <20-digit end offset>.producers (FORMAT.md §4) is
// written atomically when a segment rolls and when the log closes; on open the log
// loads the newest snapshot and replays batch headers written after it.
//
// Thread safety: none; the Log serialises access under its append lock.
#pragma once

#include <deque>
#include <unordered_map>

#include "log/batch.h"
#include "util/coding.h"

namespace streamkit::log {

constexpr size_t kProducerWindow = 5;          // batches remembered per producer
constexpr size_t kMaxProducers = 100000;       // ids remembered per log; oldest forgotten

struct ProducerBatch {
  int32_t base_sequence;
  uint32_t record_count;
  uint64_t base_offset;
  int64_t append_time_ms;
};

class ProducerState {
 public:
  enum class Verdict { kAppend, kDuplicate };
  // Decides what to do with a batch. kDuplicate fills *original. Errors: kFenced (an
  // epoch older than the producer's current one), kOutOfOrder (a sequence gap, a
  // sequence older than the remembered window, or a first batch not at sequence 0).
  Result<Verdict> Check(const BatchHeader& h, ProducerBatch* original) const;
  // Remembers a batch that was written (h stamped with its offset and time).
  void Update(const BatchHeader& h);

  Bytes Serialize(uint64_t end_offset) const;
  // Replaces the state with a snapshot's; returns the end offset it was taken at.
  Result<uint64_t> Deserialize(const uint8_t* p, size_t n);
  size_t size() const { return producers_.size(); }

 private:
  struct Entry {
    uint16_t epoch = 0;
    int64_t last_append_ms = 0;
    std::deque<ProducerBatch> recent;
  };
  std::unordered_map<int64_t, Entry> producers_;
};

}  // namespace streamkit::log

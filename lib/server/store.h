// The server's data dir: streams, their shards (one log each) and consumer groups.
//
// Layout (docs/FORMAT.md §8):
//   DATA/serve.lock                       one server per data dir (flock)
//   DATA/streams/NAME/stream.meta         stream and shard topology (atomic writes)
//   DATA/streams/NAME/shard-NNNNNNNNNNNN/ the shard's log (segments, indexes)
//   DATA/streams/NAME/groups/GROUP.ckpt   a consumer group's checkpoints
// A stream is deleted by renaming its directory out of streams/ first (atomic),
// then removing it.
//
// Thread safety: Store's methods may be called from any thread. A Stream's topology
// and groups are guarded by Stream::mu; each shard's log is thread-safe itself.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/io.h"
#include "log/log.h"
#include "proto/protocol.h"

namespace streamkit::server {

struct ShardMeta {
  uint32_t index = 0;
  int32_t parent = -1;
  int32_t adjacent_parent = -1;
  u128 start = 0;
  u128 end = 0;
  uint8_t state = proto::kOpen;
  int64_t created_ms = 0;
  int64_t closed_ms = 0;
  uint64_t initial_offset = 0;  // only when the shard is made: where its log starts
};

// On-demand scaling (stream-reshard NAME auto): the server splits a shard that stays
// above the split thresholds for `hot_ms` and merges two adjacent shards whose
// combined rate stays under `merge_pct` percent of them for `cold_ms`.
struct ScalingPolicy {
  bool on_demand = false;
  uint32_t min_shards = 1;
  uint32_t max_shards = 64;
  uint64_t split_bytes_per_s = 1u << 20;
  uint64_t split_records_per_s = 1000;
  uint32_t merge_pct = 25;
  int64_t hot_ms = 30'000;
  int64_t cold_ms = 300'000;
};

// One topology change, as shown by stream-ctl describe and stream-reshard status.
struct ReshardEvent {
  int64_t time_ms = 0;
  std::string text;
};

struct StreamMeta {
  std::string name;
  int64_t created_ms = 0;
  int64_t retention_ms = 24 * log::kHourMs;
  uint8_t flags = 0;
  uint32_t max_record_bytes = 1u << 20;
  uint32_t next_shard_index = 0;
  std::vector<ShardMeta> shards;
  ScalingPolicy scaling;
  // Set on a stream that stream-mirror keeps in step with another: "SERVER_ID:STREAM"
  // of its source (loop prevention; shown by describe).
  std::string origin;
  std::vector<ReshardEvent> events;  // the most recent last, at most kMaxEvents
  static constexpr size_t kMaxEvents = 32;
};
std::string EncodeStreamMeta(const StreamMeta& m);
// Shard i of n with even ranges over 0 .. 2^128-1.
void EvenRange(uint32_t i, uint32_t n, u128* start, u128* end);
Result<StreamMeta> DecodeStreamMeta(std::string_view text, std::string_view what = "stream.meta");

// Recent rate over a sliding window of one-second buckets.
class RateMeter {
 public:
  void Add(uint64_t bytes, uint64_t records, int64_t now_ms);
  void Rate(int64_t now_ms, uint64_t* bytes_per_s, uint64_t* records_per_s);

 private:
  static constexpr int kWindow = 10;
  std::mutex mu_;
  int64_t second_[kWindow] = {};
  uint64_t bytes_[kWindow] = {};
  uint64_t records_[kWindow] = {};
};

// Provisioned-throughput enforcement (Kinesis: 1 MiB/s and 1,000 records/s in,
// 2 MiB/s out, per shard), with one second of burst.
class TokenBucket {
 public:
  explicit TokenBucket(double per_s) : rate_(per_s), tokens_(per_s) {}
  bool Take(double amount, int64_t now_ms);
  // For reads, whose size is known only once answered (Kinesis GetRecords): a
  // request is let through while the bucket is not in debt, and Charge then takes
  // what it returned, possibly more than the bucket holds (the next requests wait).
  bool Ready(int64_t now_ms);
  void Charge(double amount);

 private:
  std::mutex mu_;
  double rate_;
  double tokens_;
  int64_t last_ms_ = 0;
};

struct Shard {
  ShardMeta meta;  // guarded by Stream::mu
  std::unique_ptr<log::Log> log;
  // Closed by a reshard: the log is sealed first (appends refused under the log's own
  // lock, so nothing lands after the close), then the new topology is committed,
  // then `closed` is set (fetches then report the shard's end).
  std::atomic<bool> closed{false};
  // On-demand scaling: since when this shard has been hot / cold (0: it is not).
  int64_t hot_since_ms = 0, cold_since_ms = 0;
  RateMeter writes;
  TokenBucket in_bytes{1024 * 1024}, in_records{1000}, out_bytes{2 * 1024 * 1024};
  bool enforce_limits = false;  // the stream's kFlagEnforceLimits (set when opened)
};

struct GroupState {
  struct Member {
    int64_t deadline_ms = 0;
    int64_t last_heartbeat_ms = 0;
    std::vector<uint32_t> shards;  // assigned by the last rebalance
  };
  std::string name;
  std::map<std::string, Member> members;
  // Who reads each shard now: the member whose last heartbeat answer listed it. A
  // shard a rebalance moves stays with its holder until that member's next heartbeat
  // (it checkpoints what it printed before asking) or until it is dropped; only then
  // is it handed to the new owner, from that checkpoint (PROTOCOL.md §10).
  std::map<uint32_t, std::string> holders;
  std::map<uint32_t, uint64_t> checkpoints;  // shard -> next offset to read
  uint32_t generation = 0;
};

struct Stream {
  std::string dir;
  std::mutex mu;  // meta, shards map, groups
  StreamMeta meta;
  std::map<uint32_t, std::shared_ptr<Shard>> shards;
  std::map<std::string, std::unique_ptr<GroupState>> groups;
  bool deleted = false;

  // The shard with that index (nullptr if none).
  std::shared_ptr<Shard> FindShard(uint32_t index) {
    std::lock_guard<std::mutex> g(mu);
    auto it = shards.find(index);
    return it == shards.end() ? nullptr : it->second;
  }
};

// One split or merge. A request carries a list of them, applied in order and
// committed together (one stream.meta write): all or nothing.
struct ReshardOp {
  enum Kind : uint8_t { kSplit = 1, kMerge = 2 };
  Kind kind = kSplit;
  uint32_t shard = 0;           // split: the shard; merge: the parent
  uint32_t adjacent = 0;        // merge: the adjacent parent
  u128 at = 0;                  // split: the first hash key of the second child
  // Filled in by the store: the children made.
  uint32_t child1 = 0;
  int32_t child2 = -1;
};

struct StoreOptions {
  std::string data_dir;
  log::Durability durability;
  int64_t session_timeout_ms = 6000;  // a group member silent this long is dropped
  uint64_t segment_bytes = 128u << 20;
};

class Store {
 public:
  Store(std::shared_ptr<io::Io> io, StoreOptions opts);
  ~Store();
  Status Open();
  Status CloseAll();

  Result<std::shared_ptr<Stream>> Create(const std::string& name, uint32_t shards,
                                         int64_t retention_ms, uint8_t flags,
                                         uint32_t max_record_bytes);
  Status Delete(const std::string& name);
  // A mirror's target: the source's topology (indexes, ranges, parents, states, next
  // index) with each shard's log starting at the source shard's first offset.
  Result<std::shared_ptr<Stream>> CreateMirror(StreamMeta meta);
  std::shared_ptr<Stream> Get(const std::string& name);
  std::vector<std::shared_ptr<Stream>> List();
  Status SetRetention(const std::string& name, int64_t retention_ms);
  // Runs retention on every shard; returns segments removed.
  int ApplyRetention();

  proto::StreamInfo Describe(Stream& s);

  // Resharding. Applies `ops` in order (later ops may name children of earlier ones)
  // and commits them atomically; with `dry_run` only validates and fills in the
  // children. Errors leave the topology unchanged. `closed` receives the shards that
  // closed (the server wakes their followers).
  Status Reshard(Stream& s, std::vector<ReshardOp>* ops, bool dry_run, const std::string& why,
                 std::vector<std::shared_ptr<Shard>>* closed);
  // The splits and merges that take the open shards to `target` shards with even
  // ranges (UpdateShardCount, uniform scaling).
  Result<std::vector<ReshardOp>> PlanScale(Stream& s, uint32_t target);
  Status SetScaling(Stream& s, const ScalingPolicy& p);
  // On-demand scaling, called about once a second: returns what it did (for the log).
  std::vector<std::string> AutoScale(std::vector<std::shared_ptr<Shard>>* closed);

  // Consumer groups. Heartbeat joins or refreshes `member` and returns its shards
  // with their checkpoints; `leaving` removes it.
  Result<std::vector<proto::GroupAssignment>> GroupHeartbeat(Stream& s, const std::string& group,
                                                             const std::string& member,
                                                             bool leaving, uint32_t* generation);
  Status GroupCommit(Stream& s, const std::string& group, const std::string& member,
                     uint32_t shard, uint64_t offset);
  std::vector<proto::GroupInfo> GroupList(Stream& s);
  // Sets every shard's checkpoint: kind trim-horizon/latest/time, or a sequence.
  Status GroupReset(Stream& s, const std::string& group, const std::string& target);

  const StoreOptions& options() const { return opts_; }
  io::Io& io() { return *io_; }

 private:
  Result<std::shared_ptr<Stream>> LoadStream(const std::string& name);
  // Refuses `shards` new shards that would not fit under the open-file limit, before
  // anything is written (failing half-way leaves a stream no start can open).
  Status CheckFileRoom(uint64_t shards) const;
  Status CheckStartFileRoom(const std::vector<std::string>& streams) const;
  Result<std::unique_ptr<log::Log>> OpenShardLog(const Stream& s, const ShardMeta& m);
  Result<std::shared_ptr<Shard>> OpenShard(const Stream& s, const ShardMeta& m);
  Status WriteMeta(Stream& s);
  GroupState* LoadGroupLocked(Stream& s, const std::string& group, bool create);
  Status SaveGroupLocked(Stream& s, const GroupState& g);
  void RebalanceLocked(Stream& s, GroupState& g);
  std::map<uint32_t, bool> FinishedLocked(Stream& s, GroupState& g);
  std::vector<uint32_t> EligibleLocked(Stream& s, GroupState& g);
  Status ReshardLocked(Stream& s, std::vector<ReshardOp>* ops, bool dry_run, const std::string& why,
                       std::vector<std::shared_ptr<Shard>>* closed);
  void RemoveExpiredShards(Stream& s);
  std::string StreamsDir() const { return opts_.data_dir + "/streams"; }

  std::shared_ptr<io::Io> io_;
  StoreOptions opts_;
  std::mutex mu_;  // streams_
  std::map<std::string, std::shared_ptr<Stream>> streams_;
};

}  // namespace streamkit::server

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
};

struct StreamMeta {
  std::string name;
  int64_t created_ms = 0;
  int64_t retention_ms = 24 * log::kHourMs;
  uint8_t flags = 0;
  uint32_t max_record_bytes = 1u << 20;
  uint32_t next_shard_index = 0;
  std::vector<ShardMeta> shards;
};
std::string EncodeStreamMeta(const StreamMeta& m);
Result<StreamMeta> DecodeStreamMeta(std::string_view text);

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

 private:
  std::mutex mu_;
  double rate_;
  double tokens_;
  int64_t last_ms_ = 0;
};

struct Shard {
  ShardMeta meta;
  std::unique_ptr<log::Log> log;
  RateMeter writes;
  TokenBucket in_bytes{1024 * 1024}, in_records{1000}, out_bytes{2 * 1024 * 1024};
};

struct GroupState {
  struct Member {
    int64_t deadline_ms = 0;
    int64_t last_heartbeat_ms = 0;
    std::vector<uint32_t> shards;
  };
  std::string name;
  std::map<std::string, Member> members;
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

  // The shard with that index (nullptr if none) and, optionally, the stream's flags.
  std::shared_ptr<Shard> FindShard(uint32_t index, uint8_t* flags = nullptr) {
    std::lock_guard<std::mutex> g(mu);
    if (flags) *flags = meta.flags;
    auto it = shards.find(index);
    return it == shards.end() ? nullptr : it->second;
  }
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
  std::shared_ptr<Stream> Get(const std::string& name);
  std::vector<std::shared_ptr<Stream>> List();
  Status SetRetention(const std::string& name, int64_t retention_ms);
  // Runs retention on every shard; returns segments removed.
  int ApplyRetention();

  proto::StreamInfo Describe(Stream& s);

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
  Result<std::unique_ptr<log::Log>> OpenShardLog(const Stream& s, const ShardMeta& m);
  Status WriteMeta(Stream& s);
  GroupState* LoadGroupLocked(Stream& s, const std::string& group, bool create);
  Status SaveGroupLocked(Stream& s, const GroupState& g);
  void RebalanceLocked(Stream& s, GroupState& g);
  bool ShardFinishedLocked(Stream& s, GroupState& g, uint32_t shard);
  std::string StreamsDir() const { return opts_.data_dir + "/streams"; }

  std::shared_ptr<io::Io> io_;
  StoreOptions opts_;
  std::mutex mu_;  // streams_
  std::map<std::string, std::shared_ptr<Stream>> streams_;
};

}  // namespace streamkit::server

#include "server/store.h"

#include <simdjson.h>

#include <algorithm>
#include <set>

#include "common/config.h"
#include "util/crc32c.h"

namespace streamkit::server {
namespace {

constexpr std::string_view kMetaMagic = "streamkit-meta v1 crc32c=";
constexpr size_t kMaxMetaBytes = 16u << 20;
constexpr uint32_t kMaxShards = 10000;
constexpr std::string_view kCreatingPrefix = ".creating-";
constexpr std::string_view kDeletedPrefix = ".deleted-";

std::string ShardDirName(uint32_t index) { return fmt::format("shard-{:012}", index); }

// A small JSON document behind a header line carrying its CRC-32C (FORMAT.md §6).
std::string WrapChecked(const std::string& json) {
  return fmt::format("{}{:08x}\n{}\n", kMetaMagic, crc32c::Value(json.data(), json.size()), json);
}

Result<std::string> UnwrapChecked(std::string_view text, std::string_view what) {
  size_t nl = text.find('\n');
  if (text.substr(0, kMetaMagic.size()) != kMetaMagic || nl != kMetaMagic.size() + 8)
    return Status::Corruption(fmt::format("{}: missing header line", what));
  uint32_t want = 0;
  for (char c : text.substr(kMetaMagic.size(), 8)) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return Status::Corruption(fmt::format("{}: bad crc text", what));
    want = want * 16 + uint32_t(d);
  }
  std::string_view json = text.substr(nl + 1);
  if (!json.empty() && json.back() == '\n') json.remove_suffix(1);
  if (crc32c::Value(json.data(), json.size()) != want)
    return Status::Corruption(fmt::format("{}: crc mismatch", what));
  return std::string(json);
}

}  // namespace

std::string EncodeStreamMeta(const StreamMeta& m) {
  std::string shards;
  for (const ShardMeta& s : m.shards) {
    if (!shards.empty()) shards += ",";
    shards += fmt::format(
        R"({{"index":{},"parent":{},"adjacent_parent":{},"start":"{}","end":"{}","state":"{}"}})",
        s.index, s.parent, s.adjacent_parent, U128ToString(s.start), U128ToString(s.end),
        s.state == proto::kOpen ? "open" : "closed");
  }
  return WrapChecked(fmt::format(
      R"({{"name":{},"created_ms":{},"retention_ms":{},"flags":{},"max_record_bytes":{},"next_shard_index":{},"shards":[{}]}})",
      JsonQuote(m.name), m.created_ms, m.retention_ms, m.flags, m.max_record_bytes,
      m.next_shard_index, shards));
}

Result<StreamMeta> DecodeStreamMeta(std::string_view text) {
  SK_ASSIGN_OR_RETURN(std::string json, UnwrapChecked(text, "stream.meta"));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc)) return Status::Corruption("stream.meta: invalid JSON");
  StreamMeta m;
  std::string_view name;
  int64_t flags, max_rec, next;
  if (doc["name"].get(name) || doc["created_ms"].get(m.created_ms) ||
      doc["retention_ms"].get(m.retention_ms) || doc["flags"].get(flags) ||
      doc["max_record_bytes"].get(max_rec) || doc["next_shard_index"].get(next))
    return Status::Corruption("stream.meta: missing field");
  m.name = std::string(name);
  m.flags = uint8_t(flags);
  m.max_record_bytes = uint32_t(max_rec);
  m.next_shard_index = uint32_t(next);
  simdjson::dom::array shards;
  if (doc["shards"].get(shards)) return Status::Corruption("stream.meta: missing shards");
  for (auto e : shards) {
    ShardMeta s;
    int64_t idx, parent, adj;
    std::string_view start, end, state;
    if (e["index"].get(idx) || e["parent"].get(parent) || e["adjacent_parent"].get(adj) ||
        e["start"].get(start) || e["end"].get(end) || e["state"].get(state))
      return Status::Corruption("stream.meta: bad shard entry");
    auto st = ParseU128(start), en = ParseU128(end);
    if (!st || !en) return Status::Corruption("stream.meta: bad hash key");
    s.index = uint32_t(idx);
    s.parent = int32_t(parent);
    s.adjacent_parent = int32_t(adj);
    s.start = *st;
    s.end = *en;
    s.state = state == "open" ? proto::kOpen : proto::kClosed;
    m.shards.push_back(s);
  }
  return m;
}

void RateMeter::Add(uint64_t bytes, uint64_t records, int64_t now_ms) {
  int64_t sec = now_ms / 1000;
  std::lock_guard<std::mutex> g(mu_);
  int i = int(sec % kWindow);
  if (second_[i] != sec) {
    second_[i] = sec;
    bytes_[i] = records_[i] = 0;
  }
  bytes_[i] += bytes;
  records_[i] += records;
}

void RateMeter::Rate(int64_t now_ms, uint64_t* bps, uint64_t* rps) {
  int64_t sec = now_ms / 1000;
  std::lock_guard<std::mutex> g(mu_);
  uint64_t b = 0, r = 0;
  // The last few complete seconds (the current one is partial).
  constexpr int kSpan = 5;
  for (int k = 1; k <= kSpan; k++) {
    int i = int((sec - k) % kWindow);
    if (second_[i] == sec - k) {
      b += bytes_[i];
      r += records_[i];
    }
  }
  *bps = b / kSpan;
  *rps = r / kSpan;
}

bool TokenBucket::Take(double amount, int64_t now_ms) {
  std::lock_guard<std::mutex> g(mu_);
  if (last_ms_ == 0) last_ms_ = now_ms;
  tokens_ = std::min(rate_, tokens_ + rate_ * double(now_ms - last_ms_) / 1000.0);
  last_ms_ = now_ms;
  if (tokens_ < amount && amount <= rate_) return false;
  tokens_ -= amount;  // an oversize request passes once the bucket is full, then waits
  return true;
}

Store::Store(std::shared_ptr<io::Io> io, StoreOptions opts) : io_(std::move(io)), opts_(std::move(opts)) {}
Store::~Store() { (void)CloseAll(); }

Status Store::Open() {
  SK_TRY(io_->CreateDirs(StreamsDir()));
  SK_ASSIGN_OR_RETURN(auto names, io_->ListDir(StreamsDir()));
  for (const std::string& n : names) {
    // Leftovers of a create or delete that a crash interrupted.
    if (n.rfind(kCreatingPrefix, 0) == 0 || n.rfind(kDeletedPrefix, 0) == 0) {
      (void)io_->RemoveDirRecursive(StreamsDir() + "/" + n);
      continue;
    }
    if (!proto::ValidName(n)) continue;
    SK_ASSIGN_OR_RETURN(auto s, LoadStream(n));
    streams_[n] = s;
  }
  return Status::OK();
}

Status Store::CloseAll() {
  std::lock_guard<std::mutex> g(mu_);
  Status first;
  for (auto& [n, s] : streams_) {
    std::lock_guard<std::mutex> sg(s->mu);
    for (auto& [i, sh] : s->shards) {
      Status st = sh->log->Close();
      if (!st.ok() && first.ok()) first = st;
    }
  }
  return first;
}

Result<std::unique_ptr<log::Log>> Store::OpenShardLog(const Stream& s, const ShardMeta& m) {
  log::LogOptions o;
  o.durability = opts_.durability;
  o.background_sync = false;  // the server's sync thread serves every log
  o.retention_ms = s.meta.retention_ms;
  o.segment_bytes = opts_.segment_bytes;
  o.limits.max_record_bytes = s.meta.max_record_bytes;
  if (!(m.start == 0 && m.end == kU128Max)) {
    o.limits.check_hash_range = true;
    o.limits.hash_start = m.start;
    o.limits.hash_end = m.end;
  }
  log::RecoveryReport rep;
  auto lg = log::Log::Open(io_, s.dir + "/" + ShardDirName(m.index), o, &rep);
  if (lg.ok() && !rep.clean())
    std::fprintf(stderr, "stream-serve: %s/%s: recovered: %s\n", s.meta.name.c_str(),
                 proto::ShardIdName(m.index).c_str(), rep.ToString().c_str());
  return lg;
}

Result<std::shared_ptr<Stream>> Store::LoadStream(const std::string& name) {
  auto s = std::make_shared<Stream>();
  s->dir = StreamsDir() + "/" + name;
  SK_ASSIGN_OR_RETURN(std::string text, io::ReadSmallFile(*io_, s->dir + "/stream.meta", kMaxMetaBytes));
  SK_ASSIGN_OR_RETURN(s->meta, DecodeStreamMeta(text));
  for (const ShardMeta& m : s->meta.shards) {
    auto sh = std::make_shared<Shard>();
    sh->meta = m;
    SK_ASSIGN_OR_RETURN(sh->log, OpenShardLog(*s, m));
    s->shards[m.index] = sh;
  }
  return s;
}

Status Store::WriteMeta(Stream& s) {
  std::string text = EncodeStreamMeta(s.meta);
  return io::WriteFileAtomic(*io_, s.dir + "/stream.meta", text.data(), text.size());
}

Result<std::shared_ptr<Stream>> Store::Create(const std::string& name, uint32_t shards,
                                              int64_t retention_ms, uint8_t flags,
                                              uint32_t max_record_bytes) {
  if (!proto::ValidName(name))
    return Status::InvalidArgument(fmt::format(
        "invalid stream name '{}': use 1-128 characters of A-Z a-z 0-9 _ . -", name));
  if (name.rfind(kCreatingPrefix, 0) == 0 || name.rfind(kDeletedPrefix, 0) == 0)
    return Status::InvalidArgument(fmt::format("invalid stream name '{}': names starting with {} or {} are reserved",
                                               name, kCreatingPrefix, kDeletedPrefix));
  if (shards < 1 || shards > kMaxShards)
    return Status::InvalidArgument(fmt::format("shard count {} out of range 1-{}", shards, kMaxShards));
  if (retention_ms < log::kHourMs || retention_ms > 8760 * log::kHourMs)
    return Status::InvalidArgument(fmt::format("retention {} out of range 1h-8760h", FormatDuration(retention_ms)));
  if (max_record_bytes == 0) max_record_bytes = 1u << 20;
  if (max_record_bytes > 10u << 20)
    return Status::InvalidArgument("max record size is at most 10 MiB");
  std::lock_guard<std::mutex> g(mu_);
  if (streams_.count(name)) return Status::Busy(fmt::format("stream '{}' already exists", name));
  auto s = std::make_shared<Stream>();
  s->dir = StreamsDir() + "/" + name;
  s->meta.name = name;
  s->meta.created_ms = NowMs();
  s->meta.retention_ms = retention_ms;
  s->meta.flags = flags;
  s->meta.max_record_bytes = max_record_bytes;
  // Even split of 0 .. 2^128-1: floor(2^128 / n) keys each, the last takes the rest.
  u128 width = (kU128Max / shards) + ((kU128Max % shards) == shards - 1 ? 1 : 0);
  for (uint32_t i = 0; i < shards; i++) {
    ShardMeta m;
    m.index = i;
    m.start = width * i;
    m.end = i + 1 == shards ? kU128Max : width * (i + 1) - 1;
    s->meta.shards.push_back(m);
  }
  s->meta.next_shard_index = shards;
  // Build in a temporary directory, then rename into place: a crash leaves either no
  // stream or a whole one.
  std::string tmp = fmt::format("{}/{}{}", StreamsDir(), kCreatingPrefix, name);
  (void)io_->RemoveDirRecursive(tmp);
  SK_TRY(io_->CreateDirs(tmp));
  std::string text = EncodeStreamMeta(s->meta);
  SK_TRY(io::WriteFileAtomic(*io_, tmp + "/stream.meta", text.data(), text.size()));
  SK_TRY(io_->Rename(tmp, s->dir));
  SK_TRY(io_->SyncDir(StreamsDir()));
  for (const ShardMeta& m : s->meta.shards) {
    auto sh = std::make_shared<Shard>();
    sh->meta = m;
    SK_ASSIGN_OR_RETURN(sh->log, OpenShardLog(*s, m));
    s->shards[m.index] = sh;
  }
  streams_[name] = s;
  return s;
}

Status Store::Delete(const std::string& name) {
  std::shared_ptr<Stream> s;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = streams_.find(name);
    if (it == streams_.end()) return Status::NotFound(fmt::format("stream '{}' does not exist", name));
    s = it->second;
    streams_.erase(it);
  }
  std::lock_guard<std::mutex> sg(s->mu);
  s->deleted = true;
  for (auto& [i, sh] : s->shards) (void)sh->log->Close();
  std::string grave = fmt::format("{}/{}{}-{}", StreamsDir(), kDeletedPrefix, name, NowMs());
  SK_TRY(io_->Rename(s->dir, grave));
  SK_TRY(io_->SyncDir(StreamsDir()));
  return io_->RemoveDirRecursive(grave);
}

std::shared_ptr<Stream> Store::Get(const std::string& name) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = streams_.find(name);
  return it == streams_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Stream>> Store::List() {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<std::shared_ptr<Stream>> v;
  for (auto& [n, s] : streams_) v.push_back(s);
  return v;
}

Status Store::SetRetention(const std::string& name, int64_t retention_ms) {
  auto s = Get(name);
  if (!s) return Status::NotFound(fmt::format("stream '{}' does not exist", name));
  if (retention_ms < log::kHourMs || retention_ms > 8760 * log::kHourMs)
    return Status::InvalidArgument(fmt::format("retention {} out of range 1h-8760h", FormatDuration(retention_ms)));
  std::lock_guard<std::mutex> g(s->mu);
  s->meta.retention_ms = retention_ms;
  SK_TRY(WriteMeta(*s));
  for (auto& [i, sh] : s->shards) sh->log->SetRetention(retention_ms, 0);
  return Status::OK();
}

int Store::ApplyRetention() {
  int removed = 0;
  for (auto& s : List()) {
    std::vector<std::shared_ptr<Shard>> shards;
    {
      std::lock_guard<std::mutex> g(s->mu);
      for (auto& [i, sh] : s->shards) shards.push_back(sh);
    }
    for (auto& sh : shards) {
      auto r = sh->log->ApplyRetention();
      if (r.ok()) removed += r->segments_removed;
    }
  }
  return removed;
}

proto::StreamInfo Store::Describe(Stream& s) {
  std::lock_guard<std::mutex> g(s.mu);
  proto::StreamInfo info;
  info.name = s.meta.name;
  info.created_ms = s.meta.created_ms;
  info.retention_ms = s.meta.retention_ms;
  info.flags = s.meta.flags;
  info.max_record_bytes = s.meta.max_record_bytes;
  int64_t now = NowMs();
  for (auto& [i, sh] : s.shards) {
    proto::ShardInfo si;
    si.index = sh->meta.index;
    si.parent = sh->meta.parent;
    si.adjacent_parent = sh->meta.adjacent_parent;
    si.start_hash = sh->meta.start;
    si.end_hash = sh->meta.end;
    si.state = sh->meta.state;
    si.start_offset = sh->log->start_offset();
    si.end_offset = sh->log->durable_offset();
    si.bytes = sh->log->size_bytes();
    sh->writes.Rate(now, &si.write_bytes_per_s, &si.write_records_per_s);
    si.last_arrival_ms = sh->log->last_append_ms();
    info.shards.push_back(si);
  }
  return info;
}

// ---- consumer groups -------------------------------------------------------------

GroupState* Store::LoadGroupLocked(Stream& s, const std::string& group, bool create) {
  auto it = s.groups.find(group);
  if (it != s.groups.end()) return it->second.get();
  auto g = std::make_unique<GroupState>();
  g->name = group;
  std::string path = s.dir + "/groups/" + group + ".ckpt";
  auto text = io::ReadSmallFile(*io_, path, kMaxMetaBytes);
  if (text.ok()) {
    auto json = UnwrapChecked(*text, path);
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    simdjson::dom::object ck;
    if (json.ok() && !parser.parse(*json).get(doc) && !doc["checkpoints"].get(ck)) {
      for (auto [k, v] : ck) {
        uint32_t shard;
        uint64_t off;
        if (proto::ParseShardId(k, &shard) && !v.get(off)) g->checkpoints[shard] = off;
      }
    } else {
      std::fprintf(stderr, "stream-serve: %s: unreadable, starting the group afresh\n", path.c_str());
    }
  } else if (!create) {
    return nullptr;
  }
  GroupState* raw = g.get();
  s.groups[group] = std::move(g);
  return raw;
}

Status Store::SaveGroupLocked(Stream& s, const GroupState& g) {
  std::string ck;
  for (auto& [shard, off] : g.checkpoints) {
    if (!ck.empty()) ck += ",";
    ck += fmt::format("\"{}\":{}", shard, off);
  }
  std::string text = WrapChecked(fmt::format(R"({{"group":{},"checkpoints":{{{}}}}})", JsonQuote(g.name), ck));
  SK_TRY(io_->CreateDirs(s.dir + "/groups"));
  return io::WriteFileAtomic(*io_, s.dir + "/groups/" + g.name + ".ckpt", text.data(), text.size());
}

bool Store::ShardFinishedLocked(Stream& s, GroupState& g, uint32_t shard) {
  auto it = s.shards.find(shard);
  if (it == s.shards.end()) return true;  // expired: nothing left to read
  if (it->second->meta.state == proto::kOpen) return false;
  auto ck = g.checkpoints.find(shard);
  uint64_t end = it->second->log->end_offset();
  return end == it->second->log->start_offset() ||
         (ck != g.checkpoints.end() && ck->second >= end);
}

void Store::RebalanceLocked(Stream& s, GroupState& g) {
  // Eligible: not finished, and every parent finished (parents are read to their end
  // before any child starts, so each key's records stay in order).
  std::vector<uint32_t> eligible;
  for (auto& [i, sh] : s.shards) {
    if (ShardFinishedLocked(s, g, i)) continue;
    bool parents_done = true;
    for (int32_t p : {sh->meta.parent, sh->meta.adjacent_parent})
      if (p >= 0 && !ShardFinishedLocked(s, g, uint32_t(p))) parents_done = false;
    if (parents_done) eligible.push_back(i);
  }
  std::set<uint32_t> want(eligible.begin(), eligible.end());
  size_t m = g.members.size();
  if (m == 0) return;
  // Quotas: every member gets floor(E/M) or one more; the extra ones go to the
  // members already holding the most, so as few shards as possible move (sticky).
  std::vector<std::pair<size_t, std::string>> order;
  for (auto& [id, mem] : g.members) {
    size_t held = 0;
    for (uint32_t sh : mem.shards) held += want.count(sh);
    order.push_back({held, id});
  }
  std::sort(order.begin(), order.end(), [](auto& a, auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::map<std::string, size_t> quota;
  size_t base = eligible.size() / m, extra = eligible.size() % m;
  for (size_t i = 0; i < order.size(); i++) quota[order[i].second] = base + (i < extra ? 1 : 0);
  std::set<uint32_t> taken;
  for (auto& [id, mem] : g.members) {
    std::vector<uint32_t> keep;
    for (uint32_t sh : mem.shards)
      if (want.count(sh) && !taken.count(sh) && keep.size() < quota[id]) {
        keep.push_back(sh);
        taken.insert(sh);
      }
    mem.shards = keep;
  }
  for (uint32_t sh : eligible) {
    if (taken.count(sh)) continue;
    for (auto& [id, mem] : g.members) {
      if (mem.shards.size() < quota[id]) {
        mem.shards.push_back(sh);
        taken.insert(sh);
        break;
      }
    }
  }
  for (auto& [id, mem] : g.members) std::sort(mem.shards.begin(), mem.shards.end());
  g.generation++;
}

Result<std::vector<proto::GroupAssignment>> Store::GroupHeartbeat(Stream& s, const std::string& group,
                                                                  const std::string& member,
                                                                  bool leaving, uint32_t* generation) {
  if (!proto::ValidName(group))
    return Status::InvalidArgument(fmt::format("invalid group name '{}'", group));
  std::lock_guard<std::mutex> lk(s.mu);
  GroupState* g = LoadGroupLocked(s, group, true);
  int64_t now = NowMs();
  bool changed = false;
  for (auto it = g->members.begin(); it != g->members.end();) {
    if (it->second.deadline_ms < now && it->first != member) {
      it = g->members.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  if (leaving) {
    changed |= g->members.erase(member) > 0;
  } else {
    auto [it, inserted] = g->members.try_emplace(member);
    changed |= inserted;
    it->second.deadline_ms = now + opts_.session_timeout_ms;
    it->second.last_heartbeat_ms = now;
  }
  // Rebalance on membership changes, and when the set of readable shards moved on
  // (a parent finished, a reshard happened).
  if (!changed && !g->members.empty()) {
    std::set<uint32_t> assigned;
    for (auto& [id, mem] : g->members) assigned.insert(mem.shards.begin(), mem.shards.end());
    for (uint32_t sh : assigned)
      if (ShardFinishedLocked(s, *g, sh)) changed = true;
    for (auto& [i, sh] : s.shards)
      if (!assigned.count(i) && !ShardFinishedLocked(s, *g, i)) changed = true;
  }
  if (changed) RebalanceLocked(s, *g);
  *generation = g->generation;
  std::vector<proto::GroupAssignment> out;
  if (leaving) return out;
  for (uint32_t sh : g->members[member].shards) {
    auto ck = g->checkpoints.find(sh);
    out.push_back({sh, ck == g->checkpoints.end() ? UINT64_MAX : ck->second});
  }
  return out;
}

Status Store::GroupCommit(Stream& s, const std::string& group, const std::string& member,
                          uint32_t shard, uint64_t offset) {
  if (!proto::ValidName(group)) return Status::InvalidArgument(fmt::format("invalid group name '{}'", group));
  std::lock_guard<std::mutex> lk(s.mu);
  GroupState* g = LoadGroupLocked(s, group, false);
  if (g == nullptr) return Status::NotFound(fmt::format("group '{}' does not exist", group));
  auto m = g->members.find(member);
  if (m == g->members.end() ||
      std::find(m->second.shards.begin(), m->second.shards.end(), shard) == m->second.shards.end())
    return Status::Fenced(fmt::format("member '{}' does not own {} in group '{}'", member,
                                      proto::ShardIdName(shard), group));
  g->checkpoints[shard] = offset;
  return SaveGroupLocked(s, *g);
}

std::vector<proto::GroupInfo> Store::GroupList(Stream& s) {
  std::lock_guard<std::mutex> lk(s.mu);
  // Groups known only on disk are loaded too.
  auto names = io_->ListDir(s.dir + "/groups");
  if (names.ok())
    for (const std::string& n : *names)
      if (n.size() > 5 && n.substr(n.size() - 5) == ".ckpt")
        (void)LoadGroupLocked(s, n.substr(0, n.size() - 5), false);
  std::vector<proto::GroupInfo> out;
  int64_t now = NowMs();
  for (auto& [name, g] : s.groups) {
    proto::GroupInfo gi;
    gi.name = name;
    for (auto& [id, mem] : g->members)
      if (mem.deadline_ms >= now) gi.members.push_back({id, mem.shards, mem.last_heartbeat_ms});
    for (auto& [sh, off] : g->checkpoints) gi.checkpoints.push_back({sh, off});
    out.push_back(std::move(gi));
  }
  return out;
}

Status Store::GroupReset(Stream& s, const std::string& group, const std::string& target) {
  if (!proto::ValidName(group)) return Status::InvalidArgument(fmt::format("invalid group name '{}'", group));
  std::lock_guard<std::mutex> lk(s.mu);
  GroupState* g = LoadGroupLocked(s, group, true);
  int64_t now = NowMs();
  for (auto& [id, mem] : g->members)
    if (mem.deadline_ms >= now)
      return Status::Busy(fmt::format("group '{}' has live member '{}'; stop its consumers first",
                                      group, id));
  g->members.clear();
  std::map<uint32_t, uint64_t> ck;
  if (target == "trim-horizon") {
    for (auto& [i, sh] : s.shards) ck[i] = sh->log->start_offset();
  } else if (target == "latest") {
    for (auto& [i, sh] : s.shards) ck[i] = sh->log->durable_offset();
  } else if (target.rfind("time:", 0) == 0) {
    SK_ASSIGN_OR_RETURN(int64_t ts, ParseTimeMs(target.substr(5), now));
    for (auto& [i, sh] : s.shards) {
      SK_ASSIGN_OR_RETURN(uint64_t off, sh->log->OffsetForTime(ts));
      ck[i] = off;
    }
  } else if (target.rfind("seq:", 0) == 0) {
    auto seq = ParseU128(target.substr(4));
    if (!seq) return Status::InvalidArgument(fmt::format("'{}' is not a sequence number", target.substr(4)));
    uint32_t shard = proto::SequenceShard(*seq);
    if (!s.shards.count(shard))
      return Status::InvalidArgument(fmt::format("sequence number {} names no shard of this stream", target.substr(4)));
    ck = g->checkpoints;
    ck[shard] = proto::SequenceOffset(*seq);
  } else {
    return Status::InvalidArgument(
        fmt::format("reset target '{}': use trim-horizon, latest, time:T or seq:S", target));
  }
  g->checkpoints = ck;
  g->generation++;
  return SaveGroupLocked(s, *g);
}

}  // namespace streamkit::server

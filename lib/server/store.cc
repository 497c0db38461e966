#include "server/store.h"

#include <simdjson.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <set>

#include "common/config.h"
#include "util/crash_point.h"
#include "util/crc32c.h"

namespace streamkit::server {
namespace {

constexpr std::string_view kMetaMagic = "streamkit-meta v1 crc32c=";
constexpr size_t kMaxMetaBytes = 16u << 20;
constexpr uint32_t kMaxShards = 10000;
constexpr std::string_view kCreatingPrefix = ".creating-";
constexpr std::string_view kDeletedPrefix = ".deleted-";

std::string ShardDirName(uint32_t index) { return fmt::format("shard-{:012}", index); }

// A small JSON document behind a header line carrying its CRC-32C (FORMAT.md §8).
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
        R"({{"index":{},"parent":{},"adjacent_parent":{},"start":"{}","end":"{}","state":"{}","created_ms":{},"closed_ms":{}}})",
        s.index, s.parent, s.adjacent_parent, U128ToString(s.start), U128ToString(s.end),
        s.state == proto::kOpen ? "open" : "closed", s.created_ms, s.closed_ms);
  }
  const ScalingPolicy& p = m.scaling;
  std::string scaling = fmt::format(
      R"({{"on_demand":{},"min_shards":{},"max_shards":{},"split_bytes_per_s":{},"split_records_per_s":{},"merge_pct":{},"hot_ms":{},"cold_ms":{}}})",
      p.on_demand ? "true" : "false", p.min_shards, p.max_shards, p.split_bytes_per_s, p.split_records_per_s,
      p.merge_pct, p.hot_ms, p.cold_ms);
  std::string origin = m.origin.empty() ? "" : ",\"origin\":" + JsonQuote(m.origin);
  std::string events;
  for (const ReshardEvent& e : m.events) {
    if (!events.empty()) events += ",";
    events += fmt::format(R"({{"time_ms":{},"text":{}}})", e.time_ms, JsonQuote(e.text));
  }
  return WrapChecked(fmt::format(
      R"({{"name":{},"created_ms":{},"retention_ms":{},"flags":{},"max_record_bytes":{},"next_shard_index":{},"shards":[{}],"scaling":{},"events":[{}]{}}})",
      JsonQuote(m.name), m.created_ms, m.retention_ms, m.flags, m.max_record_bytes,
      m.next_shard_index, shards, scaling, events, origin));
}

Result<StreamMeta> DecodeStreamMeta(std::string_view text, std::string_view what) {
  SK_ASSIGN_OR_RETURN(std::string json, UnwrapChecked(text, what));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc)) return Status::Corruption(fmt::format("{}: invalid JSON", what));
  StreamMeta m;
  std::string_view name;
  int64_t flags, max_rec, next;
  if (doc["name"].get(name) || doc["created_ms"].get(m.created_ms) ||
      doc["retention_ms"].get(m.retention_ms) || doc["flags"].get(flags) ||
      doc["max_record_bytes"].get(max_rec) || doc["next_shard_index"].get(next))
    return Status::Corruption(fmt::format("{}: missing field", what));
  m.name = std::string(name);
  m.flags = uint8_t(flags);
  m.max_record_bytes = uint32_t(max_rec);
  m.next_shard_index = uint32_t(next);
  simdjson::dom::array shards;
  if (doc["shards"].get(shards)) return Status::Corruption(fmt::format("{}: missing shards", what));
  for (auto e : shards) {
    ShardMeta s;
    int64_t idx, parent, adj;
    std::string_view start, end, state;
    if (e["index"].get(idx) || e["parent"].get(parent) || e["adjacent_parent"].get(adj) ||
        e["start"].get(start) || e["end"].get(end) || e["state"].get(state))
      return Status::Corruption(fmt::format("{}: bad shard entry", what));
    auto st = ParseU128(start), en = ParseU128(end);
    if (!st || !en) return Status::Corruption(fmt::format("{}: bad hash key", what));
    s.index = uint32_t(idx);
    s.parent = int32_t(parent);
    s.adjacent_parent = int32_t(adj);
    s.start = *st;
    s.end = *en;
    s.state = state == "open" ? proto::kOpen : proto::kClosed;
    if (e["created_ms"].get(s.created_ms)) s.created_ms = 0;  // optional (older metas)
    if (e["closed_ms"].get(s.closed_ms)) s.closed_ms = 0;
    m.shards.push_back(s);
  }
  simdjson::dom::object sc;
  if (!doc["scaling"].get(sc)) {
    ScalingPolicy& p = m.scaling;
    bool on = false;
    int64_t v;
    if (!sc["on_demand"].get(on)) p.on_demand = on;
    if (!sc["min_shards"].get(v)) p.min_shards = uint32_t(v);
    if (!sc["max_shards"].get(v)) p.max_shards = uint32_t(v);
    if (!sc["split_bytes_per_s"].get(v)) p.split_bytes_per_s = uint64_t(v);
    if (!sc["split_records_per_s"].get(v)) p.split_records_per_s = uint64_t(v);
    if (!sc["merge_pct"].get(v)) p.merge_pct = uint32_t(v);
    if (!sc["hot_ms"].get(v)) p.hot_ms = v;
    if (!sc["cold_ms"].get(v)) p.cold_ms = v;
  }
  std::string_view origin;
  if (!doc["origin"].get(origin)) m.origin = std::string(origin);
  simdjson::dom::array events;
  if (!doc["events"].get(events))
    for (auto e : events) {
      ReshardEvent ev;
      std::string_view t;
      if (e["time_ms"].get(ev.time_ms) || e["text"].get(t)) return Status::Corruption(fmt::format("{}: bad event", what));
      ev.text = std::string(t);
      m.events.push_back(std::move(ev));
    }
  return m;
}

void EvenRange(uint32_t i, uint32_t n, u128* start, u128* end) {
  // floor(2^128 / n) keys each, the last shard takes the rest.
  u128 width = (kU128Max / n) + ((kU128Max % n) == n - 1 ? 1 : 0);
  *start = width * i;
  *end = i + 1 == n ? kU128Max : width * (i + 1) - 1;
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

bool TokenBucket::Ready(int64_t now_ms) {
  std::lock_guard<std::mutex> g(mu_);
  if (last_ms_ == 0) last_ms_ = now_ms;
  tokens_ = std::min(rate_, tokens_ + rate_ * double(now_ms - last_ms_) / 1000.0);
  last_ms_ = now_ms;
  return tokens_ > 0;
}

void TokenBucket::Charge(double amount) {
  std::lock_guard<std::mutex> g(mu_);
  tokens_ -= amount;
}

Store::Store(std::shared_ptr<io::Io> io, StoreOptions opts) : io_(std::move(io)), opts_(std::move(opts)) {}
Store::~Store() { (void)CloseAll(); }

Status Store::Open() {
  SK_TRY(io_->CreateDirs(StreamsDir()));
  SK_ASSIGN_OR_RETURN(auto names, io_->ListDir(StreamsDir()));
  std::vector<std::string> valid;
  for (const std::string& n : names)
    if (proto::ValidName(n) && n.rfind(kCreatingPrefix, 0) != 0 && n.rfind(kDeletedPrefix, 0) != 0) valid.push_back(n);
  SK_TRY(CheckStartFileRoom(valid));
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

namespace {
// Open files a shard holds: one per segment, a new shard's one (index files are
// opened only to be read or written: segment_index.h), and what is kept free for
// connections, rolls and snapshots (at start, only the loops are open).
constexpr uint64_t kFilesPerShard = 1;
constexpr uint64_t kFileReserve = 256;
constexpr uint64_t kStartFileReserve = 64;

uint64_t OpenFileCount() {
  std::error_code ec;
  uint64_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) n++;
  return ec ? 0 : n;
}

// OK when `shards` more shards fit under the open-file limit with `reserve` kept
// free; else a storage error that begins with `what` and names the limit.
Status FileRoom(uint64_t shards, uint64_t reserve, const std::string& what) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return Status::OK();
  uint64_t limit = rl.rlim_cur, open = OpenFileCount(), need = shards * kFilesPerShard;
  if (open + need + reserve <= limit) return Status::OK();
  return Status::IoError(fmt::format("{} need about {} open files, plus {} kept free for connections, and "
                                     "stream-serve has {} of its {} in use (ulimit -n): raise its open-file "
                                     "limit (ulimit -n, LimitNOFILE=)",
                                     what, need, reserve, open, limit),
                         EMFILE);
}
}  // namespace

Status Store::CheckFileRoom(uint64_t shards) const {
  return FileRoom(shards, kFileReserve, fmt::format("{} new shard(s)", shards));
}

// At start, before any log is opened: every stream's shards must fit, or the start
// stops with a message saying so (instead of failing on whichever file comes first,
// half-way). Shards are counted from the stream directories; a shard with several
// segments needs more, which Log::Open reports if it comes to that.
Status Store::CheckStartFileRoom(const std::vector<std::string>& streams) const {
  uint64_t shards = 0;
  for (const std::string& n : streams) {
    auto entries = io_->ListDir(StreamsDir() + "/" + n);
    if (!entries.ok()) continue;  // LoadStream says what is wrong with it
    for (const std::string& e : *entries) shards += e.rfind("shard-", 0) == 0;
  }
  return FileRoom(shards, kStartFileReserve, fmt::format("the data dir's {} shard(s)", shards));
}

Result<std::unique_ptr<log::Log>> Store::OpenShardLog(const Stream& s, const ShardMeta& m) {
  log::LogOptions o;
  o.durability = opts_.durability;
  o.background_sync = false;  // the server's sync thread serves every log
  o.retention_ms = s.meta.retention_ms;
  o.segment_bytes = opts_.segment_bytes;
  o.limits.max_record_bytes = s.meta.max_record_bytes;
  o.initial_offset = m.initial_offset;
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

// A shard object for m, a shard of s (the caller opens its log).
static std::shared_ptr<Shard> NewShard(const Stream& s, const ShardMeta& m) {
  auto sh = std::make_shared<Shard>();
  sh->meta = m;
  sh->closed = m.state == proto::kClosed;
  sh->enforce_limits = s.meta.flags & proto::kFlagEnforceLimits;
  return sh;
}

Result<std::shared_ptr<Shard>> Store::OpenShard(const Stream& s, const ShardMeta& m) {
  auto sh = NewShard(s, m);
  SK_ASSIGN_OR_RETURN(sh->log, OpenShardLog(s, m));
  if (sh->closed) sh->log->Seal();  // a closed shard takes no more appends
  return sh;
}

Result<std::shared_ptr<Stream>> Store::LoadStream(const std::string& name) {
  auto s = std::make_shared<Stream>();
  s->dir = StreamsDir() + "/" + name;
  SK_ASSIGN_OR_RETURN(std::string text, io::ReadSmallFile(*io_, s->dir + "/stream.meta", kMaxMetaBytes));
  SK_ASSIGN_OR_RETURN(s->meta, DecodeStreamMeta(text, s->dir + "/stream.meta"));
  std::set<std::string> known;
  for (const ShardMeta& m : s->meta.shards) {
    SK_ASSIGN_OR_RETURN(s->shards[m.index], OpenShard(*s, m));
    known.insert(ShardDirName(m.index));
  }
  // Shard directories the topology does not name: children of a reshard that a crash
  // interrupted before its commit (never written to), or expired shards whose removal
  // was interrupted.
  SK_ASSIGN_OR_RETURN(auto entries, io_->ListDir(s->dir));
  for (const std::string& e : entries) {
    if (e == "stream.meta.tmp") (void)io_->Remove(s->dir + "/" + e);  // a reshard cut short
    if (e.rfind("shard-", 0) == 0 && !known.count(e)) {
      std::fprintf(stderr, "stream-serve: %s: removing %s (not in the topology)\n", name.c_str(), e.c_str());
      SK_TRY(io_->RemoveDirRecursive(s->dir + "/" + e));
    }
  }
  // A checkpoint replacement cut short (WriteFileAtomic's temp file) is removed; the
  // groups are loaded now, before any append, so that a checkpoint past the end of a
  // shard whose tail recovery cut is brought back to that end (LoadGroupLocked).
  if (auto groups = io_->ListDir(s->dir + "/groups"); groups.ok())
    for (const std::string& g : *groups) {
      if (g.size() > 9 && g.substr(g.size() - 9) == ".ckpt.tmp") (void)io_->Remove(s->dir + "/groups/" + g);
      if (g.size() > 5 && g.substr(g.size() - 5) == ".ckpt") (void)LoadGroupLocked(*s, g.substr(0, g.size() - 5), false);
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
    return Status::InvalidArgument(proto::InvalidNameMessage("stream", name));
  if (name.rfind(kCreatingPrefix, 0) == 0 || name.rfind(kDeletedPrefix, 0) == 0)
    return Status::InvalidArgument(fmt::format("invalid stream name '{}': names starting with {} or {} are reserved",
                                               name, kCreatingPrefix, kDeletedPrefix));
  if (shards < 1 || shards > kMaxShards)
    return Status::InvalidArgument(fmt::format("shard count {} out of range 1-{}", shards, kMaxShards));
  if (retention_ms < log::kHourMs || retention_ms > 8760 * log::kHourMs)
    return Status::InvalidArgument(fmt::format("retention {} out of range 1h-8760h", FormatDuration(retention_ms)));
  if (max_record_bytes == 0) max_record_bytes = 1u << 20;
  if (max_record_bytes < 1024 || max_record_bytes > 10u << 20)
    return Status::InvalidArgument("max record size must be 1 KiB to 10 MiB");
  std::lock_guard<std::mutex> g(mu_);
  if (streams_.count(name)) return Status::Busy(fmt::format("stream '{}' already exists", name));
  SK_TRY(CheckFileRoom(shards));
  auto s = std::make_shared<Stream>();
  s->dir = StreamsDir() + "/" + name;
  s->meta.name = name;
  s->meta.created_ms = NowMs();
  s->meta.retention_ms = retention_ms;
  s->meta.flags = flags;
  s->meta.max_record_bytes = max_record_bytes;
  // Even split of 0 .. 2^128-1.
  for (uint32_t i = 0; i < shards; i++) {
    ShardMeta m;
    m.index = i;
    m.created_ms = s->meta.created_ms;
    EvenRange(i, shards, &m.start, &m.end);
    s->meta.shards.push_back(m);
  }
  if (flags & proto::kFlagOnDemand) s->meta.scaling.on_demand = true;
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
    auto sh = NewShard(*s, m);
    auto lg = OpenShardLog(*s, m);
    if (!lg.ok()) {
      // No half-made stream stays behind (the next start would have to open it).
      for (auto& [i, open] : s->shards) (void)open->log->Close();
      s->shards.clear();
      std::string grave = fmt::format("{}/{}{}-{}", StreamsDir(), kDeletedPrefix, name, NowMs());
      if (io_->Rename(s->dir, grave).ok()) {
        (void)io_->SyncDir(StreamsDir());
        (void)io_->RemoveDirRecursive(grave);
      }
      return lg.status();
    }
    sh->log = std::move(*lg);
    s->shards[m.index] = sh;
  }
  streams_[name] = s;
  return s;
}

Result<std::shared_ptr<Stream>> Store::CreateMirror(StreamMeta meta) {
  const std::string name = meta.name;
  if (!proto::ValidName(name) || name.rfind(kCreatingPrefix, 0) == 0 || name.rfind(kDeletedPrefix, 0) == 0)
    return Status::InvalidArgument(fmt::format("invalid stream name '{}'", name));
  if (meta.shards.empty() || meta.shards.size() > 100000) return Status::InvalidArgument("bad shard list");
  if (meta.retention_ms < log::kHourMs || meta.retention_ms > 8760 * log::kHourMs)
    return Status::InvalidArgument("retention out of range 1h-8760h");
  // The open shards must cover the key space exactly, and indexes be below next.
  if (meta.max_record_bytes == 0 || meta.max_record_bytes > 10u << 20)
    return Status::InvalidArgument("max record size must be 1 byte to 10 MiB");
  std::vector<std::pair<u128, u128>> open;
  std::set<uint32_t> seen;
  for (ShardMeta& m : meta.shards) {
    if (m.index >= meta.next_shard_index || m.start > m.end || m.state > proto::kClosed || !seen.insert(m.index).second)
      return Status::InvalidArgument(fmt::format("bad shard entry {}", proto::ShardIdName(m.index)));
    if (m.state == proto::kOpen) open.push_back({m.start, m.end});
    m.created_ms = NowMs();
    if (m.state == proto::kClosed) m.closed_ms = m.created_ms;
  }
  if (open.size() > kMaxShards) return Status::InvalidArgument(fmt::format("more than {} open shards", kMaxShards));
  std::sort(open.begin(), open.end());
  u128 next = 0;
  for (size_t i = 0; i < open.size(); i++) {
    if (open[i].first != next) return Status::InvalidArgument("open shards do not cover the hash key space");
    next = open[i].second + 1;
    if (open[i].second == kU128Max && i + 1 != open.size()) return Status::InvalidArgument("overlapping shards");
  }
  if (open.empty() || open.back().second != kU128Max)
    return Status::InvalidArgument("open shards do not cover the hash key space");
  std::lock_guard<std::mutex> g(mu_);
  if (streams_.count(name)) return Status::Busy(fmt::format("stream '{}' already exists", name));
  SK_TRY(CheckFileRoom(meta.shards.size()));
  auto s = std::make_shared<Stream>();
  s->dir = StreamsDir() + "/" + name;
  meta.created_ms = NowMs();
  meta.events.clear();
  s->meta = meta;
  std::string tmp = fmt::format("{}/{}{}", StreamsDir(), kCreatingPrefix, name);
  (void)io_->RemoveDirRecursive(tmp);
  SK_TRY(io_->CreateDirs(tmp));
  // The shard logs are made inside the temporary directory (at their first offsets),
  // then the whole stream is renamed into place.
  {
    Stream staged;
    staged.dir = tmp;
    staged.meta = meta;
    for (const ShardMeta& m : meta.shards) {
      SK_ASSIGN_OR_RETURN(auto lg, OpenShardLog(staged, m));
      SK_TRY(lg->Close());
    }
  }
  std::string text = EncodeStreamMeta(meta);
  SK_TRY(io::WriteFileAtomic(*io_, tmp + "/stream.meta", text.data(), text.size()));
  SK_TRY(io_->Rename(tmp, s->dir));
  SK_TRY(io_->SyncDir(StreamsDir()));
  for (const ShardMeta& m : meta.shards) {
    SK_ASSIGN_OR_RETURN(s->shards[m.index], OpenShard(*s, m));
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
    RemoveExpiredShards(*s);
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
  info.origin = s.meta.origin;
  info.next_shard_index = s.meta.next_shard_index;
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
    si.created_ms = sh->meta.created_ms;
    si.closed_ms = sh->meta.closed_ms;
    info.shards.push_back(si);
  }
  const ScalingPolicy& p = s.meta.scaling;
  info.scaling = proto::ScalingInfo{uint8_t(p.on_demand), p.min_shards, p.max_shards, p.split_bytes_per_s,
                                    p.split_records_per_s, p.merge_pct, p.hot_ms, p.cold_ms};
  for (const ReshardEvent& e : s.meta.events) info.events.push_back({e.time_ms, e.text});
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
      // A checkpoint past its shard's end: recovery cut the shard's tail after the
      // group had read it (a damaged batch, or a power cut under interval/never).
      // The offsets past the end are given to new records, which the group must
      // read: it resumes at the end.
      for (auto& [shard, off] : g->checkpoints) {
        auto sh = s.shards.find(shard);
        if (sh == s.shards.end() || !sh->second->log) continue;
        uint64_t end = sh->second->log->end_offset();
        if (off <= end) continue;
        std::fprintf(stderr, "stream-serve: %s: group %s: checkpoint %llu of %s is past the shard's end %llu "
                     "(its tail was cut at recovery); resuming at the end\n", path.c_str(), group.c_str(),
                     (unsigned long long)off, proto::ShardIdName(shard).c_str(), (unsigned long long)end);
        off = end;
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

std::map<uint32_t, bool> Store::FinishedLocked(Stream& s, GroupState& g) {
  // A shard is finished when it is closed, read to its end (or empty), and its
  // parents are finished: an empty shard closed by the same reshard that made it must
  // not let its children start before its own parents end. Children always have
  // larger indexes than their parents, so one pass in index order settles it.
  std::map<uint32_t, bool> done;
  for (auto& [i, sh] : s.shards) {
    bool f = sh->meta.state != proto::kOpen;
    for (int32_t p : {sh->meta.parent, sh->meta.adjacent_parent})
      if (f && p >= 0) {
        auto it = done.find(uint32_t(p));
        if (it != done.end() && !it->second) f = false;  // missing: expired, nothing left
      }
    if (f) {
      auto ck = g.checkpoints.find(i);
      uint64_t end = sh->log->end_offset();
      f = end == sh->log->start_offset() || (ck != g.checkpoints.end() && ck->second >= end);
    }
    done[i] = f;
  }
  return done;
}

std::vector<uint32_t> Store::EligibleLocked(Stream& s, GroupState& g) {
  // Eligible: not finished, and every parent finished (parents are read to their end
  // before any child starts, so each key's records stay in order).
  std::vector<uint32_t> eligible;
  auto done = FinishedLocked(s, g);
  for (auto& [i, sh] : s.shards) {
    if (done[i]) continue;
    bool parents_done = true;
    for (int32_t p : {sh->meta.parent, sh->meta.adjacent_parent})
      if (p >= 0 && done.count(uint32_t(p)) && !done[uint32_t(p)]) parents_done = false;
    if (parents_done) eligible.push_back(i);
  }
  return eligible;
}

void Store::RebalanceLocked(Stream& s, GroupState& g) {
  std::vector<uint32_t> eligible = EligibleLocked(s, g);
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
    return Status::InvalidArgument(proto::InvalidNameMessage("group", group));
  std::lock_guard<std::mutex> lk(s.mu);
  GroupState* g = LoadGroupLocked(s, group, true);
  int64_t now = NowMs();
  bool changed = false;
  auto release_all = [&](const std::string& id) {
    for (auto h = g->holders.begin(); h != g->holders.end();)
      h = h->second == id ? g->holders.erase(h) : std::next(h);
  };
  for (auto it = g->members.begin(); it != g->members.end();) {
    if (it->second.deadline_ms < now && it->first != member) {
      release_all(it->first);
      it = g->members.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  if (leaving) {
    changed |= g->members.erase(member) > 0;
    release_all(member);
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
    auto eligible = EligibleLocked(s, *g);
    changed = assigned != std::set<uint32_t>(eligible.begin(), eligible.end());
  }
  if (changed) RebalanceLocked(s, *g);
  *generation = g->generation;
  std::vector<proto::GroupAssignment> out;
  if (leaving) return out;
  // The shards this member held and no longer owns are free now: stream-tail commits
  // what it printed just before asking; stream-firehose drops what it buffered and
  // its late commits are refused (its intent files make the new owner's redelivery
  // write the same files). Of its own, it gets those that no other member still
  // holds; the rest come at a later heartbeat, once released.
  const auto& mine = g->members[member].shards;
  for (auto h = g->holders.begin(); h != g->holders.end();)
    h = h->second == member && std::find(mine.begin(), mine.end(), h->first) == mine.end()
            ? g->holders.erase(h) : std::next(h);
  for (uint32_t sh : mine) {
    auto [h, free] = g->holders.try_emplace(sh, member);
    if (!free && h->second != member) continue;
    auto ck = g->checkpoints.find(sh);
    out.push_back({sh, ck == g->checkpoints.end() ? UINT64_MAX : ck->second});
  }
  return out;
}

Status Store::GroupCommit(Stream& s, const std::string& group, const std::string& member,
                          uint32_t shard, uint64_t offset) {
  if (!proto::ValidName(group)) return Status::InvalidArgument(proto::InvalidNameMessage("group", group));
  std::lock_guard<std::mutex> lk(s.mu);
  GroupState* g = LoadGroupLocked(s, group, false);
  if (g == nullptr) return Status::NotFound(fmt::format("group '{}' does not exist", group));
  // The shard's holder may commit, also after a rebalance gave it to another member
  // (until it hears so at its next heartbeat): what it printed is then not read again.
  auto h = g->holders.find(shard);
  if (h == g->holders.end() || h->second != member || !g->members.count(member))
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
    for (auto& [id, mem] : g->members) {
      if (mem.deadline_ms < now) continue;
      std::vector<uint32_t> held;  // what it reads now (a moved shard until it lets go)
      for (auto& [sh, holder] : g->holders)
        if (holder == id) held.push_back(sh);
      gi.members.push_back({id, held, mem.last_heartbeat_ms});
    }
    for (auto& [sh, off] : g->checkpoints) gi.checkpoints.push_back({sh, off});
    out.push_back(std::move(gi));
  }
  return out;
}

Status Store::GroupReset(Stream& s, const std::string& group, const std::string& target) {
  if (!proto::ValidName(group)) return Status::InvalidArgument(proto::InvalidNameMessage("group", group));
  std::lock_guard<std::mutex> lk(s.mu);
  // Nothing changes (not even a new group is made) unless the reset is valid.
  GroupState* g = LoadGroupLocked(s, group, false);
  int64_t now = NowMs();
  if (g)
    for (auto& [id, mem] : g->members)
      if (mem.deadline_ms >= now)
        return Status::Busy(fmt::format("group '{}' has live member '{}'; stop its consumers first",
                                        group, id));
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
    auto sh = s.shards.find(shard);
    if (sh == s.shards.end())
      return Status::InvalidArgument(fmt::format("sequence number {} names no shard of this stream", target.substr(4)));
    uint64_t off = proto::SequenceOffset(*seq), end = sh->second->log->end_offset();
    // The group reads from S on: S may be the next record to come (the shard's end),
    // not one past it, which would skip records not yet written.
    if (off > end)
      return Status::InvalidArgument(fmt::format(
          "sequence number {} is past the end of {} (the next record there will be {})", target.substr(4),
          proto::ShardIdName(shard), U128ToString(proto::SequenceNumber(shard, end))));
    if (g) ck = g->checkpoints;
    ck[shard] = off;
  } else {
    return Status::InvalidArgument(
        fmt::format("reset target '{}': use trim-horizon, latest, time:T or seq:S", target));
  }
  if (!g) g = LoadGroupLocked(s, group, true);
  g->members.clear();
  g->holders.clear();
  g->checkpoints = ck;
  g->generation++;
  return SaveGroupLocked(s, *g);
}


// ---- resharding ----------------------------------------------------------------------

namespace {

std::string HashText(u128 v) { return U128ToString(v); }

ShardMeta* FindMeta(StreamMeta& m, uint32_t index) {
  for (ShardMeta& s : m.shards)
    if (s.index == index) return &s;
  return nullptr;
}

size_t OpenCount(const StreamMeta& m) {
  size_t n = 0;
  for (const ShardMeta& s : m.shards) n += s.state == proto::kOpen;
  return n;
}

// Applies one op to `m` (validated first); returns a sentence for the event log.
Result<std::string> ApplyOp(StreamMeta& m, ReshardOp& op, int64_t now) {
  auto open_shard = [&](uint32_t index) -> Result<ShardMeta*> {
    ShardMeta* s = FindMeta(m, index);
    if (s == nullptr)
      return Status::NotFound(fmt::format("stream '{}' has no {}", m.name, proto::ShardIdName(index)));
    if (s->state != proto::kOpen)
      return Status::InvalidArgument(fmt::format("{} is closed (already split or merged); only open shards can be resharded",
                                                 proto::ShardIdName(index)));
    return s;
  };
  if (op.kind == ReshardOp::kSplit) {
    SK_ASSIGN_OR_RETURN(ShardMeta * p, open_shard(op.shard));
    if (p->start == p->end)
      return Status::InvalidArgument(fmt::format("{} covers a single hash key and cannot be split",
                                                 proto::ShardIdName(op.shard)));
    if (op.at == 0) op.at = p->start + (p->end - p->start) / 2 + 1;  // the middle
    if (op.at <= p->start || op.at > p->end)
      return Status::InvalidArgument(fmt::format(
          "--at {} is outside {}'s range: it must be in {}..{} (the first hash key of the second child)",
          HashText(op.at), proto::ShardIdName(op.shard), HashText(p->start + 1), HashText(p->end)));
    if (OpenCount(m) + 1 > kMaxShards)
      return Status::InvalidArgument(fmt::format("a stream has at most {} open shards", kMaxShards));
    ShardMeta a, b;
    a.index = m.next_shard_index++;
    b.index = m.next_shard_index++;
    a.parent = b.parent = int32_t(op.shard);
    a.start = p->start;
    a.end = op.at - 1;
    b.start = op.at;
    b.end = p->end;
    a.created_ms = b.created_ms = now;
    p->state = proto::kClosed;
    p->closed_ms = now;
    op.child1 = a.index;
    op.child2 = int32_t(b.index);
    std::string text = fmt::format("split {} at {} into {} and {}", proto::ShardIdName(op.shard), HashText(op.at),
                                   proto::ShardIdName(a.index), proto::ShardIdName(b.index));
    m.shards.push_back(a);
    m.shards.push_back(b);
    return text;
  }
  if (op.kind == ReshardOp::kMerge) {
    if (op.shard == op.adjacent)
      return Status::InvalidArgument(fmt::format("cannot merge {} with itself", proto::ShardIdName(op.shard)));
    SK_ASSIGN_OR_RETURN(ShardMeta * p, open_shard(op.shard));
    SK_ASSIGN_OR_RETURN(ShardMeta * q, open_shard(op.adjacent));
    bool adjacent = (p->end != kU128Max && p->end + 1 == q->start) || (q->end != kU128Max && q->end + 1 == p->start);
    if (!adjacent)
      return Status::InvalidArgument(fmt::format(
          "{} ({}..{}) and {} ({}..{}) are not adjacent: only shards whose hash key ranges touch can be merged",
          proto::ShardIdName(op.shard), HashText(p->start), HashText(p->end), proto::ShardIdName(op.adjacent),
          HashText(q->start), HashText(q->end)));
    ShardMeta c;
    c.index = m.next_shard_index++;
    c.parent = int32_t(op.shard);
    c.adjacent_parent = int32_t(op.adjacent);
    c.start = std::min(p->start, q->start);
    c.end = std::max(p->end, q->end);
    c.created_ms = now;
    p->state = q->state = proto::kClosed;
    p->closed_ms = q->closed_ms = now;
    op.child1 = c.index;
    op.child2 = -1;
    std::string text = fmt::format("merged {} and {} into {}", proto::ShardIdName(op.shard),
                                   proto::ShardIdName(op.adjacent), proto::ShardIdName(c.index));
    m.shards.push_back(c);
    return text;
  }
  return Status::InvalidArgument("unknown reshard operation");
}

}  // namespace

Status Store::Reshard(Stream& s, std::vector<ReshardOp>* ops, bool dry_run, const std::string& why,
                      std::vector<std::shared_ptr<Shard>>* closed) {
  std::lock_guard<std::mutex> lk(s.mu);
  return ReshardLocked(s, ops, dry_run, why, closed);
}

Status Store::ReshardLocked(Stream& s, std::vector<ReshardOp>* ops, bool dry_run, const std::string& why,
                            std::vector<std::shared_ptr<Shard>>* closed) {
  if (s.deleted) return Status::NotFound(fmt::format("stream '{}' does not exist", s.meta.name));
  if (ops->empty()) return Status::OK();
  // Apply to a copy: any invalid op leaves the topology as it was.
  StreamMeta next = s.meta;
  int64_t now = NowMs();
  std::vector<std::string> texts;
  for (ReshardOp& op : *ops) {
    SK_ASSIGN_OR_RETURN(std::string t, ApplyOp(next, op, now));
    texts.push_back(std::move(t));
  }
  if (dry_run) return Status::OK();
  uint64_t added = 0;
  for (const ShardMeta& m : next.shards) added += !s.shards.count(m.index);
  SK_TRY(CheckFileRoom(added));
  for (const std::string& t : texts) {
    next.events.push_back({now, why.empty() ? t : fmt::format("{} ({})", t, why)});
  }
  if (next.events.size() > StreamMeta::kMaxEvents)
    next.events.erase(next.events.begin(), next.events.end() - StreamMeta::kMaxEvents);

  // Seal the shards that close: appends in flight finish first, later ones are
  // refused. Then make the parents' data durable, so a closed shard's end is final.
  std::vector<std::shared_ptr<Shard>> parents;
  for (const ShardMeta& m : next.shards)
    if (m.state == proto::kClosed) {
      auto it = s.shards.find(m.index);
      if (it != s.shards.end() && it->second->meta.state == proto::kOpen) parents.push_back(it->second);
    }
  auto unseal = [&] {
    for (auto& p : parents) p->log->Seal(false);
  };
  for (auto& p : parents) p->log->Seal();
  for (auto& p : parents) {
    Status st = p->log->Sync();
    if (!st.ok()) {
      unseal();
      return st;
    }
  }

  // The children's (empty) logs, then the commit point: stream.meta replaced
  // atomically. A crash before the rename leaves the old topology (the new shard
  // directories are removed at the next start); after it, the new one.
  std::vector<std::shared_ptr<Shard>> children;
  auto undo = [&] {
    unseal();
    for (auto& c : children) {
      (void)c->log->Close();
      (void)io_->RemoveDirRecursive(s.dir + "/" + ShardDirName(c->meta.index));
    }
  };
  for (const ShardMeta& m : next.shards) {
    if (s.shards.count(m.index)) continue;
    auto sh = NewShard(s, m);
    auto lg = OpenShardLog(s, m);
    if (!lg.ok()) {
      undo();
      return lg.status();
    }
    sh->log = std::move(*lg);
    if (sh->closed) sh->log->Seal();  // closed by a later op of the same request
    children.push_back(sh);
  }
  if (Status st = io_->SyncDir(s.dir); !st.ok()) {
    undo();
    return st;
  }
  CrashPoint("reshard-children-created");
  std::string text = EncodeStreamMeta(next);
  std::string path = s.dir + "/stream.meta", tmp = path + ".tmp";
  Status st = [&]() -> Status {
    {
      SK_ASSIGN_OR_RETURN(auto f, io_->Open(tmp, io::OpenMode::kCreateTrunc));
      SK_TRY(f->WriteAt(text.data(), text.size(), 0));
      SK_TRY(f->DataSync());
    }
    CrashPoint("reshard-meta-written");
    return io_->Rename(tmp, path);
  }();
  if (!st.ok()) {
    undo();
    return st;
  }
  CrashPoint("reshard-meta-renamed");
  st = io_->SyncDir(s.dir);
  CrashPoint("reshard-committed");
  // The new stream.meta is in place (a later fsync of the directory, at the next
  // change, makes the rename durable): the new topology is the one served.
  if (!st.ok())
    std::fprintf(stderr, "stream-serve: %s: fsync of the stream directory failed after a reshard: %s\n",
                 s.meta.name.c_str(), st.ToString().c_str());

  // In memory: parents closed (their logs stay sealed), children added.
  for (auto& p : parents) {
    ShardMeta* m = FindMeta(next, p->meta.index);
    p->meta = *m;
    p->closed = true;
    p->hot_since_ms = p->cold_since_ms = 0;
  }
  for (auto& c : children) s.shards[c->meta.index] = c;
  s.meta = std::move(next);
  if (closed) *closed = parents;
  return Status::OK();
}

Result<std::vector<ReshardOp>> Store::PlanScale(Stream& s, uint32_t target) {
  if (target < 1 || target > kMaxShards)
    return Status::InvalidArgument(fmt::format("target shard count {} out of range 1-{}", target, kMaxShards));
  std::lock_guard<std::mutex> lk(s.mu);
  struct Cur {
    uint32_t index;
    u128 start, end;
  };
  std::vector<Cur> cur;
  for (const ShardMeta& m : s.meta.shards)
    if (m.state == proto::kOpen) cur.push_back({m.index, m.start, m.end});
  std::sort(cur.begin(), cur.end(), [](const Cur& a, const Cur& b) { return a.start < b.start; });
  uint32_t next = s.meta.next_shard_index;
  std::vector<ReshardOp> ops;
  // 1. Split wherever a target boundary falls inside a shard.
  for (uint32_t i = 1; i < target; i++) {
    u128 b, e;
    EvenRange(i, target, &b, &e);
    for (size_t k = 0; k < cur.size(); k++) {
      if (!(cur[k].start < b && b <= cur[k].end)) continue;
      ReshardOp op;
      op.kind = ReshardOp::kSplit;
      op.shard = cur[k].index;
      op.at = b;
      ops.push_back(op);
      Cur lo{next, cur[k].start, b - 1}, hi{next + 1, b, cur[k].end};
      next += 2;
      cur[k] = lo;
      cur.insert(cur.begin() + long(k) + 1, hi);
      break;
    }
  }
  // 2. Merge, left to right, the shards inside each target range into one. After the
  // splits every shard lies inside exactly one target range.
  u128 s0, e0;
  EvenRange(0, target, &s0, &e0);
  auto target_of = [&](u128 key) -> uint32_t {
    if (target == 1) return 0;
    u128 t = key / (e0 + 1);
    return t >= target ? target - 1 : uint32_t(t);
  };
  std::vector<Cur> out;
  for (const Cur& c : cur) {
    if (!out.empty() && target_of(out.back().start) == target_of(c.start)) {
      ReshardOp op;
      op.kind = ReshardOp::kMerge;
      op.shard = out.back().index;
      op.adjacent = c.index;
      ops.push_back(op);
      out.back() = Cur{next++, out.back().start, c.end};
      continue;
    }
    out.push_back(c);
  }
  return ops;
}

Status Store::SetScaling(Stream& s, const ScalingPolicy& p) {
  if (p.on_demand) {
    if (p.min_shards < 1 || p.max_shards > kMaxShards || p.min_shards > p.max_shards)
      return Status::InvalidArgument(fmt::format("--min {} and --max {} must satisfy 1 <= min <= max <= {}",
                                                 p.min_shards, p.max_shards, kMaxShards));
    if (p.split_bytes_per_s == 0 || p.split_records_per_s == 0)
      return Status::InvalidArgument("split thresholds must be positive");
    if (p.merge_pct > 100) return Status::InvalidArgument("--merge-below must be 0-100 (percent)");
  }
  std::lock_guard<std::mutex> lk(s.mu);
  StreamMeta next = s.meta;
  next.scaling = p;
  if (p.on_demand) next.flags |= proto::kFlagOnDemand;
  else next.flags &= uint8_t(~proto::kFlagOnDemand);
  next.events.push_back({NowMs(), p.on_demand ? fmt::format("on-demand scaling on: {}-{} shards, split above {} B/s or "
                                                            "{} records/s for {} ms, merge below {}% for {} ms",
                                                            p.min_shards, p.max_shards, p.split_bytes_per_s,
                                                            p.split_records_per_s, p.hot_ms, p.merge_pct, p.cold_ms)
                                              : std::string("on-demand scaling off (manual)")});
  if (next.events.size() > StreamMeta::kMaxEvents)
    next.events.erase(next.events.begin(), next.events.end() - StreamMeta::kMaxEvents);
  std::string text = EncodeStreamMeta(next);
  SK_TRY(io::WriteFileAtomic(*io_, s.dir + "/stream.meta", text.data(), text.size()));
  s.meta = std::move(next);
  for (auto& [i, sh] : s.shards) sh->hot_since_ms = sh->cold_since_ms = 0;
  return Status::OK();
}

std::vector<std::string> Store::AutoScale(std::vector<std::shared_ptr<Shard>>* closed) {
  std::vector<std::string> log;
  int64_t now = NowMs();
  for (auto& sp : List()) {
    Stream& s = *sp;
    std::lock_guard<std::mutex> lk(s.mu);
    const ScalingPolicy p = s.meta.scaling;
    if (!p.on_demand || s.deleted) continue;
    struct Open {
      std::shared_ptr<Shard> sh;
      uint64_t bps, rps;
    };
    std::vector<Open> open;
    for (auto& [i, sh] : s.shards)
      if (sh->meta.state == proto::kOpen) {
        Open o{sh, 0, 0};
        sh->writes.Rate(now, &o.bps, &o.rps);
        open.push_back(o);
      }
    std::sort(open.begin(), open.end(), [](const Open& a, const Open& b) { return a.sh->meta.start < b.sh->meta.start; });
    std::vector<ReshardOp> ops;
    std::string why;
    size_t count = open.size();
    // Hot shards: split in the middle once they have stayed hot for hot_ms.
    for (Open& o : open) {
      bool hot = o.bps > p.split_bytes_per_s || o.rps > p.split_records_per_s;
      if (!hot) {
        o.sh->hot_since_ms = 0;
        continue;
      }
      if (o.sh->hot_since_ms == 0) o.sh->hot_since_ms = now;
      if (now - o.sh->hot_since_ms >= p.hot_ms && count < p.max_shards && o.sh->meta.start < o.sh->meta.end) {
        ReshardOp op;
        op.kind = ReshardOp::kSplit;
        op.shard = o.sh->meta.index;
        ops.push_back(op);
        count++;
        why = fmt::format("auto: {} wrote {} B/s, {} records/s for {} s; capacity {} B/s, {} records/s",
                          proto::ShardIdName(o.sh->meta.index), o.bps, o.rps, (now - o.sh->hot_since_ms) / 1000,
                          p.split_bytes_per_s, p.split_records_per_s);
        break;  // one change at a time; the next tick looks again
      }
    }
    // Cold neighbours: merge a pair whose combined rate stayed under merge_pct of one
    // shard's capacity for cold_ms.
    if (ops.empty()) {
      for (size_t k = 0; k + 1 < open.size(); k++) {
        Open &a = open[k], &b = open[k + 1];
        bool cold = (a.bps + b.bps) * 100 < p.split_bytes_per_s * p.merge_pct &&
                    (a.rps + b.rps) * 100 < p.split_records_per_s * p.merge_pct &&
                    now - a.sh->meta.created_ms >= p.cold_ms && now - b.sh->meta.created_ms >= p.cold_ms;
        if (!cold) {
          a.sh->cold_since_ms = 0;
          continue;
        }
        if (a.sh->cold_since_ms == 0) a.sh->cold_since_ms = now;
        if (now - a.sh->cold_since_ms >= p.cold_ms && count > p.min_shards) {
          ReshardOp op;
          op.kind = ReshardOp::kMerge;
          op.shard = a.sh->meta.index;
          op.adjacent = b.sh->meta.index;
          ops.push_back(op);
          why = fmt::format("auto: {} and {} wrote {} B/s, {} records/s together for {} s; below {}% of capacity",
                            proto::ShardIdName(a.sh->meta.index), proto::ShardIdName(b.sh->meta.index),
                            a.bps + b.bps, a.rps + b.rps, (now - a.sh->cold_since_ms) / 1000, p.merge_pct);
          break;
        }
        k++;  // b is spoken for this tick
      }
    }
    if (ops.empty()) continue;
    std::vector<std::shared_ptr<Shard>> c;
    Status st = ReshardLocked(s, &ops, false, why, &c);
    if (st.ok()) {
      log.push_back(fmt::format("{}: {}", s.meta.name, s.meta.events.back().text));
      closed->insert(closed->end(), c.begin(), c.end());
    } else {
      log.push_back(fmt::format("{}: on-demand reshard failed: {}", s.meta.name, st.ToString()));
    }
  }
  return log;
}

void Store::RemoveExpiredShards(Stream& s) {
  // A closed shard whose records have all expired is gone, as in Kinesis: it leaves
  // the topology (its children no longer wait for it) and its directory is removed.
  std::lock_guard<std::mutex> lk(s.mu);
  if (s.deleted) return;
  int64_t now = NowMs();
  std::vector<uint32_t> gone;
  for (auto& [i, sh] : s.shards)
    if (sh->meta.state == proto::kClosed && sh->log->start_offset() == sh->log->end_offset() &&
        now - sh->meta.closed_ms >= s.meta.retention_ms)
      gone.push_back(i);
  if (gone.empty()) return;
  StreamMeta next = s.meta;
  std::erase_if(next.shards, [&](const ShardMeta& m) {
    return std::find(gone.begin(), gone.end(), m.index) != gone.end();
  });
  std::string text = EncodeStreamMeta(next);
  if (!io::WriteFileAtomic(*io_, s.dir + "/stream.meta", text.data(), text.size()).ok()) return;
  s.meta = std::move(next);
  for (uint32_t i : gone) {
    auto sh = s.shards[i];
    s.shards.erase(i);
    (void)sh->log->Close();
    (void)io_->RemoveDirRecursive(s.dir + "/" + ShardDirName(i));
  }
}

}  // namespace streamkit::server

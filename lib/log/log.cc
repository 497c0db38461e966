#include "log/log.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <thread>
#include <vector>

#include "log/names.h"
#include "util/coding.h"
#include "util/crc32c.h"

namespace streamkit::log {
namespace {

int64_t WallClockMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

constexpr size_t kProducerSnapshotsKept = 2;
constexpr size_t kMaxSnapshotBytes = 64u << 20;

}  // namespace

Result<Durability> Durability::Parse(std::string_view t) {
  Durability d;
  if (t == "always") {
    d.mode = Mode::kAlways;
  } else if (t == "never") {
    d.mode = Mode::kNever;
  } else if (t == "interval") {
    d.mode = Mode::kInterval;
  } else if (t.substr(0, 9) == "interval=") {
    std::string_view v = t.substr(9);
    if (v.size() > 2 && v.substr(v.size() - 2) == "ms") v.remove_suffix(2);
    int ms = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
    if (ec != std::errc() || p != v.data() + v.size() || ms < 1 || ms > 3600000)
      return Status::InvalidArgument(fmt::format(
          "durability '{}': the interval must be 1 to 3600000 milliseconds", t));
    d.mode = Mode::kInterval;
    d.interval_ms = ms;
  } else {
    return Status::InvalidArgument(
        fmt::format("durability '{}': expected always, interval=MS or never", t));
  }
  return d;
}

std::string Durability::ToString() const {
  switch (mode) {
    case Mode::kAlways: return "always";
    case Mode::kNever: return "never";
    case Mode::kInterval: return fmt::format("interval={}", interval_ms);
  }
  return "?";
}

Log::Log(std::shared_ptr<io::Io> io, std::string dir, LogOptions opts)
    : io_(std::move(io)), dir_(std::move(dir)), opts_(std::move(opts)) {
  if (!opts_.clock) opts_.clock = WallClockMs;
}

Result<std::unique_ptr<Log>> Log::Open(std::shared_ptr<io::Io> io, std::string dir,
                                       LogOptions opts, RecoveryReport* report) {
  // Index positions are 32-bit: a segment stays below 4 GiB, whatever batch closes it.
  if (opts.segment_bytes < kBatchHeaderSize || opts.segment_bytes > (1ull << 32) - kMaxBatchBytes ||
      opts.index_interval_bytes == 0)
    return Status::InvalidArgument(
        "segment_bytes must be 72 B to 4 GiB - 16 MiB and index_interval_bytes positive");
  std::unique_ptr<Log> log(new Log(std::move(io), std::move(dir), std::move(opts)));
  RecoveryReport local;
  SK_TRY(log->Load(report ? report : &local));
  if (log->opts_.durability.mode == Durability::Mode::kInterval && log->opts_.background_sync)
    log->syncer_ = std::thread([l = log.get()] { l->SyncLoop(); });
  return log;
}

Log::~Log() { (void)Close(); }

Status Log::Load(RecoveryReport* report) {
  SK_TRY(io_->CreateDirs(dir_));
  SK_ASSIGN_OR_RETURN(auto names, io_->ListDir(dir_));
  std::vector<uint64_t> bases;
  for (const std::string& n : names) {
    if (auto b = ParseSegmentFileName(n, kLogExt)) bases.push_back(*b);
    else if (n.size() > 4 && n.substr(n.size() - 4) == ".tmp")
      (void)io_->Remove(dir_ + "/" + n);  // an atomic write that did not finish
  }
  std::sort(bases.begin(), bases.end());
  recovery_point_ = ReadRecoveryPoint();
  for (size_t i = 0; i < bases.size(); i++) {
    // Sealed segments are synced after the roll, off the append path, so after a
    // power cut one may have a torn tail: every segment's tail is checked. A sealed
    // segment that ends at or below the recovery point was synced: a bad batch there
    // is damage, kept and reported, not a tear to cut.
    uint64_t synced_end = i + 1 < bases.size() && bases[i + 1] <= recovery_point_ ? bases[i + 1] : 0;
    SK_ASSIGN_OR_RETURN(auto seg, Segment::Open(*io_, dir_, bases[i], opts_.index_interval_bytes,
                                                synced_end, report));
    if (!segments_.empty() && segments_.rbegin()->second->next_offset() != bases[i]) {
      // The previous segment lost its tail: what follows it cannot be trusted.
      seg.reset();
      for (size_t j = i; j < bases.size(); j++) {
        for (auto ext : {kLogExt, kIndexExt, kTimeIndexExt}) (void)io_->Remove(SegmentPath(dir_, bases[j], ext));
        report->segments_dropped++;
      }
      report->problem += fmt::format("{}segment {} ended at offset {} but the next began at {}; "
                                     "{} later segment(s) removed",
                                     report->problem.empty() ? "" : "; ", SegmentFileName(segments_.rbegin()->first, kLogExt),
                                     segments_.rbegin()->second->next_offset(), bases[i], bases.size() - i);
      SK_TRY(io_->SyncDir(dir_));
      break;
    }
    segments_[bases[i]] = seg;
  }
  // A new log starts with an empty segment at offset 0 (or at initial_offset: a
  // mirror's shard starts where its source's does, so offsets match).
  if (segments_.empty()) {
    SK_ASSIGN_OR_RETURN(auto seg, Segment::Create(*io_, dir_, opts_.initial_offset, opts_.index_interval_bytes));
    segments_[opts_.initial_offset] = seg;
    SK_TRY(io_->SyncDir(dir_));
  }
  // A segment kept with damage: its records past the damage arrived no later than the
  // next non-empty segment's first one (arrival times never go backwards in a log).
  int64_t later_first = Now();
  for (auto it = segments_.rbegin(); it != segments_.rend(); ++it) {
    if (it->second->kept_damage()) it->second->RaiseMaxArrival(later_first);
    if (!it->second->empty() && it->second->first_arrival_ms() != INT64_MIN)
      later_first = it->second->first_arrival_ms();
  }
  active_ = segments_.rbegin()->second;
  end_ = active_->next_offset();
  synced_ = end_.load();
  // Recovery cut the log below the recovery point: the offsets past the new end will
  // be written again, unsynced, and must not count as synced at the next open.
  if (recovery_point_ > end_offset()) SK_TRY(WriteRecoveryPoint(end_offset()));
  last_append_ms_ = INT64_MIN;
  for (auto& [b, s] : segments_) last_append_ms_ = std::max(last_append_ms_, s->last_append_time_ms());
  return LoadProducerState(report);
}

Status Log::LoadProducerState(RecoveryReport* report) {
  SK_ASSIGN_OR_RETURN(auto names, io_->ListDir(dir_));
  std::vector<uint64_t> snaps;
  for (const std::string& n : names)
    if (auto b = ParseSegmentFileName(n, kProducersExt)) snaps.push_back(*b);
  std::sort(snaps.rbegin(), snaps.rend());
  uint64_t replay_from = start_offset();
  for (uint64_t s : snaps) {
    if (s > end_offset()) {
      // Taken past a tail that recovery cut off: it describes batches that are gone,
      // and would answer retries of them as duplicates once the log grows again.
      SK_TRY(io_->Remove(SegmentPath(dir_, s, kProducersExt)));
      continue;
    }
    auto text = io::ReadSmallFile(*io_, SegmentPath(dir_, s, kProducersExt), kMaxSnapshotBytes);
    if (!text.ok()) continue;
    auto at = producers_.Deserialize(reinterpret_cast<const uint8_t*>(text->data()), text->size());
    if (!at.ok()) continue;  // damaged: fall back to an older one
    replay_from = std::max(*at, start_offset());
    break;
  }
  // Replay batch headers written after the snapshot.
  Bytes buf;
  uint64_t off = replay_from;
  while (off < end_offset()) {
    buf.clear();
    auto rr = Read(off, 1u << 20, &buf);
    if (!rr.ok() && rr.status().is(Status::Code::kCorruption)) {
      // A segment kept with damage (FORMAT.md §5): go on with the next one. Retries of
      // batches stored past the damage are then not recognised as duplicates.
      std::lock_guard<std::mutex> g(mu_);
      auto next = segments_.upper_bound(off);
      off = next == segments_.end() ? end_offset() : next->first;
      continue;
    }
    SK_TRY(rr.status());
    ReadResult r = *rr;
    for (size_t at = 0; at < buf.size();) {
      BatchHeader h = DecodeHeader(buf.data() + at);
      if (h.next_offset() > off) {
        producers_.Update(h);
        if (report) report->producer_batches_replayed++;
      }
      at += h.batch_length;
    }
    off = r.next_offset;
  }
  return Status::OK();
}

// The recovery point file (FORMAT.md §1): u32 CRC-32C of bytes [4, 13), u8 version 1,
// u64 offset. Missing or damaged: 0 (nothing is known to be synced; recovery may cut
// any segment's tail, as before the file existed).
constexpr size_t kRecoveryPointBytes = 13;

uint64_t Log::ReadRecoveryPoint() {
  auto text = io::ReadSmallFile(*io_, dir_ + "/" + std::string(kRecoveryPointFile), 64);
  if (!text.ok()) return 0;
  const auto* p = reinterpret_cast<const uint8_t*>(text->data());
  if (text->size() != kRecoveryPointBytes || p[4] != 1 || DecodeFixed32(p) != crc32c::Value(p + 4, 9))
    return 0;
  return DecodeFixed64(p + 5);
}

Status Log::WriteRecoveryPoint(uint64_t offset) {
  uint8_t b[kRecoveryPointBytes];
  b[4] = 1;
  EncodeFixed64(b + 5, offset);
  EncodeFixed32(b, crc32c::Value(b + 4, 9));
  SK_TRY(io::WriteFileAtomic(*io_, dir_ + "/" + std::string(kRecoveryPointFile), b, sizeof b));
  recovery_point_ = offset;
  return Status::OK();
}

Status Log::WriteProducerSnapshotLocked() {
  uint64_t end = end_offset();
  Bytes snap = producers_.Serialize(end);
  // Not fsynced: a lost snapshot falls back to an older one plus a longer replay.
  SK_TRY(io::WriteFileAtomic(*io_, SegmentPath(dir_, end, kProducersExt), snap.data(), snap.size(),
                             /*durable=*/false));
  SK_ASSIGN_OR_RETURN(auto names, io_->ListDir(dir_));
  std::vector<uint64_t> snaps;
  for (const std::string& n : names)
    if (auto b = ParseSegmentFileName(n, kProducersExt)) snaps.push_back(*b);
  std::sort(snaps.rbegin(), snaps.rend());
  for (size_t i = kProducerSnapshotsKept; i < snaps.size(); i++)
    (void)io_->Remove(SegmentPath(dir_, snaps[i], kProducersExt));
  return Status::OK();
}

Result<AppendResult> Log::Append(std::span<uint8_t> batch, bool keep_time) {
  thread_local Bytes scratch;
  BatchHeader h;
  SK_TRY(ValidateBatch(batch, opts_.validate_records ? &opts_.limits : nullptr, &h, &scratch));

  std::lock_guard<std::mutex> g(mu_);
  if (closed_) return Status::Closed(fmt::format("{}: log is closed", dir_));
  if (!failed_.ok()) return failed_;
  ProducerBatch orig{};
  SK_ASSIGN_OR_RETURN(auto verdict, producers_.Check(h, &orig));
  if (verdict == ProducerState::Verdict::kDuplicate)
    return AppendResult{orig.base_offset, orig.base_offset + orig.record_count - 1,
                        orig.append_time_ms, true};
  // Sealed (the shard is being closed by a reshard): refused, the producer goes to
  // the children. A retry of a batch already stored is still answered above.
  // keep_time: stream-mirror copying a batch of another server, which must land at
  // the offset it has there (two mirrors writing one target cannot duplicate).
  if (keep_time && DecodeFixed64(batch.data() + kBaseOffsetPos) != end_offset())
    return Status::OutOfOrder(fmt::format("{}: mirrored batch at offset {}, but the shard ends at {}", dir_,
                                          DecodeFixed64(batch.data() + kBaseOffsetPos), end_offset()));
  // keep_time (stream-mirror filling a shard that was already closed on its source)
  // may still append.
  if (sealed_ && !keep_time) return Status::OutOfRange(fmt::format("{}: shard is closed", dir_));

  // Arrival times never go backwards. keep_time: the batch brings its arrival time
  // (a mirror copying another server's records).
  int64_t now = std::max(keep_time ? int64_t(DecodeFixed64(batch.data() + kAppendTimePos)) : Now(), last_append_ms_);
  if (!active_->empty() &&
      (active_->size() + batch.size() > opts_.segment_bytes ||
       now - active_->first_arrival_ms() >= opts_.segment_ms))
    SK_TRY(RollLocked());

  uint64_t base = end_offset();
  StampBatch(batch.data(), base, now);
  h.base_offset = base;
  h.append_time_ms = now;
  // Blocks are reserved ahead (FORMAT.md §6) except under `always`: there each
  // fdatasync would also convert the reserved blocks it covers, measured 10-20 %
  // slower per fdatasync than appending to unreserved space.
  const bool reserve = opts_.durability.mode != Durability::Mode::kAlways;
  Status s = active_->Append(batch, h, reserve ? opts_.segment_bytes : 0);
  if (!s.ok()) {
    // The segment cut the partial write back; the log stays appendable unless even
    // that failed, in which case it must be reopened (recovery truncates the tail).
    if (active_->broken()) PoisonLocked(s);
    return s;
  }
  producers_.Update(h);
  last_append_ms_ = now;
  end_.store(h.next_offset(), std::memory_order_release);
  return AppendResult{base, h.last_offset(), now, false};
}

void Log::AdvanceSynced(uint64_t to) {
  uint64_t cur = synced_.load(std::memory_order_acquire);
  while (cur < to && !synced_.compare_exchange_weak(cur, to, std::memory_order_acq_rel)) {
  }
  SK_ASSERT(synced_.load() <= end_offset(), "synced {} beyond end {}", synced_.load(), end_offset());
}

void Log::PoisonLocked(const Status& s) {
  failed_ = Status::FromErrno(s.err() ? s.err() : EIO, fmt::format("{} (the log must be reopened)", s.message()));
  failed_flag_.store(true, std::memory_order_release);
}

Status Log::Sync() {
  std::lock_guard<std::mutex> one(sync_exec_mu_);
  std::shared_ptr<Segment> seg;
  std::vector<std::shared_ptr<Segment>> sealed;
  bool dir_dirty;
  uint64_t target;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!failed_.ok()) return failed_;
    if (closed_) return Status::OK();
    seg = active_;
    target = end_offset();
    sealed.swap(unsynced_sealed_);
    dir_dirty = dir_dirty_;
    dir_dirty_ = false;
  }
  if (synced_offset() >= target && sealed.empty() && !dir_dirty) return Status::OK();
  Status s;
  for (auto& old : sealed)
    if (s.ok()) s = old->file().DataSync();
  if (s.ok() && dir_dirty) s = io_->SyncDir(dir_);
  if (s.ok()) s = seg->Sync();
  if (!s.ok()) {
    std::lock_guard<std::mutex> g(mu_);
    PoisonLocked(s);
    return failed_;
  }
  AdvanceSynced(target);
  // Every segment rolled so far is synced now: recovery must not cut them (a later
  // bad batch in one is damage, FORMAT.md §5). Best effort: without the file a
  // sealed segment's bad tail is cut, as a torn one.
  if (!sealed.empty()) (void)WriteRecoveryPoint(target);
  return Status::OK();
}

Status Log::WaitDurable(uint64_t end) {
  if (failed_flag_.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> g(mu_);
    return failed_;
  }
  if (opts_.durability.mode != Durability::Mode::kAlways) return Status::OK();
  end = std::min(end, end_offset());  // nothing past the end can be waited for
  std::unique_lock<std::mutex> l(sync_mu_);
  while (synced_offset() < end) {
    if (!sync_running_) {
      // Leader: one fdatasync covers every append made before it starts; appenders
      // arriving meanwhile wait and are covered by the next one (group commit). The
      // leader first lets appends that are arriving right now join (at most 100 us,
      // and only while new ones keep coming).
      sync_running_ = true;
      l.unlock();
      auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
      uint64_t seen = end_offset();
      auto quiet_since = std::chrono::steady_clock::now();
      while (std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
        uint64_t now_end = end_offset();
        if (now_end != seen) {
          seen = now_end;
          quiet_since = std::chrono::steady_clock::now();
        } else if (std::chrono::steady_clock::now() - quiet_since > std::chrono::microseconds(20)) {
          break;
        }
      }
      Status s = Sync();
      l.lock();
      sync_running_ = false;
      sync_cv_.notify_all();
      if (!s.ok()) return s;
    } else {
      sync_cv_.wait(l);
      if (failed_flag_.load(std::memory_order_acquire)) {
        std::lock_guard<std::mutex> g(mu_);
        return failed_;
      }
    }
  }
  return Status::OK();
}

void Log::SyncLoop() {
  auto interval = std::chrono::milliseconds(opts_.durability.interval_ms);
  std::unique_lock<std::mutex> l(stop_mu_);
  while (!stop_) {
    stop_cv_.wait_for(l, interval, [this] { return stop_; });
    if (stop_) break;
    l.unlock();
    (void)Sync();  // a failure poisons the log; appends report it
    l.lock();
  }
}

Status Log::RollLocked() {
  // Cheap under the append lock: no fdatasync. The old segment's data and the new
  // file's directory entry are made durable by the next Sync().
  SK_TRY(active_->Seal());
  SK_ASSIGN_OR_RETURN(auto seg, Segment::Create(*io_, dir_, end_offset(), opts_.index_interval_bytes));
  unsynced_sealed_.push_back(active_);
  dir_dirty_ = true;
  segments_[seg->base_offset()] = seg;
  active_ = seg;
  return WriteProducerSnapshotLocked();
}

Status Log::Roll() {
  std::lock_guard<std::mutex> g(mu_);
  if (!failed_.ok()) return failed_;
  if (active_->empty()) return Status::OK();
  return RollLocked();
}

Result<ReadResult> Log::Read(uint64_t offset, size_t max_bytes, Bytes* out, uint64_t limit) {
  std::shared_ptr<Segment> seg;
  uint64_t lim;
  {
    std::lock_guard<std::mutex> g(mu_);
    uint64_t start = segments_.begin()->second->base_offset();
    if (offset < start)
      return Status::NotFound(fmt::format("{}: offset {} is before the start of the log ({}); "
                                          "it was removed by retention", dir_, offset, start));
    lim = std::min(limit, end_offset());
    if (offset >= lim) return ReadResult{offset, 0};
    auto it = segments_.upper_bound(offset);
    seg = std::prev(it)->second;
  }
  if (offset >= seg->next_offset()) return ReadResult{offset, 0};
  SK_ASSIGN_OR_RETURN(uint64_t pos, seg->FindPosition(offset));
  size_t before = out->size();
  SK_ASSIGN_OR_RETURN(uint64_t next, seg->ReadBatches(pos, max_bytes, lim, out));
  return ReadResult{next, out->size() - before};
}

Result<uint64_t> Log::OffsetForTime(int64_t ts_ms) {
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [b, s] : segments_) segs.push_back(s);
  }
  for (auto& s : segs)
    if (!s->empty() && s->max_arrival_ms() >= ts_ms) return s->FindOffsetForTime(ts_ms);
  return end_offset();
}

void Log::SetRetention(int64_t retention_ms, uint64_t retention_bytes) {
  std::lock_guard<std::mutex> g(mu_);
  opts_.retention_ms = retention_ms;
  opts_.retention_bytes = retention_bytes;
}

Result<RetentionResult> Log::ApplyRetention() {
  std::vector<std::shared_ptr<Segment>> victims;
  RetentionResult res;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!failed_.ok()) return failed_;
    int64_t cutoff = Now() - opts_.retention_ms;
    uint64_t total = 0;
    for (auto& [b, s] : segments_) total += s->size();
    // The active segment's data, once all expired, is rolled away so that it too can go.
    if (!active_->empty() && active_->max_arrival_ms() < cutoff) SK_TRY(RollLocked());
    while (segments_.size() > 1) {
      auto& s = segments_.begin()->second;
      bool expired = s->max_arrival_ms() < cutoff;
      bool over = opts_.retention_bytes > 0 && total > opts_.retention_bytes;
      if (!expired && !over) break;
      total -= s->size();
      res.bytes_removed += s->size();
      victims.push_back(s);
      segments_.erase(segments_.begin());
    }
    res.new_start_offset = segments_.begin()->second->base_offset();
  }
  for (auto& s : victims) SK_TRY(s->RemoveFiles(*io_));
  if (!victims.empty()) SK_TRY(io_->SyncDir(dir_));
  res.segments_removed = int(victims.size());
  return res;
}

void Log::Seal(bool sealed) {
  std::lock_guard<std::mutex> g(mu_);
  sealed_ = sealed;
}

Status Log::Close() {
  {
    std::lock_guard<std::mutex> g(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
  Status spare;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (closed_) return Status::OK();
    if (!active_) {  // Open failed before a segment was loaded: nothing to close
      closed_ = true;
      return Status::OK();
    }
    spare = active_->ReleaseSpare();  // before the last sync, which then covers it
  }
  Status s = Sync();  // sealed segments, directory, active segment
  std::lock_guard<std::mutex> g(mu_);
  closed_ = true;
  if (!s.ok()) return s;
  if (!spare.ok()) return spare;
  if (!failed_.ok()) return failed_;
  return WriteProducerSnapshotLocked();
}

uint64_t Log::start_offset() const {
  std::lock_guard<std::mutex> g(mu_);
  return segments_.begin()->second->base_offset();
}

uint64_t Log::size_bytes() const {
  std::lock_guard<std::mutex> g(mu_);
  uint64_t t = 0;
  for (auto& [b, s] : segments_) t += s->size();
  return t;
}

int64_t Log::last_append_ms() const {
  std::lock_guard<std::mutex> g(mu_);
  return last_append_ms_;
}

size_t Log::segment_count() const {
  std::lock_guard<std::mutex> g(mu_);
  return segments_.size();
}

}  // namespace streamkit::log

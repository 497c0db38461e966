#include "log/segment.h"

#include <algorithm>

#include "log/names.h"

namespace streamkit::log {

std::string RecoveryReport::ToString() const {
  if (clean() && producer_batches_replayed == 0) return "clean";
  std::string s;
  if (truncated_bytes > 0)
    s += fmt::format("truncated {} bytes ({}{}{})", truncated_bytes,
                     torn_tail ? "torn tail" : "damaged tail", problem.empty() ? "" : ": ", problem);
  if (indexes_rebuilt > 0) s += fmt::format("{}rebuilt {} index file(s)", s.empty() ? "" : "; ", indexes_rebuilt);
  if (segments_dropped > 0)
    s += fmt::format("{}removed {} segment(s) after a cut one", s.empty() ? "" : "; ", segments_dropped);
  if (damaged_kept > 0)
    s += fmt::format("{}kept {} damaged synced segment(s) (reads through the damage fail): {}",
                     s.empty() ? "" : "; ", damaged_kept, damage);
  if (s.empty()) s = "clean";
  return s;
}

Result<std::shared_ptr<Segment>> Segment::Create(io::Io& io, const std::string& dir,
                                                 uint64_t base_offset, size_t index_interval) {
  std::shared_ptr<Segment> s(new Segment(base_offset, index_interval));
  std::string path = SegmentPath(dir, base_offset, kLogExt);
  if (io.Exists(path)) return Status::InvalidArgument(fmt::format("{} already exists", path));
  SK_ASSIGN_OR_RETURN(s->file_, io.Open(path, io::OpenMode::kCreate));
  SK_TRY(s->offset_index_.Open(io, SegmentPath(dir, base_offset, kIndexExt)));
  SK_TRY(s->offset_index_.Reset());
  SK_TRY(s->time_index_.Open(io, SegmentPath(dir, base_offset, kTimeIndexExt)));
  SK_TRY(s->time_index_.Reset());
  s->next_offset_ = base_offset;
  return s;
}

Result<std::shared_ptr<Segment>> Segment::Open(io::Io& io, const std::string& dir,
                                               uint64_t base_offset, size_t index_interval,
                                               uint64_t synced_end, RecoveryReport* report) {
  std::shared_ptr<Segment> s(new Segment(base_offset, index_interval));
  SK_ASSIGN_OR_RETURN(s->file_, io.Open(SegmentPath(dir, base_offset, kLogExt),
                                        io::OpenMode::kReadWrite));
  SK_TRY(s->LoadIndexes(io, dir, synced_end, report));
  // Blocks reserved before a crash (a clean close gives them back) are given back
  // at the next Seal or Close. Checked here so that a clean restart costs no
  // truncate per shard at the next close.
  auto alloc = s->file_->Allocated();
  s->crash_spare_ = !alloc.ok() || *alloc > (s->size() + 4095) / 4096 * 4096 + (64u << 10);
  return s;
}

Segment::~Segment() = default;

Status Segment::LoadIndexes(io::Io& io, const std::string& dir, uint64_t synced_end,
                            RecoveryReport* report) {
  SK_ASSIGN_OR_RETURN(uint64_t file_size, file_->Size());
  bool had_indexes = io.Exists(SegmentPath(dir, base_, kIndexExt)) &&
                     io.Exists(SegmentPath(dir, base_, kTimeIndexExt));
  Status oi = offset_index_.Open(io, SegmentPath(dir, base_, kIndexExt));
  Status ti = time_index_.Open(io, SegmentPath(dir, base_, kTimeIndexExt));
  if (!oi.ok() && !oi.is(Status::Code::kCorruption)) return oi;
  if (!ti.ok() && !ti.is(Status::Code::kCorruption)) return ti;

  // Keep offset index entries only up to the last one that points at a valid batch
  // header carrying the expected offset; entries can run ahead of the data after a
  // crash, because index and log are separate files.
  bool damaged = !oi.ok() || !ti.ok() || (!had_indexes && file_size > 0);
  size_t keep = oi.ok() ? offset_index_.entries().size() : 0;
  while (keep > 0) {
    const OffsetEntry& e = offset_index_.entries()[keep - 1];
    uint8_t hdr[kBatchHeaderSize];
    BatchHeader h;
    if (e.position + kBatchHeaderSize <= file_size) {
      SK_ASSIGN_OR_RETURN(size_t got, file_->ReadAt(hdr, sizeof hdr, e.position));
      if (got == sizeof hdr && CheckHeader(hdr, &h).ok() && h.base_offset == base_ + e.rel_offset &&
          e.position + h.batch_length <= file_size)
        break;
    }
    keep--;
    damaged = true;
  }
  if (!oi.ok()) SK_TRY(offset_index_.Reset());
  // Without a sound time index the running maximum before the restart point is
  // unknown: rebuild both from the start of the segment. An empty time index beside
  // offset entries was lost (the first offset entry always comes with a time entry).
  if (!ti.ok() || (time_index_.entries().empty() && keep > 0)) {
    keep = 0;
    damaged = true;
  }
  offset_index_.KeepFirst(keep);

  uint64_t start_pos = 0, start_off = base_;
  if (keep > 0) {
    start_pos = offset_index_.entries()[keep - 1].position;
    start_off = base_ + offset_index_.entries()[keep - 1].rel_offset;
  }
  // Time entries past the restart point are dropped; the scan re-adds them.
  if (!ti.ok()) SK_TRY(time_index_.Reset());
  {
    const auto& te = time_index_.entries();
    size_t tkeep = 0;
    // An entry at the restart batch itself stays: its running maximum covers every
    // batch before the scan starts.
    while (tkeep < te.size() && base_ + te[tkeep].rel_offset <= start_off) tkeep++;
    time_index_.KeepFirst(tkeep);
    if (tkeep > 0) max_arrival_ = te[tkeep - 1].timestamp;
  }
  if (damaged && report) report->indexes_rebuilt++;

  size_ = start_pos;
  next_offset_ = start_off;
  bytes_since_entry_ = 0;
  std::string problem;
  bool torn = false;
  SK_TRY(ScanFrom(start_pos, start_off, &problem, &torn, report));
  if (first_arrival_ == INT64_MIN && size() > 0) {
    uint8_t hdr[kBatchHeaderSize];
    SK_ASSIGN_OR_RETURN(size_t got, file_->ReadAt(hdr, sizeof hdr, 0));
    if (got == sizeof hdr) first_arrival_ = DecodeHeader(hdr).max_arrival_ms();
  }
  SK_ASSIGN_OR_RETURN(uint64_t now_size, file_->Size());
  if (problem.empty() && synced_end > 0 && next_offset() != synced_end && now_size == size())
    problem = fmt::format("the segment ends at offset {}, the next one begins at {}", next_offset(), synced_end);
  if (!problem.empty() && synced_end > 0) {
    // Synced data changed (or was lost) after it was written: a crash cannot tear it.
    // Keep every byte; the segment ends where the next begins, and a read reaching the
    // bad batch fails there, naming it (the batches before it, and the segments after
    // this one, stay readable).
    if (report) {
      report->damaged_kept++;
      if (report->damage.empty())
        report->damage = fmt::format("{} at byte {}: {}; offsets {} to {} kept but unreadable past it",
                                     path(), size(), problem, next_offset(), synced_end - 1);
    }
    size_.store(now_size, std::memory_order_release);
    next_offset_.store(synced_end, std::memory_order_release);
    kept_damage_ = true;
    return FlushIndexes();
  }
  if (!problem.empty() && report && report->problem.empty()) {
    report->problem = fmt::format("{} at byte {}: {}", path(), size(), problem);
    report->torn_tail = torn;
  }
  if (now_size > size()) {
    if (report) report->truncated_bytes += now_size - size();
    SK_TRY(file_->Truncate(size()));
    SK_TRY(file_->DataSync());
  }
  return FlushIndexes();
}

void Segment::NoteBatch(uint64_t pos, const BatchHeader& h) {
  int64_t arrival = std::max(max_arrival_.load(std::memory_order_relaxed), h.max_arrival_ms());
  if (pos > 0 && bytes_since_entry_ >= index_interval_) {
    uint32_t rel = uint32_t(h.base_offset - base_);
    std::lock_guard<std::mutex> g(index_mu_);
    offset_index_.Add(OffsetEntry{rel, uint32_t(pos)});
    if (time_index_.empty() || arrival > time_index_.entries().back().timestamp)
      time_index_.Add(TimeEntry{arrival, rel});
    bytes_since_entry_ = 0;
  }
  bytes_since_entry_ += h.batch_length;
  if (h.append_time_ms > last_append_time_.load(std::memory_order_relaxed))
    last_append_time_.store(h.append_time_ms, std::memory_order_release);
  if (first_arrival_.load(std::memory_order_relaxed) == INT64_MIN && pos == 0)
    first_arrival_.store(h.max_arrival_ms(), std::memory_order_release);
  max_arrival_.store(arrival, std::memory_order_release);
}

Status Segment::ScanFrom(uint64_t pos, uint64_t offset, std::string* problem_out, bool* torn_out,
                         RecoveryReport* report) {
  SK_ASSIGN_OR_RETURN(uint64_t file_size, file_->Size());
  Bytes buf;
  Bytes scratch;
  while (pos < file_size) {
    std::string problem;
    bool torn = false;
    uint8_t hdr[kBatchHeaderSize];
    BatchHeader h;
    if (file_size - pos < kBatchHeaderSize) {
      torn = true;
      problem = fmt::format("{} bytes at the end, less than a batch header", file_size - pos);
    } else {
      SK_ASSIGN_OR_RETURN(size_t got, file_->ReadAt(hdr, sizeof hdr, pos));
      if (got != sizeof hdr) return Status::Corruption(fmt::format("{}: short read at {}", path(), pos));
      Status hs = CheckHeader(hdr, &h);
      if (!hs.ok()) {
        problem = hs.message();
      } else if (h.base_offset != offset) {
        problem = fmt::format("batch base offset {} where {} was expected", h.base_offset, offset);
      } else if (pos + h.batch_length > file_size) {
        torn = true;
        problem = fmt::format("batch of {} bytes with only {} left in the file", h.batch_length,
                              file_size - pos);
      } else {
        buf.resize(h.batch_length);
        SK_ASSIGN_OR_RETURN(size_t n, file_->ReadAt(buf.data(), buf.size(), pos));
        if (n != buf.size()) return Status::Corruption(fmt::format("{}: short read at {}", path(), pos));
        Status vs = ValidateBatch(buf, nullptr, nullptr, &scratch);
        if (!vs.ok()) {
          problem = vs.message();
          torn = pos + h.batch_length == file_size;  // a torn write of the final batch
        }
        if (report) report->scanned_bytes += h.batch_length;
      }
    }
    if (!problem.empty()) {
      *problem_out = std::move(problem);
      *torn_out = torn;
      break;  // the caller acts on it at `pos` (= size())
    }
    NoteBatch(pos, h);
    pos += h.batch_length;
    offset = h.next_offset();
    size_.store(pos, std::memory_order_release);
    next_offset_.store(offset, std::memory_order_release);
  }
  return Status::OK();
}

Status Segment::Append(std::span<const uint8_t> batch, const BatchHeader& h, uint64_t reserve_limit) {
  if (broken_) return Status::FromErrno(EIO, fmt::format("{}: segment needs recovery after a failed write", path()));
  SK_ASSERT(!sealed_, "append to sealed segment {}", path());
  SK_ASSERT(h.base_offset == next_offset(), "batch offset {} != next offset {}", h.base_offset,
            next_offset());
  uint64_t pos = size();
  if (reserve_limit > 0) ReserveAhead(pos + batch.size(), reserve_limit);
  Status s = file_->WriteAt(batch.data(), batch.size(), pos);
  if (!s.ok()) {
    // Cut back whatever part of the batch landed, so the file again ends on a whole batch.
    if (!file_->Truncate(pos).ok()) broken_ = true;
    return s;
  }
  NoteBatch(pos, h);
  size_.store(pos + batch.size(), std::memory_order_release);
  next_offset_.store(h.next_offset(), std::memory_order_release);
  if (++appends_since_flush_ >= kIndexFlushEvery) {
    appends_since_flush_ = 0;
    // Best effort: an index that lags or is lost is rebuilt from the log on open.
    (void)FlushIndexes();
  }
  return Status::OK();
}

void Segment::ReserveAhead(uint64_t end, uint64_t limit) {
  // A busy segment reserves its blocks ahead of the writes, in chunks that grow with
  // it: writes into allocated blocks skip the filesystem's delayed allocation
  // (measured 5-10 % faster on ext4 for 100 KB appends), and the segment's data stays
  // contiguous on disk while other shards write too. The spare is at most the size
  // written so far (a quiet shard reserves nothing), at most kSpareMax, and never
  // past the size at which the segment rolls (so a roll has next to nothing to give
  // back); Seal and Close give it back.
  if (!preallocate_ || end <= spare_end_ || end < kSpareFrom) return;
  uint64_t spare = std::min<uint64_t>(kSpareMax, size());
  uint64_t to = std::min((end + spare + kSpareFrom - 1) / kSpareFrom * kSpareFrom, std::max(limit, end));
  uint64_t from = std::max(spare_end_, size());
  if (to <= from) return;
  if (file_->Preallocate(from, to - from).ok()) {
    spare_end_ = to;
  } else {
    preallocate_ = false;  // unsupported here, or no space: the write itself will say
  }
}

Status Segment::ReleaseSpare(uint64_t tolerate) {
  uint64_t known = spare_end_ > size() ? spare_end_ - size() : 0;
  if (!crash_spare_ && known <= tolerate) return Status::OK();
  // Truncating to the current size frees the blocks reserved beyond it (~0.5 ms on
  // ext4 here, whatever the amount).
  SK_TRY(file_->Truncate(size()));
  crash_spare_ = false;
  spare_end_ = 0;
  return Status::OK();
}

Status Segment::ReadHeaderAt(uint64_t pos, BatchHeader* h) {
  uint8_t hdr[kBatchHeaderSize];
  SK_ASSIGN_OR_RETURN(size_t got, file_->ReadAt(hdr, sizeof hdr, pos));
  if (got != sizeof hdr) return Status::Corruption(fmt::format("{}: short read at {}", path(), pos));
  Status s = CheckHeader(hdr, h);
  if (!s.ok()) return Status::Corruption(fmt::format("{}: batch at byte {}: {}", path(), pos, s.message()));
  return s;
}

Result<uint64_t> Segment::FindPosition(uint64_t offset) {
  uint64_t pos = 0, expect = base_;
  {
    std::lock_guard<std::mutex> g(index_mu_);
    const auto& es = offset_index_.entries();
    uint32_t rel = uint32_t(offset - base_);
    auto it = std::upper_bound(es.begin(), es.end(), rel,
                               [](uint32_t r, const OffsetEntry& e) { return r < e.rel_offset; });
    if (it != es.begin()) {
      pos = std::prev(it)->position;
      expect = base_ + std::prev(it)->rel_offset;
    }
  }
  uint64_t end = size();
  // The index is a hint checked only at its end at open: an entry that does not name
  // the batch at its position (a damaged .index) must not make a read start late.
  // Then the segment is walked from its start.
  bool first = true;
  while (pos < end) {
    BatchHeader h;
    Status hs = ReadHeaderAt(pos, &h);
    if (first && pos > 0 && (!hs.ok() || h.base_offset != expect)) {
      pos = 0;
      expect = base_;
      continue;
    }
    SK_TRY(hs);
    first = false;
    if (h.next_offset() > offset) return pos;
    pos += h.batch_length;
  }
  // Only a segment kept with damage or missing data (recovery, FORMAT.md §5) ends
  // before the offsets the log says it holds.
  return Status::Corruption(fmt::format("{}: offset {} is missing: the file ends at byte {}", path(), offset, end));
}

Result<uint64_t> Segment::FindOffsetForTime(int64_t ts) {
  if (max_arrival_ms() < ts) return next_offset();
  uint64_t start = base_;
  {
    std::lock_guard<std::mutex> g(index_mu_);
    const auto& te = time_index_.entries();
    // The last entry whose running maximum is still below ts: every batch up to it
    // arrived earlier, so the answer lies after it.
    auto it = std::lower_bound(te.begin(), te.end(), ts,
                               [](const TimeEntry& e, int64_t t) { return e.timestamp < t; });
    if (it != te.begin()) start = base_ + std::prev(it)->rel_offset;
  }
  SK_ASSIGN_OR_RETURN(uint64_t pos, FindPosition(start));
  uint64_t end = size();
  Bytes buf, scratch;
  while (pos < end) {
    BatchHeader h;
    SK_TRY(ReadHeaderAt(pos, &h));
    if (h.max_arrival_ms() >= ts) {
      if (h.timestamp_type() == TimestampType::kLogAppend) return h.base_offset;
      buf.resize(h.batch_length);
      SK_ASSIGN_OR_RETURN(size_t n, file_->ReadAt(buf.data(), buf.size(), pos));
      if (n != buf.size()) return Status::Corruption(fmt::format("{}: short read at {}", path(), pos));
      BatchRecords br;
      SK_TRY(br.Open(buf, &scratch));
      Record r;
      while (br.Next(&r))
        if (r.arrival_ms >= ts) return r.offset;
      SK_TRY(br.status());
    }
    pos += h.batch_length;
  }
  return next_offset();
}

Result<uint64_t> Segment::ReadBatches(uint64_t pos, size_t max_bytes, uint64_t offset_limit,
                                      Bytes* out) {
  uint64_t end = size();
  if (pos >= end) return Status::InvalidArgument(fmt::format("{}: read at {} past the end {}", path(), pos, end));
  // One read of up to max_bytes, then keep only whole batches below offset_limit.
  size_t want = size_t(std::min<uint64_t>(end - pos, std::max<size_t>(max_bytes, kBatchHeaderSize)));
  size_t at = out->size();
  out->resize(at + want);
  SK_ASSIGN_OR_RETURN(size_t got, file_->ReadAt(out->data() + at, want, pos));
  if (got != want) return Status::Corruption(fmt::format("{}: short read at {}", path(), pos));
  size_t used = 0;
  uint64_t next = 0;
  while (used + kBatchHeaderSize <= want) {
    BatchHeader h;
    if (Status hs = CheckHeader(out->data() + at + used, &h); !hs.ok()) {
      if (used > 0) break;  // the batches before it are whole: return them; the next read fails here
      out->resize(at);
      return Status::Corruption(fmt::format("{}: batch at byte {}: {}", path(), pos, hs.message()));
    }
    if (h.base_offset >= offset_limit) break;
    if (used + h.batch_length > want) {
      if (used > 0) break;
      // The first batch is larger than max_bytes: return it whole anyway.
      out->resize(at + h.batch_length);
      SK_ASSIGN_OR_RETURN(size_t g2, file_->ReadAt(out->data() + at + want, h.batch_length - want, pos + want));
      if (g2 != h.batch_length - want) return Status::Corruption(fmt::format("{}: short read at {}", path(), pos));
      want = h.batch_length;
    }
    used += h.batch_length;
    next = h.next_offset();
  }
  if (used == 0 && want < kBatchHeaderSize) {
    out->resize(at);
    return Status::Corruption(fmt::format("{}: batch at byte {}: only {} bytes left in the file", path(), pos, want));
  }
  out->resize(at + used);
  if (used == 0) return Status::NotFound(fmt::format("{}: no batch below offset {} at byte {}", path(), offset_limit, pos));
  return next;
}

Status Segment::FlushIndexes() {
  std::lock_guard<std::mutex> g(index_mu_);
  SK_TRY(offset_index_.Flush());
  return time_index_.Flush();
}

Status Segment::Sync() {
  SK_TRY(file_->DataSync());
  // The indexes are hints (a lagging or lost one is rebuilt from the log at open): a
  // failed write of theirs (a full disk) must not fail the sync, which would poison
  // the log until a restart. Their unwritten entries are written at the next flush.
  (void)FlushIndexes();
  return Status::OK();
}

Status Segment::Seal() {
  // No fdatasync here: the log syncs sealed segments in its next Sync(), off the
  // append path. Until then recovery validates this segment's tail like the last one's.
  SK_TRY(FlushIndexes());
  // Reservations stop at the roll size, so a segment rolled for size holds less than
  // one batch beyond its end: not worth a truncate (~0.5 ms) under the append lock
  // while it is at most 1/128 of the segment (a small segment rolled by age gives
  // its spare back).
  SK_TRY(ReleaseSpare(std::max<uint64_t>(64u << 10, size() / 128)));
  sealed_ = true;
  return Status::OK();
}

Status Segment::RemoveFiles(io::Io& io) {
  std::string log = path();
  std::string idx = offset_index_.path();
  std::string tidx = time_index_.path();
  SK_TRY(io.Remove(log));
  (void)io.Remove(idx);
  (void)io.Remove(tidx);
  return Status::OK();
}

}  // namespace streamkit::log

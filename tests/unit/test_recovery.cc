#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "log/log.h"
#include "log/names.h"
#include "test_helpers.h"
#include "util/coding.h"
#include "util/crc32c.h"

using namespace streamkit;
using namespace streamkit::log;
using streamkit::testing::MakeBatch;
using streamkit::testing::TempDir;
using streamkit::testing::TestIo;
namespace fs = std::filesystem;

namespace {

LogOptions Opts(size_t index_interval = 128) {
  LogOptions o;
  o.index_interval_bytes = index_interval;
  o.durability.mode = Durability::Mode::kNever;
  return o;
}

// Writes `batches` batches of 3 records into a fresh log and closes it. Returns the
// byte positions where each batch starts, plus the final size.
std::vector<uint64_t> BuildLog(const std::string& dir, int batches, size_t index_interval = 128) {
  auto log = Log::Open(TestIo(), dir, Opts(index_interval));
  REQUIRE(log.ok());
  std::vector<uint64_t> starts;
  uint64_t pos = 0;
  for (int i = 0; i < batches; i++) {
    Bytes b = MakeBatch(3, i * 3);
    starts.push_back(pos);
    pos += b.size();
    REQUIRE((*log)->Append(b).ok());
  }
  starts.push_back(pos);
  REQUIRE((*log)->Close().ok());
  return starts;
}

void Copy(const std::string& from, const std::string& to) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
}

std::string SegFile(const std::string& dir, std::string_view ext) {
  return dir + "/" + SegmentFileName(0, ext);
}

uint64_t CountRecords(Log& log) {
  uint64_t off = log.start_offset(), n = 0;
  while (off < log.end_offset()) {
    Bytes buf;
    auto r = log.Read(off, 1 << 16, &buf);
    REQUIRE(r.ok());
    RecordCursor c(buf, off);
    Record rec;
    while (c.Next(&rec)) {
      REQUIRE(rec.key == "key-" + std::to_string(rec.offset));
      n++;
    }
    REQUIRE(c.status().ok());
    off = r->next_offset;
  }
  return n;
}

// A read from `off` returns the record at `off` first.
void CheckReadStartsAt(Log& log, uint64_t off) {
  Bytes buf;
  REQUIRE(log.Read(off, 64, &buf).ok());
  RecordCursor c(buf, off);
  Record r;
  REQUIRE(c.Next(&r));
  CHECK(r.offset == off);
}

}  // namespace

TEST_CASE("a last batch truncated at every byte offset is cut; appends continue at the right offset") {
  TempDir dir;
  const int kBatches = 12;
  auto starts = BuildLog(dir.sub("orig"), kBatches);
  uint64_t last = starts[kBatches - 1], size = starts[kBatches];
  for (uint64_t cut = last; cut < size; cut++) {
    Copy(dir.sub("orig"), dir.sub("t"));
    fs::resize_file(SegFile(dir.sub("t"), kLogExt), cut);
    RecoveryReport rep;
    auto log = Log::Open(TestIo(), dir.sub("t"), Opts(), &rep);
    REQUIRE(log.ok());
    CHECK((*log)->end_offset() == uint64_t(kBatches - 1) * 3);
    CHECK(rep.truncated_bytes == cut - last);
    if (cut > last) CHECK(rep.torn_tail);
    CHECK(CountRecords(**log) == uint64_t(kBatches - 1) * 3);
    Bytes b = MakeBatch(3, (kBatches - 1) * 3);
    auto r = (*log)->Append(b);
    REQUIRE(r.ok());
    CHECK(r->base_offset == uint64_t(kBatches - 1) * 3);
    CHECK(CountRecords(**log) == uint64_t(kBatches) * 3);
  }
}

TEST_CASE("random garbage after the last batch is cut, complete batches kept") {
  TempDir dir;
  const int kBatches = 8;
  auto starts = BuildLog(dir.sub("orig"), kBatches);
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 60; trial++) {
    Copy(dir.sub("orig"), dir.sub("t"));
    size_t n = 1 + rng() % (trial < 30 ? 100 : 10000);
    std::string junk = streamkit::testing::RandomBytes(rng, n);
    if (trial % 5 == 0) junk.assign(n, '\0');  // zero-filled tail, as after a crash on ext4
    std::ofstream(SegFile(dir.sub("t"), kLogExt), std::ios::app | std::ios::binary) << junk;
    RecoveryReport rep;
    auto log = Log::Open(TestIo(), dir.sub("t"), Opts(), &rep);
    REQUIRE(log.ok());
    CHECK((*log)->end_offset() == uint64_t(kBatches) * 3);
    CHECK(rep.truncated_bytes == n);
    CHECK(fs::file_size(SegFile(dir.sub("t"), kLogExt)) == starts[kBatches]);
    Bytes b = MakeBatch(3, kBatches * 3);
    REQUIRE((*log)->Append(b).ok());
    CHECK(CountRecords(**log) == uint64_t(kBatches + 1) * 3);
  }
}

TEST_CASE("a damaged batch in the unindexed tail cuts the tail there and says so") {
  TempDir dir;
  auto starts = BuildLog(dir.sub("orig"), 6, 4096);  // no index entry: all of it is tail
  Copy(dir.sub("orig"), dir.sub("t"));
  {
    std::fstream f(SegFile(dir.sub("t"), kLogExt), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(starts[3] + 80));
    f.put('\x5a');
  }
  RecoveryReport rep;
  auto log = Log::Open(TestIo(), dir.sub("t"), Opts(4096), &rep);
  REQUIRE(log.ok());
  CHECK((*log)->end_offset() == 9);
  CHECK(!rep.torn_tail);
  CHECK(rep.truncated_bytes == starts[6] - starts[3]);
  CHECK(rep.problem.find("crc") != std::string::npos);
  CHECK(rep.ToString().find("damaged tail") != std::string::npos);
}

TEST_CASE("a damaged batch before the last index entry is reported as corruption when read") {
  TempDir dir;
  auto starts = BuildLog(dir.sub("s"), 40);
  {
    std::fstream f(SegFile(dir.sub("s"), kLogExt), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(starts[2] + 80));
    f.put('\x5a');
  }
  auto log = Log::Open(TestIo(), dir.sub("s"), Opts());
  REQUIRE(log.ok());
  CHECK((*log)->end_offset() == 120);  // the tail is fine; the damage is not at the end
  Bytes buf;
  REQUIRE((*log)->Read(6, 1, &buf).ok());
  RecordCursor c(buf, 6);
  Record r;
  CHECK(!c.Next(&r));
  CHECK(c.status().is(Status::Code::kCorruption));
  CHECK(c.status().message().find("crc mismatch") != std::string::npos);
}

TEST_CASE("a missing or damaged index is rebuilt from the log") {
  TempDir dir;
  BuildLog(dir.sub("orig"), 40);
  for (int variant = 0; variant < 5; variant++) {
    Copy(dir.sub("orig"), dir.sub("t"));
    std::string idx = SegFile(dir.sub("t"), kIndexExt);
    std::string tidx = SegFile(dir.sub("t"), kTimeIndexExt);
    REQUIRE(fs::file_size(idx) > 16);
    if (variant == 0) fs::remove(idx);
    if (variant == 1) fs::resize_file(idx, fs::file_size(idx) - 3);  // not whole entries
    if (variant == 2) {  // entries pointing past the data
      std::ofstream(idx, std::ios::app | std::ios::binary) << std::string("\xff\x00\x00\x00\xff\xff\x00\x00", 8);
    }
    if (variant == 3) std::ofstream(tidx, std::ios::trunc | std::ios::binary) << "garbage!!";
    if (variant == 4) fs::remove(tidx);  // the offset index alone is intact
    RecoveryReport rep;
    auto log = Log::Open(TestIo(), dir.sub("t"), Opts(), &rep);
    REQUIRE(log.ok());
    CHECK(rep.indexes_rebuilt == 1);
    CHECK(rep.truncated_bytes == 0);
    CHECK((*log)->end_offset() == 120);
    for (uint64_t off = 0; off < 120; off += 7) CheckReadStartsAt(**log, off);
    CHECK(CountRecords(**log) == 120);
    REQUIRE((*log)->Close().ok());
    CHECK(fs::file_size(idx) == fs::file_size(SegFile(dir.sub("orig"), kIndexExt)));
    CHECK(fs::file_size(tidx) == fs::file_size(SegFile(dir.sub("orig"), kTimeIndexExt)));
  }
}

TEST_CASE("an index entry that names the wrong batch does not make a read start late") {
  TempDir dir;
  BuildLog(dir.sub("s"), 40);
  std::string idx = SegFile(dir.sub("s"), kIndexExt);
  std::string bytes;
  {
    std::ifstream in(idx, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  REQUIRE(bytes.size() >= 3 * 8);
  // Entry 1 keeps its position but claims an earlier offset (still above entry 0's):
  // the index still increases, and open checks only its last entry. A read of an
  // offset between the claim and the truth would start at entry 1's batch, too late.
  auto u32 = [&](size_t at) { uint32_t v; std::memcpy(&v, bytes.data() + at, 4); return v; };
  uint32_t rel0 = u32(0), rel1 = u32(8);
  REQUIRE(rel1 > rel0 + 1);
  uint32_t lie = rel0 + 1;
  std::memcpy(bytes.data() + 8, &lie, 4);
  std::ofstream(idx, std::ios::trunc | std::ios::binary) << bytes;
  auto log = Log::Open(TestIo(), dir.sub("s"), Opts());
  REQUIRE(log.ok());
  for (uint64_t off = lie; off < rel1; off++) CheckReadStartsAt(**log, off);
  CHECK(CountRecords(**log) == 120);
}

TEST_CASE("a clean reopen scans only the tail past the last index entry") {
  TempDir dir;
  BuildLog(dir.sub("s"), 200);
  RecoveryReport rep;
  auto log = Log::Open(TestIo(), dir.sub("s"), Opts(), &rep);
  REQUIRE(log.ok());
  CHECK(rep.clean());
  uint64_t total = fs::file_size(SegFile(dir.sub("s"), kLogExt));
  CHECK(rep.scanned_bytes < 1024);
  CHECK(rep.scanned_bytes < total / 10);
}

TEST_CASE("a sealed segment cut by a crash keeps its whole batches and drops the segments after it") {
  // Rolled segments are synced after the roll, so a power cut can tear a sealed
  // segment too: recovery checks every segment's tail.
  TempDir dir;
  LogOptions o = Opts();
  o.segment_bytes = 1024;
  {
    auto log = Log::Open(TestIo(), dir.sub("s"), o);
    REQUIRE(log.ok());
    for (int i = 0; i < 40; i++) {
      Bytes b = MakeBatch(3, i * 3);
      REQUIRE((*log)->Append(b).ok());
    }
    REQUIRE((*log)->segment_count() >= 4);
  }
  std::vector<uint64_t> bases;
  for (auto& e : fs::directory_iterator(dir.sub("s")))
    if (auto b = ParseSegmentFileName(e.path().filename().string(), kLogExt)) bases.push_back(*b);
  std::sort(bases.begin(), bases.end());
  std::string second = dir.sub("s/" + SegmentFileName(bases[1], kLogExt));
  fs::resize_file(second, fs::file_size(second) - 10);
  // The power cut came before the sync that covers the rolled segments, so the
  // recovery point does not cover them (the close above wrote it).
  fs::remove(dir.sub("s/recovery-point"));
  RecoveryReport rep;
  auto log = Log::Open(TestIo(), dir.sub("s"), o, &rep);
  REQUIRE(log.ok());
  CHECK(rep.segments_dropped == int(bases.size()) - 2);
  CHECK(rep.truncated_bytes > 0);
  CHECK((*log)->segment_count() == 2);
  CHECK((*log)->end_offset() < bases[2]);
  CHECK((*log)->end_offset() % 3 == 0);
  CHECK(CountRecords(**log) == (*log)->end_offset());
  Bytes b = MakeBatch(3, int((*log)->end_offset()));
  auto r = (*log)->Append(b);
  REQUIRE(r.ok());
  CHECK(CountRecords(**log) == (*log)->end_offset());
  CHECK(!fs::exists(dir.sub("s/" + SegmentFileName(bases.back(), kLogExt))));
}

namespace {

// A log of 40 batches of 3 records in segments of at most 1 KiB, closed cleanly (so
// its recovery point covers every sealed segment). Returns the segments' base offsets.
std::vector<uint64_t> BuildSegmentedLog(const std::string& dir, const LogOptions& o) {
  auto log = Log::Open(TestIo(), dir, o);
  REQUIRE(log.ok());
  for (int i = 0; i < 40; i++) {
    Bytes b = MakeBatch(3, i * 3);
    REQUIRE((*log)->Append(b).ok());
  }
  REQUIRE((*log)->segment_count() >= 4);
  REQUIRE((*log)->Close().ok());
  std::vector<uint64_t> bases;
  for (auto& e : fs::directory_iterator(dir))
    if (auto b = ParseSegmentFileName(e.path().filename().string(), kLogExt)) bases.push_back(*b);
  std::sort(bases.begin(), bases.end());
  return bases;
}

// Position of the last batch of a segment file (whose batches hold 3 records each).
uint64_t LastBatchPos(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  uint64_t pos = 0, last = 0;
  while (pos + kBatchHeaderSize <= b.size()) {
    last = pos;
    pos += DecodeFixed32(b.data() + pos);  // batch_length (FORMAT.md §2.1)
  }
  return last;
}

uint64_t RecoveryPointOnDisk(const std::string& dir) {
  std::ifstream f(dir + "/recovery-point", std::ios::binary);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  REQUIRE(b.size() == 13);
  CHECK(DecodeFixed32(b.data()) == crc32c::Value(b.data() + 4, 9));
  CHECK(b[4] == 1);
  return DecodeFixed64(b.data() + 5);
}

}  // namespace

TEST_CASE("damage in a synced sealed segment is kept and reported, not cut with the segments after it") {
  TempDir dir;
  LogOptions o = Opts();
  o.segment_bytes = 1024;
  auto bases = BuildSegmentedLog(dir.sub("orig"), o);
  CHECK(RecoveryPointOnDisk(dir.sub("orig")) == 120);
  std::string name = SegmentFileName(bases[1], kLogExt);
  uint64_t last = LastBatchPos(dir.sub("orig/" + name));
  // A flipped byte in the last batch's body (which a crash can tear: the classic
  // "torn tail" look), or in its header.
  for (uint64_t at : {last + 80, last + 20}) {
    CAPTURE(at);
    Copy(dir.sub("orig"), dir.sub("t"));
    std::string seg = dir.sub("t/" + name);
    uint64_t size = fs::file_size(seg);
    {
      std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(std::streamoff(at));
      char c = char(f.get());
      f.seekp(std::streamoff(at));
      f.put(char(c ^ 0x5a));
    }
    RecoveryReport rep;
    auto log = Log::Open(TestIo(), dir.sub("t"), o, &rep);
    REQUIRE(log.ok());
    CHECK(rep.damaged_kept == 1);
    CHECK(rep.segments_dropped == 0);
    CHECK(rep.truncated_bytes == 0);
    CHECK(!rep.clean());
    CHECK(rep.damage.find(name) != std::string::npos);
    CHECK(rep.ToString().find("kept 1 damaged synced segment") != std::string::npos);
    CHECK(fs::file_size(seg) == size);
    CHECK((*log)->segment_count() == bases.size());
    CHECK((*log)->end_offset() == 120);
    // The records before the damaged batch, and every later segment, read back.
    CheckReadStartsAt(**log, bases[1]);
    for (uint64_t off = bases[2]; off < 120; off += 3) CheckReadStartsAt(**log, off);
    // Through the damaged batch: a header fails the read, a body fails the CRC check.
    uint64_t bad = bases[2] - 3;
    Bytes buf;
    auto r = (*log)->Read(bad, 1 << 16, &buf);
    if (r.ok()) {
      RecordCursor c(buf, bad);
      Record rec;
      CHECK(!c.Next(&rec));
      CHECK(c.status().is(Status::Code::kCorruption));
    } else {
      CHECK(r.status().is(Status::Code::kCorruption));
      CHECK(r.status().message().find(name) != std::string::npos);
    }
    Bytes b = MakeBatch(3, 120);
    CHECK((*log)->Append(b).ok());
    CHECK((*log)->Close().ok());
    // And so again at the next open: the recovery point still covers it.
    RecoveryReport rep2;
    REQUIRE(Log::Open(TestIo(), dir.sub("t"), o, &rep2).ok());
    CHECK(rep2.damaged_kept == 1);
    CHECK(rep2.truncated_bytes == 0);
  }
}

TEST_CASE("a recovery that cuts below the recovery point lowers it") {
  TempDir dir;
  LogOptions o = Opts();
  o.segment_bytes = 1024;
  auto bases = BuildSegmentedLog(dir.sub("s"), o);
  // The active segment's tail is torn (as if data past the last sync were lost).
  std::string active = dir.sub("s/" + SegmentFileName(bases.back(), kLogExt));
  fs::resize_file(active, fs::file_size(active) - 10);
  RecoveryReport rep;
  auto log = Log::Open(TestIo(), dir.sub("s"), o, &rep);
  REQUIRE(log.ok());
  CHECK(rep.truncated_bytes > 0);
  CHECK((*log)->end_offset() == 117);
  CHECK(RecoveryPointOnDisk(dir.sub("s")) == 117);
}

TEST_CASE("a segment kept with damage in its first batch is not removed early by retention") {
  // Its arrival times past the damage are unknown (the scan stopped there): the next
  // segment's first arrival bounds them, so 24 h retention keeps it.
  TempDir dir;
  LogOptions o = Opts();
  o.segment_bytes = 1024;
  auto bases = BuildSegmentedLog(dir.sub("s"), o);
  std::string seg = dir.sub("s/" + SegmentFileName(bases[0], kLogExt));
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(80);
    f.put('\x5a');
  }
  fs::remove(dir.sub("s/" + SegmentFileName(bases[0], kIndexExt)));  // the scan starts at byte 0
  RecoveryReport rep;
  auto log = Log::Open(TestIo(), dir.sub("s"), o, &rep);
  REQUIRE(log.ok());
  CHECK(rep.damaged_kept == 1);
  auto r = (*log)->ApplyRetention();
  REQUIRE(r.ok());
  CHECK(r->segments_removed == 0);
  CHECK((*log)->start_offset() == 0);
  CheckReadStartsAt(**log, bases[1]);
}

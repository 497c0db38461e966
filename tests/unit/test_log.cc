#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "log/log.h"
#include "log/names.h"
#include "test_helpers.h"

using namespace streamkit;
using namespace streamkit::log;
using streamkit::testing::MakeBatch;
using streamkit::testing::TempDir;
using streamkit::testing::TestIo;

namespace {

struct FakeClock {
  std::shared_ptr<std::atomic<int64_t>> now = std::make_shared<std::atomic<int64_t>>(1700000000000);
  std::function<int64_t()> fn() const {
    auto n = now;
    return [n] { return n->load(); };
  }
};

LogOptions SmallOptions(const FakeClock& clock) {
  LogOptions o;
  o.segment_bytes = 4096;
  o.index_interval_bytes = 256;
  o.durability.mode = Durability::Mode::kNever;
  o.clock = clock.fn();
  return o;
}

// Reads every record from `from` to the end and checks key-i at offset i.
uint64_t CheckAllFrom(Log& log, uint64_t from) {
  uint64_t off = from, count = 0;
  while (off < log.end_offset()) {
    Bytes buf;
    auto r = log.Read(off, 1500, &buf);
    REQUIRE(r.ok());
    REQUIRE(r->bytes > 0);
    RecordCursor c(buf, off);
    Record rec;
    while (c.Next(&rec)) {
      REQUIRE(rec.offset == off);
      REQUIRE(rec.key == "key-" + std::to_string(off));
      off++;
      count++;
    }
    REQUIRE(c.status().ok());
    REQUIRE(off == r->next_offset);
  }
  return count;
}

}  // namespace

TEST_CASE("appends get contiguous offsets and read back in order") {
  TempDir dir;
  FakeClock clock;
  auto log = Log::Open(TestIo(), dir.sub("s"), SmallOptions(clock));
  REQUIRE(log.ok());
  uint64_t next = 0;
  for (int i = 0; i < 50; i++) {
    Bytes b = MakeBatch(1 + i % 7, int(next));
    auto r = (*log)->Append(b);
    REQUIRE(r.ok());
    CHECK(r->base_offset == next);
    CHECK(r->last_offset == next + uint64_t(1 + i % 7) - 1);
    next = r->last_offset + 1;
  }
  CHECK((*log)->end_offset() == next);
  CHECK(CheckAllFrom(**log, 0) == next);
  // Reading at the end returns nothing yet.
  Bytes buf;
  auto r = (*log)->Read(next, 4096, &buf);
  REQUIRE(r.ok());
  CHECK(r->bytes == 0);
  CHECK(r->next_offset == next);
}

TEST_CASE("index and time lookups are correct across segment rolls") {
  TempDir dir;
  FakeClock clock;
  auto log = Log::Open(TestIo(), dir.sub("s"), SmallOptions(clock));
  REQUIRE(log.ok());
  std::vector<int64_t> arrival;  // per offset
  uint64_t next = 0;
  for (int i = 0; i < 400; i++) {
    clock.now->fetch_add(1 + i % 3);
    int n = 1 + (i * 7) % 11;
    Bytes b = MakeBatch(n, int(next));
    auto r = (*log)->Append(b);
    REQUIRE(r.ok());
    for (int k = 0; k < n; k++) arrival.push_back(r->append_time_ms);
    next += uint64_t(n);
  }
  CHECK((*log)->segment_count() > 5);
  // Reading from any offset returns that record first.
  for (uint64_t off = 0; off < next; off++) {
    Bytes buf;
    auto r = (*log)->Read(off, 300, &buf);
    REQUIRE(r.ok());
    RecordCursor c(buf, off);
    Record rec;
    REQUIRE(c.Next(&rec));
    CHECK(rec.offset == off);
    CHECK(rec.arrival_ms == arrival[off]);
  }
  CHECK(CheckAllFrom(**log, 0) == next);
  // Time lookups give the first offset that arrived at or after the time.
  for (int64_t t = arrival.front() - 5; t <= arrival.back() + 2; t++) {
    uint64_t want = 0;
    while (want < next && arrival[want] < t) want++;
    auto got = (*log)->OffsetForTime(t);
    REQUIRE(got.ok());
    CHECK(*got == want);
  }
  // The same holds after a reopen, with indexes loaded from disk.
  REQUIRE((*log)->Close().ok());
  log = Log::Open(TestIo(), dir.sub("s"), SmallOptions(clock));
  REQUIRE(log.ok());
  CHECK((*log)->end_offset() == next);
  for (int64_t t = arrival.front(); t <= arrival.back(); t += 7) {
    uint64_t want = 0;
    while (want < next && arrival[want] < t) want++;
    CHECK(*(*log)->OffsetForTime(t) == want);
  }
  CHECK(CheckAllFrom(**log, 0) == next);
}

TEST_CASE("retention deletes exactly the expired whole segments") {
  TempDir dir;
  FakeClock clock;
  LogOptions o = SmallOptions(clock);
  o.segment_bytes = 1u << 20;
  o.segment_ms = 1000;  // roll by age: one segment per simulated second
  o.retention_ms = 10 * 1000;
  auto log = Log::Open(TestIo(), dir.sub("s"), o);
  REQUIRE(log.ok());
  // 30 seconds of traffic, 10 batches per second.
  std::vector<std::pair<uint64_t, int64_t>> seg_starts;  // base offset, first arrival
  for (int sec = 0; sec < 30; sec++) {
    for (int k = 0; k < 10; k++) {
      clock.now->fetch_add(100);
      Bytes b = MakeBatch(2, int((*log)->end_offset()));
      REQUIRE((*log)->Append(b).ok());
    }
  }
  size_t before = (*log)->segment_count();
  CHECK(before >= 29);
  auto res = (*log)->ApplyRetention();
  REQUIRE(res.ok());
  // Every segment left holds a record newer than now - retention, and the one before
  // the first kept segment (now deleted) held none.
  int64_t cutoff = clock.now->load() - o.retention_ms;
  uint64_t start = (*log)->start_offset();
  CHECK(res->new_start_offset == start);
  CHECK(res->segments_removed == int(before - (*log)->segment_count()));
  Bytes buf;
  REQUIRE((*log)->Read(start, 1u << 20, &buf).ok());
  RecordCursor c(buf, start);
  Record rec;
  int64_t newest_in_first = 0;
  while (c.Next(&rec)) newest_in_first = std::max(newest_in_first, rec.arrival_ms);
  CHECK(newest_in_first >= cutoff);
  CHECK((*log)->Read(start - 1, 100, &buf).status().is(Status::Code::kNotFound));
  CHECK(!std::filesystem::exists(dir.sub("s/" + SegmentFileName(0, kLogExt))));
  // Nothing more to delete at the same time; everything left reads back.
  auto again = (*log)->ApplyRetention();
  REQUIRE(again.ok());
  CHECK(again->segments_removed == 0);
  CHECK(CheckAllFrom(**log, start) == (*log)->end_offset() - start);
  // Once everything is expired, even the active segment's data goes.
  clock.now->fetch_add(o.retention_ms + 1);
  REQUIRE((*log)->ApplyRetention().ok());
  CHECK((*log)->start_offset() == (*log)->end_offset());
  Bytes b = MakeBatch(1, int((*log)->end_offset()));
  REQUIRE((*log)->Append(b).ok());
}

TEST_CASE("a size cap removes the oldest segments first") {
  TempDir dir;
  FakeClock clock;
  LogOptions o = SmallOptions(clock);
  o.retention_bytes = 3 * 4096;
  auto log = Log::Open(TestIo(), dir.sub("s"), o);
  REQUIRE(log.ok());
  for (int i = 0; i < 200; i++) {
    Bytes b = MakeBatch(3, int((*log)->end_offset()));
    REQUIRE((*log)->Append(b).ok());
  }
  REQUIRE((*log)->ApplyRetention().ok());
  CHECK((*log)->size_bytes() <= o.retention_bytes + 4096);
  CHECK((*log)->start_offset() > 0);
  CHECK(CheckAllFrom(**log, (*log)->start_offset()) > 0);
}

TEST_CASE("one writer with concurrent readers: readers see a consistent prefix") {
  TempDir dir;
  FakeClock clock;
  LogOptions o = SmallOptions(clock);
  o.segment_bytes = 64 * 1024;
  auto log = Log::Open(TestIo(), dir.sub("s"), o);
  REQUIRE(log.ok());
  Log& l = **log;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  auto reader = [&] {
    while (!done.load()) {
      uint64_t off = 0;
      uint64_t end = l.end_offset();
      while (off < end) {
        Bytes buf;
        auto r = l.Read(off, 8192, &buf);
        if (!r.ok() || r->bytes == 0) { failures++; return; }
        RecordCursor c(buf, off);
        Record rec;
        while (c.Next(&rec)) {
          if (rec.offset != off || rec.key != "key-" + std::to_string(off)) { failures++; return; }
          off++;
        }
        if (!c.status().ok()) { failures++; return; }
      }
    }
  };
  std::thread r1(reader), r2(reader);
  uint64_t next = 0;
  for (int i = 0; i < 3000; i++) {
    Bytes b = MakeBatch(1 + i % 5, int(next));
    auto r = l.Append(b);
    REQUIRE(r.ok());
    next = r->last_offset + 1;
  }
  done = true;
  r1.join();
  r2.join();
  CHECK(failures.load() == 0);
}

TEST_CASE("duplicate producer batches are not re-written, also after a restart") {
  TempDir dir;
  FakeClock clock;
  BatchOptions p;
  p.producer_id = 42;
  p.producer_epoch = 1;
  uint64_t first_base;
  {
    auto log = Log::Open(TestIo(), dir.sub("s"), SmallOptions(clock));
    REQUIRE(log.ok());
    p.base_sequence = 0;
    Bytes b0 = MakeBatch(3, 0, p);
    Bytes b0_retry = b0;
    auto r0 = (*log)->Append(b0);
    REQUIRE(r0.ok());
    first_base = r0->base_offset;
    auto dup = (*log)->Append(b0_retry);
    REQUIRE(dup.ok());
    CHECK(dup->duplicate);
    CHECK(dup->base_offset == r0->base_offset);
    CHECK(dup->last_offset == r0->last_offset);
    CHECK((*log)->end_offset() == 3);
    p.base_sequence = 3;
    Bytes b1 = MakeBatch(2, 3, p);
    REQUIRE((*log)->Append(b1).ok());
    // A gap in the sequence is refused.
    p.base_sequence = 9;
    Bytes gap = MakeBatch(1, 5, p);
    CHECK((*log)->Append(gap).status().is(Status::Code::kOutOfOrder));
    // An older epoch is fenced.
    p.producer_epoch = 0;
    p.base_sequence = 5;
    Bytes stale = MakeBatch(1, 5, p);
    CHECK((*log)->Append(stale).status().is(Status::Code::kFenced));
    CHECK((*log)->end_offset() == 5);
  }
  // Clean restart: from the snapshot.
  {
    auto log = Log::Open(TestIo(), dir.sub("s"), SmallOptions(clock));
    REQUIRE(log.ok());
    p.producer_epoch = 1;
    p.base_sequence = 0;
    Bytes again = MakeBatch(3, 0, p);
    auto dup = (*log)->Append(again);
    REQUIRE(dup.ok());
    CHECK(dup->duplicate);
    CHECK(dup->base_offset == first_base);
    CHECK((*log)->end_offset() == 5);
    // Then keep writing, and copy the directory while the log is open: a crash image.
    p.base_sequence = 5;
    Bytes b2 = MakeBatch(4, 5, p);
    REQUIRE((*log)->Append(b2).ok());
    REQUIRE((*log)->Sync().ok());
    std::filesystem::copy(dir.sub("s"), dir.sub("crash"), std::filesystem::copy_options::recursive);
  }
  // Crash restart: the snapshot is older than the last batch; replay finds it.
  {
    RecoveryReport rep;
    auto log = Log::Open(TestIo(), dir.sub("crash"), SmallOptions(clock), &rep);
    REQUIRE(log.ok());
    CHECK((*log)->end_offset() == 9);
    p.base_sequence = 5;
    Bytes retry = MakeBatch(4, 5, p);
    auto dup = (*log)->Append(retry);
    REQUIRE(dup.ok());
    CHECK(dup->duplicate);
    CHECK(dup->base_offset == 5);
    CHECK((*log)->end_offset() == 9);
  }
}

TEST_CASE("durability always: concurrent appenders share fdatasyncs and all become durable") {
  TempDir dir;
  LogOptions o;
  o.durability.mode = Durability::Mode::kAlways;
  auto log = Log::Open(TestIo(), dir.sub("s"), o);
  REQUIRE(log.ok());
  Log& l = **log;
  std::atomic<int> errors{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; t++) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 25; i++) {
        Bytes b = MakeBatch(2, t * 1000 + i);
        auto r = l.Append(b);
        if (!r.ok() || !l.WaitDurable(r->last_offset + 1).ok() || l.synced_offset() <= r->last_offset)
          errors++;
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK(errors.load() == 0);
  CHECK(l.synced_offset() == l.end_offset());
  CHECK(l.end_offset() == 400);
}

TEST_CASE("durability interval: a background sync catches up") {
  TempDir dir;
  LogOptions o;
  o.durability = *Durability::Parse("interval=20");
  auto log = Log::Open(TestIo(), dir.sub("s"), o);
  REQUIRE(log.ok());
  Bytes b = MakeBatch(5);
  auto r = (*log)->Append(b);
  REQUIRE(r.ok());
  CHECK((*log)->durable_offset() == 5);  // acknowledged when written under this policy
  for (int i = 0; i < 200 && (*log)->synced_offset() < 5; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK((*log)->synced_offset() == 5);
}

TEST_CASE("durability policies parse, and bad ones are refused") {
  CHECK(Durability::Parse("always")->mode == Durability::Mode::kAlways);
  CHECK(Durability::Parse("never")->mode == Durability::Mode::kNever);
  CHECK(Durability::Parse("interval=200")->interval_ms == 200);
  CHECK(Durability::Parse("interval=50ms")->interval_ms == 50);
  CHECK(Durability::Parse("interval")->interval_ms == 200);
  CHECK(!Durability::Parse("interval=0").ok());
  CHECK(!Durability::Parse("interval=x").ok());
  CHECK(!Durability::Parse("sometimes").ok());
  CHECK(Durability::Parse("interval=200")->ToString() == "interval=200");
}

TEST_CASE("an injected ENOSPC, EIO or short write fails that append and loses nothing") {
  TempDir dir;
  FakeClock clock;
  auto fault = std::make_shared<io::FaultIo>(TestIo());
  auto log = Log::Open(fault, dir.sub("s"), SmallOptions(clock));
  REQUIRE(log.ok());
  Log& l = **log;
  uint64_t next = 0;
  auto append_ok = [&] {
    Bytes b = MakeBatch(3, int(next));
    auto r = l.Append(b);
    REQUIRE(r.ok());
    next = r->last_offset + 1;
  };
  for (int i = 0; i < 10; i++) append_ok();
  struct Case { int err; long partial; Status::Code code; };
  for (Case c : {Case{ENOSPC, -1, Status::Code::kNoSpace}, Case{EIO, -1, Status::Code::kIoError},
                 Case{ENOSPC, 17, Status::Code::kNoSpace}, Case{EIO, 1, Status::Code::kIoError}}) {
    fault->FailWrites(c.err, 1, c.partial);
    Bytes b = MakeBatch(3, int(next));
    auto r = l.Append(b);
    CHECK(!r.ok());
    CHECK(r.status().code() == c.code);
    CHECK(l.end_offset() == next);
    CHECK(CheckAllFrom(l, 0) == next);  // readable and uncorrupted
    append_ok();                         // appendable once the fault clears
  }
  CHECK(CheckAllFrom(l, 0) == next);
  REQUIRE(l.Close().ok());
  RecoveryReport rep;
  auto again = Log::Open(TestIo(), dir.sub("s"), SmallOptions(clock), &rep);
  REQUIRE(again.ok());
  CHECK(rep.truncated_bytes == 0);
  CHECK((*again)->end_offset() == next);
  CHECK(CheckAllFrom(**again, 0) == next);
}

TEST_CASE("an index write that fails (a full disk) does not stop the log") {
  TempDir dir;
  auto fault = std::make_shared<io::FaultIo>(TestIo());
  LogOptions o;
  o.index_interval_bytes = 64;  // an index entry for nearly every batch
  o.durability.mode = Durability::Mode::kNever;
  uint64_t next = 0;
  {
    auto log = Log::Open(fault, dir.sub("s"), o);
    REQUIRE(log.ok());
    Log& l = **log;
    auto append = [&] {
      Bytes b = MakeBatch(3, int(next));
      auto r = l.Append(b);
      REQUIRE(r.ok());
      next = r->last_offset + 1;
    };
    for (int i = 0; i < 5; i++) append();  // fewer than a periodic index flush
    fault->FailWrites(ENOSPC, 1);            // the offset index's write in the sync
    CHECK(l.Sync().ok());
    CHECK(l.synced_offset() == next);
    fault->Clear();
    append();  // not poisoned
    CHECK(l.Sync().ok());
    CHECK(CheckAllFrom(l, 0) == next);
    REQUIRE(l.Close().ok());
  }
  RecoveryReport rep;
  auto log = Log::Open(TestIo(), dir.sub("s"), o, &rep);
  REQUIRE(log.ok());
  CHECK(rep.truncated_bytes == 0);
  CHECK((*log)->end_offset() == next);
  for (uint64_t from = 0; from < next; from++) CHECK(CheckAllFrom(**log, from) == next - from);
}

TEST_CASE("a failed fdatasync poisons the log until it is reopened") {
  TempDir dir;
  auto fault = std::make_shared<io::FaultIo>(TestIo());
  LogOptions o;
  o.durability.mode = Durability::Mode::kAlways;
  {
    auto log = Log::Open(fault, dir.sub("s"), o);
    REQUIRE(log.ok());
    Bytes b = MakeBatch(2);
    auto r = (*log)->Append(b);
    REQUIRE(r.ok());
    fault->FailSyncs(EIO);
    Status s = (*log)->WaitDurable(r->last_offset + 1);
    CHECK(!s.ok());
    CHECK(s.message().find("reopened") != std::string::npos);
    Bytes b2 = MakeBatch(2, 2);
    CHECK(!(*log)->Append(b2).ok());
  }
  auto log = Log::Open(TestIo(), dir.sub("s"), o);
  REQUIRE(log.ok());
  CHECK((*log)->end_offset() == 2);
  Bytes b3 = MakeBatch(2, 2);
  auto r = (*log)->Append(b3);
  REQUIRE(r.ok());
  CHECK((*log)->WaitDurable(r->last_offset + 1).ok());
}

namespace {

uint64_t AllocatedBytes(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return uint64_t(st.st_blocks) * 512;
}

Bytes BigBatch(int first) {  // 16 records of 4 KiB: "key-i" / 4 KiB of 'v'
  BatchBuilder b;
  for (int i = 0; i < 16; i++) b.Add("key-" + std::to_string(first + i), nullptr, std::string(4096, 'v'), 1000);
  return b.Finish();
}

}  // namespace

TEST_CASE("a busy segment reserves blocks ahead and gives them back on roll, close and reopen") {
  TempDir dir;
  LogOptions o;
  o.segment_bytes = 8u << 20;
  o.durability.mode = Durability::Mode::kNever;
  std::string seg0 = SegmentPath(dir.sub("s"), 0, kLogExt);
  uint64_t next = 0;
  uint64_t max_spare = 0;  // most bytes seen allocated beyond the end of segment 0
  auto append_mib = [&](Log& log, double mib) {
    uint64_t target = uint64_t(mib * double(1u << 20));
    uint64_t start = log.size_bytes();
    while (log.size_bytes() - start < target) {
      Bytes b = BigBatch(int(next));
      auto r = log.Append(b);
      REQUIRE(r.ok());
      next = r->last_offset + 1;
      if (log.segment_count() == 1) {
        uint64_t alloc = AllocatedBytes(seg0), size = std::filesystem::file_size(seg0);
        if (alloc > size) max_spare = std::max(max_spare, alloc - size);
      }
    }
  };
  {
    auto log = Log::Open(TestIo(), dir.sub("s"), o);
    REQUIRE(log.ok());
    append_mib(**log, 3);
    uint64_t size = std::filesystem::file_size(seg0);
    bool can_reserve = false;  // where fallocate works, the log must have reserved
    {
      std::string probe = dir.sub("probe");
      int fd = ::open(probe.c_str(), O_RDWR | O_CREAT, 0644);
      REQUIRE(fd >= 0);
      can_reserve = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 << 20) == 0;
      ::close(fd);
      ::unlink(probe.c_str());
    }
    if (can_reserve)
      CHECK(max_spare >= (512u << 10));
    else
      MESSAGE("no blocks reserved ahead: fallocate is not supported on " << dir.path());
    CHECK(max_spare <= (8u << 20) + (1u << 20));  // the spare is bounded
    REQUIRE((*log)->Close().ok());
    CHECK(AllocatedBytes(seg0) < size + (64u << 10));  // given back
    CHECK(std::filesystem::file_size(seg0) == size);
  }
  // Blocks left reserved by a crash (simulated): reopening reads the same records,
  // appends continue at the right offset, and closing gives the blocks back.
  {
    uint64_t size = std::filesystem::file_size(seg0);
    int fd = ::open(seg0.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    bool reserved = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, off_t(size), 4 << 20) == 0;
    ::close(fd);
    auto log = Log::Open(TestIo(), dir.sub("s"), o);
    REQUIRE(log.ok());
    CHECK((*log)->end_offset() == next);
    append_mib(**log, 0.5);
    CHECK(CheckAllFrom(**log, 0) == next);
    // A roll gives back the sealed segment's spare at once.
    append_mib(**log, 6);
    REQUIRE((*log)->segment_count() == 2);
    if (reserved) CHECK(AllocatedBytes(seg0) < std::filesystem::file_size(seg0) + (64u << 10));
    REQUIRE((*log)->Close().ok());
  }
}

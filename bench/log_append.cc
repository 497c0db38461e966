// log_append: throughput of log::Log::Append under each durability policy, measured
// against a plain write() loop of the same bytes on the same disk in the same run.
//
//   log_append                      the suite (the three targets of the issue), a table
//   log_append --suite [--runs R]   same, explicitly
//   log_append --records N --record-size S --batch B --durability never ...
//
// What is timed. Batches are encoded before the clock starts (the producer's encoding
// is not the log's cost): each appender owns a pool of up to 64 distinct batches and
// cycles through it. Append() stamps base offset and append time into the header in
// place and recomputes the header CRC, so a pooled batch stays a valid batch and is
// passed again as is; the log still validates both CRCs and (validate_records) walks
// every record each time. --copy adds a memcpy of each batch into a reusable buffer
// before Append (what a server copying from its socket buffer would pay).
// The log's clock runs from the first Append to the return of the last Append (and
// WaitDurable, with `always`); Log::Open and Log::Close (which syncs) are outside it,
// Close is reported separately. Roll-time syncs (every --segment-mb) are inside.
//
// The baseline. The same bytes (every batch, in the same order and the same chunk
// sizes) go to a fresh file through write(2) from one thread, no sync. Log and
// baseline alternate their order from run to run and each writes a fresh file that
// is removed right after it is measured. On this VM the first touch of a page-cache
// page that the host has reclaimed costs ~11 us (see bench/peers/README.md), so the
// state of the free memory moves both figures. The suite's runs (< 600 MB per file)
// stay within the ~1.5 GiB of free memory the host has not reclaimed, i.e. "warm",
// even after a 10 s pause (measured); a cold run needs > 1.5 GiB per file (e.g.
// --records 2M --record-size 1024) and --settle-ms. The ratio is computed per run,
// on the pair. For context, a write()+fdatasync() per chunk loop runs for
// --fsync-secs seconds on the same chunks.
//
// The log runs on a pass-through Io that counts and times File::WriteAt and
// File::DataSync (two clock reads per call), so the output says how many fdatasyncs
// group commit or a roll issued and how much of the wall time went into writes.
//
// Output: human-readable lines and `RESULT log_append <figure> <unit> median= min=
// max= spread= runs=` lines (the format of bench/peers/common.sh).
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "io/io.h"
#include "log/batch.h"
#include "log/log.h"

namespace {

using namespace streamkit;
using Clock = std::chrono::steady_clock;

uint64_t NowNs() {
  return uint64_t(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

std::string g_cleanup_dir;  // the temp dir this process made; removed on every exit

[[noreturn]] void Die(const std::string& msg) {
  std::fflush(stdout);
  std::fprintf(stderr, "log_append: %s\n", msg.c_str());
  if (!g_cleanup_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(g_cleanup_dir, ec);
  }
  std::exit(1);
}

// ---------------------------------------------------------------------------------
// Configuration and command line.

struct Config {
  uint64_t records = 1000000;
  size_t record_size = 100;  // data bytes per record (the payload)
  size_t key_size = 8;       // partition key bytes per record
  uint32_t batch = 1000;     // records per batch
  std::string durability = "never";
  int appenders = 1;
  std::string dir;           // empty: a fresh temp dir
  int runs = 3;
  std::string io = "default";
  uint64_t segment_mb = 128;  // LogOptions default
  bool validate_records = true;
  bool copy = false;
  int pool = 64;
  int settle_ms = 0;
  double fsync_secs = 1.0;  // write+fdatasync context loop; 0: off
  bool baseline = true;
  bool suite = false;
  int cpu = -2;  // -2: the last CPU; -1: no pinning
};

void Usage() {
  std::puts(
      "usage: log_append [--suite] [options]\n"
      "  (no arguments: --suite, the three targets of the issue)\n"
      "  --records N            records to append in total (1000000)\n"
      "  --record-size S        data bytes per record (100)\n"
      "  --key-size K           partition key bytes per record (8)\n"
      "  --batch B              records per batch (1000)\n"
      "  --durability D         always | interval=MS | never | all (never)\n"
      "  --appenders K          threads appending to the same log, each Append then\n"
      "                         WaitDurable (1)\n"
      "  --dir DIR              where to write (default: fresh temp dir under $TMPDIR\n"
      "                         or /var/tmp, removed at the end)\n"
      "  --runs R               repetitions; median/min/max are reported (3)\n"
      "  --io posix|io_uring|default   I/O backend (default: io::DefaultIo(), which\n"
      "                         honours STREAMKIT_IO)\n"
      "  --segment-mb M         LogOptions::segment_bytes in MiB (128, the default)\n"
      "  --no-validate-records  LogOptions::validate_records = false (CRCs only)\n"
      "  --copy                 memcpy each batch into a reusable buffer before Append\n"
      "  --pool P               distinct pre-built batches per appender (64)\n"
      "  --settle-ms MS         sleep before each measurement (0); with > 1.5 GiB per\n"
      "                         file, 10000 gives cold page-cache pages on this VM\n"
      "  --fsync-secs SEC       seconds of the write+fdatasync-per-chunk loop (1; 0 off)\n"
      "  --no-baseline          skip the plain write() loop\n"
      "  --cpu N                with one appender, run it and the write() loops on CPU N\n"
      "                         (default: the last CPU; -1: let the scheduler place them)");
}

uint64_t ParseU64(std::string_view flag, std::string_view v) {
  uint64_t x = 0;
  size_t i = 0;
  if (v.empty()) Die(fmt::format("{}: expected a number", flag));
  for (; i < v.size(); i++) {
    if (v[i] < '0' || v[i] > '9') break;
    x = x * 10 + uint64_t(v[i] - '0');
  }
  // Allow k/M suffixes: --records 5M.
  std::string_view rest = v.substr(i);
  if (rest == "k" || rest == "K") x *= 1000;
  else if (rest == "M" || rest == "m") x *= 1000000;
  else if (!rest.empty()) Die(fmt::format("{}: '{}' is not a number", flag, v));
  return x;
}

Config ParseArgs(int argc, char** argv) {
  Config c;
  if (argc <= 1) {
    c.suite = true;
    return c;
  }
  for (int i = 1; i < argc; i++) {
    std::string_view a = argv[i];
    std::string_view val;
    bool has_val = false;
    if (auto eq = a.find('='); a.substr(0, 2) == "--" && eq != std::string_view::npos) {
      val = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_val = true;
    }
    auto next = [&]() -> std::string_view {
      if (has_val) return val;
      if (i + 1 >= argc) Die(fmt::format("{} needs a value", a));
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      Usage();
      std::exit(0);
    } else if (a == "--suite") {
      c.suite = true;
    } else if (a == "--records") {
      c.records = ParseU64(a, next());
    } else if (a == "--record-size") {
      c.record_size = ParseU64(a, next());
    } else if (a == "--key-size") {
      c.key_size = ParseU64(a, next());
    } else if (a == "--batch") {
      c.batch = uint32_t(ParseU64(a, next()));
    } else if (a == "--durability") {
      c.durability = std::string(next());
    } else if (a == "--appenders") {
      c.appenders = int(ParseU64(a, next()));
    } else if (a == "--dir") {
      c.dir = std::string(next());
    } else if (a == "--runs") {
      c.runs = int(ParseU64(a, next()));
    } else if (a == "--io") {
      c.io = std::string(next());
    } else if (a == "--segment-mb") {
      c.segment_mb = ParseU64(a, next());
    } else if (a == "--no-validate-records") {
      c.validate_records = false;
    } else if (a == "--copy") {
      c.copy = true;
    } else if (a == "--pool") {
      c.pool = int(ParseU64(a, next()));
    } else if (a == "--settle-ms") {
      c.settle_ms = int(ParseU64(a, next()));
    } else if (a == "--fsync-secs") {
      c.fsync_secs = std::atof(std::string(next()).c_str());
    } else if (a == "--no-baseline") {
      c.baseline = false;
    } else if (a == "--cpu") {
      c.cpu = std::atoi(std::string(next()).c_str());
    } else {
      Usage();
      Die(fmt::format("unknown argument '{}'", argv[i]));
    }
  }
  if (c.records == 0 || c.batch == 0 || c.appenders < 1 || c.runs < 1 || c.pool < 1 ||
      c.key_size < 1 || c.segment_mb < 1)
    Die("--records, --batch, --appenders, --runs, --pool, --key-size and --segment-mb must be positive");
  if (c.durability != "all") {
    auto d = log::Durability::Parse(c.durability);
    if (!d.ok()) Die(d.status().ToString());
  }
  if (c.cpu == -2) c.cpu = int(std::thread::hardware_concurrency()) - 1;
  if (c.cpu >= int(std::thread::hardware_concurrency())) Die(fmt::format("--cpu {}: no such CPU", c.cpu));
  if (c.io != "posix" && c.io != "io_uring" && c.io != "default")
    Die(fmt::format("--io {}: expected posix, io_uring or default", c.io));
  return c;
}

// ---------------------------------------------------------------------------------
// Latency histogram: log-linear buckets, 8 per power of two (<= 12.5 % error).

class Histogram {
 public:
  void Add(uint64_t v) {
    b_[size_t(Index(v))]++;
    n_++;
    max_ = std::max(max_, v);
  }
  void Merge(const Histogram& o) {
    for (size_t i = 0; i < b_.size(); i++) b_[i] += o.b_[i];
    n_ += o.n_;
    max_ = std::max(max_, o.max_);
  }
  uint64_t count() const { return n_; }
  uint64_t max() const { return max_; }
  // Upper edge of the bucket holding the p-quantile (clamped to the maximum seen).
  uint64_t Quantile(double p) const {
    if (n_ == 0) return 0;
    uint64_t want = std::max<uint64_t>(1, uint64_t(std::ceil(p * double(n_))));
    uint64_t seen = 0;
    for (size_t i = 0; i < b_.size(); i++) {
      seen += b_[i];
      if (seen >= want) return std::min(Upper(int(i)), max_);
    }
    return max_;
  }

 private:
  static int Index(uint64_t v) {
    if (v < 8) return int(v);
    int msb = 63 - __builtin_clzll(v);
    return msb * 8 + int((v >> (msb - 3)) & 7);
  }
  static uint64_t Upper(int i) {
    if (i < 8) return uint64_t(i);
    int msb = i / 8, sub = i % 8;
    return (uint64_t(8 + sub + 1) << (msb - 3)) - 1;
  }
  std::array<uint64_t, 64 * 8> b_{};
  uint64_t n_ = 0;
  uint64_t max_ = 0;
};

// ---------------------------------------------------------------------------------
// A pass-through Io that counts (and times) writes and syncs, so the output can say
// where the time went: how many fdatasyncs group commit issued, how long they took.

struct IoCounters {
  std::atomic<uint64_t> writes{0}, write_bytes{0}, write_ns{0}, syncs{0}, sync_ns{0};
  void Reset() {
    writes = 0;
    write_bytes = 0;
    write_ns = 0;
    syncs = 0;
    sync_ns = 0;
  }
};

class CountingFile final : public io::File {
 public:
  CountingFile(std::unique_ptr<io::File> f, IoCounters* c)
      : io::File(f->fd(), f->path()), f_(std::move(f)), c_(c) {}
  Status WriteAt(const void* data, size_t n, uint64_t offset) override {
    uint64_t t = NowNs();
    Status s = f_->WriteAt(data, n, offset);
    c_->write_ns.fetch_add(NowNs() - t, std::memory_order_relaxed);
    c_->writes.fetch_add(1, std::memory_order_relaxed);
    c_->write_bytes.fetch_add(n, std::memory_order_relaxed);
    return s;
  }
  Result<size_t> ReadAt(void* buf, size_t n, uint64_t offset) override {
    return f_->ReadAt(buf, n, offset);
  }
  Status DataSync() override {
    uint64_t t = NowNs();
    Status s = f_->DataSync();
    c_->sync_ns.fetch_add(NowNs() - t, std::memory_order_relaxed);
    c_->syncs.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  Status Truncate(uint64_t size) override { return f_->Truncate(size); }
  Result<uint64_t> Size() override { return f_->Size(); }
  Status Preallocate(uint64_t offset, uint64_t n) override { return f_->Preallocate(offset, n); }
  Result<uint64_t> Allocated() override { return f_->Allocated(); }

 private:
  std::unique_ptr<io::File> f_;
  IoCounters* c_;
};

class CountingIo final : public io::Io {
 public:
  explicit CountingIo(std::shared_ptr<io::Io> base) : base_(std::move(base)) {}
  Result<std::unique_ptr<io::File>> Open(const std::string& path, io::OpenMode mode) override {
    SK_ASSIGN_OR_RETURN(auto f, base_->Open(path, mode));
    return std::unique_ptr<io::File>(new CountingFile(std::move(f), &counters));
  }
  Status Remove(const std::string& p) override { return base_->Remove(p); }
  Status Rename(const std::string& f, const std::string& t) override { return base_->Rename(f, t); }
  Status CreateDirs(const std::string& p) override { return base_->CreateDirs(p); }
  Status RemoveDirRecursive(const std::string& p) override { return base_->RemoveDirRecursive(p); }
  Status SyncDir(const std::string& p) override { return base_->SyncDir(p); }
  Result<std::vector<std::string>> ListDir(const std::string& p) override { return base_->ListDir(p); }
  bool Exists(const std::string& p) override { return base_->Exists(p); }
  const char* name() const override { return base_->name(); }

  IoCounters counters;

 private:
  std::shared_ptr<io::Io> base_;
};

// ---------------------------------------------------------------------------------
// The workload: per appender, a pool of pre-built batches.

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

struct XorShift64 {
  uint64_t s = 0x9E3779B97F4A7C15ull;  // the peers' seed
  uint64_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  void Fill(char* p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = kAlphabet[Next() & 63];
  }
};

struct Pool {
  std::vector<Bytes> batches;  // distinct full batches, cycled
  Bytes tail;                  // the last, partial batch (empty: none)
  uint64_t full = 0;           // full batches this appender appends
  uint64_t records = 0;
};

struct Workload {
  std::vector<Pool> pools;  // one per appender
  uint64_t records = 0;
  uint64_t payload_bytes = 0;  // records * record_size
  uint64_t file_bytes = 0;     // sum of batch sizes: what the log writes
  uint64_t chunks = 0;         // batches
  size_t max_batch = 0;
  double build_secs = 0;
};

Bytes BuildBatch(XorShift64& rng, uint32_t n, size_t key_size, size_t data_size) {
  log::BatchBuilder b;
  std::string key(key_size, 'k'), data(data_size, 'd');
  const int64_t ts = 1764000000000;  // fixed create time; the log stamps arrival time
  for (uint32_t i = 0; i < n; i++) {
    rng.Fill(key.data(), key.size());
    rng.Fill(data.data(), data.size());
    b.Add(key, nullptr, data, ts);
  }
  return b.Finish();
}

Workload BuildWorkload(const Config& c) {
  Workload w;
  uint64_t t0 = NowNs();
  XorShift64 rng;
  // Bound the pool memory to ~256 MiB in all: fewer distinct batches for huge ones.
  size_t est = log::kBatchHeaderSize + size_t(c.batch) * (c.record_size + c.key_size + 16);
  if (est > log::kMaxBatchBytes)
    Die(fmt::format("a batch of {} records of {}+{} bytes (~{} bytes) exceeds the format's "
                    "{} byte limit", c.batch, c.key_size, c.record_size, est, log::kMaxBatchBytes));
  size_t per_pool = std::max<size_t>(1, std::min<size_t>(size_t(c.pool),
                                                         (256u << 20) / (est * size_t(c.appenders))));
  w.pools.resize(size_t(c.appenders));
  for (int t = 0; t < c.appenders; t++) {
    Pool& p = w.pools[size_t(t)];
    p.records = c.records / uint64_t(c.appenders) + (uint64_t(t) < c.records % uint64_t(c.appenders) ? 1 : 0);
    p.full = p.records / c.batch;
    uint32_t tail = uint32_t(p.records % c.batch);
    size_t distinct = size_t(std::min<uint64_t>(p.full, per_pool));
    for (size_t i = 0; i < distinct; i++) p.batches.push_back(BuildBatch(rng, c.batch, c.key_size, c.record_size));
    if (tail > 0) p.tail = BuildBatch(rng, tail, c.key_size, c.record_size);
    for (uint64_t i = 0; i < p.full; i++) w.file_bytes += p.batches[i % distinct].size();
    w.file_bytes += p.tail.size();
    w.chunks += p.full + (tail > 0 ? 1 : 0);
    for (auto& b : p.batches) w.max_batch = std::max(w.max_batch, b.size());
    w.max_batch = std::max(w.max_batch, p.tail.size());
  }
  w.records = c.records;
  w.payload_bytes = c.records * c.record_size;
  w.build_secs = double(NowNs() - t0) / 1e9;
  return w;
}

// Calls f(batch) for every batch of pool p in append order.
template <class F>
void ForEachBatch(Pool& p, F&& f) {
  size_t n = p.batches.size();
  for (uint64_t i = 0; i < p.full; i++) f(p.batches[i % n]);
  if (!p.tail.empty()) f(p.tail);
}

// ---------------------------------------------------------------------------------
// Measurements.

struct CpuSample {
  double cpu = 0;  // user + sys of the whole process, seconds
  long vcsw = 0, ivcsw = 0;
  static CpuSample Take() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    CpuSample s;
    s.cpu = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    s.vcsw = ru.ru_nvcsw;
    s.ivcsw = ru.ru_nivcsw;
    return s;
  }
};

struct LogRun {
  double secs = 0;
  double cpu_secs = 0;
  long csw = 0;
  double close_secs = 0;
  uint64_t writes = 0, syncs = 0;
  double write_secs = 0, sync_secs = 0;
  size_t segments = 0;
  Histogram lat;  // per Append (+ WaitDurable) call, ns
};

void Settle(const Config& c) {
  if (c.settle_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(c.settle_ms));
}

// One appender and the write() loops run on the same CPU (--cpu): on this VM the two
// vCPUs differ by up to 25 % for this work (measured: log and write() loop both
// slower on CPU 0), and the scheduler put the appender thread and the loop on
// different ones from run to run, which made the ratio swing between 0.75 and 1.25.
// Several appenders are left to the scheduler.
void PinTo(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set); rc != 0)
    Die(fmt::format("pin to CPU {}: {}", cpu, std::strerror(rc)));
}

// Pins the calling thread for its lifetime, then gives it back every CPU it had.
class ScopedPin {
 public:
  explicit ScopedPin(int cpu) : on_(cpu >= 0) {
    if (!on_) return;
    pthread_getaffinity_np(pthread_self(), sizeof old_, &old_);
    PinTo(cpu);
  }
  ~ScopedPin() {
    if (on_) pthread_setaffinity_np(pthread_self(), sizeof old_, &old_);
  }
  ScopedPin(const ScopedPin&) = delete;
  ScopedPin& operator=(const ScopedPin&) = delete;

 private:
  bool on_;
  cpu_set_t old_;
};

LogRun MeasureLog(const Config& c, Workload& w, const std::shared_ptr<CountingIo>& cio,
                  const std::string& dir, const log::Durability& d) {
  log::LogOptions o;
  o.durability = d;
  o.segment_bytes = c.segment_mb << 20;
  o.validate_records = c.validate_records;
  auto opened = log::Log::Open(cio, dir, o);
  if (!opened.ok()) Die(opened.status().ToString());
  std::unique_ptr<log::Log> lg = std::move(opened).value();

  const bool always = d.mode == log::Durability::Mode::kAlways;
  std::vector<Histogram> hist(size_t(c.appenders));
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::mutex err_mu;
  std::string first_error;
  std::vector<std::thread> threads;
  for (int t = 0; t < c.appenders; t++) {
    threads.emplace_back([&, t] {
      Pool& p = w.pools[size_t(t)];
      Histogram& h = hist[size_t(t)];
      Bytes copy_buf(c.copy ? w.max_batch : 0);
      if (c.appenders == 1) PinTo(c.cpu);
      ready.fetch_add(1);
      go.wait(false);
      ForEachBatch(p, [&](Bytes& b) {
        uint64_t t0 = NowNs();
        std::span<uint8_t> span(b);
        if (c.copy) {
          std::memcpy(copy_buf.data(), b.data(), b.size());
          span = std::span<uint8_t>(copy_buf.data(), b.size());
        }
        auto r = lg->Append(span);
        Status s = r.ok() ? Status::OK() : r.status();
        if (s.ok() && always) s = lg->WaitDurable(r->last_offset + 1);
        if (!s.ok()) {
          std::lock_guard<std::mutex> g(err_mu);
          if (first_error.empty()) first_error = s.ToString();
          return;
        }
        h.Add(NowNs() - t0);
      });
    });
  }
  while (ready.load() < c.appenders) std::this_thread::yield();
  cio->counters.Reset();
  CpuSample c0 = CpuSample::Take();
  uint64_t t0 = NowNs();
  go = true;
  go.notify_all();
  for (auto& th : threads) th.join();
  uint64_t t1 = NowNs();
  CpuSample c1 = CpuSample::Take();
  if (!first_error.empty()) Die("append failed: " + first_error);

  LogRun r;
  r.secs = double(t1 - t0) / 1e9;
  r.cpu_secs = c1.cpu - c0.cpu;
  r.csw = (c1.vcsw - c0.vcsw) + (c1.ivcsw - c0.ivcsw);
  r.writes = cio->counters.writes.load();
  r.syncs = cio->counters.syncs.load();
  r.write_secs = double(cio->counters.write_ns.load()) / 1e9;
  r.sync_secs = double(cio->counters.sync_ns.load()) / 1e9;
  r.segments = lg->segment_count();
  for (auto& h : hist) r.lat.Merge(h);
  if (lg->end_offset() != w.records)
    Die(fmt::format("log ends at offset {} after {} records", lg->end_offset(), w.records));
  uint64_t tc = NowNs();
  Status cs = lg->Close();
  r.close_secs = double(NowNs() - tc) / 1e9;
  if (!cs.ok()) Die("close: " + cs.ToString());
  lg.reset();
  Status rm = cio->RemoveDirRecursive(dir);
  if (!rm.ok()) Die(rm.ToString());
  return r;
}

void WriteAll(int fd, const uint8_t* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t k = ::write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      Die(fmt::format("write {}: {}", path, std::strerror(errno)));
    }
    p += k;
    n -= size_t(k);
  }
}

struct WriteRun {
  double secs = 0;
  double cpu_secs = 0;
};

// The plain write() loop: the same bytes in the same chunks, one thread, no sync.
WriteRun MeasureWriteLoop(Workload& w, const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die(fmt::format("open {}: {}", path, std::strerror(errno)));
  CpuSample c0 = CpuSample::Take();
  uint64_t t0 = NowNs();
  for (Pool& p : w.pools) ForEachBatch(p, [&](Bytes& b) { WriteAll(fd, b.data(), b.size(), path); });
  uint64_t t1 = NowNs();
  CpuSample c1 = CpuSample::Take();
  ::close(fd);
  ::unlink(path.c_str());
  return WriteRun{double(t1 - t0) / 1e9, c1.cpu - c0.cpu};
}

struct FsyncRun {
  double secs = 0;
  uint64_t chunks = 0, bytes = 0, records = 0;
  Histogram lat;
};

// write()+fdatasync() per chunk, one thread, for at most `max_secs` (context for `always`).
FsyncRun MeasureFsyncLoop(Workload& w, const std::string& path, double max_secs) {
  FsyncRun r;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die(fmt::format("open {}: {}", path, std::strerror(errno)));
  uint64_t t0 = NowNs();
  uint64_t deadline = t0 + uint64_t(max_secs * 1e9);
  bool stop = false;
  for (Pool& p : w.pools) {
    ForEachBatch(p, [&](Bytes& b) {
      if (stop) return;
      uint64_t s = NowNs();
      WriteAll(fd, b.data(), b.size(), path);
      if (::fdatasync(fd) != 0) Die(fmt::format("fdatasync {}: {}", path, std::strerror(errno)));
      uint64_t e = NowNs();
      r.lat.Add(e - s);
      r.chunks++;
      r.bytes += b.size();
      r.records += log::DecodeHeader(b.data()).record_count;
      if (e >= deadline) stop = true;
    });
    if (stop) break;
  }
  r.secs = double(NowNs() - t0) / 1e9;
  ::close(fd);
  ::unlink(path.c_str());
  return r;
}

// ---------------------------------------------------------------------------------
// Reporting.

struct Series {
  std::vector<double> v;
  void Add(double x) { v.push_back(x); }
  double Median() const {
    std::vector<double> s = v;
    std::sort(s.begin(), s.end());
    size_t n = s.size();
    if (n == 0) return 0;
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  }
  double Min() const { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }
  double Max() const { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }
};

std::string Num(double x, double ref) {
  // common.sh: integers when the median is >= 100, else 3 significant digits.
  if (std::fabs(ref) >= 100) return fmt::format("{:.0f}", x);
  return fmt::format("{:.3g}", x);
}

void PrintResult(const std::string& fig, const std::string& unit, const Series& s) {
  double m = s.Median();
  double spread = m != 0 ? (s.Max() - s.Min()) / m * 100 : 0;
  std::string runs;
  for (size_t i = 0; i < s.v.size(); i++) {
    if (i > 0) runs += ',';
    runs += Num(s.v[i], m);
  }
  fmt::print("RESULT log_append {} {} median={} min={} max={} spread={:.0f}% runs={}\n", fig, unit,
             Num(m, m), Num(s.Min(), m), Num(s.Max(), m), spread, runs);
}

// 3,141,593 -> "3.14M"
std::string Human(double x) {
  if (x >= 1e9) return fmt::format("{:.2f}G", x / 1e9);
  if (x >= 1e6) return fmt::format("{:.2f}M", x / 1e6);
  if (x >= 1e4) return fmt::format("{:.0f}k", x / 1e3);
  if (x >= 1e3) return fmt::format("{:.1f}k", x / 1e3);
  if (x >= 100) return fmt::format("{:.0f}", x);
  return fmt::format("{:.3g}", x);
}

std::string Range(const Series& s, bool human = true) {
  if (human) return fmt::format("{} ({}-{})", Human(s.Median()), Human(s.Min()), Human(s.Max()));
  return fmt::format("{:.2f} ({:.2f}-{:.2f})", s.Median(), s.Min(), s.Max());
}

// Everything measured for one (workload, durability) scenario over all runs.
struct ScenarioResult {
  std::string label;
  Series rec_s, payload_mbs, file_mbs, cores, append_p50_us, append_p99_us, append_max_us,
      close_ms, syncs, recs_per_sync, sync_ms_avg, write_syscall_share, csw_per_batch;
  Series write_mbs, write_rec_s, write_cores, ratio;
  Series fsync_mbs, fsync_rec_s, fsync_p50_us;
  size_t segments = 0;
};

std::string Label(const Config& c, const log::Durability& d) {
  std::string dur = d.ToString();
  for (char& ch : dur)
    if (ch == '=') ch = '_';
  std::string l = fmt::format("rec{}B_b{}_{}_k{}", c.record_size, c.batch, dur, c.appenders);
  if (c.segment_mb != 128) l += fmt::format("_seg{}M", c.segment_mb);
  if (!c.validate_records) l += "_novalidate";
  if (c.copy) l += "_copy";
  return l;
}

ScenarioResult RunScenario(const Config& c, Workload& w, const std::shared_ptr<CountingIo>& cio,
                           const std::string& base, const log::Durability& d) {
  ScenarioResult sr;
  sr.label = Label(c, d);
  fmt::print("\n== {}: {} records of {} B (+{} B key), batches of {} ({} batches, {:.1f} MB "
             "written), durability {}, {} appender(s), backend {}\n",
             sr.label, w.records, c.record_size, c.key_size, c.batch, w.chunks,
             double(w.file_bytes) / 1e6, d.ToString(), c.appenders, cio->name());
  std::fflush(stdout);
  static int seq = 0;
  for (int run = 0; run < c.runs; run++) {
    // Alternate which of the pair goes first: the first one after a pause meets colder pages.
    bool log_first = run % 2 == 1;
    std::string dir = fmt::format("{}/log-{}", base, seq);
    std::string file = fmt::format("{}/write-{}", base, seq);
    seq++;
    LogRun lr;
    WriteRun wr;
    auto do_log = [&] {
      Settle(c);
      lr = MeasureLog(c, w, cio, dir, d);
    };
    auto do_write = [&] {
      if (!c.baseline) return;
      Settle(c);
      ScopedPin pin(c.appenders == 1 ? c.cpu : -1);
      wr = MeasureWriteLoop(w, file);
    };
    if (log_first) {
      do_log();
      do_write();
    } else {
      do_write();
      do_log();
    }
    double rec_s = double(w.records) / lr.secs;
    sr.rec_s.Add(rec_s);
    sr.payload_mbs.Add(double(w.payload_bytes) / lr.secs / 1e6);
    sr.file_mbs.Add(double(w.file_bytes) / lr.secs / 1e6);
    sr.cores.Add(lr.cpu_secs / lr.secs);
    sr.append_p50_us.Add(double(lr.lat.Quantile(0.5)) / 1e3);
    sr.append_p99_us.Add(double(lr.lat.Quantile(0.99)) / 1e3);
    sr.append_max_us.Add(double(lr.lat.max()) / 1e3);
    sr.close_ms.Add(lr.close_secs * 1e3);
    sr.syncs.Add(double(lr.syncs));
    if (lr.syncs > 0) {
      sr.recs_per_sync.Add(double(w.records) / double(lr.syncs));
      sr.sync_ms_avg.Add(lr.sync_secs / double(lr.syncs) * 1e3);
    }
    // Time inside File::WriteAt summed over threads, as a share of wall time.
    sr.write_syscall_share.Add(lr.write_secs / lr.secs);
    sr.csw_per_batch.Add(double(lr.csw) / double(w.chunks));
    sr.segments = lr.segments;
    std::string line = fmt::format(
        "  run {}: log {:>8} rec/s {:>7.1f} MB/s payload {:>7.1f} MB/s written  {:.3f} s  "
        "cpu {:.2f} cores  append p50 {:.0f} us p99 {:.0f} us max {:.0f} us  syncs {} ({:.0f} ms)  "
        "in write {:.0f}%  close {:.0f} ms",
        run + 1, Human(rec_s), double(w.payload_bytes) / lr.secs / 1e6,
        double(w.file_bytes) / lr.secs / 1e6, lr.secs, lr.cpu_secs / lr.secs,
        double(lr.lat.Quantile(0.5)) / 1e3, double(lr.lat.Quantile(0.99)) / 1e3,
        double(lr.lat.max()) / 1e3, lr.syncs, lr.sync_secs * 1e3, lr.write_secs / lr.secs * 100,
        lr.close_secs * 1e3);
    if (c.baseline) {
      double wmbs = double(w.file_bytes) / wr.secs / 1e6;
      double ratio = wr.secs / lr.secs;  // same bytes: throughput ratio log / write()
      sr.write_mbs.Add(wmbs);
      sr.write_rec_s.Add(double(w.records) / wr.secs);
      sr.write_cores.Add(wr.cpu_secs / wr.secs);
      sr.ratio.Add(ratio);
      line += fmt::format("\n         write() loop {:>7.1f} MB/s  {:.3f} s  -> log/write() = {:.3f}  ({} first)",
                          wmbs, wr.secs, ratio, log_first ? "log" : "write()");
    }
    fmt::print("{}\n", line);
    std::fflush(stdout);
  }
  if (c.fsync_secs > 0) {
    Settle(c);
    ScopedPin pin(c.appenders == 1 ? c.cpu : -1);
    FsyncRun fr = MeasureFsyncLoop(w, fmt::format("{}/fsync-{}", base, seq++), c.fsync_secs);
    sr.fsync_mbs.Add(double(fr.bytes) / fr.secs / 1e6);
    sr.fsync_rec_s.Add(double(fr.records) / fr.secs);
    sr.fsync_p50_us.Add(double(fr.lat.Quantile(0.5)) / 1e3);
    fmt::print("  context: write()+fdatasync() per chunk, 1 thread: {} chunks in {:.2f} s, {:.1f} MB/s, "
               "{} rec/s, p50 {:.0f} us p99 {:.0f} us per chunk\n",
               fr.chunks, fr.secs, double(fr.bytes) / fr.secs / 1e6,
               Human(double(fr.records) / fr.secs), double(fr.lat.Quantile(0.5)) / 1e3,
               double(fr.lat.Quantile(0.99)) / 1e3);
  }
  fmt::print("  summary (median, min-max over {} runs): {} rec/s, {} MB/s payload, {} MB/s written",
             c.runs, Range(sr.rec_s), Range(sr.payload_mbs), Range(sr.file_mbs));
  if (c.baseline)
    fmt::print("; write() loop {} MB/s; log/write() {}", Range(sr.write_mbs), Range(sr.ratio, false));
  fmt::print("\n  segments at end: {}\n", sr.segments);

  const std::string& L = sr.label;
  PrintResult(L + "_append", "records/s", sr.rec_s);
  PrintResult(L + "_append_payload", "MB/s", sr.payload_mbs);
  PrintResult(L + "_append_written", "MB/s", sr.file_mbs);
  if (c.baseline) {
    PrintResult(L + "_write_loop", "MB/s", sr.write_mbs);
    PrintResult(L + "_ratio_log_to_write_loop", "x", sr.ratio);
  }
  PrintResult(L + "_cpu", "cores", sr.cores);
  PrintResult(L + "_append_call_p50", "us", sr.append_p50_us);
  PrintResult(L + "_append_call_p99", "us", sr.append_p99_us);
  PrintResult(L + "_append_call_max", "us", sr.append_max_us);
  if (!sr.recs_per_sync.v.empty()) {
    PrintResult(L + "_fdatasyncs", "count", sr.syncs);
    PrintResult(L + "_records_per_fdatasync", "records", sr.recs_per_sync);
    PrintResult(L + "_fdatasync_mean", "ms", sr.sync_ms_avg);
  }
  if (!sr.fsync_mbs.v.empty()) {
    PrintResult(L + "_write_fdatasync_loop", "MB/s", sr.fsync_mbs);
    PrintResult(L + "_write_fdatasync_loop", "records/s", sr.fsync_rec_s);
  }
  std::fflush(stdout);
  return sr;
}

std::shared_ptr<io::Io> PickIo(const std::string& which) {
  if (which == "posix") return io::PosixIo();
  if (which == "io_uring") {
    auto r = io::UringIo();
    if (!r.ok()) Die("--io io_uring: " + r.status().ToString());
    return r.value();
  }
  return io::DefaultIo();
}

std::string MakeBaseDir(const Config& c, bool* created) {
  std::string parent = c.dir;
  if (parent.empty()) {
    const char* t = std::getenv("TMPDIR");
    parent = t && *t ? t : "/var/tmp";
  }
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  std::string tmpl = parent + "/streamkit-log-bench-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    Die(fmt::format("mkdtemp {}: {}", tmpl, std::strerror(errno)));
  *created = true;
  g_cleanup_dir = tmpl;
  return tmpl;
}

std::vector<log::Durability> Durabilities(const std::string& s) {
  std::vector<std::string> names;
  if (s == "all") names = {"always", "interval=200", "never"};
  else names = {s};
  std::vector<log::Durability> out;
  for (auto& n : names) {
    auto d = log::Durability::Parse(n);
    if (!d.ok()) Die(d.status().ToString());
    out.push_back(d.value());
  }
  return out;
}

void PrintHeader(const Config& c, const std::string& backend, const std::string& base) {
  fmt::print("log_append: backend {} (Io::name()), dir {}, runs {}, segment {} MiB, "
             "validate_records {}, {}, pool <= {} batches/appender{}\n",
             backend, base, c.runs, c.segment_mb, c.validate_records ? "on" : "off",
             c.copy ? "memcpy of each batch before Append" : "batches appended in place (no copy)",
             c.pool, c.settle_ms ? fmt::format(", settle {} ms before each measurement", c.settle_ms) : "");
  fmt::print("placement: {}\n", c.cpu >= 0 ? fmt::format("one appender and the write() loops on CPU {} (--cpu)", c.cpu)
                                          : std::string("left to the scheduler (--cpu -1)"));
  fmt::print("machine: {} cores; MB = 10^6 bytes; 'written' counts batch bytes as stored "
             "(header + record framing + key + data)\n",
             std::thread::hardware_concurrency());
  std::fflush(stdout);
}

int RunSingle(Config c, const std::shared_ptr<CountingIo>& cio, const std::string& base) {
  Workload w = BuildWorkload(c);
  fmt::print("workload built in {:.2f} s (not timed): {} appender pool(s) of {} batch(es), "
             "{} bytes per full batch\n",
             w.build_secs, w.pools.size(), w.pools[0].batches.size(),
             w.pools[0].batches.empty() ? w.pools[0].tail.size() : w.pools[0].batches[0].size());
  for (const auto& d : Durabilities(c.durability)) RunScenario(c, w, cio, base, d);
  return 0;
}

int RunSuite(const Config& base_cfg, const std::shared_ptr<CountingIo>& cio, const std::string& base) {
  // (1) 1 KiB records, batches of 100, never: ratio to the write() loop >= 0.9.
  //     273 MB written: two rolls of the default 128 MiB segments, as in steady state.
  Config s1 = base_cfg;
  s1.records = 262144;
  s1.record_size = 1024;
  s1.batch = 100;
  s1.appenders = 1;
  // (1b) diagnostic: the same with 1 GiB segments, so that no roll (and no roll-time
  //      fdatasync) falls inside the timed window.
  Config s1b = s1;
  s1b.segment_mb = 1024;
  s1b.fsync_secs = 0;
  // (2) 100 B records, batches of 1,000, one appender: >= 3M records/s (never; interval=200).
  Config s2 = base_cfg;
  s2.records = 5000000;
  s2.record_size = 100;
  s2.batch = 1000;
  s2.appenders = 1;
  Config s2b = s2;
  s2b.fsync_secs = 0;  // same chunks as 2a: measured once
  // (3) 100 B records, 8 appenders, always, batches of 16: >= 100k records/s.
  Config s3 = base_cfg;
  s3.records = 200000;
  s3.record_size = 100;
  s3.batch = 16;
  s3.appenders = 8;

  auto parse = [](const char* t) { return log::Durability::Parse(t).value(); };
  Workload w1 = BuildWorkload(s1);
  ScenarioResult r1 = RunScenario(s1, w1, cio, base, parse("never"));
  ScenarioResult r1b = RunScenario(s1b, w1, cio, base, parse("never"));
  w1 = Workload{};
  Workload w2 = BuildWorkload(s2);
  ScenarioResult r2a = RunScenario(s2, w2, cio, base, parse("never"));
  ScenarioResult r2b = RunScenario(s2b, w2, cio, base, parse("interval=200"));
  w2 = Workload{};
  Workload w3 = BuildWorkload(s3);
  ScenarioResult r3 = RunScenario(s3, w3, cio, base, parse("always"));

  fmt::print("\n== Suite summary, backend {}, {} runs each: median (min-max); 'written' = batch bytes "
             "on disk; the write() loop writes the same bytes in the same chunks\n",
             cio->name(), base_cfg.runs);
  fmt::print("{:<54} {:<30} {:>9}  {:<26} {}\n", "scenario", "figure", "target", "median (min-max)",
             "met?");
  auto row = [&](const std::string& scen, const std::string& fig, const Series& s, double target,
                 bool human) {
    if (s.v.empty()) return;
    std::string val = human ? Range(s) : Range(s, false);
    std::string tgt = target > 0 ? (human ? ">= " + Human(target) : fmt::format(">= {:.2f}", target)) : "";
    std::string met = target > 0 ? (s.Median() >= target ? "yes" : "NO") : "";
    if (target > 0 && s.Median() >= target && s.Min() < target) met = "yes (median; not every run)";
    fmt::print("{:<54} {:<30} {:>9}  {:<26} {}\n", scen, fig, tgt, val, met);
  };
  row("1. 1 KiB rec, batch 100, never, 1 appender", "log/write() ratio", r1.ratio, 0.9, false);
  row("   (128 MiB segments: 2 rolls in 273 MB)", "log MB/s written", r1.file_mbs, 0, true);
  row("", "write() loop MB/s", r1.write_mbs, 0, true);
  row("", "log records/s", r1.rec_s, 0, true);
  row("", "append call max us (roll)", r1.append_max_us, 0, true);
  row("", "write()+fdatasync/chunk MB/s", r1.fsync_mbs, 0, true);
  row("1b. same, 1 GiB segments (no roll while timed)", "log/write() ratio", r1b.ratio, 0, false);
  row("", "log MB/s written", r1b.file_mbs, 0, true);
  row("", "write() loop MB/s", r1b.write_mbs, 0, true);
  row("", "share of wall time in WriteAt", r1b.write_syscall_share, 0, false);
  row("2a. 100 B rec, batch 1000, never, 1 appender", "records/s", r2a.rec_s, 3e6, true);
  row("", "log MB/s written", r2a.file_mbs, 0, true);
  row("", "log/write() ratio", r2a.ratio, 0, false);
  row("", "write() loop records/s", r2a.write_rec_s, 0, true);
  row("", "CPU cores used", r2a.cores, 0, false);
  row("", "write()+fdatasync/chunk rec/s", r2a.fsync_rec_s, 0, true);
  row("2b. 100 B rec, batch 1000, interval=200, 1 app.", "records/s", r2b.rec_s, 3e6, true);
  row("", "log/write() ratio", r2b.ratio, 0, false);
  row("", "write() loop records/s", r2b.write_rec_s, 0, true);
  row("3. 100 B rec, batch 16, always, 8 appenders", "records/s", r3.rec_s, 1e5, true);
  row("", "records per fdatasync", r3.recs_per_sync, 0, true);
  row("", "fdatasync mean ms", r3.sync_ms_avg, 0, false);
  row("", "Append+WaitDurable p50 us", r3.append_p50_us, 0, true);
  row("", "Append+WaitDurable p99 us", r3.append_p99_us, 0, true);
  row("", "write()+fdatasync/chunk rec/s", r3.fsync_rec_s, 0, true);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c = ParseArgs(argc, argv);
  auto cio = std::make_shared<CountingIo>(PickIo(c.io));
  bool created = false;
  std::string base = MakeBaseDir(c, &created);
  PrintHeader(c, cio->name(), base);
  int rc = c.suite ? RunSuite(c, cio, base) : RunSingle(c, cio, base);
  if (created) {
    std::error_code ec;
    std::filesystem::remove_all(base, ec);
  }
  return rc;
}

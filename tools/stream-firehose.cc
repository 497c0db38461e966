// stream-firehose: buffered delivery of a stream into files (Amazon Data Firehose).
//
// A consumer-group member: each shard it owns is read in order into a buffer; a
// buffer is delivered when it reaches --buffer-size or --buffer-interval (or the
// shard ends, or --once reaches the end). Delivering a buffer of offsets [a, b]:
//   1. record the intent (a, b) in DIR/.streamkit/firehose/GROUP/STREAM/SHARD.pending,
//   2. transform (--transform), partition (--partition-key), convert (ndjson/parquet),
//      compress, and write each file atomically (temp file, fsync, rename, dir fsync)
//      under a name made of the shard and [a, b] — the same name after any restart,
//   3. run --exec for each file, 4. commit the checkpoint b+1, 5. drop the intent.
// A restart after a crash finds the intent and redoes exactly [a, b], rewriting the
// same files: every record ends up in the delivered files exactly once.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <simdjson.h>

#include <atomic>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "client/input.h"
#include "common/config.h"
#include "firehose/firehose.h"
#include "io/io.h"
#include "log/batch.h"
#include "parquet/parquet_writer.h"
#include "proto/protocol.h"
#include "tool_common.h"
#include "util/crash_point.h"
#include "util/crc32c.h"

using namespace streamkit;
using namespace streamkit::firehose;
using proto::Err;
using proto::Type;
using proto::Writer;
using Clock = std::chrono::steady_clock;

namespace {

const char* kTool = "stream-firehose";
constexpr int kHeartbeatMs = 1000;
constexpr uint32_t kFetchBytes = 4u << 20;


struct Options {
  std::string stream, to, group, member, prefix, error_prefix = "errors/!{firehose:error-output-type}/";
  std::string buffer_size = "5MiB", buffer_interval = "300s", format = "ndjson", schema, compress = "none";
  std::string transform, transform_data = "base64", transform_missing = "fail", transform_timeout = "60s";
  int transform_retries = 3;
  std::vector<std::string> partition_keys;
  std::string exec, retry_duration = "300s", from = "trim-horizon";
  bool once = false, no_newline = false, verbose = false, compress_given = false;
  int dry_run = -1;
  client::ConnectOptions conn;
  bool no_autostart = false;
};

// A record of a buffer being delivered: views into its Batch (or a transform's output).
struct Rec {
  uint64_t offset;
  int64_t arrival_ms;
  std::string_view key, data;
};

// Buffered records of one shard, without a string per record: `data` holds each
// record's data followed by a newline (unless --no-newline or it ends with one), which
// is already the NDJSON file when nothing transforms or partitions it.
struct Batch {
  struct Ref {
    uint64_t offset;
    int64_t arrival_ms;
    size_t key_off, data_off;
    uint32_t key_len, data_len;
  };
  std::string data, keys;
  std::vector<Ref> refs;
  bool empty() const { return refs.empty(); }
  void clear() {
    data.clear();
    keys.clear();
    refs.clear();
  }
};

// A buffer handed to the delivery thread: offsets [a, e] of a shard.
struct Job {
  uint32_t shard = 0;
  uint64_t a = 0, e = 0;
  bool replay = false;  // its intent file exists already
  Batch buf;
};

struct ShardBuf {
  uint64_t committed = 0;  // buffer starts here (everything before is delivered or handed over)
  uint64_t next = 0;       // next offset to fetch
  Batch buf;
  size_t bytes = 0;
  Clock::time_point first_at{};
  bool ended = false;                 // closed and read to its end
  std::optional<uint64_t> replay_to;  // a pending intent: deliver exactly up to here
  uint64_t end_seen = 0;              // the shard's end at the last fetch (lag)
  bool caught_up = false;             // --once: a fetch returned nothing new
};

// One output file being assembled.
struct OutFile {
  std::string rel;  // path under --to
  std::string body;                                  // ndjson (uncompressed)
  std::unique_ptr<parquet::Writer> pq;
  size_t records = 0;
};

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

uint64_t Fnv(std::string_view s, uint64_t h = 1469598103934665603ULL) {
  for (char c : s) h = (h ^ uint8_t(c)) * 1099511628211ULL;
  return h;
}

class Firehose {
 public:
  Firehose(Options o, std::unique_ptr<client::Client> c) : o_(std::move(o)), c_(std::move(c)) {}
  int Run();

 private:
  Status Setup();
  Status PrepareDirs();
  Status Heartbeat();
  Status FetchShard(uint32_t shard, ShardBuf& b, bool* got);
  bool Due(const ShardBuf& b) const;
  void Hand(uint32_t shard, ShardBuf& b);
  Status Deliver(Job& job, client::Client& c);
  Status Commit(client::Client& c, uint32_t shard, uint64_t offset);
  Status Transform(uint32_t shard, std::vector<Rec>& recs, std::deque<std::string>* owned,
                   std::vector<std::pair<Rec, std::string>>* failed, int* attempts);
  void WorkerLoop(size_t w);
  void WaitIdle();
  Status WriteFileAtomic(const std::string& rel, const std::string& bytes);
  Status RunExec(const std::string& rel);
  std::string StateDir() const;
  std::string PendingPath(uint32_t shard) const;
  Status WriteIntent(uint32_t shard, uint64_t a, uint64_t e);
  void Progress(bool final);
  int DryRun();

  Options o_;
  std::unique_ptr<client::Client> c_;
  std::optional<Prefix> prefix_, error_prefix_;
  std::vector<std::pair<std::string, client::KeyExtractor>> keys_;
  std::optional<parquet::Schema> schema_;
  Compression compression_ = Compression::kNone;
  parquet::Codec pq_codec_ = parquet::Codec::kSnappy;
  size_t buffer_bytes_ = 5u << 20;
  int64_t interval_ms_ = 300'000, transform_timeout_ms_ = 60'000, retry_ms_ = 300'000;
  std::map<uint32_t, ShardBuf> shards_;
  // The delivery thread: buffers are transformed, converted, compressed, written and
  // checkpointed there (on its own connection) while this thread fetches the next
  // ones. A shard's buffers are delivered in order (one queue).
  struct Worker {
    std::unique_ptr<client::Client> c;
    std::thread t;
    std::deque<Job> queue;
    bool busy = false;
  };
  std::vector<Worker> workers_;  // a shard's buffers always go to the same one
  std::mutex qmu_;
  std::condition_variable qcv_;
  bool stop_worker_ = false;
  Status worker_error_;
  std::atomic<bool> fenced_{false};
  Clock::time_point last_heartbeat_{};
  std::atomic<uint64_t> tmp_counter_{0};  // delivery threads write files concurrently
  // Counters for -v / the progress line.
  std::atomic<uint64_t> delivered_records_{0}, files_{0}, error_records_{0};
  Clock::time_point started_ = Clock::now(), last_progress_{};
  int64_t started_ms_ = NowMs();
  bool progress_ = false;
};

std::string Firehose::StateDir() const {
  return fmt::format("{}/.streamkit/firehose/{}/{}", o_.to, o_.group, o_.stream);
}
std::string Firehose::PendingPath(uint32_t shard) const {
  return fmt::format("{}/{}.pending", StateDir(), proto::ShardIdName(shard));
}

// The intent file: one line "A E CRC" padded to 64 bytes, rewritten in place (one
// fdatasync; a sector-sized write): the range of the delivery in progress.
Status Firehose::WriteIntent(uint32_t shard, uint64_t a, uint64_t e) {
  std::string body = fmt::format("{} {}", a, e);
  std::string line = fmt::format("{} {:08x}", body, crc32c::Value(body.data(), body.size()));
  line.resize(63, ' ');
  line += '\n';
  std::string path = PendingPath(shard);
  bool existed = ::access(path.c_str(), F_OK) == 0;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, fmt::format("open {}", path));
  Status st;
  if (::pwrite(fd, line.data(), line.size(), 0) != ssize_t(line.size())) st = Status::FromErrno(errno, fmt::format("write {}", path));
  if (st.ok() && ::fdatasync(fd) != 0) st = Status::FromErrno(errno, fmt::format("fsync {}", path));
  ::close(fd);
  if (st.ok() && !existed) {
    int dfd = ::open(StateDir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  return st;
}

// Reads an intent: true and the range when the file holds a valid one.
bool ReadIntent(const std::string& path, uint64_t* a, uint64_t* e) {
  auto text = io::ReadSmallFile(*io::PosixIo(), path, 4096);
  if (!text.ok()) return false;
  unsigned long long x = 0, y = 0;
  unsigned crc = 0;
  if (std::sscanf(text->c_str(), "%llu %llu %x", &x, &y, &crc) != 3) return false;
  std::string body = fmt::format("{} {}", x, y);
  if (crc32c::Value(body.data(), body.size()) != crc) return false;  // torn: nothing was written after it
  *a = x;
  *e = y;
  return true;
}

Status MkdirsSynced(const std::string& root, const std::string& rel_dir) {
  // Creates root/rel_dir step by step; each directory made is made durable by an
  // fsync of its parent.
  std::string cur = root;
  size_t i = 0;
  while (i < rel_dir.size()) {
    size_t j = rel_dir.find('/', i);
    if (j == std::string::npos) j = rel_dir.size();
    std::string next = cur + "/" + rel_dir.substr(i, j - i);
    if (::mkdir(next.c_str(), 0755) == 0) {
      int fd = ::open(cur.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
      }
    } else if (errno != EEXIST) {
      return Status::FromErrno(errno, fmt::format("mkdir {}", next));
    }
    cur = next;
    i = j + 1;
  }
  return Status::OK();
}

Status WriteAll(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, fmt::format("write {}", path));
    done += size_t(n);
  }
  return Status::OK();
}

Status Firehose::WriteFileAtomic(const std::string& rel, const std::string& bytes) {
  // Temp files live in DIR/.streamkit/tmp (same file system, outside the data tree),
  // named by pid so that a restart can remove a dead process's leftovers.
  std::string tmp = fmt::format("{}/.streamkit/tmp/{}-{}", o_.to, ::getpid(), tmp_counter_++);
  size_t slash = rel.rfind('/');
  if (slash != std::string::npos) SK_TRY(MkdirsSynced(o_.to, rel.substr(0, slash)));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, fmt::format("create {}", tmp));
  Status st = WriteAll(fd, bytes, tmp);
  if (st.ok() && ::fdatasync(fd) != 0) st = Status::FromErrno(errno, fmt::format("fsync {}", tmp));
  ::close(fd);
  std::string dst = o_.to + "/" + rel;
  if (st.ok() && ::rename(tmp.c_str(), dst.c_str()) != 0) st = Status::FromErrno(errno, fmt::format("rename to {}", dst));
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  std::string dir = slash == std::string::npos ? o_.to : o_.to + "/" + rel.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::OK();
}

Status Firehose::Setup() {
  auto bs = ParseSize(o_.buffer_size);
  if (!bs.ok() || *bs < (1u << 20) || *bs > (128u << 20))
    return Status::InvalidArgument("--buffer-size must be 1MiB to 128MiB");
  buffer_bytes_ = *bs;
  auto bi = ParseDurationMs(o_.buffer_interval, 1000);
  if (!bi.ok() || *bi < 0 || *bi > 900'000) return Status::InvalidArgument("--buffer-interval must be 0s to 900s");
  interval_ms_ = *bi;
  auto tt = ParseDurationMs(o_.transform_timeout, 1000);
  if (!tt.ok() || *tt <= 0) return Status::InvalidArgument("--transform-timeout must be a positive duration");
  transform_timeout_ms_ = *tt;
  auto rd = ParseDurationMs(o_.retry_duration, 1000);
  if (!rd.ok() || *rd < 0) return Status::InvalidArgument("--retry-duration must be a duration like 300s");
  retry_ms_ = *rd;
  std::vector<std::string> names;
  for (const std::string& kv : o_.partition_keys) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status::InvalidArgument(fmt::format("--partition-key '{}': use NAME=PATH, e.g. customer=.customer_id", kv));
    auto ex = client::KeyExtractor::Parse(kv.substr(eq + 1));
    if (!ex.ok()) return Status::InvalidArgument(fmt::format("--partition-key '{}': {}", kv, ex.status().message()));
    names.push_back(kv.substr(0, eq));
    keys_.emplace_back(kv.substr(0, eq), std::move(*ex));
  }
  auto p = Prefix::Parse(o_.prefix, names, false);
  if (!p.ok()) return p.status();
  prefix_ = std::move(*p);
  auto ep = Prefix::Parse(o_.error_prefix, names, true);
  if (!ep.ok()) return ep.status();
  error_prefix_ = std::move(*ep);
  if (!keys_.empty() && !prefix_->uses_keys())
    std::fprintf(stderr, "%s: note: --partition-key given but --prefix uses no !{partitionKeyFromQuery:NAME}\n", kTool);
  if (o_.format == "parquet") {
    if (o_.schema.empty()) return Status::InvalidArgument("--format parquet needs --schema FILE (columns like a Glue table)");
    std::string text;
    FILE* f = std::fopen(o_.schema.c_str(), "rb");
    if (!f) return Status::InvalidArgument(fmt::format("--schema {}: {}", o_.schema, std::strerror(errno)));
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
    auto sc = parquet::ParseSchema(text);
    if (!sc.ok()) return Status::InvalidArgument(fmt::format("--schema {}: {}", o_.schema, sc.status().message()));
    schema_ = std::move(*sc);
    // Parquet pages are snappy-compressed unless --compress says otherwise (Firehose's default).
    auto codec = parquet::ParseCodec(o_.compress_given ? o_.compress : "snappy");
    if (!codec.ok()) return codec.status();
    pq_codec_ = *codec;
  } else if (!o_.schema.empty()) {
    return Status::InvalidArgument("--schema is for --format parquet");
  }
  auto comp = ParseCompression(o_.compress);
  if (!comp.ok()) return comp.status();
  compression_ = *comp;
  if (o_.group.empty()) {
    std::error_code ec;
    auto abs = std::filesystem::weakly_canonical(std::filesystem::absolute(o_.to), ec);
    o_.group = fmt::format("firehose-{:08x}", uint32_t(Fnv(abs.string())));
  }
  if (!proto::ValidName(o_.group)) return Status::InvalidArgument(proto::InvalidNameMessage("group", o_.group));
  if (o_.member.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    o_.member = fmt::format("{}-{}", host, ::getpid());
  }
  // Prefixes that cannot make a safe path whatever the key values are refused now.
  {
    std::map<std::string, std::string> kv;
    for (auto& [name, ex] : keys_) kv[name] = "k";
    Status ok = SafeRelativePath(prefix_->Evaluate({0, &kv, "", 0}) + "f");
    if (!ok.ok()) return Status::InvalidArgument(fmt::format("--prefix '{}': {}", o_.prefix, ok.message()));
    ok = SafeRelativePath(error_prefix_->Evaluate({0, nullptr, "processing-failed", 0}) + "f");
    if (!ok.ok()) return Status::InvalidArgument(fmt::format("--error-prefix '{}': {}", o_.error_prefix, ok.message()));
  }
  progress_ = ::isatty(2) && !o_.verbose;
  return Status::OK();
}

Status Firehose::PrepareDirs() {
  {
    std::error_code mk;
    std::filesystem::create_directories(o_.to, mk);
    if (mk) return Status::IoError(fmt::format("--to {}: {}", o_.to, mk.message()));
  }
  SK_TRY(MkdirsSynced(o_.to, ".streamkit/tmp"));
  SK_TRY(MkdirsSynced(o_.to, fmt::format(".streamkit/firehose/{}/{}", o_.group, o_.stream)));
  // Leftover temp files of processes that are gone.
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(o_.to + "/.streamkit/tmp", ec)) {
    std::string n = e.path().filename().string();
    long pid = std::atol(n.c_str());
    if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) std::filesystem::remove(e.path(), ec);
  }
  return Status::OK();
}

Status Firehose::Heartbeat() {
  SK_ASSIGN_OR_RETURN(auto assigned, client::GroupHeartbeat(*c_, o_.stream, o_.group, o_.member, false));
  last_heartbeat_ = Clock::now();
  bool same = assigned.size() == shards_.size();
  for (auto& [sh, ck] : assigned) same = same && shards_.count(sh);
  if (same) return Status::OK();
  // The assignment changed: let the deliveries in flight finish first (a shard that
  // comes back must start from its real checkpoint).
  WaitIdle();
  // Shards moved to another member: forget what was buffered (nothing of it is
  // committed; the new owner reads it again and, with the intent file, delivers the
  // same ranges under the same names).
  for (auto it = shards_.begin(); it != shards_.end();)
    it = assigned.count(it->first) ? std::next(it) : shards_.erase(it);
  std::optional<proto::StreamInfo> desc;
  for (auto& [sh, ck] : assigned) {
    if (shards_.count(sh)) continue;
    ShardBuf b;
    if (ck == UINT64_MAX) {
      if (!desc) {
        SK_ASSIGN_OR_RETURN(desc, client::DescribeStream(*c_, o_.stream));
      }
      for (auto& s : desc->shards)
        if (s.index == sh) ck = o_.from == "latest" ? s.end_offset : s.start_offset;
      if (ck == UINT64_MAX) ck = 0;
      // A new group's starting point is checkpointed at once, so that --from latest
      // means "from when the group was made", not "from each start".
      Status cs = Commit(*c_, sh, ck);
      if (!cs.ok() && !cs.is(Status::Code::kFenced)) return cs;
    }
    b.committed = b.next = ck;
    // An intent left by a delivery that a crash cut short: redo exactly that range.
    uint64_t a = 0, e = 0;
    if (ReadIntent(PendingPath(sh), &a, &e) && a == ck && e >= a) b.replay_to = e;  // else: done, or none
    shards_[sh] = std::move(b);
  }
  return Status::OK();
}

Status Firehose::FetchShard(uint32_t shard, ShardBuf& b, bool* got) {
  *got = false;
  SK_ASSIGN_OR_RETURN(auto r, c_->Call(Type::kFetch, [&](Writer& w) {
    w.str(o_.stream).u32(shard).u64(b.next).u32(kFetchBytes).u32(0);
  }));
  if (r.err == Err::kOffsetOutOfRange) {
    // Retention removed records before they were delivered: say so, go on from the oldest.
    SK_ASSIGN_OR_RETURN(auto desc, client::DescribeStream(*c_, o_.stream));
    for (auto& s : desc.shards)
      if (s.index == shard && s.start_offset > b.next) {
        std::fprintf(stderr, "%s: %s: %llu records expired before they were delivered\n", kTool,
                     proto::ShardIdName(shard).c_str(), (unsigned long long)(s.start_offset - b.next));
        if (b.buf.empty()) b.committed = s.start_offset;
        b.next = s.start_offset;
      }
    return Status::OK();
  }
  if (r.err == Err::kThrottled || r.err == Err::kInjectedFailure) return Status::OK();
  if (!r.ok()) return client::ResponseStatus(r);
  auto rd = r.body();
  uint64_t next, end, start;
  uint8_t flags;
  if (!(rd.u64(&next) && rd.u64(&end) && rd.u64(&start) && rd.u8(&flags)))
    return Status::Corruption("malformed fetch response");
  b.end_seen = end;
  std::string_view bytes = rd.tail();
  log::RecordCursor rc(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), b.next);
  log::Record rec;
  while (!(b.bytes >= buffer_bytes_ && !b.replay_to) && rc.Next(&rec)) {
    if (b.replay_to && rec.offset > *b.replay_to) break;
    Batch& bb = b.buf;
    if (bb.empty()) {
      b.first_at = Clock::now();
      bb.data.reserve(std::min<size_t>(buffer_bytes_ + buffer_bytes_ / 8, 16u << 20));
    }
    bb.refs.push_back(Batch::Ref{rec.offset, rec.arrival_ms, bb.keys.size(), bb.data.size(), uint32_t(rec.key.size()),
                                 uint32_t(rec.data.size())});
    bb.keys.append(rec.key);
    bb.data.append(rec.data);
    if (!o_.no_newline && (rec.data.empty() || rec.data.back() != '\n')) bb.data += '\n';
    b.bytes += rec.data.size() + 1;
    b.next = rec.offset + 1;
    *got = true;
  }
  SK_TRY(rc.status());
  if (!*got && next > b.next && !b.replay_to && b.bytes < buffer_bytes_) b.next = next;
  if ((flags & proto::kFetchShardEnd) && b.next >= end) b.ended = true;
  b.caught_up = !*got && b.next >= end;
  return Status::OK();
}

bool Firehose::Due(const ShardBuf& b) const {
  if (b.replay_to) return b.next > *b.replay_to || (b.ended && !b.buf.empty());
  if (b.buf.empty()) return false;
  if (b.bytes >= buffer_bytes_ || b.ended) return true;
  if (Clock::now() - b.first_at >= std::chrono::milliseconds(interval_ms_)) return true;
  return o_.once && b.caught_up;
}

Status Firehose::Commit(client::Client& c, uint32_t shard, uint64_t offset) {
  SK_ASSIGN_OR_RETURN(auto r, c.Call(Type::kGroupCommit, [&](Writer& w) {
    w.str(o_.stream).str(o_.group).str(o_.member).u32(shard).u64(offset);
  }));
  if (r.err == Err::kNotAssigned || r.err == Err::kFenced)
    return Status::Fenced(fmt::format("{} moved to another member", proto::ShardIdName(shard)));
  if (!r.ok()) return client::ResponseStatus(r);
  return Status::OK();
}

// Runs the --transform command once over `recs`: JSON lines in, JSON lines out.
// Returns per record: result and data. Fails (for a retry) on a crash, a non-zero exit
// or a timeout.
struct TransformOut {
  std::string result, data;
  bool seen = false, has_data = false;
};

Status RunTransformOnce(const Options& o, int64_t timeout_ms, const std::vector<Rec>& recs, uint32_t shard,
                        std::map<std::string, TransformOut>* out) {
  std::string input;
  for (const Rec& r : recs) {
    input += R"({"recordId":)";
    AppendJsonString(&input, U128ToString(proto::SequenceNumber(shard, r.offset)));
    input += fmt::format(R"(,"approximateArrivalTimestamp":{},"data":)", r.arrival_ms);
    if (o.transform_data == "text") AppendJsonString(&input, r.data);
    else AppendJsonString(&input, Base64Encode(r.data));
    input += "}\n";
  }
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0)
    return Status::FromErrno(errno, "pipe");
  pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::signal(SIGPIPE, SIG_DFL);
    tools::RestoreSchedulingInChild();
    ::execl("/bin/sh", "sh", "-c", o.transform.c_str(), (char*)nullptr);
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  int wfd = in_pipe[1], rfd = out_pipe[0];
  ::fcntl(wfd, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  std::string output;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  bool timed_out = false;
  if (input.empty()) {
    ::close(wfd);
    wfd = -1;
  }
  while (rfd >= 0) {
    pollfd p[2] = {{rfd, POLLIN, 0}, {wfd, POLLOUT, 0}};
    int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left <= 0) {
      timed_out = true;
      break;
    }
    int n = ::poll(p, wfd >= 0 ? 2 : 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (wfd >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t k = ::write(wfd, input.data() + written, input.size() - written);
      if (k > 0) written += size_t(k);
      if ((k < 0 && errno != EAGAIN) || written == input.size()) {
        ::close(wfd);
        wfd = -1;
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t k = ::read(rfd, buf, sizeof buf);
      if (k > 0) output.append(buf, size_t(k));
      else if (k == 0 || errno != EINTR) {
        ::close(rfd);
        rfd = -1;
      }
    }
  }
  if (wfd >= 0) ::close(wfd);
  if (rfd >= 0) ::close(rfd);
  if (timed_out) ::kill(-pid, SIGKILL);
  int status = 0;
  if (!timed_out) {
    // Output closed: give the command the rest of the timeout to exit.
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (Clock::now() >= deadline) {
        ::kill(-pid, SIGKILL);
        timed_out = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  if (timed_out) {
    ::waitpid(pid, &status, 0);
    return Status::IoError(fmt::format("--transform timed out after {} ms", timeout_ms));
  }
  if (WIFSIGNALED(status)) return Status::IoError(fmt::format("--transform killed by signal {}", WTERMSIG(status)));
  if (WEXITSTATUS(status) != 0) return Status::IoError(fmt::format("--transform exited with status {}", WEXITSTATUS(status)));
  simdjson::dom::parser parser;
  size_t i = 0;
  while (i < output.size()) {
    size_t nl = output.find('\n', i);
    if (nl == std::string::npos) nl = output.size();
    std::string_view line(output.data() + i, nl - i);
    i = nl + 1;
    simdjson::dom::element doc;
    std::string_view id, result, data;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if (parser.parse(line.data(), line.size()).get(doc) || doc["recordId"].get(id)) continue;  // malformed
    auto it = out->find(std::string(id));
    if (it == out->end()) continue;  // not one of ours
    if (doc["result"].get(result)) continue;
    TransformOut& t = it->second;
    t.result = std::string(result);
    t.seen = true;
    if (!doc["data"].get(data)) {
      t.data = std::string(data);
      t.has_data = true;
    }
  }
  return Status::OK();
}

Status Firehose::Transform(uint32_t shard, std::vector<Rec>& recs, std::deque<std::string>* owned,
                           std::vector<std::pair<Rec, std::string>>* failed, int* attempts) {
  if (o_.transform.empty() || recs.empty()) return Status::OK();
  std::map<std::string, TransformOut> out;
  Status st;
  int attempt = 0;
  for (;; attempt++) {
    out.clear();
    for (const Rec& r : recs) out[U128ToString(proto::SequenceNumber(shard, r.offset))] = {};
    st = RunTransformOnce(o_, transform_timeout_ms_, recs, shard, &out);
    if (st.ok() || attempt >= o_.transform_retries) break;
    if (tools::StopRequested()) return Status::Closed("stopping");  // not delivered, not checkpointed: next run retries
    std::fprintf(stderr, "%s: %s; retrying (%d of %d)\n", kTool, st.message().c_str(), attempt + 1, o_.transform_retries);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(200 << attempt, 5000)));
  }
  *attempts = attempt + 1;
  std::vector<Rec> kept;
  for (Rec& r : recs) {
    if (!st.ok()) {
      failed->push_back({std::move(r), "Lambda.InvocationFailed: " + st.message()});
      continue;
    }
    TransformOut& t = out[U128ToString(proto::SequenceNumber(shard, r.offset))];
    if (!t.seen) {
      if (o_.transform_missing == "drop") continue;
      failed->push_back({std::move(r), "Lambda.MissingRecordId: the transform returned no result for this record"});
      continue;
    }
    if (t.result == "Dropped") continue;
    if (t.result == "ProcessingFailed") {
      failed->push_back({std::move(r), "Lambda.ProcessingFailed: the transform failed this record"});
      continue;
    }
    if (t.result == "Ok" && !t.has_data) {
      failed->push_back({std::move(r), "Lambda.InvalidData: result Ok without data"});
      continue;
    }
    if (t.result != "Ok") {
      failed->push_back({std::move(r), fmt::format("Lambda.InvalidResult: result '{}' (Ok, Dropped or ProcessingFailed)", t.result)});
      continue;
    }
    if (o_.transform_data == "text") {
      r.data = owned->emplace_back(std::move(t.data));
    } else {
      auto d = Base64Decode(t.data);
      if (!d.ok()) {
        failed->push_back({std::move(r), "Lambda.InvalidData: data is not base64"});
        continue;
      }
      r.data = owned->emplace_back(std::move(*d));
    }
    kept.push_back(std::move(r));
  }
  recs = std::move(kept);
  return Status::OK();
}

Status Firehose::RunExec(const std::string& rel) {
  std::string cmd;
  for (size_t i = 0; i < o_.exec.size(); i++) {
    if (o_.exec.compare(i, 2, "{}") == 0) {
      cmd += ShellQuote(rel);
      i++;
    } else {
      cmd += o_.exec[i];
    }
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(retry_ms_);
  for (int attempt = 0;; attempt++) {
    pid_t pid = ::fork();
    if (pid < 0) return Status::FromErrno(errno, "fork");
    if (pid == 0) {
      if (::chdir(o_.to.c_str()) != 0) ::_exit(127);
      ::dup2(2, 1);  // its output is messages, not our data
      ::signal(SIGPIPE, SIG_DFL);
      tools::RestoreSchedulingInChild();
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
      ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::OK();
    std::string why = WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                                        : fmt::format("signal {}", WTERMSIG(status));
    int backoff = std::min(1000 << std::min(attempt, 5), 30000);
    if (Clock::now() + std::chrono::milliseconds(backoff) > deadline || tools::StopRequested())
      return Status::IoError(fmt::format("--exec failed for {} ({}); the file is kept and its records are not "
                                         "checkpointed: the next run delivers and runs --exec again",
                                         rel, why));
    std::fprintf(stderr, "%s: --exec for %s failed (%s); retrying in %d ms\n", kTool, rel.c_str(), why.c_str(), backoff);
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
  }
}

void Firehose::Hand(uint32_t shard, ShardBuf& b) {
  // The buffer goes to the delivery thread; this shard's next buffer starts after it.
  Job job;
  job.shard = shard;
  job.a = b.committed;
  job.e = b.buf.refs.back().offset;
  job.replay = b.replay_to.has_value();
  job.buf = std::move(b.buf);
  b.buf = Batch{};
  b.bytes = 0;
  b.committed = job.e + 1;
  b.replay_to.reset();
  Worker& w = workers_[shard % workers_.size()];
  std::unique_lock<std::mutex> l(qmu_);
  qcv_.wait(l, [&] { return w.queue.size() < 2 || !worker_error_.ok(); });  // bounded memory
  w.queue.push_back(std::move(job));
  qcv_.notify_all();
}

void Firehose::WorkerLoop(size_t i) {
  Worker& w = workers_[i];
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> l(qmu_);
      qcv_.wait(l, [&] { return stop_worker_ || !w.queue.empty(); });
      if (w.queue.empty()) return;
      job = std::move(w.queue.front());
      w.queue.pop_front();
      w.busy = true;
    }
    Status st = tools::StopRequested() ? Status::OK() : Deliver(job, *w.c);  // stopping: uncommitted, read again next time
    std::lock_guard<std::mutex> l(qmu_);
    w.busy = false;
    if (st.is(Status::Code::kFenced)) fenced_ = true;
    else if (st.is(Status::Code::kClosed) && tools::StopRequested()) {}  // interrupted: the next run redoes it
    else if (!st.ok() && worker_error_.ok()) worker_error_ = st;
    if (!worker_error_.ok())
      for (auto& x : workers_) x.queue.clear();
    qcv_.notify_all();
  }
}

void Firehose::WaitIdle() {
  std::unique_lock<std::mutex> l(qmu_);
  qcv_.wait(l, [&] {
    for (auto& w : workers_)
      if (!w.queue.empty() || w.busy) return false;
    return true;
  });
}

Status Firehose::Deliver(Job& job, client::Client& conn) {
  const uint32_t shard = job.shard;
  const uint64_t a = job.a, e = job.e;
  // 1. The intent, so a restart redoes exactly [a, e].
  if (!job.replay) {
    SK_TRY(WriteIntent(shard, a, e));
    CrashPoint("firehose-intent-written");
  }
  std::vector<Rec> recs;
  recs.reserve(job.buf.refs.size());
  for (const Batch::Ref& r : job.buf.refs)
    recs.push_back(Rec{r.offset, r.arrival_ms, std::string_view(job.buf.keys).substr(r.key_off, r.key_len),
                       std::string_view(job.buf.data).substr(r.data_off, r.data_len)});
  std::deque<std::string> owned;  // data a transform returned
  std::vector<std::pair<Rec, std::string>> failed;            // processing-failed
  std::vector<std::pair<Rec, std::string>> part_failed, conv_failed;
  int transform_attempts = 1;
  SK_TRY(Transform(shard, recs, &owned, &failed, &transform_attempts));
  const std::string sid = proto::ShardIdName(shard);
  // 2. Partition and convert: one file per evaluated prefix.
  std::map<std::string, OutFile> files;
  int64_t first_ms = recs.empty() ? 0 : recs.front().arrival_ms;
  std::string ext = o_.format == "parquet" ? ".parquet" : std::string(".ndjson") + CompressionExtension(compression_);
  auto file_name = [&](int64_t ms) {
    return fmt::format("{}-1-{}-{}-{}-{}{}", o_.stream, FormatTimestamp("yyyy-MM-dd-HH-mm-ss", ms), sid, a, e, ext);
  };
  simdjson::dom::parser parser;
  std::map<std::string, std::string> kv;
  // Nothing transforms, partitions or converts: the buffer is the file.
  bool whole = o_.transform.empty() && keys_.empty() && !schema_ && !recs.empty();
  std::string plain_dir;
  if (keys_.empty() && !recs.empty()) {
    plain_dir = prefix_->Evaluate({first_ms, &kv, "", Fnv(sid, a)});
    SK_TRY(SafeRelativePath(plain_dir + file_name(first_ms)));
  }
  if (whole) {
    OutFile& f = files[plain_dir];
    f.rel = plain_dir + file_name(first_ms);
    f.records = recs.size();
    f.body = std::move(job.buf.data);
    recs.clear();
  }
  for (Rec& r : recs) {
    kv.clear();
    std::string why;
    for (auto& [name, ex] : keys_) {
      auto v = ex.Extract(r.data);
      if (!v.ok()) {
        why = fmt::format("DynamicPartitioning.MetadataExtractionFailed: key '{}': {}", name, v.status().message());
        break;
      }
      Status ok = CheckKeyValue(*v);
      if (!ok.ok()) {
        why = fmt::format("DynamicPartitioning.UnsafeKeyValue: key '{}': {}", name, ok.message());
        break;
      }
      kv[name] = std::move(*v);
    }
    std::string dir = plain_dir;
    if (why.empty() && !keys_.empty()) {
      // Time expressions use the oldest record of the buffer (records are in arrival
      // order within a shard), so every file of one delivery shares one time.
      dir = prefix_->Evaluate({first_ms, &kv, "", Fnv(sid, a)});
      std::string rel = dir + file_name(first_ms);
      Status safe = SafeRelativePath(rel);
      if (!safe.ok()) why = "DynamicPartitioning.UnsafePath: " + safe.message();
    }
    if (!why.empty()) {
      part_failed.push_back({std::move(r), why});
      continue;
    }
    OutFile& f = files[dir];
    if (f.rel.empty()) f.rel = dir + file_name(first_ms);
    if (schema_) {
      if (!f.pq) f.pq = std::make_unique<parquet::Writer>(*schema_, pq_codec_);
      simdjson::dom::element doc;
      auto err = parser.parse(r.data).get(doc);
      Status st = err ? Status::InvalidArgument(fmt::format("invalid JSON: {}", simdjson::error_message(err)))
                      : f.pq->AppendJson(doc);
      if (!st.ok()) {
        conv_failed.push_back({std::move(r), "DataFormatConversion.ParseError: " + st.message()});
        continue;
      }
    } else {
      f.body += r.data;
      if (!o_.no_newline && (r.data.empty() || r.data.back() != '\n')) f.body += '\n';
    }
    f.records++;
  }
  // Error records: Firehose's error object, one per line, under the error prefix.
  auto error_file = [&](const char* type, std::vector<std::pair<Rec, std::string>>& recs, int attempts) -> Status {
    if (recs.empty()) return Status::OK();
    int64_t ms = recs.front().first.arrival_ms;
    std::string dir = error_prefix_->Evaluate({ms, nullptr, type, Fnv(type, Fnv(sid, a))});
    // Error files are NDJSON, compressed like the data files (with Parquet, whose
    // compression is inside the file, they are plain, as Firehose's are).
    Compression ec = schema_ ? Compression::kNone : compression_;
    std::string rel = dir + fmt::format("{}-1-{}-{}-{}-{}.ndjson{}", o_.stream, FormatTimestamp("yyyy-MM-dd-HH-mm-ss", ms),
                                        sid, a, e, CompressionExtension(ec));
    SK_TRY(SafeRelativePath(rel));
    std::string body;
    int64_t now = NowMs();
    for (auto& [r, why] : recs) {
      body += fmt::format(R"({{"attemptsMade":{},"arrivalTimestamp":{},"errorCode":)", attempts, r.arrival_ms);
      size_t colon = why.find(':');
      AppendJsonString(&body, why.substr(0, colon));
      body += R"(,"errorMessage":)";
      AppendJsonString(&body, colon == std::string::npos ? why : why.substr(colon + 2));
      body += fmt::format(R"(,"attemptEndingTimestamp":{},"sequenceNumber":"{}","shardId":"{}","partitionKey":)", now,
                          U128ToString(proto::SequenceNumber(shard, r.offset)), sid);
      AppendJsonString(&body, r.key);
      body += R"(,"rawData":)";
      AppendJsonString(&body, Base64Encode(r.data));
      body += "}\n";
    }
    std::string bytes;
    SK_TRY(Compress(ec, body, &bytes));
    SK_TRY(WriteFileAtomic(rel, bytes));
    error_records_ += recs.size();
    files_++;
    if (o_.verbose) std::fprintf(stderr, "%s: %s: %zu %s records\n", kTool, rel.c_str(), recs.size(), type);
    if (!o_.exec.empty()) SK_TRY(RunExec(rel));
    return Status::OK();
  };
  // 3. Write every file (atomically), running --exec after each.
  for (auto& [dir, f] : files) {
    std::string bytes;
    if (f.pq) {
      bytes = f.pq->TakeOutput();
      SK_ASSIGN_OR_RETURN(std::string rest, f.pq->Finish());
      bytes += rest;
    } else {
      SK_TRY(Compress(compression_, f.body, &bytes));
    }
    SK_TRY(WriteFileAtomic(f.rel, bytes));
    CrashPoint("firehose-file-written");
    files_++;
    delivered_records_ += f.records;
    if (o_.verbose)
      std::fprintf(stderr, "%s: %s: %zu records, %zu bytes\n", kTool, f.rel.c_str(), f.records, bytes.size());
    if (!o_.exec.empty()) SK_TRY(RunExec(f.rel));
  }
  SK_TRY(error_file("processing-failed", failed, transform_attempts));
  SK_TRY(error_file("partitioning-failed", part_failed, 1));
  SK_TRY(error_file("format-conversion-failed", conv_failed, 1));
  CrashPoint("firehose-before-commit");
  // 4. Checkpoint past the range, 5. drop the intent.
  // The intent stays: at a restart a range that starts before the checkpoint is known
  // to be done (and the next delivery overwrites it).
  SK_TRY(Commit(conn, shard, e + 1));
  return Status::OK();
}

void Firehose::Progress(bool final) {
  if (!progress_) return;
  auto now = Clock::now();
  if (!final && now - last_progress_ < std::chrono::milliseconds(500)) return;
  last_progress_ = now;
  uint64_t behind = 0;
  for (auto& [i, b] : shards_) behind += b.end_seen > b.next ? b.end_seen - b.next : 0;
  double secs = std::max(0.001, std::chrono::duration<double>(now - started_).count());
  std::fprintf(stderr, "\r%s: %llu records behind, %llu delivered (%.0f/s), %llu files, %llu errors   %s", kTool,
               (unsigned long long)behind, (unsigned long long)delivered_records_, double(delivered_records_) / secs,
               (unsigned long long)files_, (unsigned long long)error_records_, final ? "\n" : "");
}

int Firehose::DryRun() {
  // The paths that the first N records would go to (no transform, nothing written).
  auto desc = client::DescribeStream(*c_, o_.stream);
  if (!desc.ok()) return tools::Fail(kTool, desc.status());
  std::map<std::string, size_t> paths;
  size_t seen = 0;
  for (auto& s : desc->shards) {
    ShardBuf b;
    b.committed = b.next = s.start_offset;
    while (seen < size_t(o_.dry_run) && b.next < s.end_offset) {
      bool got;
      Status st = FetchShard(s.index, b, &got);
      if (!st.ok()) return tools::Fail(kTool, st);
      if (!got) break;
    }
    uint64_t a = s.start_offset;
    std::string sid = proto::ShardIdName(s.index);
    int64_t first_ms = b.buf.empty() ? 0 : b.buf.refs.front().arrival_ms;
    for (const Batch::Ref& ref : b.buf.refs) {
      Rec r{ref.offset, ref.arrival_ms, std::string_view(b.buf.keys).substr(ref.key_off, ref.key_len),
            std::string_view(b.buf.data).substr(ref.data_off, ref.data_len)};
      if (seen >= size_t(o_.dry_run)) break;
      seen++;
      std::map<std::string, std::string> kv;
      std::string err;
      for (auto& [name, ex] : keys_) {
        auto v = ex.Extract(r.data);
        Status ok = v.ok() ? CheckKeyValue(*v) : v.status();
        if (!ok.ok()) {
          err = "partitioning-failed";
          break;
        }
        kv[name] = *v;
      }
      std::string dir = err.empty() ? prefix_->Evaluate({first_ms, &kv, "", Fnv(sid, a)})
                                    : error_prefix_->Evaluate({first_ms, nullptr, err, 0});
      paths[dir + fmt::format("{}-1-{}-{}-...", o_.stream,
                              FormatTimestamp("yyyy-MM-dd-HH-mm-ss", first_ms), sid)]++;
    }
  }
  for (auto& [p, n] : paths) std::printf("%s\t%zu\n", p.c_str(), n);
  std::fprintf(stderr, "%s: dry run over the first %zu records: %zu paths (nothing written)\n", kTool, seen, paths.size());
  return 0;
}

int Firehose::Run() {
  Status st = Setup();
  if (!st.ok()) return tools::Fail(kTool, st);
  if (o_.dry_run >= 0) return DryRun();
  auto desc = client::DescribeStream(*c_, o_.stream);
  if (!desc.ok()) return tools::Fail(kTool, desc.status());
  st = PrepareDirs();
  if (!st.ok()) return tools::Fail(kTool, st);
  if (o_.verbose)
    std::fprintf(stderr, "%s: %s -> %s as member %s of group %s\n", kTool, o_.stream.c_str(), o_.to.c_str(),
                 o_.member.c_str(), o_.group.c_str());
  // Delivery threads (compression is most of the work): as many as there are cores,
  // 1 to 4, each with its own connection for its checkpoints.
  workers_.resize(std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4));
  for (auto& w : workers_) {
    auto wc = client::Client::Connect(o_.conn);
    if (!wc.ok()) return tools::Fail(kTool, wc.status());
    w.c = std::move(*wc);
  }
  for (size_t i = 0; i < workers_.size(); i++) workers_[i].t = std::thread([this, i] { WorkerLoop(i); });
  for (;;) {
    if (tools::StopRequested()) break;
    {
      std::lock_guard<std::mutex> l(qmu_);
      if (!worker_error_.ok()) {
        st = worker_error_;
        break;
      }
    }
    if (fenced_.exchange(false)) last_heartbeat_ = {};  // a commit was refused: what do we own now?
    if (Clock::now() - last_heartbeat_ >= std::chrono::milliseconds(kHeartbeatMs)) {
      st = Heartbeat();
      if (!st.ok()) break;
    }
    bool any = false;
    for (auto& [shard, b] : shards_) {
      if (tools::StopRequested()) break;
      if (!b.ended && !(b.replay_to && b.next > *b.replay_to)) {
        // Bounded memory: fetch only while the buffer is under its size.
        bool got = false;
        if (b.bytes < buffer_bytes_) {
          st = FetchShard(shard, b, &got);
          if (!st.ok()) break;
        }
        any |= got;
      }
      if (Due(b)) Hand(shard, b);
      if (b.ended && b.buf.empty() && b.committed < b.next) {
        // A closed shard read to its end: checkpoint its end so its children start.
        WaitIdle();
        st = Commit(*c_, shard, b.next);
        if (!st.ok() && !st.is(Status::Code::kFenced)) break;
        st = Status::OK();
        b.committed = b.next;
      }
    }
    if (!st.ok()) break;
    Progress(false);
    if (o_.once) {
      auto settled = [&] {
        for (auto& [i, b] : shards_)
          if (!((b.ended || b.caught_up) && b.buf.empty() && !b.replay_to)) return false;
        return true;
      };
      if (!any && settled()) {
        // Everything owned is delivered; a finished parent may have made children
        // ours: ask once more before leaving.
        WaitIdle();
        {
          std::lock_guard<std::mutex> l(qmu_);
          if (!worker_error_.ok()) {
            st = worker_error_;
            break;
          }
        }
        st = Heartbeat();
        if (!st.ok()) break;
        if (!settled()) continue;
        // Shards still held by a member that stopped heartbeating (killed): wait for
        // its session to expire, then they are ours to deliver.
        auto stale = client::GroupHasSilentMembers(*c_, o_.stream, o_.group, o_.member, started_ms_);
        if (!stale.ok()) {
          st = stale.status();
          break;
        }
        if (!*stale) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        last_heartbeat_ = {};
        continue;
      }
    }
    if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Stopping (signal): deliver nothing half-way; buffered records are simply not
  // committed and are read again next time.
  {
    std::lock_guard<std::mutex> l(qmu_);
    stop_worker_ = true;
    if (!st.ok() || tools::StopRequested())
      for (auto& w : workers_) w.queue.clear();
    qcv_.notify_all();
  }
  for (auto& w : workers_) w.t.join();
  if (st.ok() && !worker_error_.ok()) st = worker_error_;
  Progress(true);
  (void)client::GroupHeartbeat(*c_, o_.stream, o_.group, o_.member, true);
  if (!st.ok()) return tools::Fail(kTool, st);
  if (o_.verbose)
    std::fprintf(stderr, "%s: %llu records delivered in %llu files, %llu error records\n", kTool,
                 (unsigned long long)delivered_records_, (unsigned long long)files_, (unsigned long long)error_records_);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Buffers of many MiB come and go for every delivery.
  tools::KeepFreedMemory();
  tools::EnsureStdFds();
  tools::UseBatchScheduling(kTool);
  CLI::App app{"stream-firehose: deliver a stream into files, buffered, with transform, partitioning, compression "
               "and Parquet (Amazon Data Firehose)."};
  Options o;
  o.conn.client_name = kTool;
  app.add_option("STREAM", o.stream, "Stream to read")->required();
  app.add_option("--to", o.to, "Destination directory (a data lake root; created if missing)")->required();
  app.add_flag("--once", o.once, "Deliver everything up to the current end, then exit 0 (for cron)");
  app.add_option("--group", o.group, "Consumer group shared by several firehose processes (default: one per --to)");
  app.add_option("--member", o.member, "Member id within the group (default HOST-PID)");
  app.add_option("--from", o.from, "Where a new group starts: trim-horizon (default) or latest")
      ->check(CLI::IsMember({"trim-horizon", "latest"}));
  app.add_option("--buffer-size", o.buffer_size, "Deliver a shard's buffer at this size: 1MiB-128MiB (default 5MiB)");
  app.add_option("--buffer-interval", o.buffer_interval, "... or at this age: 0s-900s (default 300s)");
  app.add_option("--format", o.format, "ndjson (default) or parquet")->check(CLI::IsMember({"ndjson", "parquet"}));
  app.add_option("--schema", o.schema, "Parquet columns, a JSON file like a Glue table: {\"columns\":[{\"name\":..,\"type\":..}]}");
  auto* comp_opt = app.add_option("--compress", o.compress, "none | gzip | zstd | snappy (ndjson: the file; parquet: pages, default snappy)")
      ->check(CLI::IsMember({"none", "gzip", "zstd", "snappy"}));
  app.add_flag("--no-newline", o.no_newline, "Concatenate records without adding a newline after each");
  app.add_option("--prefix", o.prefix, "Path prefix under --to, with !{timestamp:yyyy/MM/dd}, "
                 "!{partitionKeyFromQuery:NAME}, !{firehose:random-string} (default YYYY/MM/DD/HH/)");
  app.add_option("--error-prefix", o.error_prefix, "Where failed records go (default errors/!{firehose:error-output-type}/)");
  app.add_option("--partition-key", o.partition_keys, "NAME=PATH: a partition key from a JSON field (.a.b or /a/b); repeatable");
  app.add_option("--transform", o.transform, "Command run per buffer: Firehose Lambda records in (JSON lines), results out");
  app.add_option("--transform-data", o.transform_data, "base64 (default) or text: how data is passed to and from --transform")
      ->check(CLI::IsMember({"base64", "text"}));
  app.add_option("--transform-missing", o.transform_missing, "fail (default: processing-failed) or drop: records the transform does not return")
      ->check(CLI::IsMember({"fail", "drop"}));
  app.add_option("--transform-timeout", o.transform_timeout, "Kill a transform running longer (default 60s)");
  app.add_option("--transform-retries", o.transform_retries, "Retries of a failed transform before its records fail (default 3)")
      ->check(CLI::Range(0, 100));
  app.add_option("--exec", o.exec, "Run after each delivered file, {} = its path under --to, e.g. 'aws s3 cp {} s3://bucket/{}'");
  app.add_option("--retry-duration", o.retry_duration, "Retry a failing --exec with backoff this long (default 300s)");
  auto* dry = app.add_flag("--dry-run{10}", o.dry_run, "Print the paths the first N records (default 10) would be written to; write nothing");
  app.add_flag("-v,--verbose", o.verbose, "Print each delivered file");
  tools::AddClientFlags(app, &o.conn, &o.no_autostart);
  tools::AddVersionFlag(app, kTool);
  app.footer("Exit status: 0 success; 1 failure; 2 usage; 3 bad input (flags, schema); 4 no such stream.\n\n"
             "Examples:\n  stream-firehose events --to /data/lake --once\n"
             "  stream-firehose events --to lake --compress zstd --buffer-interval 60s\n"
             "  stream-firehose events --to lake --partition-key customer=.customer_id \\\n"
             "      --prefix 'customer=!{partitionKeyFromQuery:customer}/!{timestamp:yyyy/MM/dd}/'\n"
             "  stream-firehose events --to lake --format parquet --schema events.schema.json\n"
             "  stream-firehose events --to lake --transform-data text --transform-missing drop \\\n"
             "      --transform 'jq -c \"select(.data | fromjson | .level == \\\"error\\\") | {recordId, result: \\\"Ok\\\", data}\"'\n"
             "  stream-firehose events --to lake --exec 'aws s3 cp {} s3://bucket/{}'");
  if (int rc = tools::Parse(app, argc, argv, kTool); rc >= 0) return rc;
  if (dry->count() == 0) o.dry_run = -1;
  o.compress_given = comp_opt->count() > 0;
  o.conn.autostart = !o.no_autostart;
  if (!proto::ValidName(o.stream))
    return tools::FailMsg(kTool, tools::kExitBadInput,
                          proto::InvalidNameMessage("stream", o.stream));
  tools::IgnoreSigpipe();
  tools::CatchStopSignals();
  auto c = client::Client::Connect(o.conn);
  if (!c.ok()) return tools::Fail(kTool, c.status());
  Firehose f(std::move(o), std::move(*c));
  return f.Run();
}

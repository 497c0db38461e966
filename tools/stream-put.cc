// stream-put: stdin lines / NUL-separated units / NDJSON / raw input -> records.
//
// Records are routed to shards in the producer (MD5 of the partition key over the
// shard map), batched per shard (linger, size), sent with many batches in flight,
// and retried idempotently: a retried batch is never stored twice.
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <thread>

#include "client/input.h"
#include "common/config.h"
#include "log/batch.h"
#include "log/producer_state.h"
#include "proto/protocol.h"
#include "tool_common.h"
#include "util/md5.h"

using namespace streamkit;
using proto::Err;
using proto::Type;
using proto::Writer;
using Clock = std::chrono::steady_clock;

namespace {

const char* kTool = "stream-put";
constexpr int kMaxAttempts = 60;       // per batch, with backoff up to 1 s: about a minute
constexpr size_t kMaxInFlightBytes = 16u << 20;
// Acknowledgements are read when stream-put wakes anyway (for input, a linger or a
// backoff), or at the latest this long after the oldest unacknowledged send: a
// producer fed a line at a time then wakes once per line, not twice (line, then ack).
constexpr int kLazyAckMs = 20;
// A lost server (stopped, restarted) is waited for this long before the put fails.
constexpr int kReconnectSecs = 30;

struct Options {
  std::string stream;
  client::ConnectOptions conn;
  bool no_autostart = false;
  bool nul = false, ndjson = false, raw = false;
  std::string key_path, key_fixed, hash_key;
  uint32_t create_shards = 0;
  std::string linger = "5ms", batch_size = "1MiB", compress = "none", on_error = "fail";
  bool print_seq = false, verbose = false;
  uint32_t max_in_flight = 8;
};

struct ShardRoute {
  uint32_t index;
  u128 start, end;
};

// One record's place in the input, for --print-seq (results printed in input order).
struct Pending {
  uint32_t shard = 0;
  uint64_t offset = 0;
  bool done = false;
  bool skipped = false;  // --on-error skip: printed as "-<TAB>-"
};

struct Batch {
  uint32_t shard;
  int32_t base_seq;
  Bytes bytes;
  std::vector<uint64_t> ids;  // input ids of its records
  bool sent = false;          // has been on the wire at least once
  int failures = 0;           // its own failures (throttled, injected, storage)
  int out_of_order = 0;       // refused because an earlier batch failed
  bool needs_resend = false;
  bool doomed = false;        // refused because its shard closed: goes to the children
  Clock::time_point not_before{};
  Clock::time_point sent_at{};  // its last send
};

struct ShardState {
  log::BatchBuilder builder;
  std::vector<uint64_t> ids;
  Clock::time_point opened{};
  int32_t next_seq = 0;
  std::deque<std::shared_ptr<Batch>> outstanding;  // sent or waiting, in sequence order
  size_t on_wire = 0;
  bool closing = false;  // the server said the shard closed: send nothing more to it
};

class Producer {
 public:
  Producer(Options o, std::unique_ptr<client::Client> c) : o_(std::move(o)), c_(std::move(c)) {}

  // Runs the put; with -v the summary follows, whatever the outcome, once the
  // stream was reached.
  int Run();

 private:
  int Put();
  void PrintSummary() const;
  bool reached_ = false;  // the shard map was loaded
  Status LoadShardMap();
  Result<std::vector<ShardRoute>> FetchShardMap();
  Status SettleClosedShards();
  Result<uint32_t> Route(std::string_view key, const u128* hash);
  void Add(uint32_t shard, std::string_view key, const u128* hash, std::string_view data, uint64_t id);
  Status Seal(uint32_t shard);
  Status SendReady();
  int RetryWaitMs() const;
  bool AcksDue(Clock::time_point now) const;
  Status HandleResponse(client::Response& r);
  Status Drain(bool all);
  Status Reroute(std::shared_ptr<Batch> b);
  void PrintReady();
  size_t OnWire() const { return inflight_.size(); }
  // A shard has the server's window of batches on the wire and more to send: only
  // acknowledgements let it go on.
  bool WindowFull() const;
  // The connection broke (the server stopped or restarted): connect again, then
  // resend every batch that was on the wire.
  static bool Lost(const Status& s);
  Status Reconnect();

  Options o_;
  std::unique_ptr<client::Client> c_;
  uint64_t reconnects_ = 0;
  std::vector<ShardRoute> routes_;
  std::map<uint32_t, ShardState> shards_;
  std::map<uint32_t, std::shared_ptr<Batch>> inflight_;  // by correlation id
  int64_t producer_id_ = -1;
  size_t batch_bytes_ = 1u << 20;
  size_t max_record_bytes_ = 1u << 20;
  int64_t linger_ms_ = 5;
  log::BatchOptions bopts_;
  std::deque<Pending> results_;  // ids [first_id_, ...)
  uint64_t first_id_ = 0;
  uint64_t next_id_ = 0;
  uint64_t taken_ = 0;  // input records added to batches (each must be acknowledged once)
  std::mt19937_64 rng_{std::random_device{}()};
  // Summary for -v.
  uint64_t records_ = 0, bytes_ = 0, batches_ = 0, retries_ = 0, throttles_ = 0, refreshes_ = 0;
  uint64_t bad_ = 0;
  int stdout_errno_ = 0;  // the first failed write of --print-seq output
  void NoteStdoutError() {
    if (!stdout_errno_) stdout_errno_ = errno ? errno : EIO;
  }
};

Result<std::vector<ShardRoute>> Producer::FetchShardMap() {
  auto si = client::DescribeStream(*c_, o_.stream);
  if (!si.ok() && si.status().is(Status::Code::kNotFound) && o_.create_shards > 0) {
    auto cr = c_->Call(Type::kCreateStream, [&](Writer& w) {
      w.str(o_.stream).u32(o_.create_shards).i64(24 * 3600 * 1000LL).u8(0).u32(0);
    });
    if (!cr.ok()) return cr.status();
    if (!cr->ok() && cr->err != Err::kStreamExists) return client::ResponseStatus(*cr);
    si = client::DescribeStream(*c_, o_.stream);
  }
  if (!si.ok()) {
    if (si.status().is(Status::Code::kNotFound))
      return Status::NotFound(fmt::format("stream '{}' does not exist (create it with `stream-ctl create {}` "
                                          "or pass --create-shards N)", o_.stream, o_.stream));
    return si.status();
  }
  max_record_bytes_ = si->max_record_bytes;
  std::vector<ShardRoute> routes;
  for (auto& s : si->shards)
    if (s.state == proto::kOpen) routes.push_back({s.index, s.start_hash, s.end_hash});
  std::sort(routes.begin(), routes.end(), [](auto& a, auto& b) { return a.start < b.start; });
  if (routes.empty()) return Status::Corruption(fmt::format("stream '{}' has no open shard", o_.stream));
  return routes;
}

Status Producer::LoadShardMap() {
  SK_ASSIGN_OR_RETURN(routes_, FetchShardMap());
  return Status::OK();
}

bool Producer::Lost(const Status& s) {
  return s.is(Status::Code::kClosed) || s.err() == EPIPE || s.err() == ECONNRESET || s.err() == ENOTCONN;
}

Status Producer::Reconnect() {
  // Same producer id and sequence numbers on the new connection: the server keeps
  // producer state across restarts (FORMAT.md §4), so a batch stored before the
  // connection broke is answered as a duplicate, not stored twice. No autostart: a
  // server someone stopped is not started again by a put.
  std::fprintf(stderr, "%s: lost the server at %s; reconnecting (up to %d s)\n", kTool,
               c_->socket_path().c_str(), kReconnectSecs);
  client::ConnectOptions co = o_.conn;
  co.autostart = false;
  co.socket_path = c_->socket_path();
  auto deadline = Clock::now() + std::chrono::seconds(kReconnectSecs);
  for (;;) {
    auto c = client::Client::Connect(co);
    if (c.ok()) {
      c_ = std::move(*c);
      break;
    }
    if (Clock::now() >= deadline || tools::StopRequested())
      return Status::IoError(fmt::format("lost the server and could not reconnect: {}", c.status().message()));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  reconnects_++;
  std::fprintf(stderr, "%s: reconnected; resending %zu unacknowledged batch(es)\n", kTool, inflight_.size());
  auto now = Clock::now();
  for (auto& [corr, b] : inflight_) b->needs_resend = true;
  inflight_.clear();
  for (auto& [i, st] : shards_) {
    st.on_wire = 0;
    // Whatever the old connection said about closed shards is asked again: a batch on
    // the wire when it broke may have been stored, so it is resent, never rerouted.
    st.closing = false;
    for (auto& b : st.outstanding) {
      if (b->doomed) {
        b->doomed = false;
        b->needs_resend = true;
      }
      if (b->needs_resend) b->not_before = now;
    }
  }
  return Status::OK();
}

Status Producer::SettleClosedShards() {
  // A shard the server closed (split or merged) refuses every batch it gets from then
  // on. Its unacknowledged records go to the children, in their order, and only after
  // that does new input use the new shard map: each key's records stay in order, none
  // is lost or stored twice. So: wait until nothing of a closing shard is on the wire
  // (answers to batches sent before the close may still be successes), then reroute.
  bool any = false;
  for (auto& [i, st] : shards_) {
    if (!st.closing) continue;
    if (st.on_wire > 0) return Status::OK();
    any = true;
  }
  if (!any) return Status::OK();
  auto fetched = FetchShardMap();
  if (!fetched.ok() && Lost(fetched.status())) return Reconnect();  // settled again afterwards
  SK_ASSIGN_OR_RETURN(auto routes, std::move(fetched));
  auto routable = [&](uint32_t shard) {
    for (auto& r : routes)
      if (r.index == shard) return true;
    return false;
  };
  // Every shard with data that the new map no longer has closed too, even if the
  // server has not said so yet: settle it in the same step.
  std::vector<uint32_t> gone;
  for (auto& [i, st] : shards_) {
    if (routable(i)) continue;
    if (st.outstanding.empty() && st.builder.empty()) {
      gone.push_back(i);
      continue;
    }
    st.closing = true;
    if (st.on_wire > 0) return Status::OK();  // wait for its answers first
    gone.push_back(i);
  }
  for (auto& [i, st] : shards_)
    if (st.closing && routable(i)) {
      // Not closed after all (refused as unknown during a change): send again.
      st.closing = false;
      for (auto& b : st.outstanding)
        if (b->doomed) {
          b->doomed = false;
          b->needs_resend = true;
          b->not_before = Clock::now() + std::chrono::milliseconds(100);
        }
    }
  routes_ = std::move(routes);
  refreshes_++;
  for (uint32_t i : gone) {
    SK_TRY(Seal(i));
    auto batches = std::move(shards_[i].outstanding);
    shards_.erase(i);
    for (auto& b : batches) SK_TRY(Reroute(b));
  }
  return Status::OK();
}

Result<uint32_t> Producer::Route(std::string_view key, const u128* hash) {
  if (routes_.size() == 1) return routes_[0].index;
  u128 h = hash ? *hash : Md5HashKey(key);
  auto it = std::upper_bound(routes_.begin(), routes_.end(), h, [](u128 v, const ShardRoute& r) { return v < r.start; });
  if (it == routes_.begin()) return Status::Corruption("shard map has a gap");
  --it;
  if (h > it->end) return Status::Corruption("shard map has a gap");
  return it->index;
}

void Producer::Add(uint32_t shard, std::string_view key, const u128* hash, std::string_view data, uint64_t id) {
  ShardState& st = shards_[shard];
  if (st.builder.empty()) {
    // The batch's producer sequence is fixed when it opens: one open batch per shard,
    // sealed in order, so it starts where the previous one ended.
    log::BatchOptions bo = bopts_;
    bo.base_sequence = st.next_seq;
    st.builder.Reset(bo);
    st.opened = Clock::now();
  }
  st.builder.Add(key, hash, data, NowMs());
  st.ids.push_back(id);
}

Status Producer::Seal(uint32_t shard) {
  ShardState& st = shards_[shard];
  if (st.builder.empty()) return Status::OK();
  int32_t base_seq = st.next_seq;
  uint32_t n = st.builder.record_count();
  st.next_seq = int32_t((int64_t(st.next_seq) + n) % (int64_t(INT32_MAX) + 1));
  Bytes bytes = st.builder.Finish();
  auto b = std::make_shared<Batch>();
  b->shard = shard;
  b->base_seq = base_seq;
  b->bytes = std::move(bytes);
  b->ids = std::move(st.ids);
  st.ids.clear();
  st.outstanding.push_back(b);
  batches_++;
  return Status::OK();
}

// A closing shard sends nothing more; a shard with a batch to resend sends nothing
// else until everything it had on the wire is answered, then resends in sequence
// order (keeps per-key order).
bool MaySend(const ShardState& st) {
  if (st.closing) return false;
  bool resend = false;
  for (auto& b : st.outstanding) resend |= b->needs_resend;
  return !(resend && st.on_wire > 0);
}

Status Producer::SendReady() {
  SK_TRY(SettleClosedShards());
  auto now = Clock::now();
  for (auto& [idx, st] : shards_) {
    if (!MaySend(st)) continue;
    for (auto& b : st.outstanding) {
      if (OnWire() >= o_.max_in_flight) return Status::OK();
      if (b->sent && !b->needs_resend) continue;  // on the wire already
      // At most the server's window of batches per shard unacknowledged: after a lost
      // connection each is resent, and only a batch within the window the server
      // remembers is recognised as stored (Kafka's max.in.flight <= 5 with idempotence).
      if (st.on_wire >= log::kProducerWindow) break;
      if (b->not_before > now) break;                       // backing off; keep order
      uint32_t shard = idx;
      auto sent = c_->Send(Type::kProduce, [&](Writer& w) { w.str(o_.stream).u32(shard); },
                           std::span<const uint8_t>(b->bytes));
      if (!sent.ok() && Lost(sent.status())) return Reconnect();  // resent by the next call
      SK_ASSIGN_OR_RETURN(uint32_t corr, std::move(sent));
      if (b->sent) retries_++;
      b->sent = true;
      b->sent_at = now;
      b->needs_resend = false;
      st.on_wire++;
      inflight_[corr] = b;
    }
  }
  return Status::OK();
}

bool Producer::WindowFull() const {
  for (auto& [idx, st] : shards_)
    if (st.on_wire >= log::kProducerWindow && st.outstanding.size() > st.on_wire) return true;
  return false;
}

// Milliseconds until the first batch backing off (throttled, failed) may be sent
// again, rounded up; -1 when none waits only for time (the rest wait for answers,
// and the socket is watched while anything is on the wire).
int Producer::RetryWaitMs() const {
  if (OnWire() >= o_.max_in_flight) return -1;
  auto now = Clock::now();
  int wait = -1;
  for (auto& [idx, st] : shards_) {
    if (!MaySend(st) || st.on_wire >= log::kProducerWindow) continue;  // waits for answers
    for (auto& b : st.outstanding) {
      if (b->sent && !b->needs_resend) continue;
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(b->not_before - now).count();
      int ms = us <= 0 ? 0 : int((us + 999) / 1000);
      wait = wait < 0 ? ms : std::min(wait, ms);
      break;  // the shard sends in order: its first waiting batch decides
    }
  }
  return wait;
}

Status Producer::Reroute(std::shared_ptr<Batch> b) {
  // The shard closed or its range moved: the batch was not stored. Its records go
  // through the fresh shard map again, into new batches.
  Bytes scratch;
  log::BatchRecords br;
  SK_TRY(br.Open(b->bytes, &scratch));
  log::Record r;
  size_t i = 0;
  while (br.Next(&r)) {
    SK_ASSIGN_OR_RETURN(uint32_t shard, Route(r.key, r.has_hash_key ? &r.hash_key : nullptr));
    Add(shard, r.key, r.has_hash_key ? &r.hash_key : nullptr, r.data, b->ids[i++]);
    // A child may already hold an open batch: keep each within the batch limits.
    ShardState& st = shards_[shard];
    if (st.builder.size_bytes() >= batch_bytes_ || st.builder.record_count() >= log::kMaxRecordsPerBatch)
      SK_TRY(Seal(shard));
  }
  return br.status();
}

Status Producer::HandleResponse(client::Response& r) {
  auto it = inflight_.find(r.corr);
  if (it == inflight_.end()) return Status::OK();
  auto b = it->second;
  inflight_.erase(it);
  ShardState& st = shards_[b->shard];
  st.on_wire--;
  if (!r.ok() && (r.err == Err::kWrongShard || st.closing)) {
    // Refused because the shard closed (or, once it is closing, for any reason: it
    // will never take the batch now). Rerouted with the rest of the shard's records.
    st.closing = true;
    b->doomed = true;
    return SettleClosedShards();
  }
  if (r.ok()) {
    uint64_t base, last;
    int64_t ts;
    uint8_t dup;
    auto rd = r.body();
    if (!(rd.u64(&base) && rd.u64(&last) && rd.i64(&ts) && rd.u8(&dup)))
      return Status::Corruption("malformed produce response");
    for (size_t i = 0; i < b->ids.size(); i++) {
      if (o_.print_seq) {
        Pending& p = results_[b->ids[i] - first_id_];
        p.shard = b->shard;
        p.offset = base + i;
        p.done = true;
      }
    }
    records_ += b->ids.size();
    bytes_ += b->bytes.size();
    std::erase(st.outstanding, b);
    return Status::OK();
  }
  switch (r.err) {
    case Err::kThrottled:
    case Err::kInjectedFailure:
    case Err::kShuttingDown:
    case Err::kStorage:
    case Err::kOutOfOrderSequence: {
      // Retry the same bytes: same producer id and sequence, so the server recognises
      // a batch it already has. An out-of-order answer means an earlier batch of this
      // shard failed; it is resent first.
      if (r.err == Err::kThrottled) throttles_++;
      bool cascade = r.err == Err::kOutOfOrderSequence;
      if (cascade ? ++b->out_of_order > kMaxAttempts * 20 : ++b->failures > kMaxAttempts)
        return Status::IoError(fmt::format("{} still failing after {} attempts: {}",
                                                  proto::ShardIdName(b->shard), kMaxAttempts, r.message));
      int backoff = cascade ? 1 : std::min(1000, 10 << std::min(b->failures, 7));
      b->not_before = Clock::now() + std::chrono::milliseconds(backoff / 2 + int(rng_() % uint64_t(backoff / 2 + 1)));
      b->needs_resend = true;
      return Status::OK();
    }
    case Err::kStreamNotFound:  // deleted while we write: exit 4, as for a missing stream
      return Status::NotFound(r.message);
    default:
      return Status::IoError(fmt::format("{}: {}", proto::ErrName(r.err), r.message));
  }
}

void Producer::PrintReady() {
  if (!o_.print_seq) {
    return;
  }
  while (!results_.empty() && results_.front().done) {
    const Pending& p = results_.front();
    int n = p.skipped ? std::printf("-\t-\n")
                      : std::printf("%s\t%s\n", proto::ShardIdName(p.shard).c_str(),
                                    U128ToString(proto::SequenceNumber(p.shard, p.offset)).c_str());
    if (n < 0) NoteStdoutError();
    results_.pop_front();
    first_id_++;
  }
}

// Whether acknowledgements should be read now rather than left in the socket: for
// --print-seq, once half the window (--max-in-flight) is out, or once the oldest
// send is kLazyAckMs old. A producer fed a line at a time then reads them a few at a
// time in one system call, not one per line.
bool Producer::AcksDue(Clock::time_point now) const {
  if (OnWire() == 0) return false;
  if (o_.print_seq || OnWire() >= (o_.max_in_flight + 1) / 2 || WindowFull()) return true;
  return now - inflight_.begin()->second->sent_at >= std::chrono::milliseconds(kLazyAckMs);
}

Status Producer::Drain(bool all) {
  // Receives what has arrived; with `all`, until nothing is outstanding.
  for (;;) {
    SK_TRY(SendReady());
    bool outstanding = false;
    for (auto& [i, st] : shards_) {
      // At the end, records rerouted from a shard that closed meanwhile wait in the
      // children's open batches: those go out too (nothing else would seal them).
      if (all && !st.builder.empty()) SK_TRY(Seal(i));
      outstanding |= !st.outstanding.empty();
    }
    if (all && !outstanding) break;
    if (OnWire() == 0) {
      if (!all) break;
      // Only backoffs pending: sleep until the first is due.
      int due = RetryWaitMs();
      std::this_thread::sleep_for(std::chrono::milliseconds(due >= 0 ? due : 5));
      continue;
    }
    // Reading acknowledgements costs a system call on the producer's path, so a
    // look that is not needed yet is skipped (frames already read are handled).
    if (!all && !c_->HasBufferedResponse() && !AcksDue(Clock::now())) break;
    auto r = c_->Receive(all ? 50 : 0);
    if (!r.ok()) {
      if (Lost(r.status())) {
        SK_TRY(Reconnect());
        continue;
      }
      if (!r.status().is(Status::Code::kBusy)) return r.status();
      if (!all) break;  // only part of a response has arrived so far
      continue;
    }
    SK_TRY(HandleResponse(*r));
  }
  PrintReady();
  return Status::OK();
}

int Producer::Run() {
  int rc = Put();
  if (o_.verbose && reached_) PrintSummary();
  return rc;
}

void Producer::PrintSummary() const {
  std::fprintf(stderr, "%s: %llu records, %llu bytes, %llu batches, %llu retries, %llu throttled, %llu map refreshes%s\n",
               kTool, (unsigned long long)records_, (unsigned long long)bytes_, (unsigned long long)batches_,
               (unsigned long long)retries_, (unsigned long long)throttles_, (unsigned long long)refreshes_,
               (bad_ ? fmt::format(", {} rejected input lines", bad_) : std::string()).c_str());
  if (reconnects_) std::fprintf(stderr, "%s: reconnected %llu time(s)\n", kTool, (unsigned long long)reconnects_);
}

int Producer::Put() {
  auto bsize = ParseSize(o_.batch_size);
  if (!bsize.ok() || *bsize < 1024 || *bsize > (8u << 20))
    return tools::FailMsg(kTool, tools::kExitUsage, "--batch-size must be 1KiB to 8MiB");
  batch_bytes_ = *bsize;
  auto lg = ParseDurationMs(o_.linger);
  if (!lg.ok()) return tools::FailMsg(kTool, tools::kExitUsage, lg.status().message());
  linger_ms_ = *lg;
  Status s = LoadShardMap();
  if (!s.ok()) return tools::Fail(kTool, s);
  reached_ = true;
  auto pid = c_->CallOk(Type::kInitProducer, [](Writer&) {});
  if (!pid.ok()) return tools::Fail(kTool, pid.status());
  auto rd = pid->body();
  uint16_t epoch = 0;
  rd.i64(&producer_id_);
  rd.u16(&epoch);
  bopts_.producer_id = producer_id_;
  bopts_.producer_epoch = epoch;
  if (o_.compress == "zstd") bopts_.codec = log::Codec::kZstd;


  // The stream's limit on key + data (from the shard map load).
  const size_t limit = max_record_bytes_;

  client::Framing framing = o_.raw ? client::Framing::kRaw : o_.nul ? client::Framing::kNul
                            : o_.ndjson ? client::Framing::kNdjson : client::Framing::kLines;
  // The stream's limit on key + data; a unit longer than that is reported by line.
  client::InputReader in(0, framing, limit);
  std::optional<client::KeyExtractor> extractor;
  if (!o_.key_path.empty()) {
    auto e = client::KeyExtractor::Parse(o_.key_path);
    if (!e.ok()) return tools::FailMsg(kTool, tools::kExitUsage, e.status().message());
    extractor = std::move(*e);
  }
  std::optional<u128> fixed_hash;
  if (!o_.hash_key.empty()) {
    fixed_hash = ParseU128(o_.hash_key);
    if (!fixed_hash) return tools::FailMsg(kTool, tools::kExitUsage,
                                           fmt::format("--hash-key '{}' is not a decimal in 0..2^128-1", o_.hash_key));
  }
  int exit_code = 0;
  std::string random_key(16, '0');
  std::string_view rec;
  for (;;) {
    // Linger: with a batch open and no complete input unit buffered, wait for input
    // at most until the oldest open batch is due, then send what is there.
    if (!in.HasBufferedUnit()) {
      auto now = Clock::now();
      int wait = -1;
      for (auto& [i, st] : shards_)
        if (!st.builder.empty()) {
          auto due = st.opened + std::chrono::milliseconds(linger_ms_);
          int ms = int(std::max<long>(0, std::chrono::duration_cast<std::chrono::milliseconds>(due - now).count()));
          wait = wait < 0 ? ms : std::min(wait, ms);
        }
      // A throttled or failed batch is resent when its backoff ends, even while stdin
      // is quiet (`tail -f app.log | stream-put`).
      if (int r = RetryWaitMs(); r >= 0) wait = wait < 0 ? r : std::min(wait, r);
      // Sequence numbers printed so far go out before we wait (like tail -f's lines).
      if (wait != 0 && o_.print_seq && std::fflush(stdout) != 0) NoteStdoutError();
      // Acknowledgements wake us only when they are needed now: for --print-seq, to
      // send more (--max-in-flight), or once the oldest is kLazyAckMs old; else they
      // are read when input wakes us anyway (Drain below).
      bool want_acks = false;
      if (OnWire() > 0) {
        auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - inflight_.begin()->second->sent_at).count();
        want_acks = o_.print_seq || OnWire() >= o_.max_in_flight || WindowFull() || age >= kLazyAckMs;
        if (!want_acks) wait = wait < 0 ? int(kLazyAckMs - age) : std::min(wait, int(kLazyAckMs - age));
      }
      pollfd p[2] = {{0, POLLIN, 0}, {c_->fd(), POLLIN, 0}};
      // A batch due now (--linger 0) goes at once: no look at stdin first.
      int n = wait == 0 ? 0 : ::poll(p, want_acks ? 2 : 1, wait);
      if (n == 0 || (n > 0 && !(p[0].revents & (POLLIN | POLLHUP)))) {
        for (auto& [i, st] : shards_) {
          if (!st.builder.empty() &&
              Clock::now() - st.opened >= std::chrono::milliseconds(linger_ms_)) {
            s = Seal(i);
            if (!s.ok()) return tools::Fail(kTool, s);
          }
        }
        s = Drain(false);
        if (!s.ok()) return tools::Fail(kTool, s);
        continue;
      }
    }
    if (!in.Next(&rec)) break;
    uint64_t line = in.line_number();
    auto bad_input = [&](const std::string& why) {
      bad_++;
      std::fprintf(stderr, "%s: line %llu: %s\n", kTool, (unsigned long long)line, why.c_str());
      exit_code = tools::kExitBadInput;
      // --print-seq keeps one line per input record: a skipped one gets "-<TAB>-".
      if (o_.on_error == "skip" && o_.print_seq) {
        next_id_++;
        results_.push_back(Pending{0, 0, true, true});
      }
    };
    if (in.oversize()) {
      // --raw stops reading one byte past the limit (stdin may be endless).
      bad_input(o_.raw ? fmt::format("record of more than {} bytes exceeds the limit", limit)
                       : fmt::format("record of {} bytes exceeds the limit of {} bytes", in.oversize_bytes(), limit));
      if (o_.on_error == "skip") continue;
      break;
    }
    std::string key;
    const u128* hash = fixed_hash ? &*fixed_hash : nullptr;
    if (extractor) {
      auto k = extractor->Extract(rec);
      if (!k.ok()) {
        bad_input(k.status().message());
        if (o_.on_error == "skip") continue;
        break;
      }
      key = std::move(*k);
      if (key.empty() || key.size() > 256) {
        bad_input(fmt::format("partition key from {} is {} bytes (must be 1-256)", o_.key_path, key.size()));
        if (o_.on_error == "skip") continue;
        break;
      }
    } else if (o_.ndjson) {
      Status v = client::ValidateJson(rec);
      if (!v.ok()) {
        bad_input(v.message());
        if (o_.on_error == "skip") continue;
        break;
      }
    }
    if (!extractor) {
      if (!o_.key_fixed.empty()) {
        key = o_.key_fixed;
      } else {
        uint64_t v = rng_();
        static const char* hex = "0123456789abcdef";
        for (int i = 0; i < 16; i++) random_key[size_t(i)] = hex[(v >> (4 * i)) & 15];
        key = random_key;
      }
    }
    if (key.size() + rec.size() > limit) {
      bad_input(fmt::format("record of {} bytes (key + data) exceeds the limit of {} bytes", key.size() + rec.size(), limit));
      if (o_.on_error == "skip") continue;
      break;
    }
    auto shard = Route(key, hash);
    if (!shard.ok()) return tools::Fail(kTool, shard.status());
    uint64_t id = next_id_++;
    taken_++;
    if (o_.print_seq) results_.push_back(Pending{});
    Add(*shard, key, hash, rec, id);
    ShardState& st = shards_[*shard];
    if (st.builder.size_bytes() < batch_bytes_ && st.builder.record_count() < log::kMaxRecordsPerBatch)
      continue;  // the common case: nothing to send yet
    s = Seal(*shard);
    if (!s.ok()) return tools::Fail(kTool, s);
    // Keep the pipeline bounded: wait for acks when too much is outstanding.
    // Bounded memory: at most 2 x --max-in-flight batches and kMaxInFlightBytes waiting.
    size_t queued = 0, queued_bytes = 0;
    for (auto& [i, q] : shards_) {
      queued += q.outstanding.size();
      for (auto& b : q.outstanding) queued_bytes += b->bytes.size();
    }
    while (queued > o_.max_in_flight * 2 || queued_bytes > kMaxInFlightBytes) {
      s = SendReady();
      if (!s.ok()) return tools::Fail(kTool, s);
      auto r = c_->Receive(50);
      if (!r.ok() && Lost(r.status())) {
        s = Reconnect();
        if (!s.ok()) return tools::Fail(kTool, s);
        continue;
      }
      if (!r.ok() && !r.status().is(Status::Code::kBusy)) return tools::Fail(kTool, r.status());
      if (r.ok()) {
        s = HandleResponse(*r);
        if (!s.ok()) return tools::Fail(kTool, s);
      }
      PrintReady();
      queued = queued_bytes = 0;
      for (auto& [i, q] : shards_) {
        queued += q.outstanding.size();
        for (auto& b : q.outstanding) queued_bytes += b->bytes.size();
      }
    }
    s = Drain(false);
    if (!s.ok()) return tools::Fail(kTool, s);
  }
  if (!in.status().ok()) {
    std::fprintf(stderr, "%s: reading stdin: %s\n", kTool, in.status().message().c_str());
    exit_code = tools::kExitFailure;
  }
  for (auto& [i, st] : shards_) {
    s = Seal(i);
    if (!s.ok()) return tools::Fail(kTool, s);
  }
  s = Drain(true);
  if (!s.ok()) return tools::Fail(kTool, s);
  // Exit 0 promises every record taken was acknowledged: checked, never assumed.
  if (records_ != taken_)
    return tools::FailMsg(kTool, tools::kExitFailure,
                          fmt::format("{} of {} records were not acknowledged (a bug in stream-put: please report it)",
                                      taken_ - std::min(taken_, records_), taken_));
  if (std::fflush(stdout) != 0) NoteStdoutError();
  // A reader that went away (EPIPE, `| head`) is not an error; a full disk is: the
  // records are stored, but the sequence numbers asked for were lost.
  if (stdout_errno_ && stdout_errno_ != EPIPE) {
    std::fprintf(stderr, "%s: writing sequence numbers to stdout: %s\n", kTool, std::strerror(stdout_errno_));
    exit_code = tools::kExitFailure;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  tools::KeepFreedMemory();  // batches and answers of MiBs come and go
  tools::EnsureStdFds();
  tools::UseBatchScheduling(kTool);
  CLI::App app{"stream-put: write stdin to a stream, one record per line (or NUL-separated unit, NDJSON line, or all of stdin)."};
  Options o;
  o.conn.client_name = kTool;
  app.add_option("STREAM", o.stream, "Stream name")->required();
  auto* g_in = app.add_option_group("Input");
  auto* nul = g_in->add_flag("-0,--nul", o.nul, "Records are separated by NUL bytes");
  auto* nd = g_in->add_flag("--ndjson", o.ndjson, "Each line must be valid JSON (an invalid line is an error naming its number)");
  auto* raw = g_in->add_flag("--raw", o.raw, "All of stdin is one record");
  nul->excludes(nd)->excludes(raw);
  nd->excludes(raw);
  auto* g_key = app.add_option_group("Partition key (default: random, spreads evenly)");
  auto* k1 = g_key->add_option("--key", o.key_path, "Take the key from a JSON field: .user.id or /user/id");
  auto* k2 = g_key->add_option("--key-fixed", o.key_fixed, "Use this key for every record");
  auto* k3 = g_key->add_option("--hash-key", o.hash_key, "Explicit hash key (decimal, 0..2^128-1) choosing the shard");
  k1->excludes(k2);
  k2->excludes(k3);
  app.add_option("--create-shards", o.create_shards, "Create the stream with N shards if it does not exist")->check(CLI::Range(1, 10000));
  app.add_option("--linger", o.linger, "Wait this long to fill a batch (default 5ms)");
  app.add_option("--batch-size", o.batch_size, "Send a shard's batch once it reaches this size (default 1MiB)");
  app.add_option("--compress", o.compress, "Compress batches: none | zstd (default none)")->check(CLI::IsMember({"none", "zstd"}));
  app.add_option("--max-in-flight", o.max_in_flight, "Batches sent and not yet acknowledged (default 8)")->check(CLI::Range(1, 256));
  app.add_flag("--print-seq", o.print_seq, "Print SHARD_ID<TAB>SEQUENCE for every record, in input order");
  app.add_option("--on-error", o.on_error, "On a bad input line: fail (stop; default) or skip (count it, exit 3 at the end)")
      ->check(CLI::IsMember({"fail", "skip"}));
  app.add_flag("-v,--verbose", o.verbose, "Print a summary (records, bytes, batches, retries, throttles) to stderr");
  tools::AddClientFlags(app, &o.conn, &o.no_autostart);
  tools::AddVersionFlag(app, kTool);
  app.footer("Exit status: 0 all records acknowledged durable; 1 failure; 2 usage; 3 bad input; 4 no such stream.\n\n"
             "Examples:\n  seq 100 | stream-put numbers --create-shards 1\n"
             "  jq -c '.[]' events.json | stream-put events --ndjson --key .user.id\n"
             "  stream-put logs --print-seq < app.log");
  if (int rc = tools::Parse(app, argc, argv, kTool); rc >= 0) return rc;
  o.conn.autostart = !o.no_autostart;
  if (!proto::ValidName(o.stream))
    return tools::FailMsg(kTool, tools::kExitBadInput,
                          proto::InvalidNameMessage("stream", o.stream));
  if (app.count("--key-fixed") && (o.key_fixed.empty() || o.key_fixed.size() > 256))
    return tools::FailMsg(kTool, tools::kExitUsage, "--key-fixed must be 1-256 bytes");
  if (app.count("--key") && o.key_path.empty())
    return tools::FailMsg(kTool, tools::kExitUsage, "--key needs a JSON field path such as .user.id or /user/id");
  if (app.count("--hash-key") && o.hash_key.empty())
    return tools::FailMsg(kTool, tools::kExitUsage, "--hash-key '' is not a decimal in 0..2^128-1");
  tools::IgnoreSigpipe();
  auto c = client::Client::Connect(o.conn);
  if (!c.ok()) return tools::Fail(kTool, c.status());
  Producer p(o, std::move(*c));
  return p.Run();
}

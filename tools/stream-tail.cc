// stream-tail: records -> stdout, like tail(1): the last N, from a position, or
// following new records; optionally as a member of a consumer group that shares the
// shards with other members and checkpoints what it has written.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "common/config.h"
#include "log/batch.h"
#include "proto/protocol.h"
#include "tool_common.h"

using namespace streamkit;
using proto::Err;
using proto::Type;
using proto::Writer;
using Clock = std::chrono::steady_clock;

namespace {

const char* kTool = "stream-tail";
// SIGINT/SIGTERM set the flag and write the pipe (which wakes a poll); the fetch loop
// sees it, checkpoints and leaves the group. The handler has no SA_RESTART, so a
// write to a slow reader returns early too (Out::Flush).
int g_signal_pipe[2] = {-1, -1};
volatile sig_atomic_t g_signalled = 0;
bool SignalPending() { return g_signalled != 0; }
void OnSignal(int) {
  g_signalled = 1;
  char c = 1;
  ssize_t n = ::write(g_signal_pipe[1], &c, 1);
  (void)n;
}
// -F's retry pause: waits a second; false when SIGINT/SIGTERM came first.
bool PauseUnlessSignalled() {
  pollfd p{g_signal_pipe[0], POLLIN, 0};
  return !(SignalPending() || (::poll(&p, 1, 1000) > 0 && SignalPending()));
}

// -F: connects once a server answers, trying every second; nullptr when a signal
// (SIGINT/SIGTERM) comes first.
std::unique_ptr<client::Client> WaitForServer(const client::ConnectOptions& co) {
  for (;;) {
    if (!PauseUnlessSignalled()) return nullptr;
    auto c = client::Client::Connect(co);
    if (c.ok()) return std::move(*c);
  }
}

constexpr uint32_t kFetchBytes = 4u << 20;
constexpr uint32_t kMergeFetchBytes = 256u << 10;  // per shard, when merging the last N
constexpr uint32_t kFollowWaitMs = 1000;
constexpr int kHeartbeatMs = 1000;
constexpr int kCommitEveryMs = 200;
constexpr int kRefreshEveryMs = 5000;

struct Options {
  std::string stream;
  client::ConnectOptions conn;
  bool no_autostart = false;
  std::string lines;  // -n
  bool follow = false, follow_retry = false;
  std::string from, until, format = "raw", group, member;
  std::vector<std::string> shards;
  uint64_t limit = 0;
};

// ---- output ----------------------------------------------------------------------

class Out {
 public:
  ~Out() { Flush(); }
  void Append(std::string_view s) {
    buf_.append(s);
    if (buf_.size() >= (256u << 10)) Flush();
  }
  void Push(char c) { buf_.push_back(c); }
  std::string& buf() { return buf_; }
  // False once nothing more is to be written: the reader went away (EPIPE), a
  // write failed (error(): ENOSPC, EIO...), or a signal came while a slow reader
  // kept a write blocked (what was not written is not checkpointed).
  bool Flush() {
    size_t at = 0;
    while (at < buf_.size() && !closed_) {
      ssize_t n = ::write(1, buf_.data() + at, buf_.size() - at);
      if (n < 0 && errno == EINTR) {
        if (SignalPending()) closed_ = true;
        continue;
      }
      if (n < 0) {
        closed_ = true;
        if (errno != EPIPE) error_ = errno;
        break;
      }
      at += size_t(n);
      if (at < buf_.size() && SignalPending()) closed_ = true;  // interrupted part-way
    }
    buf_.clear();
    return !closed_;
  }
  bool closed() const { return closed_; }
  int error() const { return error_; }
  void MarkClosed() { closed_ = true; }

 private:
  std::string buf_;
  bool closed_ = false;
  int error_ = 0;
};

std::string Base64(std::string_view s) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(s[i])) << 16 | uint32_t(uint8_t(s[i + 1])) << 8 | uint8_t(s[i + 2]);
    o += t[v >> 18];
    o += t[(v >> 12) & 63];
    o += t[(v >> 6) & 63];
    o += t[v & 63];
  }
  if (i + 1 == s.size()) {
    uint32_t v = uint32_t(uint8_t(s[i])) << 16;
    o += t[v >> 18];
    o += t[(v >> 12) & 63];
    o += "==";
  } else if (i + 2 == s.size()) {
    uint32_t v = uint32_t(uint8_t(s[i])) << 16 | uint32_t(uint8_t(s[i + 1])) << 8;
    o += t[v >> 18];
    o += t[(v >> 12) & 63];
    o += t[(v >> 6) & 63];
    o += '=';
  }
  return o;
}

// --format raw | json | a template with {stream} {shard} {seq} {key} {ts} {time} {data} {offset}.
class Formatter {
 public:
  Status Parse(const std::string& f) {
    if (f == "raw" || f == "json") {
      mode_ = f;
      return Status::OK();
    }
    mode_ = "template";
    std::string lit;
    for (size_t i = 0; i < f.size(); i++) {
      if (f[i] == '\\' && i + 1 < f.size()) {
        char c = f[++i];
        lit += c == 'n' ? '\n' : c == 't' ? '\t' : c;
      } else if (f[i] == '{') {
        size_t e = f.find('}', i);
        if (e == std::string::npos) return Status::InvalidArgument(fmt::format("--format: unclosed '{{' in '{}'", f));
        std::string name = f.substr(i + 1, e - i - 1);
        static const std::set<std::string> known = {"stream", "shard", "seq", "key", "ts", "time", "data", "offset"};
        if (!known.count(name))
          return Status::InvalidArgument(fmt::format(
              "--format: unknown field {{{}}} (use stream, shard, seq, key, ts, time, data, offset)", name));
        parts_.push_back({lit, ""});
        lit.clear();
        parts_.push_back({"", name});
        i = e;
      } else {
        lit += f[i];
      }
    }
    parts_.push_back({lit + "\n", ""});
    return Status::OK();
  }

  void Write(Out& out, const std::string& stream, uint32_t shard, const log::Record& r) {
    std::string& o = out.buf();
    if (mode_ == "raw") {
      o.append(r.data);
      o.push_back('\n');
    } else if (mode_ == "json") {
      o += "{\"stream\":";
      AppendJsonString(&o, stream);
      o += fmt::format(",\"shard\":\"{}\",\"seq\":\"{}\",\"key\":", proto::ShardIdName(shard),
                       U128ToString(proto::SequenceNumber(shard, r.offset)));
      bool key_utf8 = simdjson::validate_utf8(r.key.data(), r.key.size());
      if (key_utf8) AppendJsonString(&o, r.key);
      else o += "\"" + Base64(r.key) + "\"";
      o += fmt::format(",\"ts\":{},\"data\":", r.arrival_ms);
      if (simdjson::validate_utf8(r.data.data(), r.data.size())) {
        AppendJsonString(&o, r.data);
      } else {
        o += "\"" + Base64(r.data) + "\",\"data_encoding\":\"base64\"";
      }
      if (!key_utf8) o += ",\"key_encoding\":\"base64\"";
      o += "}\n";
    } else {
      for (auto& [lit, field] : parts_) {
        o += lit;
        if (field.empty()) continue;
        if (field == "stream") o += stream;
        else if (field == "shard") o += proto::ShardIdName(shard);
        else if (field == "seq") o += U128ToString(proto::SequenceNumber(shard, r.offset));
        else if (field == "key") o += r.key;
        else if (field == "ts") o += std::to_string(r.arrival_ms);
        else if (field == "time") o += FormatTimeMs(r.arrival_ms);
        else if (field == "data") o += r.data;
        else if (field == "offset") o += std::to_string(r.offset);
      }
    }
    if (o.size() >= (256u << 10)) out.Flush();
  }

 private:
  std::string mode_ = "raw";
  std::vector<std::pair<std::string, std::string>> parts_;
};

// ---- positions -------------------------------------------------------------------

struct Position {
  enum Kind { kTrimHorizon, kLatest, kSeqAt, kSeqAfter, kTime } kind = kTrimHorizon;
  u128 seq = 0;
  int64_t time_ms = 0;
};

Result<Position> ParsePosition(const std::string& s, const char* flag) {
  Position p;
  if (s == "trim-horizon" || s == "oldest" || s == "beginning") p.kind = Position::kTrimHorizon;
  else if (s == "latest" || s == "end") p.kind = Position::kLatest;
  else if (s.rfind("seq:", 0) == 0 || s.rfind("after:", 0) == 0) {
    bool after = s[0] == 'a';
    auto v = ParseU128(s.substr(after ? 6 : 4));
    if (!v) return Status::InvalidArgument(fmt::format("{} '{}': not a sequence number", flag, s));
    p.kind = after ? Position::kSeqAfter : Position::kSeqAt;
    p.seq = *v;
  } else if (s.rfind("time:", 0) == 0) {
    SK_ASSIGN_OR_RETURN(p.time_ms, ParseTimeMs(s.substr(5), NowMs()));
    p.kind = Position::kTime;
  } else if (std::string_view(flag) == "--until") {
    return Status::InvalidArgument(fmt::format("{} '{}': use time:ISO-8601, time:-15m, seq:S or latest", flag, s));
  } else {
    return Status::InvalidArgument(fmt::format(
        "{} '{}': use trim-horizon, latest, seq:S, after:S, time:ISO-8601 or time:-15m", flag, s));
  }
  return p;
}

struct ShardCursor {
  proto::ShardInfo info;
  uint64_t next = 0;        // next offset to read
  uint64_t stop = UINT64_MAX;  // read up to here (exclusive) then stop
  bool started = false;
  bool finished = false;    // read to its end (closed shard) or to `stop`
  bool past_until = false;  // --until time:T: every record of it up to T is read
  bool in_flight = false;
  uint64_t written = 0;     // next offset after the last record flushed to stdout
  uint64_t committed = UINT64_MAX;
};

class Tail {
 public:
  Tail(Options o, std::unique_ptr<client::Client> c) : o_(std::move(o)), c_(std::move(c)) {}
  int Run();

 private:
  Result<proto::StreamInfo> Describe();
  Result<uint64_t> ResolveStart(const proto::ShardInfo& s, const Position& p);
  Status FetchLoop(bool follow);
  Status HandleFetch(client::Response& r, uint32_t shard, uint64_t* stays_at);
  Status LastN(uint64_t n, std::map<uint32_t, uint64_t>* next);
  Status Heartbeat(bool leaving);
  Status Commit(bool force);
  Status RefreshShards();
  bool ParentsDone(const proto::ShardInfo& s) const;
  bool Reconnect();
  // A batch the server sent that fails its checks: stored data was damaged. An I/O
  // error naming where (exit 1), not bad input.
  Status Damaged(uint32_t shard, uint64_t after, const Status& s) const {
    return Status::IoError(fmt::format("stream '{}' {}: damaged data near offset {}: {}", o_.stream,
                                       proto::ShardIdName(shard), after, s.message()));
  }
  bool Done() const { return (o_.limit > 0 && printed_ >= o_.limit) || out_.closed() || SignalPending(); }

  Options o_;
  std::unique_ptr<client::Client> c_;
  Out out_;
  Formatter fmt_;
  std::optional<Position> from_, until_;
  std::map<uint32_t, ShardCursor> cursors_;
  std::set<uint32_t> only_shards_;
  struct InFlight {
    uint32_t shard;
    uint64_t offset;
  };
  std::map<uint32_t, InFlight> corr_shard_;  // fetches on the wire
  uint64_t printed_ = 0;
  bool group_mode_ = false;
  Clock::time_point last_heartbeat_{}, last_commit_{}, last_refresh_{};
  uint64_t expired_records_ = 0;
  int64_t started_ms_ = NowMs();
};

Result<proto::StreamInfo> Tail::Describe() { return client::DescribeStream(*c_, o_.stream); }

Result<uint64_t> Tail::ResolveStart(const proto::ShardInfo& s, const Position& p) {
  switch (p.kind) {
    case Position::kTrimHorizon: return s.start_offset;
    case Position::kLatest: return s.end_offset;
    case Position::kSeqAt:
    case Position::kSeqAfter: {
      if (proto::SequenceShard(p.seq) != s.index) return s.start_offset;
      uint64_t off = proto::SequenceOffset(p.seq) + (p.kind == Position::kSeqAfter ? 1 : 0);
      return std::max(off, s.start_offset);
    }
    case Position::kTime: {
      SK_ASSIGN_OR_RETURN(auto r, c_->Call(Type::kListOffset, [&](Writer& w) {
        w.str(o_.stream).u32(s.index).u8(uint8_t(proto::OffsetKind::kTime)).i64(p.time_ms);
      }));
      if (!r.ok()) return client::ResponseStatus(r);
      uint64_t off = 0;
      auto rd = r.body();
      rd.u64(&off);
      return off;
    }
  }
  return s.start_offset;
}

bool Tail::ParentsDone(const proto::ShardInfo& s) const {
  // Every ancestor still known must be read to its end: an empty shard closed by the
  // same reshard that made it does not let its children start before its parents end.
  std::vector<int32_t> todo{s.parent, s.adjacent_parent};
  std::set<uint32_t> seen;
  while (!todo.empty()) {
    int32_t p = todo.back();
    todo.pop_back();
    if (p < 0 || !seen.insert(uint32_t(p)).second) continue;
    auto it = cursors_.find(uint32_t(p));
    if (it == cursors_.end()) continue;  // expired, or not ours to read
    if (!it->second.finished) return false;
    todo.push_back(it->second.info.parent);
    todo.push_back(it->second.info.adjacent_parent);
  }
  return true;
}

Status Tail::LastN(uint64_t n, std::map<uint32_t, uint64_t>* next) {
  // The last n records of the stream by arrival time (ties: lower shard first),
  // printed oldest first, in memory that does not grow with n. A shard's arrival
  // times never go backwards, so the records chosen are a suffix of each shard:
  // a search over time (ListOffset, answered from the time index) finds where each
  // suffix begins, then the suffixes are merged by arrival time, one fetch per
  // shard at a time.
  std::map<uint32_t, uint64_t> from, end;
  uint64_t total = 0;
  for (auto& [idx, cur] : cursors_) {
    end[idx] = (*next)[idx] = cur.info.end_offset;
    from[idx] = std::min(cur.info.start_offset, cur.info.end_offset);
    total += end[idx] - from[idx];
  }
  if (total > n) {
    // count(t): records at or after time t (below each shard's end as described).
    auto count = [&](int64_t t, std::map<uint32_t, uint64_t>* at) -> Result<uint64_t> {
      uint64_t c = 0;
      for (auto& [idx, cur] : cursors_) {
        Position p;
        p.kind = Position::kTime;
        p.time_ms = t;
        SK_ASSIGN_OR_RETURN(uint64_t off, ResolveStart(cur.info, p));
        off = std::clamp(off, from[idx], end[idx]);
        (*at)[idx] = off;
        c += end[idx] - off;
      }
      return c;
    };
    // Bracket the cutoff, lo with count >= n and hi with count < n, widening from now
    // (the usual case, the last few records, takes a few steps), then bisect.
    std::map<uint32_t, uint64_t> at;
    int64_t now = NowMs(), lo = 0, hi = std::numeric_limits<int64_t>::max() / 4;
    SK_ASSIGN_OR_RETURN(uint64_t c_now, count(now + 1, &at));
    if (c_now < n) {
      hi = now + 1;
      for (int64_t step = 1000; step < now; step *= 4) {
        SK_ASSIGN_OR_RETURN(uint64_t c, count(now - step, &at));
        if (c >= n) {
          lo = now - step;
          break;
        }
        hi = now - step;
      }
    } else {
      lo = now + 1;  // records stamped in the future (a clock set back)
    }
    while (hi - lo > 1) {
      int64_t mid = lo + (hi - lo) / 2;
      SK_ASSIGN_OR_RETURN(uint64_t c, count(mid, &at));
      (c >= n ? lo : hi) = mid;
    }
    // Everything from lo + 1 on, plus the newest of the records stamped lo (from the
    // highest shards) to make n.
    std::map<uint32_t, uint64_t> at_lo, at_next;
    SK_TRY(count(lo, &at_lo).status());
    SK_ASSIGN_OR_RETURN(uint64_t after, count(lo + 1, &at_next));
    uint64_t want = n - std::min(n, after);
    for (auto it = cursors_.rbegin(); it != cursors_.rend(); ++it) {
      uint32_t idx = it->first;
      uint64_t take = std::min(want, at_next[idx] - at_lo[idx]);
      from[idx] = at_next[idx] - take;
      want -= take;
    }
  }

  struct Source {
    uint32_t shard;
    uint64_t off;  // where the next fetch begins
    client::Response resp;
    std::optional<log::RecordCursor> cur;
    log::Record rec;
    bool has = false;
  };
  std::vector<Source> src;
  for (auto& [idx, cur] : cursors_)
    if (from[idx] < end[idx]) src.push_back(Source{idx, from[idx], {}, std::nullopt, {}, false});
  // Moves s to its next record below its end, fetching as needed; false at the end.
  auto advance = [&](Source& s) -> Result<bool> {
    for (;;) {
      if (s.cur && s.cur->Next(&s.rec)) {
        if (s.rec.offset < from[s.shard]) continue;  // a batch begins before the suffix
        return s.rec.offset < end[s.shard];
      }
      if (s.cur && !s.cur->status().ok()) return Damaged(s.shard, s.off, s.cur->status());
      if (s.off >= end[s.shard]) return false;
      uint32_t idx = s.shard;
      SK_ASSIGN_OR_RETURN(s.resp, c_->Call(Type::kFetch, [&](Writer& w) {
        w.str(o_.stream).u32(idx).u64(s.off).u32(kMergeFetchBytes).u32(0);
      }));
      if (s.resp.err == Err::kOffsetOutOfRange) {
        // Retention removed these records meanwhile: go on from the new start.
        SK_ASSIGN_OR_RETURN(auto lo, c_->CallOk(Type::kListOffset, [&](Writer& w) {
          w.str(o_.stream).u32(idx).u8(uint8_t(proto::OffsetKind::kTrimHorizon)).i64(0);
        }));
        auto lr = lo.body();
        uint64_t start = 0;
        lr.u64(&start);
        if (start <= s.off) return Status::Corruption("offset out of range below the start");
        s.off = from[idx] = start;
        s.cur.reset();
        continue;
      }
      if (!s.resp.ok()) return client::ResponseStatus(s.resp);
      auto rd = s.resp.body();
      uint64_t nx = 0, e = 0, st = 0;
      uint8_t flags = 0;
      rd.u64(&nx);
      rd.u64(&e);
      rd.u64(&st);
      rd.u8(&flags);
      std::string_view b = rd.tail();
      if (nx <= s.off) return false;  // nothing more there
      s.cur.emplace(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(b.data()), b.size()), s.off);
      s.off = nx;
    }
  };
  for (auto& s : src) {
    SK_ASSIGN_OR_RETURN(s.has, advance(s));
  }
  while (!Done()) {
    Source* best = nullptr;
    for (auto& s : src)
      if (s.has && (!best || s.rec.arrival_ms < best->rec.arrival_ms)) best = &s;  // ties: lower shard
    if (!best) break;
    fmt_.Write(out_, o_.stream, best->shard, best->rec);
    printed_++;
    SK_ASSIGN_OR_RETURN(best->has, advance(*best));
  }
  out_.Flush();
  return Status::OK();
}

// `*stays_at`: where the server keeps this fetch parked (kFetchMore), else UINT64_MAX.
Status Tail::HandleFetch(client::Response& r, uint32_t shard, uint64_t* stays_at) {
  *stays_at = UINT64_MAX;
  auto it = cursors_.find(shard);
  if (it == cursors_.end()) return Status::OK();  // no longer ours
  ShardCursor& cur = it->second;
  cur.in_flight = false;
  if (r.err == Err::kOffsetOutOfRange) {
    // Retention removed records before we read them: say so and go on from the oldest.
    SK_ASSIGN_OR_RETURN(auto desc, Describe());
    for (auto& s : desc.shards)
      if (s.index == shard) {
        expired_records_ += s.start_offset > cur.next ? s.start_offset - cur.next : 0;
        std::fprintf(stderr, "%s: %s: records before offset %llu expired before they were read\n", kTool,
                     proto::ShardIdName(shard).c_str(), (unsigned long long)s.start_offset);
        cur.next = s.start_offset;
      }
    return Status::OK();
  }
  if (r.err == Err::kShuttingDown) return Status::Closed("the server is shutting down");
  if (r.err == Err::kThrottled || r.err == Err::kInjectedFailure) {
    // Over the shard's read throughput (or an injected fault): back off, then ask again.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return Status::OK();
  }
  if (!r.ok()) return client::ResponseStatus(r);
  auto rd = r.body();
  uint64_t next, end, start;
  uint8_t flags;
  if (!(rd.u64(&next) && rd.u64(&end) && rd.u64(&start) && rd.u8(&flags)))
    return Status::Corruption("malformed fetch response");
  std::string_view b = rd.tail();
  log::RecordCursor rc(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(b.data()), b.size()), cur.next);
  log::Record rec;
  while (!Done() && rc.Next(&rec)) {
    if (rec.offset >= cur.stop) break;
    if (until_ && until_->kind == Position::kTime && rec.arrival_ms > until_->time_ms) {
      cur.stop = rec.offset;
      cur.past_until = true;
      break;
    }
    fmt_.Write(out_, o_.stream, shard, rec);
    printed_++;
    cur.next = rec.offset + 1;
  }
  if (!rc.status().ok()) return Damaged(shard, cur.next, rc.status());
  if (!Done() && next > cur.next && cur.next < cur.stop) cur.next = std::min(next, cur.stop);
  // Following to --until time:T: a shard read to its end more than a second after T
  // is done too, though no later record came (what comes now arrives after T; the
  // second covers appends stamped before T and not yet readable).
  if (until_ && until_->kind == Position::kTime && !Done() && cur.next >= end &&
      NowMs() > until_->time_ms + 1000) {
    cur.stop = std::min(cur.stop, cur.next);
    cur.past_until = true;
  }
  if (cur.next >= cur.stop) cur.finished = true;
  if (flags & proto::kFetchMore) *stays_at = next;
  if ((flags & proto::kFetchShardEnd) && cur.next >= end) {
    cur.finished = true;
    last_refresh_ = {};  // a closed shard ended: its children may now start
  }
  return Status::OK();
}

Status Tail::Heartbeat(bool leaving) {
  SK_ASSIGN_OR_RETURN(auto assigned, client::GroupHeartbeat(*c_, o_.stream, o_.group, o_.member, leaving));
  last_heartbeat_ = Clock::now();
  if (leaving) return Status::OK();
  // Drop shards we lost (after committing what we wrote of them), add new ones.
  for (auto it = cursors_.begin(); it != cursors_.end();) {
    if (!assigned.count(it->first)) it = cursors_.erase(it);
    else ++it;
  }
  if (assigned.empty()) return Status::OK();
  SK_ASSIGN_OR_RETURN(auto desc, Describe());
  for (auto& [sh, ck] : assigned) {
    if (cursors_.count(sh)) continue;
    for (auto& s : desc.shards) {
      if (s.index != sh) continue;
      ShardCursor cur;
      cur.info = s;
      if (ck != UINT64_MAX) {
        cur.next = std::max(ck, s.start_offset);
      } else {
        SK_ASSIGN_OR_RETURN(cur.next, ResolveStart(s, from_ ? *from_ : Position{}));
      }
      cur.written = cur.next;
      cur.committed = ck;
      if (!o_.follow) cur.stop = s.end_offset;  // drain to the current end, then exit
      if (cur.next >= cur.stop && s.state == proto::kOpen) cur.finished = true;
      cursors_[sh] = cur;
    }
  }
  return Status::OK();
}

Status Tail::Commit(bool force) {
  if (!group_mode_) return Status::OK();
  if (!force && Clock::now() - last_commit_ < std::chrono::milliseconds(kCommitEveryMs)) return Status::OK();
  last_commit_ = Clock::now();
  for (auto& [sh, cur] : cursors_) {
    if (cur.written == cur.committed) continue;
    uint32_t shard = sh;
    SK_ASSIGN_OR_RETURN(auto r, c_->Call(Type::kGroupCommit, [&](Writer& w) {
      w.str(o_.stream).str(o_.group).str(o_.member).u32(shard).u64(cur.written);
    }));
    if (r.err == Err::kNotAssigned) continue;  // rebalanced away: the new owner goes on
    if (!r.ok()) return client::ResponseStatus(r);
    cur.committed = cur.written;
  }
  return Status::OK();
}

Status Tail::RefreshShards() {
  last_refresh_ = Clock::now();
  SK_ASSIGN_OR_RETURN(auto desc, Describe());
  for (auto& s : desc.shards) {
    if (!only_shards_.empty() && !only_shards_.count(s.index)) continue;
    if (cursors_.count(s.index)) {
      cursors_[s.index].info = s;
      continue;
    }
    ShardCursor cur;
    cur.info = s;
    cur.next = s.start_offset;  // a new child shard: from its first record
    cursors_[s.index] = cur;
  }
  return Status::OK();
}

bool Tail::Reconnect() {
  if (!o_.follow_retry) return false;
  std::fprintf(stderr, "%s: lost the server; retrying every second\n", kTool);
  client::ConnectOptions co = o_.conn;
  co.autostart = false;
  auto c = WaitForServer(co);
  if (!c) return false;  // a signal: stop
  c_ = std::move(c);
  corr_shard_.clear();
  for (auto& [i, cur] : cursors_) cur.in_flight = false;
  std::fprintf(stderr, "%s: reconnected to %s\n", kTool, c_->socket_path().c_str());
  return true;
}

Status Tail::FetchLoop(bool follow) {
  for (;;) {
    if (Done()) return Status::OK();
    if (group_mode_ && Clock::now() - last_heartbeat_ >= std::chrono::milliseconds(kHeartbeatMs)) {
      // Checkpoint what is written before asking: a shard given to another member
      // then resumes exactly where we stopped (no re-delivery on a rebalance).
      // Every cursor: following, a fetch stays parked (in flight) nearly all the time,
      // and a shard this heartbeat hands over must not be read again from an older
      // checkpoint (a cursor's next is one past its last printed record).
      if (!out_.Flush()) return Status::OK();
      for (auto& [i, cur] : cursors_) cur.written = cur.next;
      SK_TRY(Commit(true));
      SK_TRY(Heartbeat(false));
    }
    if (!group_mode_ && follow && Clock::now() - last_refresh_ >= std::chrono::milliseconds(kRefreshEveryMs))
      SK_TRY(RefreshShards());
    // Print what we have before asking for more (follow latency).
    if (!c_->HasBufferedResponse() && !out_.Flush()) return Status::OK();
    // Issue one fetch per readable shard (parents before children).
    bool any_open = false;
    for (auto& [idx, cur] : cursors_) {
      if (cur.finished) continue;
      if (!ParentsDone(cur.info)) {
        any_open = true;
        continue;
      }
      any_open = true;
      if (cur.in_flight) continue;
      uint32_t shard = idx;
      uint64_t off = cur.next;
      uint32_t wait = follow ? kFollowWaitMs : 0;
      if (group_mode_ && follow) wait = kHeartbeatMs / 2;
      SK_ASSIGN_OR_RETURN(uint32_t corr, c_->Send(Type::kFetch, [&](Writer& w) {
        w.str(o_.stream).u32(shard).u64(off).u32(kFetchBytes).u32(wait);
        // Following: the fetch stays parked at the end after each answer, so new
        // records come without a new request each (PROTOCOL.md §9).
        if (follow) w.u8(proto::kFetchStay);
      }));
      corr_shard_[corr] = InFlight{shard, off};
      cur.in_flight = true;
    }
    if (corr_shard_.empty()) {
      if (!any_open && !follow) {
        if (!group_mode_) return Status::OK();
        // Group drain: all assigned shards are read to their end. Checkpoint, then ask
        // once more: a finished parent may have made children ours.
        if (!out_.Flush()) return Status::OK();
        for (auto& [i, cur] : cursors_) cur.written = cur.next;
        SK_TRY(Commit(true));
        SK_TRY(Heartbeat(false));
        bool more = false;
        for (auto& [i, cur] : cursors_) more |= !cur.finished;
        if (!more) {
          // Shards still held by a member not heard from since we started (a killed
          // consumer whose session has not expired): wait for them to come free.
          SK_ASSIGN_OR_RETURN(bool silent, client::GroupHasSilentMembers(*c_, o_.stream, o_.group, o_.member, started_ms_));
          if (!silent) return Status::OK();
          if (SignalPending() || !out_.Flush()) return Status::OK();
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
          last_heartbeat_ = {};
        }
        continue;
      }
      if (!any_open && !group_mode_ && (until_ || o_.limit > 0)) return Status::OK();  // --until reached everywhere
      // A group member following to --until time:T stops once each of its shards is
      // past T (the caller checkpoints and leaves; shards that only ended, closed
      // by a reshard, hand over to their children instead).
      if (!any_open && group_mode_ && until_ && !cursors_.empty() &&
          std::all_of(cursors_.begin(), cursors_.end(), [](const auto& kv) { return kv.second.past_until; })) {
        if (out_.Flush())
          for (auto& [i, cur] : cursors_) cur.written = cur.next;
        return Status::OK();
      }
      if (!out_.Flush() || SignalPending()) return Status::OK();
      // Following with nothing to read (more members than shards, every shard closed,
      // or children waiting for parents): wait for the next heartbeat or refresh.
      std::this_thread::sleep_for(std::chrono::milliseconds(any_open ? 20 : 100));
      continue;
    }
    // Flush before blocking, so a follower sees records at once.
    if (!c_->HasBufferedResponse()) {
      if (!out_.Flush()) return Status::OK();
      for (auto& [i, cur] : cursors_) cur.written = cur.next;
      SK_TRY(Commit(false));
    }
    // Wait for the server, and notice a reader that went away meanwhile (like GNU
    // tail -f | head: a closed pipe ends us even when no new record comes).
    if (!c_->HasBufferedResponse()) {
      int timeout = group_mode_ ? kHeartbeatMs : -1;
      bool uncommitted = false;
      for (auto& [i, cur] : cursors_) uncommitted |= group_mode_ && cur.written != cur.committed;
      if (uncommitted) timeout = kCommitEveryMs;  // checkpoint soon even when idle
      pollfd p[3] = {{c_->fd(), POLLIN, 0}, {1, 0, 0}, {g_signal_pipe[0], POLLIN, 0}};
      int n = ::poll(p, 3, timeout);
      if (n > 0 && (p[1].revents & (POLLERR | POLLHUP))) {
        out_.MarkClosed();
        return Status::OK();
      }
      if (n > 0 && (p[2].revents & POLLIN)) return Status::OK();  // SIGINT/SIGTERM: finish cleanly
      if (n <= 0) {
        if (uncommitted) SK_TRY(Commit(true));
        continue;  // heartbeat or checkpoint due
      }
    }
    SK_ASSIGN_OR_RETURN(auto r, c_->Receive(group_mode_ ? kHeartbeatMs : -1));
    auto it = corr_shard_.find(r.corr);
    if (it == corr_shard_.end()) continue;
    InFlight f = it->second;
    corr_shard_.erase(it);
    auto cur = cursors_.find(f.shard);
    // An answer for a position we no longer hold (the shard was lost and given back
    // meanwhile) is dropped; the cursor asks again from where it really is.
    if (cur == cursors_.end()) continue;
    if (cur->second.next != f.offset) {
      cur->second.in_flight = false;
      continue;
    }
    uint64_t stays_at;
    SK_TRY(HandleFetch(r, f.shard, &stays_at));
    // The server keeps this fetch parked where the cursor now is: it stays in flight.
    if (stays_at != UINT64_MAX && !cur->second.finished && cur->second.next == stays_at) {
      cur->second.in_flight = true;
      corr_shard_[r.corr] = InFlight{f.shard, stays_at};
    }
  }
}

int Tail::Run() {
  if (Status s = fmt_.Parse(o_.format); !s.ok()) return tools::FailMsg(kTool, tools::kExitUsage, s.message());
  if (!o_.from.empty()) {
    auto p = ParsePosition(o_.from, "--from");
    if (!p.ok()) return tools::FailMsg(kTool, tools::kExitUsage, p.status().message());
    from_ = *p;
  }
  if (!o_.until.empty()) {
    auto p = ParsePosition(o_.until, "--until");
    if (!p.ok()) return tools::FailMsg(kTool, tools::kExitUsage, p.status().message());
    if (p->kind != Position::kTime && p->kind != Position::kSeqAt && p->kind != Position::kLatest)
      return tools::FailMsg(kTool, tools::kExitUsage, "--until takes time:T, seq:S or latest");
    until_ = *p;
  }
  for (auto& s : o_.shards) {
    uint32_t idx;
    if (!proto::ParseShardId(s, &idx))
      return tools::FailMsg(kTool, tools::kExitUsage, fmt::format("--shard '{}' is not a shard id like shardId-000000000001", s));
    only_shards_.insert(idx);
  }
  // -n N (last N) or -n +K (from the K-th record of each shard).
  bool plus = false;
  uint64_t n = 10;
  if (!o_.lines.empty()) {
    std::string v = o_.lines;
    if (v[0] == '+') {
      plus = true;
      v = v.substr(1);
    } else if (v[0] == '-') {
      v = v.substr(1);  // -n -N: the last N, as tail(1) reads it
    }
    char* end = nullptr;
    n = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || v[0] < '0' || v[0] > '9' || *end != '\0')
      return tools::FailMsg(kTool, tools::kExitUsage, fmt::format("-n '{}': expected N or +N", o_.lines));
  }

  auto desc = Describe();
  if (!desc.ok() && desc.status().is(Status::Code::kNotFound) && o_.follow_retry) {
    // -F, like tail -F on a file that is not there yet: wait for the stream.
    std::fprintf(stderr, "%s: stream '%s' does not exist yet; retrying every second\n", kTool, o_.stream.c_str());
    while (!desc.ok() && desc.status().is(Status::Code::kNotFound)) {
      if (!PauseUnlessSignalled()) return 0;
      desc = Describe();
    }
    if (desc.ok()) std::fprintf(stderr, "%s: stream '%s' has appeared; following it\n", kTool, o_.stream.c_str());
  }
  if (!desc.ok()) {
    if (desc.status().is(Status::Code::kNotFound))
      return tools::FailMsg(kTool, tools::kExitNotFound, fmt::format("stream '{}' does not exist", o_.stream));
    return tools::Fail(kTool, desc.status());
  }
  for (uint32_t idx : only_shards_) {
    bool found = false;
    for (auto& s : desc->shards) found |= s.index == idx;
    if (!found)
      return tools::FailMsg(kTool, tools::kExitNotFound,
                            fmt::format("stream '{}' has no {}", o_.stream, proto::ShardIdName(idx)));
  }
  // A sequence number carries its shard (PROTOCOL.md): one naming no shard of this
  // stream is bad input, as for stream-ctl group-reset --to seq:S.
  for (auto [p, flag] : {std::pair{&from_, "--from"}, std::pair{&until_, "--until"}}) {
    if (!*p || ((*p)->kind != Position::kSeqAt && (*p)->kind != Position::kSeqAfter)) continue;
    bool found = false;
    for (auto& si : desc->shards) found |= (*p)->seq >> 64 == u128(si.index);
    if (!found)
      return tools::FailMsg(kTool, tools::kExitBadInput,
                            fmt::format("{} seq:{} names no shard of stream '{}'", flag, U128ToString((*p)->seq), o_.stream));
  }
  if (from_ && (from_->kind == Position::kSeqAt || from_->kind == Position::kSeqAfter) && only_shards_.empty())
    only_shards_.insert(proto::SequenceShard(from_->seq));

  Status s;
  if (!o_.group.empty()) {
    group_mode_ = true;  // the name was checked with the flags (main)
    if (o_.member.empty()) {
      char host[256] = {};
      ::gethostname(host, sizeof host - 1);
      o_.member = fmt::format("{}-{}", host, ::getpid());
    }
    for (;;) {
      s = Heartbeat(false);
      if (s.ok()) s = FetchLoop(o_.follow);
      if (s.ok() || out_.closed()) break;
      // -F: the server went away; rejoin the group once it is back (our shards may
      // have moved meanwhile; checkpoints say where to resume).
      if ((s.is(Status::Code::kClosed) || s.is(Status::Code::kIoError)) && Reconnect()) {
        cursors_.clear();
        continue;
      }
      break;
    }
    // Stopped by --limit or a signal: what was printed is checkpointed once it is
    // flushed (a cursor's next is one past its last printed record).
    if (s.ok() && !out_.closed() && out_.Flush())
      for (auto& [i, cur] : cursors_) cur.written = cur.next;
    if (s.ok() || out_.closed()) {
      Status c = Commit(true);
      if (s.ok()) s = c;
    }
    (void)Heartbeat(true);
  } else {
    for (auto& si : desc->shards) {
      if (!only_shards_.empty() && !only_shards_.count(si.index)) continue;
      ShardCursor cur;
      cur.info = si;
      cursors_[si.index] = cur;
    }
    bool last_n = !from_ && !plus;
    if (last_n) {
      std::map<uint32_t, uint64_t> next;
      s = LastN(n, &next);
      if (!s.ok()) return tools::Fail(kTool, s);
      if (!o_.follow) return 0;
      for (auto& [i, cur] : cursors_) cur.next = next[i];
    } else {
      for (auto& [i, cur] : cursors_) {
        if (plus) {
          cur.next = cur.info.start_offset + (n > 0 ? n - 1 : 0);
        } else {
          auto st = ResolveStart(cur.info, *from_);
          if (!st.ok()) return tools::Fail(kTool, st.status());
          cur.next = *st;
        }
        if (!o_.follow) cur.stop = cur.info.end_offset;
      }
    }
    if (until_ && until_->kind == Position::kSeqAt) {
      for (auto& [i, cur] : cursors_)
        cur.stop = proto::SequenceShard(until_->seq) == i ? proto::SequenceOffset(until_->seq) + 1 : cur.stop;
    }
    if (until_ && until_->kind == Position::kLatest)
      for (auto& [i, cur] : cursors_) cur.stop = cur.info.end_offset;
    last_refresh_ = Clock::now();
    for (;;) {
      s = FetchLoop(o_.follow);
      if (s.ok() || out_.closed()) break;
      if ((s.is(Status::Code::kClosed) || s.is(Status::Code::kIoError)) && Reconnect()) continue;
      break;
    }
  }
  out_.Flush();
  if (out_.error())
    return tools::FailMsg(kTool, tools::kExitFailure, fmt::format("writing stdout: {}", std::strerror(out_.error())));
  // Stopped by a signal while -F waited for the server: a clean stop.
  bool waiting = o_.follow_retry && SignalPending() && (s.is(Status::Code::kClosed) || s.is(Status::Code::kIoError));
  if (!s.ok() && !out_.closed() && !waiting) return tools::Fail(kTool, s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tools::KeepFreedMemory();  // batches and answers of MiBs come and go
  tools::EnsureStdFds();
  tools::UseBatchScheduling(kTool);
  CLI::App app{"stream-tail: print a stream's records, one per line, like tail(1)."};
  Options o;
  o.conn.client_name = kTool;
  app.add_option("STREAM", o.stream, "Stream name")->required();
  app.add_option("-n,--lines", o.lines, "Print the last N records (default 10), or +K: from the K-th record on");
  app.add_flag("-f,--follow", o.follow, "Keep printing new records as they arrive");
  app.add_flag("-F", o.follow_retry, "Like -f, and keep retrying when the server goes away");
  app.add_option("--from", o.from, "Start at trim-horizon | latest | seq:S | after:S | time:ISO-8601 | time:-15m");
  app.add_option("--until", o.until, "Stop at time:T, seq:S (inclusive) or latest");
  app.add_option("--shard", o.shards, "Read only this shard (repeatable), e.g. shardId-000000000001");
  app.add_option("--limit", o.limit, "Stop after N records")
      ->check(CLI::Validator(
          [](std::string& v) {
            bool digits = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
            return digits && v.find_first_not_of('0') != std::string::npos
                       ? std::string()
                       : fmt::format("'{}' is not a number of records (1 or more)", v);
          },
          "N"));
  app.add_option("--format", o.format, "raw (data only; default), json, or a template like '{shard} {seq} {key} {data}'");
  app.add_option("--group", o.group, "Consume as a member of this consumer group (shared shards, checkpoints)");
  app.add_option("--member", o.member, "Member id within the group (default HOST-PID)");
  tools::AddClientFlags(app, &o.conn, &o.no_autostart);
  tools::AddVersionFlag(app, kTool);
  app.footer(
      "JSON records (--format json): {\"stream\",\"shard\",\"seq\",\"key\",\"ts\",\"data\"}; data that is not\n"
      "UTF-8 is base64 with \"data_encoding\":\"base64\".\n\n"
      "Exit status: 0 success; 1 failure; 2 usage; 3 bad input; 4 no such stream.\n\n"
      "Examples:\n  stream-tail orders                      # the last 10 records\n"
      "  stream-tail -f orders --format json      # follow\n"
      "  stream-tail orders -n +1 > all.txt       # everything, oldest first\n"
      "  stream-tail orders --group billing       # drain this group's share, checkpoint, exit");
  if (int rc = tools::Parse(app, argc, argv, kTool); rc >= 0) return rc;
  if (app.count("--group")) {
    if (!proto::ValidName(o.group))
      return tools::FailMsg(kTool, tools::kExitUsage, proto::InvalidNameMessage("group", o.group));
    // A member reads the shards the group gives it, from the group's checkpoints.
    for (const char* f : {"-n", "--shard"})
      if (app.count(f))
        return tools::FailMsg(kTool, tools::kExitUsage, fmt::format("{} does not apply with --group", f));
    if (app.count("--until") && o.until.rfind("time:", 0) != 0)
      return tools::FailMsg(kTool, tools::kExitUsage, "--until takes only time:T with --group");
  } else if (app.count("--member")) {
    return tools::FailMsg(kTool, tools::kExitUsage, "--member needs --group");
  }
  if (o.follow_retry) o.follow = true;
  o.conn.autostart = !o.no_autostart;
  if (!proto::ValidName(o.stream))
    return tools::FailMsg(kTool, tools::kExitBadInput,
                          proto::InvalidNameMessage("stream", o.stream));
  tools::IgnoreSigpipe();
  if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
    struct sigaction sa{};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
  }
  auto c = client::Client::Connect(o.conn);
  if (!c.ok() && o.follow_retry && (c.status().err() == ENOENT || c.status().err() == ECONNREFUSED)) {
    // -F, like tail -F on a file that is not there yet: wait for the server.
    std::fprintf(stderr, "%s: %s; retrying every second\n", kTool, c.status().message().c_str());
    client::ConnectOptions co = o.conn;
    co.autostart = false;
    auto w = WaitForServer(co);
    if (!w) return 0;  // stopped by a signal before any server came
    c = std::move(w);
  }
  if (!c.ok()) return tools::Fail(kTool, c.status());
  Tail t(o, std::move(*c));
  return t.Run();
}

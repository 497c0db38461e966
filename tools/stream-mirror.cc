// stream-mirror: keep streams of one stream-serve in step on another (MirrorMaker 2).
//
// A target stream is made with its source's topology (shard indexes, ranges,
// parents, states) and each shard's log starting at the source shard's first
// offset, so a record has the same shard and offset — the same sequence number — on
// both sides. Batches are copied as stored (no re-encoding), keeping keys, hash keys
// and arrival times; the copy position of a shard is the target shard's end, so a
// restart after a kill -9 of anything goes on exactly where the target stands: every
// record exactly once, in order. Reshards on the source are replayed on the target
// once the parents are copied to their end. --sync-groups copies consumer-group
// checkpoints (sequence numbers are the same on both sides).
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "common/config.h"
#include "log/batch.h"
#include "proto/protocol.h"
#include "tool_common.h"
#include "util/crc32c.h"

using namespace streamkit;
using proto::Err;
using proto::Type;
using proto::Writer;
using Clock = std::chrono::steady_clock;

namespace {

const char* kTool = "stream-mirror";
constexpr uint32_t kFetchBytes = 4u << 20;
constexpr size_t kMaxInFlight = 16;


struct Options {
  std::string from, to, rename = "{stream}", alias = "source", match;
  std::vector<std::string> streams;
  bool all = false, once = false, sync_groups = false, verbose = false;
};

struct Mirror {
  std::string src, dst;
  proto::StreamInfo s, d;             // latest descriptions
  std::map<uint32_t, int32_t> seq;    // target shard -> next producer sequence
  std::map<uint32_t, uint64_t> done;  // records copied this run, per shard (for -v)
};

class Tool {
 public:
  explicit Tool(Options o) : o_(std::move(o)) {}
  int Run();

 private:
  Status Connect();
  Status Resolve(bool quiet = false);
  Status Prepare(Mirror& m);
  Status SyncTopology(Mirror& m, bool* pending);
  Status CopyShard(Mirror& m, const proto::ShardInfo& ss, bool* got);
  Status SyncGroups(Mirror& m);
  Status InitProducer();
  std::string TargetName(const std::string& stream) const;
  void Report(bool final);

  Options o_;
  std::unique_ptr<client::Client> src_, dst_;
  std::vector<Mirror> mirrors_;
  std::set<std::string> refused_;  // streams found by a later scan that cannot be mirrored
  int64_t producer_id_ = -1;
  uint64_t copied_ = 0, bytes_ = 0;
  Clock::time_point started_ = Clock::now(), last_report_ = Clock::now(), last_groups_{}, last_scan_ = Clock::now();
};

std::string Tool::TargetName(const std::string& stream) const {
  std::string out;
  for (size_t i = 0; i < o_.rename.size(); i++) {
    if (o_.rename.compare(i, 8, "{stream}") == 0) {
      out += stream;
      i += 7;
    } else if (o_.rename.compare(i, 8, "{source}") == 0) {
      out += o_.alias;
      i += 7;
    } else {
      out += o_.rename[i];
    }
  }
  return out;
}

Status Tool::Connect() {
  client::ConnectOptions co;
  co.client_name = kTool;
  co.autostart = false;
  co.socket_path = o_.from;
  auto s = client::Client::Connect(co);
  if (!s.ok()) return Status::IoError(fmt::format("--from {}: {}", o_.from, s.status().message()));
  co.socket_path = o_.to;
  auto d = client::Client::Connect(co);
  if (!d.ok()) return Status::IoError(fmt::format("--to {}: {}", o_.to, d.status().message()));
  src_ = std::move(*s);
  dst_ = std::move(*d);
  return InitProducer();
}

Status Tool::InitProducer() {
  SK_ASSIGN_OR_RETURN(auto r, dst_->CallOk(Type::kInitProducer, [](Writer&) {}));
  auto rd = r.body();
  if (!rd.i64(&producer_id_)) return Status::Corruption("malformed InitProducer response");
  for (auto& m : mirrors_) m.seq.clear();
  return Status::OK();
}

Status Tool::Resolve(bool quiet) {
  std::vector<std::string> names = o_.streams;
  if (o_.all || !o_.match.empty()) {
    SK_ASSIGN_OR_RETURN(auto all, client::ListStreams(*src_));
    // POSIX extended regular expressions (regcomp), like grep -E.
    regex_t re;
    bool use_re = !o_.match.empty();
    if (use_re) {
      int rc = ::regcomp(&re, o_.match.c_str(), REG_EXTENDED | REG_NOSUB);
      if (rc != 0) {
        char msg[256];
        ::regerror(rc, &re, msg, sizeof msg);
        return Status::InvalidArgument(fmt::format("--match '{}': {}", o_.match, msg));
      }
    }
    struct Free {
      regex_t* r;
      ~Free() {
        if (r) ::regfree(r);
      }
    } free_re{use_re ? &re : nullptr};
    for (const proto::StreamInfo& si : all) {
      if (use_re && ::regexec(&re, si.name.c_str(), 0, nullptr, 0) != 0) continue;
      if (std::find(names.begin(), names.end(), si.name) == names.end()) names.push_back(si.name);
    }
  }
  if (names.empty())
    return Status::InvalidArgument("no stream to mirror: name streams, or use --all or --match REGEX");
  for (const std::string& n : names) {
    bool known = false;
    for (auto& x : mirrors_) known |= x.src == n;
    if (known) continue;
    Mirror m;
    m.src = n;
    m.dst = TargetName(n);
    if (!proto::ValidName(m.dst))
      return Status::InvalidArgument(fmt::format("--rename '{}' gives '{}' for '{}': not a valid stream name", o_.rename, m.dst, n));
    auto s = client::DescribeStream(*src_, n);
    if (!s.ok()) {
      if (s.status().is(Status::Code::kNotFound))
        return Status::NotFound(fmt::format("source stream '{}' does not exist on {}", n, o_.from));
      return s.status();
    }
    m.s = std::move(*s);
    if (quiet && refused_.count(n)) continue;
    if (src_->server_id() == dst_->server_id() && m.src == m.dst && quiet) continue;
    if (src_->server_id() == dst_->server_id() && m.src == m.dst)
      return Status::InvalidArgument(fmt::format("'{}' would be mirrored onto itself (--from and --to are the same "
                                                 "server); use --rename", n));
    // A stream that is itself a mirror of the target: copying it back would loop.
    if (m.s.origin.rfind(dst_->server_id() + ":", 0) == 0) {
      if (quiet) continue;
      std::fprintf(stderr, "%s: skipping %s: it is a mirror of %s on the target\n", kTool, n.c_str(),
                   m.s.origin.substr(dst_->server_id().size() + 1).c_str());
      continue;
    }
    mirrors_.push_back(std::move(m));
  }
  if (mirrors_.empty() && !quiet) return Status::InvalidArgument("nothing to mirror (every stream named was skipped)");
  return Status::OK();
}

Status Tool::Prepare(Mirror& m) {
  std::string origin = src_->server_id() + ":" + m.src;
  auto d = client::DescribeStream(*dst_, m.dst);
  if (d.ok()) {
    if (d->origin != origin)
      return Status::InvalidArgument(fmt::format("target stream '{}' exists and is not a mirror of '{}' on {} "
                                                 "(its origin: '{}'); delete it or use --rename", m.dst, m.src, o_.from,
                                                 d->origin.empty() ? "none" : d->origin));
    m.d = std::move(*d);
    return Status::OK();
  }
  if (!d.status().is(Status::Code::kNotFound)) return d.status();
  // Create it with the source's topology; each shard starts at the source's first offset.
  SK_ASSIGN_OR_RETURN(auto r, dst_->Call(Type::kCreateMirror, [&](Writer& w) {
    w.str(m.dst).str(origin).i64(m.s.retention_ms).u32(m.s.max_record_bytes).u32(m.s.next_shard_index);
    w.u32(uint32_t(m.s.shards.size()));
    for (auto& sh : m.s.shards)
      w.u32(sh.index).i32(sh.parent).i32(sh.adjacent_parent).h128(sh.start_hash).h128(sh.end_hash).u8(sh.state).u64(
          sh.start_offset);
  }));
  if (!r.ok() && r.err != Err::kStreamExists) return client::ResponseStatus(r);
  SK_ASSIGN_OR_RETURN(m.d, client::DescribeStream(*dst_, m.dst));
  if (o_.verbose)
    std::fprintf(stderr, "%s: created %s on the target (%zu shard%s, as %s)\n", kTool, m.dst.c_str(),
                 m.d.shards.size(), m.d.shards.size() == 1 ? "" : "s", m.src.c_str());
  return Status::OK();
}

const proto::ShardInfo* Find(const proto::StreamInfo& si, uint32_t index) {
  for (auto& s : si.shards)
    if (s.index == index) return &s;
  return nullptr;
}

Status Tool::SyncTopology(Mirror& m, bool* pending) {
  // Source shards the target lacks come from splits and merges; replay them in index
  // order once their parents are copied to the end (the target parent must take its
  // last records before it closes).
  *pending = false;
  for (size_t i = 0; i < m.s.shards.size(); i++) {
    const proto::ShardInfo& c = m.s.shards[i];
    if (Find(m.d, c.index)) continue;
    *pending = true;
    auto copied = [&](int32_t p) {
      if (p < 0) return true;
      const proto::ShardInfo* sp = Find(m.s, uint32_t(p));
      const proto::ShardInfo* dp = Find(m.d, uint32_t(p));
      if (!sp) return dp != nullptr;  // expired on the source: nothing more to copy into it
      return dp && sp->state == proto::kClosed && dp->end_offset >= sp->end_offset;
    };
    if (!copied(c.parent) || !copied(c.adjacent_parent)) return Status::OK();
    proto::ReshardStep st;
    if (c.adjacent_parent >= 0) {
      st.kind = 2;
      st.shard = uint32_t(c.parent);
      st.adjacent = uint32_t(c.adjacent_parent);
    } else {
      // The split's upper child starts at the split key.
      const proto::ShardInfo* upper = nullptr;
      for (auto& o : m.s.shards)
        if (o.parent == c.parent && o.adjacent_parent < 0 && o.index != c.index && o.start_hash > c.start_hash) upper = &o;
      if (!upper) upper = &c;
      st.kind = 1;
      st.shard = uint32_t(c.parent);
      st.at = upper->start_hash;
    }
    SK_ASSIGN_OR_RETURN(auto r, dst_->Call(Type::kReshard, [&](Writer& w) {
      w.str(m.dst).u8(0).u8(0).u32(1);
      st.Encode(w);
    }));
    if (!r.ok()) return Status::IoError(fmt::format("replaying a reshard of {} on the target: {}", m.src, r.message));
    SK_ASSIGN_OR_RETURN(m.d, client::DescribeStream(*dst_, m.dst));
    if (!Find(m.d, c.index))
      return Status::Corruption(fmt::format("target {} did not get {} from a replayed reshard (its topology has "
                                            "diverged from the source's)", m.dst, proto::ShardIdName(c.index)));
    if (o_.verbose)
      std::fprintf(stderr, "%s: %s: replayed %s of %s on the target\n", kTool, m.dst.c_str(),
                   st.kind == 1 ? "a split" : "a merge", proto::ShardIdName(st.shard).c_str());
    i = size_t(-1);  // look again from the start: the next child may now be ready
  }
  return Status::OK();
}

Status Tool::CopyShard(Mirror& m, const proto::ShardInfo& ss, bool* got) {
  *got = false;
  const proto::ShardInfo* ds = Find(m.d, ss.index);
  if (!ds) return Status::OK();  // not on the target yet (a reshard to replay first)
  uint64_t next = ds->end_offset;
  if (next >= ss.end_offset) return Status::OK();
  // Parents are copied to their end before any of their children, so each key's
  // records reach the target in order (shards already closed when the target was made
  // are filled too: the server lets the mirror append to them).
  for (int32_t p : {ss.parent, ss.adjacent_parent}) {
    if (p < 0) continue;
    const proto::ShardInfo* sp = Find(m.s, uint32_t(p));
    const proto::ShardInfo* dp = Find(m.d, uint32_t(p));
    if (sp && dp && dp->end_offset < sp->end_offset) return Status::OK();
  }
  SK_ASSIGN_OR_RETURN(auto r, src_->Call(Type::kFetch, [&](Writer& w) {
    w.str(m.src).u32(ss.index).u64(next).u32(kFetchBytes).u32(0);
  }));
  if (r.err == Err::kOffsetOutOfRange)
    return Status::Corruption(fmt::format("{}/{}: records from offset {} expired on the source before they were copied; "
                                       "the mirror cannot stay exact (recreate the target)",
                                       m.src, proto::ShardIdName(ss.index), next));
  if (!r.ok()) return client::ResponseStatus(r);
  auto rd = r.body();
  uint64_t fnext, fend, fstart;
  uint8_t flags;
  if (!(rd.u64(&fnext) && rd.u64(&fend) && rd.u64(&fstart) && rd.u8(&flags)))
    return Status::Corruption("malformed fetch response");
  std::string_view tail = rd.tail();
  // Whole batches, starting exactly at `next` (both sides hold the same batches).
  std::vector<std::span<uint8_t>> batches;
  uint8_t* p = reinterpret_cast<uint8_t*>(const_cast<char*>(tail.data()));
  size_t left = tail.size();
  while (left >= log::kBatchHeaderSize) {
    uint32_t len = DecodeFixed32(p + log::kLengthPos);
    if (len < log::kBatchHeaderSize || len > left) return Status::Corruption("bad batch in fetch response");
    batches.push_back({p, len});
    p += len;
    left -= len;
  }
  if (batches.empty()) return Status::OK();
  if (DecodeFixed64(batches[0].data() + log::kBaseOffsetPos) != next)
    return Status::Corruption(fmt::format("{}/{}: source batch at {} does not start at the target's end {}", m.src,
                                          proto::ShardIdName(ss.index),
                                          DecodeFixed64(batches[0].data() + log::kBaseOffsetPos), next));
  // Our producer identity and sequence (idempotent, in order), then the CRCs again.
  int32_t& seq = m.seq.try_emplace(ss.index, 0).first->second;
  std::vector<uint32_t> corrs;
  size_t sent = 0;
  Status failed;
  auto receive_one = [&]() -> Status {
    SK_ASSIGN_OR_RETURN(auto a, dst_->Receive());
    if (!a.ok() && failed.ok()) failed = client::ResponseStatus(a);
    return Status::OK();
  };
  size_t in_flight = 0;
  for (auto& b : batches) {
    uint32_t count = DecodeFixed32(b.data() + log::kRecordCountPos);
    EncodeFixed64(b.data() + log::kProducerIdPos, uint64_t(producer_id_));
    EncodeFixed16(b.data() + log::kProducerEpochPos, 0);
    EncodeFixed32(b.data() + log::kBaseSequencePos, uint32_t(seq));
    EncodeFixed32(b.data() + log::kBodyCrcPos, crc32c::Value(b.data() + log::kBodyCrcStart, b.size() - log::kBodyCrcStart));
    EncodeFixed32(b.data() + log::kHeaderCrcPos, crc32c::Value(b.data(), log::kHeaderCrcPos));
    seq = int32_t((int64_t(seq) + count) % (int64_t(INT32_MAX) + 1));
    uint32_t shard = ss.index;
    SK_ASSIGN_OR_RETURN(uint32_t corr, dst_->Send(Type::kMirrorProduce, [&](Writer& w) { w.str(m.dst).u32(shard); },
                                                  std::span<const uint8_t>(b.data(), b.size())));
    (void)corr;
    in_flight++;
    sent += b.size();
    if (in_flight >= kMaxInFlight) {
      SK_TRY(receive_one());
      in_flight--;
    }
  }
  while (in_flight > 0) {
    SK_TRY(receive_one());
    in_flight--;
  }
  // Where the target stands now decides what comes next (after an error too: no
  // record is sent twice, none skipped).
  SK_ASSIGN_OR_RETURN(m.d, client::DescribeStream(*dst_, m.dst));
  const proto::ShardInfo* now = Find(m.d, ss.index);
  uint64_t moved = now && now->end_offset > next ? now->end_offset - next : 0;
  copied_ += moved;
  m.done[ss.index] += moved;
  bytes_ += sent;
  if (!failed.ok()) {
    SK_TRY(InitProducer());  // fresh sequences from the target's end
    // Nothing got through: an error for the caller to retry (and report), not a
    // quiet "nothing to do".
    if (moved == 0) return Status::IoError(fmt::format("{} on the target: {}", m.dst, failed.message()));
    if (o_.verbose) std::fprintf(stderr, "%s: %s: %s; resuming from the target's end\n", kTool, m.dst.c_str(),
                                 failed.message().c_str());
  }
  *got = moved > 0;
  return Status::OK();
}

Status Tool::SyncGroups(Mirror& m) {
  // Consumer-group checkpoints, translated: sequence numbers are the same on both
  // sides, so a checkpoint moves over as is, capped at what the target holds.
  SK_ASSIGN_OR_RETURN(auto source, client::ListGroups(*src_, m.src));
  SK_ASSIGN_OR_RETURN(auto target, client::ListGroups(*dst_, m.dst));
  std::map<std::string, std::map<uint32_t, uint64_t>> have;
  std::set<std::string> live;  // groups with members on the target: hands off
  for (auto& g : target) {
    for (auto& c : g.checkpoints) have[g.name][c.shard] = c.checkpoint;
    if (!g.members.empty()) live.insert(g.name);
  }
  for (auto& g : source) {
    if (live.count(g.name)) continue;
    for (auto& c : g.checkpoints) {
      const proto::ShardInfo* ds = Find(m.d, c.shard);
      if (!ds) continue;
      uint64_t ck = std::min(c.checkpoint, ds->end_offset);
      auto it = have[g.name].find(c.shard);
      if (it != have[g.name].end() && it->second >= ck) continue;  // only ever forward
      auto rr = dst_->Call(Type::kGroupReset, [&](Writer& w) {
        w.str(m.dst).str(g.name).str("seq:" + U128ToString(proto::SequenceNumber(c.shard, ck)));
      });
      if (!rr.ok()) return rr.status();
    }
  }
  return Status::OK();
}

void Tool::Report(bool final) {
  bool tty = ::isatty(2);
  if (!o_.verbose && !tty) return;
  auto now = Clock::now();
  if (!final && now - last_report_ < std::chrono::seconds(o_.verbose ? 5 : 1)) return;
  last_report_ = now;
  double secs = std::max(0.001, std::chrono::duration<double>(now - started_).count());
  uint64_t behind = 0;
  std::string per;
  for (auto& m : mirrors_) {
    uint64_t b = 0;
    for (auto& s : m.s.shards) {
      const proto::ShardInfo* d = Find(m.d, s.index);
      uint64_t have = d ? d->end_offset : s.start_offset;
      b += s.end_offset > have ? s.end_offset - have : 0;
    }
    behind += b;
    per += fmt::format(" {}:{}", m.src, b);
  }
  if (o_.verbose)
    std::fprintf(stderr, "%s: %llu records copied (%.0f/s, %.1f MB/s); behind:%s\n", kTool, (unsigned long long)copied_,
                 double(copied_) / secs, double(bytes_) / secs / 1e6, per.c_str());
  else
    std::fprintf(stderr, "\r%s: %llu records behind, %llu copied (%.0f/s)   %s", kTool, (unsigned long long)behind,
                 (unsigned long long)copied_, double(copied_) / secs, final ? "\n" : "");
}

int Tool::Run() {
  Status st = Connect();
  if (!st.ok()) return tools::Fail(kTool, st);
  st = Resolve();
  if (!st.ok()) return tools::Fail(kTool, st);
  for (auto& m : mirrors_) {
    st = Prepare(m);
    if (!st.ok()) return tools::Fail(kTool, st);
  }
  int failures = 0;
  while (!tools::StopRequested()) {
    bool progress = false, pending = false;
    st = Status::OK();
    for (size_t k = 0; k < mirrors_.size(); k++) {
      Mirror& m = mirrors_[k];
      auto s = client::DescribeStream(*src_, m.src);
      if (!s.ok() && s.status().is(Status::Code::kNotFound)) {
        std::fprintf(stderr, "%s: source stream %s was deleted on %s; no longer mirrored\n", kTool, m.src.c_str(),
                     o_.from.c_str());
        mirrors_.erase(mirrors_.begin() + long(k));
        k--;
        continue;
      }
      if (!s.ok()) {
        st = s.status();
        break;
      }
      m.s = std::move(*s);
      bool p = false;
      st = SyncTopology(m, &p);
      if (!st.ok()) break;
      pending |= p;
      for (auto& ss : m.s.shards) {
        bool got = false;
        st = CopyShard(m, ss, &got);
        if (!st.ok()) break;
        progress |= got;
        if (tools::StopRequested()) break;
      }
      if (!st.ok()) break;
      if (o_.sync_groups && Clock::now() - last_groups_ >= std::chrono::seconds(2)) {
        st = SyncGroups(m);
        if (!st.ok()) break;
      }
    }
    if (o_.sync_groups && Clock::now() - last_groups_ >= std::chrono::seconds(2)) last_groups_ = Clock::now();
    if (!st.ok()) {
      // A server went away (restart, kill -9): reconnect and go on from the target's end.
      if (st.is(Status::Code::kNotFound) || st.is(Status::Code::kInvalidArgument) || st.is(Status::Code::kCorruption) ||
          ++failures > 600)
        return tools::Fail(kTool, st);
      if (failures == 1) std::fprintf(stderr, "%s: %s; retrying\n", kTool, st.message().c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      Status c = Connect();
      if (c.ok())
        for (auto& m : mirrors_) {
          auto d = client::DescribeStream(*dst_, m.dst);
          if (d.ok()) m.d = std::move(*d);
        }
      continue;
    }
    if (failures > 0) std::fprintf(stderr, "%s: going on\n", kTool);
    failures = 0;
    // --all / --match: streams made on the source later are picked up.
    if ((o_.all || !o_.match.empty()) && !o_.once && Clock::now() - last_scan_ >= std::chrono::seconds(5)) {
      last_scan_ = Clock::now();
      Status rs = Resolve(/*quiet=*/true);
      if (!rs.ok() && !rs.is(Status::Code::kInvalidArgument)) std::fprintf(stderr, "%s: %s\n", kTool, rs.message().c_str());
      for (auto& m : mirrors_)
        if (m.d.name.empty()) {
          Status ps = Prepare(m);
          if (!ps.ok()) {
            std::fprintf(stderr, "%s: %s\n", kTool, ps.message().c_str());
            refused_.insert(m.src);
          }
        }
      std::erase_if(mirrors_, [](const Mirror& m) { return m.d.name.empty(); });
    }
    Report(false);
    if (o_.once && !progress && !pending) break;
    if (!progress) std::this_thread::sleep_for(std::chrono::milliseconds(o_.once ? 10 : 100));
  }
  if (o_.sync_groups)
    for (auto& m : mirrors_) (void)SyncGroups(m);
  Report(true);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tools::KeepFreedMemory();  // batches and answers of MiBs come and go
  tools::EnsureStdFds();
  tools::UseBatchScheduling(kTool);
  CLI::App app{"stream-mirror: keep streams of one stream-serve in step on another, exactly once (MirrorMaker 2)."};
  Options o;
  app.add_option("--from", o.from, "Source server's socket")->required();
  app.add_option("--to", o.to, "Target server's socket")->required();
  app.add_option("STREAM", o.streams, "Streams to mirror");
  app.add_flag("--all", o.all, "Mirror every stream of the source");
  app.add_option("--match", o.match, "Mirror the source's streams whose names match this (extended) regex");
  app.add_option("--rename", o.rename, "Target name: a template with {stream} and {source} (default {stream})");
  app.add_option("--source-alias", o.alias, "What {source} stands for in --rename (default 'source')");
  app.add_flag("--once", o.once, "Copy everything up to the source's current end, then exit 0 (for cron)");
  app.add_flag("--sync-groups", o.sync_groups, "Copy consumer-group checkpoints to the target (for failover)");
  app.add_flag("-v,--verbose", o.verbose, "Print records copied and behind per stream every 5 s");
  tools::AddVersionFlag(app, kTool);
  app.footer("Exit status: 0 success; 1 failure (a server unreachable for long); 2 usage; 3 bad input (loop,\n"
             "name, a target that is not our mirror); 4 no such source stream.\n\n"
             "Examples:\n  stream-mirror --from /run/a.sock --to /run/b.sock orders payments\n"
             "  stream-mirror --from a.sock --to b.sock --all --rename '{source}.{stream}' --source-alias east\n"
             "  stream-mirror --from a.sock --to b.sock --all --once --sync-groups   # cron backup");
  if (int rc = tools::Parse(app, argc, argv, kTool); rc >= 0) return rc;
  tools::IgnoreSigpipe();
  tools::CatchStopSignals();
  Tool t(std::move(o));
  return t.Run();
}

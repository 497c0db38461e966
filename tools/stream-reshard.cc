// stream-reshard: split, merge, scale, on-demand mode, and the shard tree.
//
// Every change is one request to the server, which applies it atomically (one
// stream.meta write): a crash leaves the old topology or the new one. Producers in
// flight are told to refresh their shard map; consumers read parents before children.
#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include "common/config.h"
#include "proto/protocol.h"
#include "tool_common.h"

using namespace streamkit;
using proto::Type;
using proto::Writer;

namespace {

const char* kTool = "stream-reshard";

std::string Id(uint32_t s) { return proto::ShardIdName(s); }

// A hash key as a share of the 128-bit key space, e.g. "37.50%".
std::string Pct(u128 v, bool end) {
  long double x = (long double)(uint64_t(v >> 64)) * 18446744073709551616.0L + (long double)uint64_t(v);
  if (end) x += 1;
  return fmt::format("{:.2f}%", double(x / 3.402823669209384634633746e38L * 100));
}

std::string HumanRate(uint64_t b) {
  if (b >= (1u << 20)) return fmt::format("{:.1f} MiB/s", double(b) / double(1u << 20));
  if (b >= 1024) return fmt::format("{:.1f} KiB/s", double(b) / 1024.0);
  return fmt::format("{} B/s", b);
}

std::string StepText(const proto::ReshardStep& s, const std::map<uint32_t, std::pair<u128, u128>>& ranges) {
  auto range = [&](uint32_t i) {
    auto it = ranges.find(i);
    return it == ranges.end() ? std::string()
                              : fmt::format(" [{}..{}]", Pct(it->second.first, false), Pct(it->second.second, true));
  };
  if (s.kind == 1)
    return fmt::format("split {} at {} -> {}{}, {}{}", Id(s.shard), U128ToString(s.at), Id(s.child1),
                       range(s.child1), Id(uint32_t(s.child2)), range(uint32_t(s.child2)));
  return fmt::format("merge {} + {} -> {}{}", Id(s.shard), Id(s.adjacent), Id(s.child1), range(s.child1));
}

bool Hot(const proto::StreamInfo& si, const proto::ShardInfo& s) {
  uint64_t b = si.scaling.split_bytes_per_s ? si.scaling.split_bytes_per_s : (1u << 20);
  uint64_t r = si.scaling.split_records_per_s ? si.scaling.split_records_per_s : 1000;
  return s.state == proto::kOpen && (s.write_bytes_per_s > b || s.write_records_per_s > r);
}

std::string StatusJson(const proto::StreamInfo& si) {
  std::string shards, events;
  for (const auto& s : si.shards) {
    if (!shards.empty()) shards += ",";
    shards += fmt::format(
        R"({{"shard":{},"state":"{}","parent":{},"adjacent_parent":{},"starting_hash_key":"{}","ending_hash_key":"{}",)"
        R"("records":{},"bytes":{},"write_bytes_per_s":{},"write_records_per_s":{},"hot":{},"created":{},"closed":{}}})",
        JsonQuote(Id(s.index)), s.state == proto::kOpen ? "OPEN" : "CLOSED",
        s.parent < 0 ? "null" : JsonQuote(Id(uint32_t(s.parent))),
        s.adjacent_parent < 0 ? "null" : JsonQuote(Id(uint32_t(s.adjacent_parent))), U128ToString(s.start_hash),
        U128ToString(s.end_hash), s.end_offset - s.start_offset, s.bytes, s.write_bytes_per_s, s.write_records_per_s,
        Hot(si, s) ? "true" : "false", s.created_ms ? JsonQuote(FormatTimeMs(s.created_ms)) : "null",
        s.closed_ms ? JsonQuote(FormatTimeMs(s.closed_ms)) : "null");
  }
  for (const auto& e : si.events) {
    if (!events.empty()) events += ",";
    events += fmt::format(R"({{"time":{},"event":{}}})", JsonQuote(FormatTimeMs(e.time_ms)), JsonQuote(e.text));
  }
  const auto& p = si.scaling;
  size_t open = 0;
  for (const auto& s : si.shards) open += s.state == proto::kOpen;
  return fmt::format(
      R"({{"stream":{},"mode":"{}","open_shards":{},"scaling":{{"min_shards":{},"max_shards":{},"split_bytes_per_s":{},)"
      R"("split_records_per_s":{},"merge_below_pct":{},"hot_for_ms":{},"cold_for_ms":{}}},"shards":[{}],"events":[{}]}})",
      JsonQuote(si.name), p.on_demand ? "ON_DEMAND" : "PROVISIONED", open, p.min_shards, p.max_shards,
      p.split_bytes_per_s, p.split_records_per_s, p.merge_pct, p.hot_ms, p.cold_ms, shards, events);
}

void PrintStatus(const proto::StreamInfo& si) {
  size_t open = 0;
  for (const auto& s : si.shards) open += s.state == proto::kOpen;
  const auto& p = si.scaling;
  std::printf("stream %s: %zu open shard%s, %zu in all; ", si.name.c_str(), open, open == 1 ? "" : "s",
              si.shards.size());
  if (p.on_demand)
    std::printf("on-demand %u-%u shards (split above %s or %llu records/s for %s, merge below %u%% for %s)\n",
                p.min_shards, p.max_shards, HumanRate(p.split_bytes_per_s).c_str(),
                (unsigned long long)p.split_records_per_s, FormatDuration(p.hot_ms).c_str(), p.merge_pct,
                FormatDuration(p.cold_ms).c_str());
  else
    std::printf("manual (provisioned)\n");
  std::printf("\n%-34s %-6s %-17s %10s %12s %12s\n", "SHARD", "STATE", "KEY SPACE", "RECORDS", "WRITE_REC/S",
              "WRITE_B/S");
  // The tree: each shard under its parent (a merged shard under its first parent,
  // naming the other); shards whose parents are gone (expired) are roots.
  std::map<uint32_t, const proto::ShardInfo*> by;
  for (const auto& s : si.shards) by[s.index] = &s;
  std::map<int64_t, std::vector<uint32_t>> kids;
  for (const auto& s : si.shards) {
    int64_t parent = s.parent >= 0 && by.count(uint32_t(s.parent)) ? s.parent
                     : s.adjacent_parent >= 0 && by.count(uint32_t(s.adjacent_parent)) ? s.adjacent_parent
                                                                                      : -1;
    kids[parent].push_back(s.index);
  }
  for (auto& [k, v] : kids)
    std::sort(v.begin(), v.end(), [&](uint32_t a, uint32_t b) { return by[a]->start_hash < by[b]->start_hash; });
  std::function<void(uint32_t, const std::string&, bool, bool)> print = [&](uint32_t i, const std::string& prefix,
                                                                            bool last, bool root) {
    const proto::ShardInfo& s = *by[i];
    std::string name = root ? Id(i) : prefix + (last ? "`- " : "|- ") + Id(i);
    std::string range = fmt::format("{}-{}", Pct(s.start_hash, false), Pct(s.end_hash, true));
    std::string note;
    if (s.adjacent_parent >= 0) note = fmt::format("  (merged {} + {})", Id(uint32_t(s.parent)), Id(uint32_t(s.adjacent_parent)));
    if (Hot(si, s)) note += "  HOT";
    std::printf("%-34s %-6s %-17s %10llu %12llu %12s%s\n", name.c_str(), s.state == proto::kOpen ? "open" : "closed",
                range.c_str(), (unsigned long long)(s.end_offset - s.start_offset),
                (unsigned long long)s.write_records_per_s, HumanRate(s.write_bytes_per_s).c_str(), note.c_str());
    auto it = kids.find(int64_t(i));
    if (it == kids.end()) return;
    std::string sub = root ? "" : prefix + (last ? "   " : "|  ");
    for (size_t k = 0; k < it->second.size(); k++) {
      uint32_t c = it->second[k];
      // A merged child hangs under its first parent only.
      print(c, sub, k + 1 == it->second.size(), false);
    }
  };
  for (uint32_t r : kids[-1]) print(r, "", true, true);
  std::printf("\n%-34s %s\n", "SHARD", "HASH KEY RANGE");
  for (const auto& s : si.shards)
    if (s.state == proto::kOpen)
      std::printf("%-34s %s..%s\n", Id(s.index).c_str(), U128ToString(s.start_hash).c_str(),
                  U128ToString(s.end_hash).c_str());
  if (!si.events.empty()) {
    std::printf("\nrecent changes\n");
    for (const auto& e : si.events) std::printf("  %s  %s\n", FormatTimeMs(e.time_ms).c_str(), e.text.c_str());
  }
}

int Apply(client::Client& c, const std::string& name, bool dry_run, uint8_t mode, uint32_t target,
          const std::vector<proto::ReshardStep>& steps) {
  auto before = client::DescribeStream(c, name);
  if (!before.ok()) return tools::Fail(kTool, before.status());
  auto r = c.CallOk(Type::kReshard, [&](Writer& w) {
    w.str(name).u8(dry_run ? 1 : 0).u8(mode);
    if (mode == 1) {
      w.u32(target);
    } else {
      w.u32(uint32_t(steps.size()));
      for (const auto& s : steps) s.Encode(w);
    }
  });
  if (!r.ok()) return tools::Fail(kTool, r.status());
  auto rd = r->body();
  uint32_t n = 0;
  rd.u32(&n);
  std::vector<proto::ReshardStep> done(n);
  for (auto& s : done)
    if (!s.Decode(rd)) return tools::FailMsg(kTool, tools::kExitFailure, "malformed reshard response");
  proto::StreamInfo after;
  if (!after.Decode(rd)) return tools::FailMsg(kTool, tools::kExitFailure, "malformed reshard response");
  // Ranges of every shard named, for the lines printed (children of a dry run are
  // worked out here, as the server would make them).
  std::map<uint32_t, std::pair<u128, u128>> ranges;
  for (const auto& s : (dry_run ? before->shards : after.shards)) ranges[s.index] = {s.start_hash, s.end_hash};
  size_t splits = 0, merges = 0;
  for (const auto& s : done) {
    if (s.kind == 1) {
      auto [a, b] = ranges[s.shard];
      ranges[s.child1] = {a, s.at - 1};
      ranges[uint32_t(s.child2)] = {s.at, b};
      splits++;
    } else {
      auto [a1, b1] = ranges[s.shard];
      auto [a2, b2] = ranges[s.adjacent];
      ranges[s.child1] = {std::min(a1, a2), std::max(b1, b2)};
      merges++;
    }
    std::printf("%s%s\n", dry_run ? "would " : "", StepText(s, ranges).c_str());
  }
  size_t open_before = 0, open_after = 0;
  for (const auto& s : before->shards) open_before += s.state == proto::kOpen;
  open_after = open_before + splits - merges;
  if (done.empty())
    std::fprintf(stderr, "%s: %s already has %zu open shards with even ranges; nothing to do\n", kTool, name.c_str(),
                 open_before);
  else
    std::fprintf(stderr, "%s: %s%s: %zu open shard%s -> %zu (%zu split%s, %zu merge%s)\n", kTool, name.c_str(),
                 dry_run ? " (dry run, nothing changed)" : "", open_before, open_before == 1 ? "" : "s", open_after,
                 splits, splits == 1 ? "" : "s", merges, merges == 1 ? "" : "s");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tools::EnsureStdFds();
  tools::UseBatchScheduling(kTool);
  CLI::App app{"stream-reshard: split and merge shards, scale a stream, turn on-demand scaling on or off, "
               "and show the shard tree."};
  app.require_subcommand(1);
  app.fallthrough();
  client::ConnectOptions copts;
  copts.client_name = kTool;
  bool no_autostart = false, json = false, dry_run = false;
  tools::AddClientFlags(app, &copts, &no_autostart);
  tools::AddVersionFlag(app, kTool);
  std::string name, shard_a, shard_b, at;
  uint32_t target = 0;
  app.add_option("STREAM", name, "Stream name")->required();

  auto* split = app.add_subcommand("split", "Split an open shard in two (SplitShard)");
  split->add_option("SHARD", shard_a, "Shard to split, e.g. shardId-000000000000 or 0")->required();
  split->add_option("--at", at, "First hash key of the second child (decimal; default: the middle of the range)");
  split->add_flag("--dry-run", dry_run, "Print what would change, change nothing");

  auto* merge = app.add_subcommand("merge", "Merge two open shards with adjacent ranges into one (MergeShards)");
  merge->add_option("SHARD_A", shard_a, "First shard")->required();
  merge->add_option("SHARD_B", shard_b, "Adjacent shard")->required();
  merge->add_flag("--dry-run", dry_run, "Print what would change, change nothing");

  auto* scale = app.add_subcommand("scale", "Reach N open shards with even ranges through splits and merges (UpdateShardCount)");
  scale->add_option("N", target, "Target number of open shards (1-10000)")->required();
  scale->add_flag("--dry-run", dry_run, "Print the plan, change nothing");

  std::string split_bytes = "1MiB", hot_for = "30s", cold_for = "5m";
  proto::ScalingInfo pol;
  pol.on_demand = 1;
  auto* autos = app.add_subcommand("auto", "On-demand mode: the server splits hot shards and merges cold neighbours "
                                           "(options not given keep their stored values)");
  auto* o_min = autos->add_option("--min", pol.min_shards, "Fewest open shards (default 1)");
  auto* o_max = autos->add_option("--max", pol.max_shards, "Most open shards (default 64)");
  auto* o_sb = autos->add_option("--split-bytes", split_bytes, "A shard writing more than this per second is hot (default 1MiB)");
  auto* o_sr = autos->add_option("--split-records", pol.split_records_per_s, "... or more records than this per second (default 1000)");
  auto* o_hot = autos->add_option("--hot-for", hot_for, "Split a shard hot for this long (default 30s)");
  auto* o_mb = autos->add_option("--merge-below", pol.merge_pct,
                    "Merge two neighbours writing less than this percent of one shard's capacity together (default 25)");
  auto* o_cold = autos->add_option("--cold-for", cold_for, "... for this long (default 5m)");

  auto* manual = app.add_subcommand("manual", "Turn on-demand mode off (the shard count stays as it is)");
  auto* status = app.add_subcommand("status", "Show the shard tree: ids, ranges, parents, state, write rates");
  status->add_flag("--json", json, "JSON output");

  app.footer(
      "Exit status: 0 success; 1 failure; 2 usage; 3 bad input (unknown or closed shard, ranges not adjacent,\n"
      "--at outside the range, shard count out of range; the topology is unchanged); 4 no such stream.\n\n"
      "Examples:\n  stream-reshard orders split shardId-000000000000\n"
      "  stream-reshard orders merge shardId-000000000001 shardId-000000000002\n"
      "  stream-reshard orders scale 8 --dry-run\n  stream-reshard orders auto --min 2 --max 32\n"
      "  stream-reshard orders status");
  if (int rc = tools::Parse(app, argc, argv, kTool); rc >= 0) return rc;
  copts.autostart = !no_autostart;
  if (!proto::ValidName(name))
    return tools::FailMsg(kTool, tools::kExitBadInput,
                          proto::InvalidNameMessage("stream", name));

  // Local checks first: nothing is sent for a request that cannot be right.
  std::vector<proto::ReshardStep> steps;
  auto shard_arg = [&](const std::string& text, uint32_t* out) {
    if (!proto::ParseShardId(text, out)) {
      std::fprintf(stderr, "%s: '%s' is not a shard id (e.g. shardId-000000000003 or 3)\n", kTool, text.c_str());
      return false;
    }
    return true;
  };
  if (split->parsed()) {
    proto::ReshardStep s;
    s.kind = 1;
    if (!shard_arg(shard_a, &s.shard)) return tools::kExitBadInput;
    if (!at.empty()) {
      auto v = ParseU128(at);
      if (!v || *v == 0)
        return tools::FailMsg(kTool, tools::kExitBadInput,
                              fmt::format("--at '{}' is not a hash key in 1..2^128-1 (decimal)", at));
      s.at = *v;
    }
    steps.push_back(s);
  }
  if (merge->parsed()) {
    proto::ReshardStep s;
    s.kind = 2;
    if (!shard_arg(shard_a, &s.shard) || !shard_arg(shard_b, &s.adjacent)) return tools::kExitBadInput;
    steps.push_back(s);
  }
  if (scale->parsed() && (target < 1 || target > 10000))
    return tools::FailMsg(kTool, tools::kExitBadInput,
                          fmt::format("cannot scale to {} shards: the count must be 1-10000", target));
  if (autos->parsed()) {
    if (!o_sb->count()) split_bytes = "";
    auto b = split_bytes.empty() ? Result<uint64_t>(uint64_t(1)) : ParseSize(split_bytes);
    if (!b.ok() || *b == 0) return tools::FailMsg(kTool, tools::kExitUsage, "--split-bytes must be a size like 512KiB");
    pol.split_bytes_per_s = *b;
    auto h = ParseDurationMs(hot_for), cd = ParseDurationMs(cold_for);
    if (!h.ok()) return tools::FailMsg(kTool, tools::kExitUsage, h.status().message());
    if (!cd.ok()) return tools::FailMsg(kTool, tools::kExitUsage, cd.status().message());
    pol.hot_ms = *h;
    pol.cold_ms = *cd;
    if (o_sr->count() && pol.split_records_per_s == 0)
      return tools::FailMsg(kTool, tools::kExitUsage, "--split-records must be positive");
    if (pol.merge_pct > 100) return tools::FailMsg(kTool, tools::kExitUsage, "--merge-below is a percent: 0-100");
  }

  auto conn = client::Client::Connect(copts);
  if (!conn.ok()) return tools::Fail(kTool, conn.status());
  client::Client& c = **conn;

  if (split->parsed() || merge->parsed()) return Apply(c, name, dry_run, 0, 0, steps);
  if (scale->parsed()) return Apply(c, name, dry_run, 1, target, steps);
  if (autos->parsed() || manual->parsed()) {
    // Start from the stored policy: `manual` keeps the thresholds for the next
    // `auto`, and `auto` changes only what its options name.
    auto cur = client::DescribeStream(c, name);
    if (!cur.ok()) return tools::Fail(kTool, cur.status());
    proto::ScalingInfo given = pol;
    pol = cur->scaling;
    pol.on_demand = autos->parsed() ? 1 : 0;
    if (autos->parsed()) {
      if (o_min->count()) pol.min_shards = given.min_shards;
      if (o_max->count()) pol.max_shards = given.max_shards;
      if (o_sb->count()) pol.split_bytes_per_s = given.split_bytes_per_s;
      if (o_sr->count()) pol.split_records_per_s = given.split_records_per_s;
      if (o_hot->count()) pol.hot_ms = given.hot_ms;
      if (o_mb->count()) pol.merge_pct = given.merge_pct;
      if (o_cold->count()) pol.cold_ms = given.cold_ms;
      if (pol.min_shards < 1 || pol.min_shards > pol.max_shards || pol.max_shards > 10000)
        return tools::FailMsg(kTool, tools::kExitBadInput,
                              fmt::format("--min {} --max {}: need 1 <= min <= max <= 10000", pol.min_shards,
                                          pol.max_shards));
    }
    auto r = c.CallOk(Type::kSetScaling, [&](Writer& w) { pol.Encode(w.str(name)); });
    if (!r.ok()) return tools::Fail(kTool, r.status());
    if (manual->parsed())
      std::fprintf(stderr, "%s: %s: on-demand scaling off; shards change only by split, merge and scale\n", kTool,
                   name.c_str());
    else
      std::fprintf(stderr, "%s: %s: on-demand scaling on: %u-%u shards, split above %s or %llu records/s for %s, "
                   "merge neighbours below %u%% for %s\n", kTool, name.c_str(), pol.min_shards, pol.max_shards,
                   HumanRate(pol.split_bytes_per_s).c_str(), (unsigned long long)pol.split_records_per_s,
                   FormatDuration(pol.hot_ms).c_str(), pol.merge_pct, FormatDuration(pol.cold_ms).c_str());
    return 0;
  }
  if (status->parsed()) {
    auto si = client::DescribeStream(c, name);
    if (!si.ok()) return tools::Fail(kTool, si.status());
    if (json) std::printf("%s\n", StatusJson(*si).c_str());
    else PrintStatus(*si);
    return 0;
  }
  return 0;
}

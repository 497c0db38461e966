// stream-ctl: create, delete, list and describe streams; retention; consumer groups.
#include <cstdio>

#include "common/config.h"
#include "proto/protocol.h"
#include "tool_common.h"

using namespace streamkit;
using proto::Type;
using proto::Writer;

namespace {

const char* kTool = "stream-ctl";
constexpr int64_t kHourMs = 3600 * 1000;

std::string HumanBytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.1f} GiB", double(b) / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.1f} MiB", double(b) / double(1ull << 20));
  if (b >= 1024) return fmt::format("{:.1f} KiB", double(b) / 1024.0);
  return fmt::format("{} B", b);
}

std::string FirstSeq(const proto::ShardInfo& s) {
  return s.end_offset > s.start_offset ? U128ToString(proto::SequenceNumber(s.index, s.start_offset)) : "-";
}
std::string LastSeq(const proto::ShardInfo& s) {
  return s.end_offset > s.start_offset ? U128ToString(proto::SequenceNumber(s.index, s.end_offset - 1)) : "-";
}
std::string ParentName(int32_t p) { return p < 0 ? "-" : proto::ShardIdName(uint32_t(p)); }

std::string StreamJson(const proto::StreamInfo& si) {
  std::string shards;
  for (const auto& s : si.shards) {
    if (!shards.empty()) shards += ",";
    shards += fmt::format(
        R"({{"shard":{},"state":"{}","parent":{},"adjacent_parent":{},"starting_hash_key":"{}","ending_hash_key":"{}",)"
        R"("first_sequence":{},"last_sequence":{},"start_offset":{},"end_offset":{},"records":{},"bytes":{},)"
        R"("write_bytes_per_s":{},"write_records_per_s":{}}})",
        JsonQuote(proto::ShardIdName(s.index)), s.state == proto::kOpen ? "OPEN" : "CLOSED",
        s.parent < 0 ? "null" : JsonQuote(proto::ShardIdName(uint32_t(s.parent))),
        s.adjacent_parent < 0 ? "null" : JsonQuote(proto::ShardIdName(uint32_t(s.adjacent_parent))),
        U128ToString(s.start_hash), U128ToString(s.end_hash),
        s.end_offset > s.start_offset ? JsonQuote(FirstSeq(s)) : "null",
        s.end_offset > s.start_offset ? JsonQuote(LastSeq(s)) : "null", s.start_offset, s.end_offset,
        s.end_offset - s.start_offset, s.bytes, s.write_bytes_per_s, s.write_records_per_s);
  }
  uint64_t records = 0, bytes = 0;
  for (const auto& s : si.shards) {
    records += s.end_offset - s.start_offset;
    bytes += s.bytes;
  }
  std::string events;
  for (const auto& e : si.events) {
    if (!events.empty()) events += ",";
    events += fmt::format(R"({{"time":{},"event":{}}})", JsonQuote(FormatTimeMs(e.time_ms)), JsonQuote(e.text));
  }
  const auto& p = si.scaling;
  std::string scaling = fmt::format(
      R"({{"min_shards":{},"max_shards":{},"split_bytes_per_s":{},"split_records_per_s":{},"merge_below_pct":{},"hot_for_ms":{},"cold_for_ms":{}}})",
      p.min_shards, p.max_shards, p.split_bytes_per_s, p.split_records_per_s, p.merge_pct, p.hot_ms, p.cold_ms);
  return fmt::format(
      R"({{"stream":{},"created":{},"retention_hours":{},"mode":"{}","enforce_limits":{},"max_record_bytes":{},"records":{},"bytes":{},"shards":[{}],"scaling":{},"events":[{}],"origin":{}}})",
      JsonQuote(si.name), JsonQuote(FormatTimeMs(si.created_ms)), si.retention_ms / kHourMs,
      (si.flags & proto::kFlagOnDemand) ? "ON_DEMAND" : "PROVISIONED",
      (si.flags & proto::kFlagEnforceLimits) ? "true" : "false", si.max_record_bytes, records, bytes, shards, scaling,
      events, si.origin.empty() ? "null" : JsonQuote(si.origin));
}

void PrintStream(const proto::StreamInfo& si) {
  size_t open = 0;
  uint64_t records = 0, bytes = 0;
  for (const auto& s : si.shards) {
    open += s.state == proto::kOpen;
    records += s.end_offset - s.start_offset;
    bytes += s.bytes;
  }
  std::printf("stream      %s\n", si.name.c_str());
  std::printf("created     %s\n", FormatTimeMs(si.created_ms).c_str());
  std::printf("retention   %s\n", FormatDuration(si.retention_ms).c_str());
  std::printf("mode        %s%s\n", (si.flags & proto::kFlagOnDemand) ? "on-demand" : "provisioned",
              (si.flags & proto::kFlagEnforceLimits) ? ", limits enforced (1 MiB/s, 1000 records/s in per shard)" : "");
  if (si.flags & proto::kFlagOnDemand) {
    const auto& p = si.scaling;
    std::printf("scaling     %u-%u shards; split above %s/s or %llu records/s for %s; merge below %u%% for %s\n",
                p.min_shards, p.max_shards, HumanBytes(p.split_bytes_per_s).c_str(),
                (unsigned long long)p.split_records_per_s, FormatDuration(p.hot_ms).c_str(), p.merge_pct,
                FormatDuration(p.cold_ms).c_str());
  }
  std::printf("max record  %s\n", HumanBytes(si.max_record_bytes).c_str());
  if (!si.origin.empty()) std::printf("mirror of   %s (kept by stream-mirror)\n", si.origin.c_str());
  std::printf("shards      %zu open, %zu total\n", open, si.shards.size());
  std::printf("records     %llu (%s)\n\n", (unsigned long long)records, HumanBytes(bytes).c_str());
  std::printf("%-20s %-6s %-20s %-20s %-39s %-39s %10s %10s %12s %12s\n", "SHARD", "STATE", "PARENT", "ADJACENT_PARENT",
              "STARTING_HASH_KEY", "ENDING_HASH_KEY", "RECORDS", "BYTES", "WRITE_REC/S", "WRITE_B/S");
  for (const auto& s : si.shards) {
    std::printf("%-20s %-6s %-20s %-20s %-39s %-39s %10llu %10s %12llu %12s\n", proto::ShardIdName(s.index).c_str(),
                s.state == proto::kOpen ? "open" : "closed", ParentName(s.parent).c_str(), ParentName(s.adjacent_parent).c_str(),
                U128ToString(s.start_hash).c_str(), U128ToString(s.end_hash).c_str(),
                (unsigned long long)(s.end_offset - s.start_offset), HumanBytes(s.bytes).c_str(),
                (unsigned long long)s.write_records_per_s, HumanBytes(s.write_bytes_per_s).c_str());
  }
  std::printf("\n%-20s %-58s %-58s\n", "SHARD", "FIRST_SEQUENCE", "LAST_SEQUENCE");
  for (const auto& s : si.shards)
    std::printf("%-20s %-58s %-58s\n", proto::ShardIdName(s.index).c_str(), FirstSeq(s).c_str(), LastSeq(s).c_str());
  if (!si.events.empty()) {
    std::printf("\nrecent changes (stream-reshard, on-demand scaling)\n");
    for (const auto& e : si.events) std::printf("  %s  %s\n", FormatTimeMs(e.time_ms).c_str(), e.text.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  tools::EnsureStdFds();
  tools::UseBatchScheduling(kTool);
  CLI::App app{"stream-ctl: create, delete, list and describe streams; retention; consumer groups."};
  app.require_subcommand(1);
  app.fallthrough();  // --socket and friends also after the subcommand
  client::ConnectOptions copts;
  copts.client_name = kTool;
  bool no_autostart = false, json = false;
  tools::AddClientFlags(app, &copts, &no_autostart);
  tools::AddVersionFlag(app, kTool);

  std::string name, group, retention = "24h", to, max_record = "1MiB";
  uint32_t shards = 1;
  bool enforce = false, on_demand = false;

  auto* create = app.add_subcommand("create", "Create a stream");
  create->add_option("NAME", name, "Stream name ([A-Za-z0-9_.-], 1-128 characters)")->required();
  create->add_option("--shards", shards, "Number of shards (default 1)")->check(CLI::Range(1, 10000));
  create->add_option("--retention", retention, "How long records are kept: 1h to 8760h (default 24h)");
  create->add_option("--max-record-size", max_record, "Largest key + data of one record (default 1MiB, up to 10MiB)");
  create->add_flag("--enforce-limits", enforce, "Throttle like provisioned Kinesis: 1 MiB/s and 1,000 records/s in per shard");
  create->add_flag("--on-demand", on_demand, "On-demand capacity mode (autoscaling by stream-reshard)");

  auto* del = app.add_subcommand("delete", "Delete a stream and all its records");
  del->add_option("NAME", name, "Stream name")->required();

  auto* list = app.add_subcommand("list", "List streams");
  list->add_flag("--json", json, "One JSON object per stream");

  auto* describe = app.add_subcommand("describe", "Show a stream's shards, ranges, sequence numbers, counts and rates");
  describe->add_option("NAME", name, "Stream name")->required();
  describe->add_flag("--json", json, "JSON output");

  auto* ret = app.add_subcommand("retention", "Change how long a stream keeps records");
  ret->add_option("NAME", name, "Stream name")->required();
  ret->add_option("DURATION", retention, "1h to 8760h, e.g. 48h or 7d")->required();

  auto* groups = app.add_subcommand("groups", "Show consumer groups: members, checkpoints and lag per shard");
  groups->add_option("NAME", name, "Stream name")->required();
  groups->add_flag("--json", json, "JSON output");

  auto* reset = app.add_subcommand("group-reset", "Move a consumer group's checkpoints (no member may be running)");
  reset->add_option("NAME", name, "Stream name")->required();
  reset->add_option("GROUP", group, "Group name")->required();
  reset->add_option("--to", to, "trim-horizon | latest | time:ISO-8601|time:-15m | seq:SEQUENCE")->required();

  app.footer("Examples:\n  stream-ctl create orders --shards 4 --retention 48h\n  stream-ctl describe orders\n"
             "  stream-ctl groups orders\n  stream-ctl group-reset orders billing --to time:-1h");
  // The command is the first word that is neither an option nor an option's value: an
  // unknown one is named (CLI11 would only say that a subcommand is required).
  for (int i = 1; i < argc; i++) {
    std::string_view a = argv[i];
    if (a == "--socket" || a == "--data") {
      i++;
      continue;
    }
    if (a.empty() || a[0] == '-') continue;
    auto subs = app.get_subcommands([&](CLI::App* sub) { return sub->get_name() == a; });
    if (subs.empty())
      return tools::FailMsg(kTool, tools::kExitUsage,
                            fmt::format("unknown command '{}': expected create, delete, list, describe, "
                                        "retention, groups or group-reset (see --help)", a));
    break;
  }
  if (int rc = tools::Parse(app, argc, argv, kTool); rc >= 0) return rc;
  copts.autostart = !no_autostart;

  // Check local arguments before connecting.
  int64_t retention_ms = 0;
  if (create->parsed() || ret->parsed()) {
    auto r = ParseDurationMs(retention, kHourMs);
    if (!r.ok()) return tools::FailMsg(kTool, tools::kExitUsage, r.status().message());
    retention_ms = *r;
  }
  uint64_t max_record_bytes = 0;
  if (create->parsed()) {
    auto m = ParseSize(max_record);
    if (!m.ok()) return tools::FailMsg(kTool, tools::kExitUsage, m.status().message());
    // 0 asks for the default (1MiB), as the man page says.
    if (*m != 0 && (*m < 1024 || *m > (10u << 20)))
      return tools::FailMsg(kTool, tools::kExitBadInput, "--max-record-size must be 1KiB to 10MiB (0: the default, 1MiB)");
    max_record_bytes = *m;
  }
  if (!list->parsed() && !proto::ValidName(name))
    return tools::FailMsg(kTool, tools::kExitBadInput,
                          proto::InvalidNameMessage("stream", name));

  auto conn = client::Client::Connect(copts);
  if (!conn.ok()) return tools::Fail(kTool, conn.status());
  client::Client& c = **conn;

  if (create->parsed()) {
    uint8_t flags = (enforce ? proto::kFlagEnforceLimits : 0) | (on_demand ? proto::kFlagOnDemand : 0);
    auto r = c.CallOk(Type::kCreateStream, [&](Writer& w) {
      w.str(name).u32(shards).i64(retention_ms).u8(flags).u32(uint32_t(max_record_bytes));
    });
    if (!r.ok()) return tools::Fail(kTool, r.status());
    std::fprintf(stderr, "created stream %s with %u shard%s\n", name.c_str(), shards, shards == 1 ? "" : "s");
    return 0;
  }
  if (del->parsed()) {
    auto r = c.CallOk(Type::kDeleteStream, [&](Writer& w) { w.str(name); });
    if (!r.ok()) return tools::Fail(kTool, r.status());
    std::fprintf(stderr, "deleted stream %s\n", name.c_str());
    return 0;
  }
  if (list->parsed()) {
    auto all = client::ListStreams(c);
    if (!all.ok()) return tools::Fail(kTool, all.status());
    if (!json && !all->empty())
      std::printf("%-40s %8s %12s %12s %10s\n", "STREAM", "SHARDS", "RECORDS", "BYTES", "RETENTION");
    for (const proto::StreamInfo& si : *all) {
      if (json) {
        std::printf("%s\n", StreamJson(si).c_str());
        continue;
      }
      size_t open = 0;
      uint64_t records = 0, bytes = 0;
      for (auto& s : si.shards) {
        open += s.state == proto::kOpen;
        records += s.end_offset - s.start_offset;
        bytes += s.bytes;
      }
      std::printf("%-40s %8zu %12llu %12s %10s\n", si.name.c_str(), open, (unsigned long long)records,
                  HumanBytes(bytes).c_str(), FormatDuration(si.retention_ms).c_str());
    }
    return 0;
  }
  if (describe->parsed()) {
    auto si = client::DescribeStream(c, name);
    if (!si.ok()) return tools::Fail(kTool, si.status());
    if (json) std::printf("%s\n", StreamJson(*si).c_str());
    else PrintStream(*si);
    return 0;
  }
  if (ret->parsed()) {
    auto r = c.CallOk(Type::kSetRetention, [&](Writer& w) { w.str(name).i64(retention_ms); });
    if (!r.ok()) return tools::Fail(kTool, r.status());
    std::fprintf(stderr, "stream %s now keeps records for %s\n", name.c_str(), FormatDuration(retention_ms).c_str());
    return 0;
  }
  if (groups->parsed()) {
    auto si = client::DescribeStream(c, name);
    if (!si.ok()) return tools::Fail(kTool, si.status());
    auto groups_of = client::ListGroups(c, name);
    if (!groups_of.ok()) return tools::Fail(kTool, groups_of.status());
    std::map<uint32_t, const proto::ShardInfo*> shard_by;
    for (auto& s : si->shards) shard_by[s.index] = &s;
    if (groups_of->empty() && !json) std::fprintf(stderr, "stream %s has no consumer groups\n", name.c_str());
    for (const proto::GroupInfo& g : *groups_of) {
      std::map<uint32_t, uint64_t> ck;
      for (auto& x : g.checkpoints) ck[x.shard] = x.checkpoint;
      std::map<uint32_t, std::string> owner;
      for (auto& m : g.members)
        for (uint32_t s : m.shards) owner[s] = m.member;
      if (json) {
        std::string shards;
        for (auto& s : si->shards) {
          if (!shards.empty()) shards += ",";
          bool has = ck.count(s.index);
          uint64_t lag = has ? (s.end_offset > ck[s.index] ? s.end_offset - ck[s.index] : 0) : s.end_offset - s.start_offset;
          // checkpoint: the last record done, null when none (no checkpoint, or one at
          // the shard's first offset); checkpointed tells the two apart.
          bool done = has && ck[s.index] > 0;
          shards += fmt::format(R"({{"shard":{},"checkpointed":{},"checkpoint":{},"lag":{},"owner":{}}})",
                                JsonQuote(proto::ShardIdName(s.index)), has ? "true" : "false",
                                done ? JsonQuote(U128ToString(proto::SequenceNumber(s.index, ck[s.index] - 1))) : "null",
                                lag, owner.count(s.index) ? JsonQuote(owner[s.index]) : "null");
        }
        std::string members;
        for (auto& m : g.members) {
          if (!members.empty()) members += ",";
          members += JsonQuote(m.member);
        }
        std::printf("{\"group\":%s,\"members\":[%s],\"shards\":[%s]}\n", JsonQuote(g.name).c_str(), members.c_str(), shards.c_str());
        continue;
      }
      std::printf("group %s: %zu live member%s\n", g.name.c_str(), g.members.size(), g.members.size() == 1 ? "" : "s");
      std::printf("  %-20s %-24s %-58s %10s\n", "SHARD", "OWNER", "CHECKPOINT (last sequence done)", "LAG");
      for (auto& s : si->shards) {
        bool has = ck.count(s.index);
        uint64_t lag = has ? (s.end_offset > ck[s.index] ? s.end_offset - ck[s.index] : 0) : s.end_offset - s.start_offset;
        std::string cks = !has ? "-" : ck[s.index] == 0 ? "(none read)" : U128ToString(proto::SequenceNumber(s.index, ck[s.index] - 1));
        std::printf("  %-20s %-24s %-58s %10llu\n", proto::ShardIdName(s.index).c_str(),
                    owner.count(s.index) ? owner[s.index].c_str() : "-", cks.c_str(), (unsigned long long)lag);
      }
    }
    return 0;
  }
  if (reset->parsed()) {
    if (!proto::ValidName(group))
      return tools::FailMsg(kTool, tools::kExitBadInput, proto::InvalidNameMessage("group", group));
    auto r = c.CallOk(Type::kGroupReset, [&](Writer& w) { w.str(name).str(group).str(to); });
    if (!r.ok()) return tools::Fail(kTool, r.status());
    std::fprintf(stderr, "group %s of stream %s reset to %s\n", group.c_str(), name.c_str(), to.c_str());
    return 0;
  }
  return 0;
}

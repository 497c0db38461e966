// Resharding in the store: validation, atomic commit, scale plans, persistence.
#include <doctest/doctest.h>

#include <algorithm>

#include "server/store.h"
#include "test_helpers.h"

using namespace streamkit;
using namespace streamkit::server;

namespace {

StoreOptions Opts(const std::string& dir) {
  StoreOptions o;
  o.data_dir = dir;
  o.durability = log::Durability{};
  return o;
}

// Open shards' ranges, sorted by start.
std::vector<std::pair<u128, u128>> OpenRanges(Stream& s) {
  std::vector<std::pair<u128, u128>> v;
  for (auto& m : s.meta.shards)
    if (m.state == proto::kOpen) v.push_back({m.start, m.end});
  std::sort(v.begin(), v.end());
  return v;
}

void CheckCover(Stream& s) {
  u128 next = 0;
  auto r = OpenRanges(s);
  REQUIRE(!r.empty());
  for (size_t i = 0; i < r.size(); i++) {
    CHECK(r[i].first == next);
    if (i + 1 < r.size()) next = r[i].second + 1;
  }
  CHECK(r.back().second == kU128Max);
}

}  // namespace

TEST_CASE("reshard: split and merge validate, commit and survive a reopen") {
  testing::TempDir d;
  {
    Store st(testing::TestIo(), Opts(d.path()));
    REQUIRE(st.Open().ok());
    auto s = st.Create("s", 2, 24 * log::kHourMs, 0, 0);
    REQUIRE(s.ok());
    Stream& str = **s;
    std::string before = EncodeStreamMeta(str.meta);

    auto bad = [&](std::vector<ReshardOp> ops, const char* want) {
      Status e = st.Reshard(str, &ops, false, "", nullptr);
      CHECK(!e.ok());
      CHECK(e.message().find(want) != std::string::npos);
      CHECK(EncodeStreamMeta(str.meta) == before);  // unchanged
    };
    bad({{ReshardOp::kSplit, 7, 0, 0}}, "has no");
    bad({{ReshardOp::kSplit, 0, 0, str.meta.shards[0].end + 1}}, "outside");  // at must be <= end
    bad({{ReshardOp::kSplit, 0, 0, str.meta.shards[1].start + 5}}, "outside");
    bad({{ReshardOp::kMerge, 0, 0}}, "itself");
    // A batch of ops is all or nothing: the second fails, the first is not kept.
    bad({{ReshardOp::kSplit, 0, 0, 0}, {ReshardOp::kSplit, 0, 0, 0}}, "closed");

    std::vector<ReshardOp> ops{{ReshardOp::kSplit, 0, 0, 0}};
    std::vector<std::shared_ptr<Shard>> closed;
    REQUIRE(st.Reshard(str, &ops, false, "test", &closed).ok());
    CHECK(ops[0].child1 == 2);
    CHECK(ops[0].child2 == 3);
    REQUIRE(closed.size() == 1);
    CHECK(closed[0]->closed.load());
    CheckCover(str);
    // 1 and 2 are not adjacent (0's children sit between... 2 covers the bottom quarter).
    std::vector<ReshardOp> m{{ReshardOp::kMerge, 1, 2}};
    CHECK(!st.Reshard(str, &m, false, "", nullptr).ok());
    m = {{ReshardOp::kMerge, 3, 1}};
    REQUIRE(st.Reshard(str, &m, false, "", nullptr).ok());
    CHECK(m[0].child1 == 4);
    CheckCover(str);
    CHECK(str.meta.events.size() == 2);
    REQUIRE(st.CloseAll().ok());
  }
  Store st(testing::TestIo(), Opts(d.path()));
  REQUIRE(st.Open().ok());
  auto s = st.Get("s");
  REQUIRE(s);
  CHECK(s->meta.shards.size() == 5);
  CHECK(s->meta.next_shard_index == 5);
  CheckCover(*s);
  auto four = s->FindShard(4);
  REQUIRE(four);
  CHECK(four->meta.parent == 3);
  CHECK(four->meta.adjacent_parent == 1);
  CHECK(!four->closed.load());
  CHECK(s->FindShard(0)->closed.load());
  CHECK(s->meta.events.back().text.find("merged") != std::string::npos);
}

TEST_CASE("reshard: scale plans reach N even ranges from any topology") {
  testing::TempDir d;
  Store st(testing::TestIo(), Opts(d.path()));
  REQUIRE(st.Open().ok());
  auto s = st.Create("s", 3, 24 * log::kHourMs, 0, 0);
  REQUIRE(s.ok());
  Stream& str = **s;
  for (uint32_t n : {4u, 4u, 7u, 2u, 1u, 5u, 16u, 3u}) {
    auto plan = st.PlanScale(str, n);
    REQUIRE(plan.ok());
    REQUIRE(st.Reshard(str, &*plan, false, "", nullptr).ok());
    auto r = OpenRanges(str);
    REQUIRE(r.size() == n);
    for (uint32_t i = 0; i < n; i++) {
      u128 a, b;
      EvenRange(i, n, &a, &b);
      CHECK(r[i].first == a);
      CHECK(r[i].second == b);
    }
  }
  CHECK(st.PlanScale(str, 3)->empty());  // already there
  CHECK(!st.PlanScale(str, 0).ok());
  CHECK(!st.PlanScale(str, 10001).ok());
}

TEST_CASE("reshard: stream.meta keeps scaling policy and events; older files still load") {
  StreamMeta m;
  m.name = "x";
  m.shards.push_back(ShardMeta{0, -1, -1, 0, kU128Max, proto::kOpen, 5, 0});
  m.scaling.on_demand = true;
  m.scaling.max_shards = 9;
  m.events.push_back({123, "split \"a\""});
  auto back = DecodeStreamMeta(EncodeStreamMeta(m));
  REQUIRE(back.ok());
  CHECK(back->scaling.on_demand);
  CHECK(back->scaling.max_shards == 9);
  REQUIRE(back->events.size() == 1);
  CHECK(back->events[0].text == "split \"a\"");
  CHECK(back->shards[0].created_ms == 5);
}

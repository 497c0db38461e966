#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "server/parked.h"

using streamkit::server::ParkedFetches;

namespace {

struct Obj {};  // stands for a Connection or a Shard: only its address matters

struct W {
  std::shared_ptr<Obj> conn, shard;
  int64_t deadline_ms;
  int tag;  // park order
};

std::vector<int> Tags(const std::vector<W>& ws) {
  std::vector<int> t;
  for (const auto& w : ws) t.push_back(w.tag);
  return t;
}

}  // namespace

TEST_CASE("parked fetches: an append looks only at its shard, in park order") {
  auto c = std::make_shared<Obj>();
  auto a = std::make_shared<Obj>(), b = std::make_shared<Obj>();
  ParkedFetches<W> p;
  p.Park(W{c, a, 100, 0});
  p.Park(W{c, b, 50, 1});
  p.Park(W{c, a, 10, 2});
  CHECK(p.size() == 3);
  CHECK(p.NextDeadline() == 10);
  int looked = 0;
  auto got = p.TakeReady(a.get(), [&](const W&) { return ++looked > 0; });
  CHECK(looked == 2);  // not shard b's fetch
  CHECK(Tags(got) == std::vector<int>{0, 2});
  CHECK(p.size() == 1);
  CHECK(p.NextDeadline() == 50);
  CHECK(p.TakeReady(a.get(), [](const W&) { return true; }).empty());
  CHECK(Tags(p.TakeExpired(49)).empty());
  CHECK(Tags(p.TakeExpired(50)) == std::vector<int>{1});
  CHECK(p.empty());
  CHECK(p.NextDeadline() == INT64_MAX);
}

TEST_CASE("parked fetches: random operations agree with a plain list") {
  std::mt19937_64 rng(42);
  std::vector<std::shared_ptr<Obj>> conns, shards;
  for (int i = 0; i < 5; i++) conns.push_back(std::make_shared<Obj>());
  for (int i = 0; i < 7; i++) shards.push_back(std::make_shared<Obj>());
  ParkedFetches<W> p;
  std::vector<W> model;  // park order
  int tag = 0;
  int64_t now = 0;
  for (int step = 0; step < 20000; step++) {
    int op = int(rng() % 10);
    if (op < 5) {
      W w{conns[rng() % conns.size()], shards[rng() % shards.size()], now + int64_t(rng() % 100), tag++};
      p.Park(w);
      model.push_back(w);
    } else if (op < 7) {
      const void* s = shards[rng() % shards.size()].get();
      int parity = int(rng() % 2);
      auto pred = [&](const W& w) { return w.tag % 2 == parity; };
      std::vector<W> want;
      std::erase_if(model, [&](const W& w) {
        if (w.shard.get() != s || !pred(w)) return false;
        want.push_back(w);
        return true;
      });
      CHECK(Tags(p.TakeReady(s, pred)) == Tags(want));
    } else if (op < 9) {
      now += int64_t(rng() % 30);
      std::vector<W> want;
      std::erase_if(model, [&](const W& w) {
        if (w.deadline_ms > now) return false;
        want.push_back(w);
        return true;
      });
      // Earliest deadline first; equal deadlines in park order.
      std::stable_sort(want.begin(), want.end(), [](const W& x, const W& y) { return x.deadline_ms < y.deadline_ms; });
      CHECK(Tags(p.TakeExpired(now)) == Tags(want));
    } else {
      const void* c = conns[rng() % conns.size()].get();
      std::vector<W> want;
      std::erase_if(model, [&](const W& w) {
        if (w.conn.get() != c) return false;
        want.push_back(w);
        return true;
      });
      auto got = Tags(p.TakeConnection(c));
      auto w = Tags(want);
      std::sort(got.begin(), got.end());
      CHECK(got == w);
    }
    REQUIRE(p.size() == model.size());
    int64_t next = INT64_MAX;
    for (const auto& w : model) next = std::min(next, w.deadline_ms);
    REQUIRE(p.NextDeadline() == next);
  }
  auto all = Tags(p.TakeAll());
  std::sort(all.begin(), all.end());
  CHECK(all == Tags(model));
  CHECK(p.empty());
}

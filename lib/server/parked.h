// Parked (long-poll) fetches, indexed two ways: by shard, so that an append looks
// only at the fetches waiting on its own shard, and by deadline, so that the timer
// finds the next expiry in O(1) and the expired ones in O(log n) each. Before, one
// vector held every parked fetch of the server and each append scanned all of them:
// producers on one stream paid for the followers of every other stream.
//
// Not locked: the server guards it with one mutex. W is the waiter type; it has
// `shard` and `conn` (smart pointers: .get() identifies them) and `deadline_ms`.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace streamkit::server {

template <class W>
class ParkedFetches {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void Park(W w) {
    const void* shard = w.shard.get();
    uint64_t id = next_id_++;
    by_deadline_.emplace(w.deadline_ms, id, shard);
    by_shard_[shard].push_back(Entry{id, std::move(w)});
    size_++;
  }

  // The fetches parked on `shard` for which ready(w) holds, in the order they were parked.
  template <class Pred>
  std::vector<W> TakeReady(const void* shard, Pred&& ready) {
    std::vector<W> out;
    auto it = by_shard_.find(shard);
    if (it == by_shard_.end()) return out;
    Extract(it, [&](const Entry& e) { return ready(e.w); }, [&](Entry&& e) { out.push_back(std::move(e.w)); });
    return out;
  }

  // Earliest deadline, or INT64_MAX when nothing is parked.
  int64_t NextDeadline() const { return by_deadline_.empty() ? INT64_MAX : std::get<0>(*by_deadline_.begin()); }

  // The fetches whose deadline is <= now, earliest first.
  std::vector<W> TakeExpired(int64_t now) {
    // Per shard, the ids to take (sorted: each shard's list is filtered once, whatever
    // the number of its expiries), and all of them in deadline order for the output.
    std::unordered_map<const void*, std::vector<uint64_t>> due;
    std::vector<uint64_t> order;
    auto end = by_deadline_.upper_bound(std::make_tuple(now, UINT64_MAX, static_cast<const void*>(nullptr)));
    for (auto it = by_deadline_.begin(); it != end; ++it) {
      due[std::get<2>(*it)].push_back(std::get<1>(*it));
      order.push_back(std::get<1>(*it));
    }
    std::unordered_map<uint64_t, W> taken;
    for (auto& [shard, ids] : due) {
      std::sort(ids.begin(), ids.end());
      Extract(by_shard_.find(shard), [&](const Entry& e) { return std::binary_search(ids.begin(), ids.end(), e.id); },
              [&](Entry&& e) { taken.emplace(e.id, std::move(e.w)); });
    }
    std::vector<W> out;
    out.reserve(order.size());
    for (uint64_t id : order) out.push_back(std::move(taken.at(id)));
    return out;
  }

  // Every fetch parked by connection `conn` (which went away).
  std::vector<W> TakeConnection(const void* conn) {
    std::vector<W> out;
    for (auto it = by_shard_.begin(); it != by_shard_.end();) {
      auto next = std::next(it);  // Extract may erase `it`
      Extract(it, [&](const Entry& e) { return e.w.conn.get() == conn; },
              [&](Entry&& e) { out.push_back(std::move(e.w)); });
      it = next;
    }
    return out;
  }

  std::vector<W> TakeAll() {
    std::vector<W> out;
    out.reserve(size_);
    for (auto& [shard, v] : by_shard_)
      for (auto& e : v) out.push_back(std::move(e.w));
    by_shard_.clear();
    by_deadline_.clear();
    size_ = 0;
    return out;
  }

 private:
  struct Entry {
    uint64_t id;
    W w;
  };
  using Map = std::unordered_map<const void*, std::vector<Entry>>;
  static std::tuple<int64_t, uint64_t, const void*> Key(const Entry& e) {
    return {e.w.deadline_ms, e.id, e.w.shard.get()};
  }
  // Moves the entries of one shard's list for which take(entry) holds to put(), in
  // park order, with their deadline keys; keeps the rest in order and drops the
  // shard's list when it is left empty.
  template <class Take, class Put>
  void Extract(typename Map::iterator it, Take&& take, Put&& put) {
    std::vector<Entry>& v = it->second;
    size_t keep = 0;
    for (size_t i = 0; i < v.size(); i++) {
      if (take(v[i])) {
        by_deadline_.erase(Key(v[i]));
        put(std::move(v[i]));
        size_--;
      } else {
        if (keep != i) v[keep] = std::move(v[i]);
        keep++;
      }
    }
    v.resize(keep);
    if (v.empty()) by_shard_.erase(it);  // no map entry left behind per idle shard
  }

  Map by_shard_;  // each list in park (= id) order
  std::set<std::tuple<int64_t, uint64_t, const void*>> by_deadline_;
  uint64_t next_id_ = 0;
  size_t size_ = 0;
};

}  // namespace streamkit::server

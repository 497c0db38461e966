#include <doctest/doctest.h>

#include <optional>
#include <random>
#include <vector>

#include "log/batch.h"
#include "test_helpers.h"

using namespace streamkit;
using namespace streamkit::log;
using streamkit::testing::MakeBatch;
using streamkit::testing::RandomBytes;

namespace {

struct Want {
  std::string key;
  std::optional<u128> hash;
  std::string data;
  int64_t ts;
};

std::vector<Record> Decode(const Bytes& batch, Bytes* scratch) {
  BatchRecords br;
  REQUIRE(br.Open(batch, scratch).ok());
  std::vector<Record> out;
  Record r;
  while (br.Next(&r)) out.push_back(r);
  REQUIRE(br.status().ok());
  return out;
}

}  // namespace

TEST_CASE("random batches round trip, with and without zstd") {
  std::mt19937_64 rng(42);
  const size_t sizes[] = {0, 1, 100, 4096, 65536, 1u << 20};
  for (Codec codec : {Codec::kNone, Codec::kZstd}) {
    for (int trial = 0; trial < 12; trial++) {
      BatchOptions opts;
      opts.codec = codec;
      opts.producer_id = int64_t(rng() % 1000);
      opts.producer_epoch = uint16_t(rng() % 5);
      opts.base_sequence = int32_t(rng() % 100000);
      opts.timestamp_type = trial % 2 ? TimestampType::kCreate : TimestampType::kLogAppend;
      BatchBuilder b(opts);
      std::vector<Want> want;
      int n = 1 + int(rng() % 5);
      size_t total = 0;
      for (int i = 0; i < n; i++) {
        size_t dsize = sizes[rng() % 6];
        if (total + dsize > (6u << 20)) dsize = 10;
        total += dsize;
        Want w;
        w.key = RandomBytes(rng, 1 + rng() % 256);
        if (rng() % 2) w.hash = (u128(rng()) << 64) | rng();
        dsize = std::min(dsize, (size_t(1) << 20) - w.key.size());  // key + data <= 1 MiB
        w.data = RandomBytes(rng, dsize);
        w.ts = 1700000000000 + int64_t(rng() % 100000) - 50000;
        b.Add(w.key, w.hash ? &*w.hash : nullptr, w.data, w.ts);
        want.push_back(w);
      }
      Bytes batch = b.Finish();
      StampBatch(batch.data(), 1234, 1700000000123);
      Bytes scratch;
      BatchHeader h;
      Limits limits;
      REQUIRE(ValidateBatch(batch, &limits, &h, &scratch).ok());
      CHECK(h.codec() == codec);
      CHECK(h.base_offset == 1234);
      CHECK(h.record_count == uint32_t(n));
      CHECK(h.producer_id == opts.producer_id);
      CHECK(h.producer_epoch == opts.producer_epoch);
      CHECK(h.base_sequence == opts.base_sequence);
      auto recs = Decode(batch, &scratch);
      REQUIRE(recs.size() == want.size());
      for (size_t i = 0; i < want.size(); i++) {
        CHECK(recs[i].offset == 1234 + i);
        CHECK(recs[i].key == want[i].key);
        CHECK(recs[i].data == want[i].data);
        CHECK(recs[i].timestamp_ms == want[i].ts);
        CHECK(recs[i].has_hash_key == want[i].hash.has_value());
        if (want[i].hash) CHECK(recs[i].hash_key == *want[i].hash);
        CHECK(recs[i].arrival_ms ==
              (opts.timestamp_type == TimestampType::kCreate ? want[i].ts : 1700000000123));
      }
    }
  }
}

TEST_CASE("empty data and a maximal record are accepted") {
  BatchBuilder b;
  b.Add("k", nullptr, "", 5);
  std::string big((1u << 20) - 1, 'z');
  b.Add("k", nullptr, big, 5);
  Bytes batch = b.Finish();
  Bytes scratch;
  Limits limits;
  CHECK(ValidateBatch(batch, &limits, nullptr, &scratch).ok());
}

TEST_CASE("any single flipped bit in a stored batch is detected") {
  for (Codec codec : {Codec::kNone, Codec::kZstd}) {
    BatchOptions opts;
    opts.codec = codec;
    opts.producer_id = 7;
    opts.base_sequence = 3;
    BatchBuilder b(opts);
    u128 hk = 12345;
    b.Add("alpha", nullptr, "first record", 100);
    b.Add("beta", &hk, "second", 101);
    b.Add("gamma", nullptr, "", 99);
    Bytes batch = b.Finish();
    StampBatch(batch.data(), 77, 1700000000000);
    Bytes scratch;
    REQUIRE(ValidateBatch(batch, nullptr, nullptr, &scratch).ok());
    int undetected = 0;
    for (size_t byte = 0; byte < batch.size(); byte++) {
      for (int bit = 0; bit < 8; bit++) {
        Bytes bad = batch;
        bad[byte] ^= uint8_t(1u << bit);
        if (ValidateBatch(bad, nullptr, nullptr, &scratch).ok()) undetected++;
      }
    }
    CHECK(undetected == 0);
  }
}

TEST_CASE("limits reject bad keys and oversized records with a clear reason") {
  Limits limits;
  Bytes scratch;
  {
    BatchBuilder b;
    b.Add("", nullptr, "x", 1);
    Bytes batch = b.Finish();
    Status s = ValidateBatch(batch, &limits, nullptr, &scratch);
    CHECK(s.is(Status::Code::kInvalidArgument));
    CHECK(s.message().find("partition key of 0 bytes") != std::string::npos);
  }
  {
    BatchBuilder b;
    b.Add(std::string(257, 'k'), nullptr, "x", 1);
    Bytes batch = b.Finish();
    CHECK(ValidateBatch(batch, &limits, nullptr, &scratch).is(Status::Code::kInvalidArgument));
  }
  {
    BatchBuilder b;
    b.Add("k", nullptr, std::string(1u << 20, 'x'), 1);  // key + data = 1 MiB + 1
    Bytes batch = b.Finish();
    Status s = ValidateBatch(batch, &limits, nullptr, &scratch);
    CHECK(s.is(Status::Code::kInvalidArgument));
    CHECK(s.message().find("exceed the limit") != std::string::npos);
  }
}

TEST_CASE("stamping rewrites only the header crc, not the body") {
  Bytes batch = MakeBatch(5);
  uint32_t body_crc = DecodeFixed32(batch.data() + kBodyCrcPos);
  Bytes body(batch.begin() + kBodyCrcStart, batch.end());
  StampBatch(batch.data(), 99, 123456);
  CHECK(DecodeFixed32(batch.data() + kBodyCrcPos) == body_crc);
  CHECK(Bytes(batch.begin() + kBodyCrcStart, batch.end()) == body);
  BatchHeader h;
  CHECK(CheckHeader(batch.data(), &h).ok());
  CHECK(h.base_offset == 99);
  CHECK(h.append_time_ms == 123456);
}

TEST_CASE("record cursor over several batches starts at the requested offset") {
  Bytes all;
  uint64_t off = 0;
  for (int i = 0; i < 4; i++) {
    Bytes b = MakeBatch(10, i * 10);
    StampBatch(b.data(), off, 1);
    off += 10;
    all.insert(all.end(), b.begin(), b.end());
  }
  for (uint64_t from : {0, 5, 10, 19, 39}) {
    RecordCursor c(all, from);
    Record r;
    REQUIRE(c.Next(&r));
    CHECK(r.offset == from);
    CHECK(r.key == "key-" + std::to_string(from));
    uint64_t n = 1;
    while (c.Next(&r)) n++;
    CHECK(c.status().ok());
    CHECK(n == 40 - from);
  }
}

TEST_CASE("the fast record walk accepts exactly what the checked walk accepts") {
  // Random batches (keys of 0-300 bytes, some explicit hash keys, some timestamps
  // going back), then random damage to their records section: a byte set to a
  // random or a varint-edge value, a cut, or a byte inserted. Both walks see the
  // same bytes; whenever one says yes the other must too.
  std::mt19937_64 rng(7);
  int accepted = 0, rejected = 0;
  for (int trial = 0; trial < 4000; trial++) {
    BatchBuilder b;
    int n = 1 + int(rng() % 6);
    for (int i = 0; i < n; i++) {
      std::string key = RandomBytes(rng, rng() % 8 == 0 ? 257 + rng() % 40 : rng() % 20);
      std::string data = RandomBytes(rng, rng() % 300);
      u128 hk = (u128(rng()) << 64) | rng();
      b.Add(key, rng() % 4 == 0 ? &hk : nullptr, data, 1764000000000 + int64_t(rng() % 2000) - 1000);
    }
    Bytes batch = b.Finish();
    BatchHeader h = DecodeHeader(batch.data());
    std::vector<uint8_t> recs(batch.begin() + kBatchHeaderSize, batch.end());
    int damage = int(rng() % 5);
    if (damage >= 1 && !recs.empty()) {
      size_t at = rng() % recs.size();
      const uint8_t edges[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x02};
      if (damage == 1) recs[at] = uint8_t(rng());
      if (damage == 2) recs[at] = edges[rng() % 6];
      if (damage == 3) recs.resize(at);
      if (damage == 4) recs.insert(recs.begin() + long(at), uint8_t(rng()));
    }
    Limits lim;
    lim.max_key_bytes = 1 + rng() % 300;
    lim.max_record_bytes = 50 + rng() % 400;
    lim.min_key_bytes = rng() % 2;
    if (rng() % 2) {
      lim.check_hash_range = true;
      lim.hash_start = u128(rng() % 4) << 126;
      lim.hash_end = lim.hash_start + (~u128(0) >> 2);
    }
    if (rng() % 3 == 0) h.max_timestamp += 1;
    bool fast = RecordsValid(recs.data(), recs.size(), h, lim);
    Status checked = CheckRecords(recs.data(), recs.size(), h, lim);
    INFO("trial " << trial << ": " << checked.ToString());
    REQUIRE(fast == checked.ok());
    (fast ? accepted : rejected)++;
  }
  // Both outcomes are exercised often.
  CHECK(accepted > 200);
  CHECK(rejected > 400);
}

#include <doctest/doctest.h>

#include <random>

#include "util/coding.h"

using namespace streamkit;

TEST_CASE("fixed-width integers are little-endian") {
  uint8_t b[8];
  EncodeFixed32(b, 0x01020304u);
  CHECK(b[0] == 0x04);
  CHECK(b[3] == 0x01);
  CHECK(DecodeFixed32(b) == 0x01020304u);
  EncodeFixed64(b, 0x0102030405060708ull);
  CHECK(b[0] == 0x08);
  CHECK(DecodeFixed64(b) == 0x0102030405060708ull);
  EncodeFixed16(b, 0xBEEF);
  CHECK(DecodeFixed16(b) == 0xBEEF);
}

TEST_CASE("varints round trip at every length") {
  std::mt19937_64 rng(1);
  for (int bits = 0; bits <= 64; bits++) {
    for (int k = 0; k < 20; k++) {
      uint64_t v = bits == 0 ? 0 : (rng() >> (64 - bits)) | (uint64_t(1) << (bits - 1));
      Bytes b;
      PutVarint64(&b, v);
      CHECK(int(b.size()) == VarintLength(v));
      uint64_t got = 0;
      const uint8_t* end = DecodeVarint64(b.data(), b.data() + b.size(), &got);
      REQUIRE(end == b.data() + b.size());
      CHECK(got == v);
    }
  }
}

TEST_CASE("truncated or overlong varints are rejected") {
  Bytes b;
  PutVarint64(&b, UINT64_MAX);
  uint64_t v;
  for (size_t n = 0; n < b.size(); n++) CHECK(DecodeVarint64(b.data(), b.data() + n, &v) == nullptr);
  Bytes overlong(11, 0x80);
  overlong.back() = 0;
  CHECK(DecodeVarint64(overlong.data(), overlong.data() + overlong.size(), &v) == nullptr);
  Bytes overflow = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
  CHECK(DecodeVarint64(overflow.data(), overflow.data() + overflow.size(), &v) == nullptr);
}

TEST_CASE("zig-zag maps small magnitudes to small numbers") {
  CHECK(ZigZagEncode(0) == 0);
  CHECK(ZigZagEncode(-1) == 1);
  CHECK(ZigZagEncode(1) == 2);
  for (int64_t v : {int64_t(0), int64_t(-5), int64_t(123456789), INT64_MIN, INT64_MAX})
    CHECK(ZigZagDecode(ZigZagEncode(v)) == v);
}

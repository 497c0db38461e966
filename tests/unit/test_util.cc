#include <doctest/doctest.h>

#include "common/config.h"
#include "util/crc32c.h"
#include "util/status.h"
#include "util/u128.h"

using namespace streamkit;

TEST_CASE("crc32c matches the Castagnoli check value") {
  CHECK(crc32c::Value("123456789", 9) == 0xE3069283u);
  CHECK(crc32c::Value("", 0) == 0u);
  // Extending in pieces equals one pass.
  std::string s(1000, 'x');
  for (size_t i = 0; i < s.size(); i++) s[i] = char(i * 7);
  uint32_t whole = crc32c::Value(s.data(), s.size());
  uint32_t part = crc32c::Extend(crc32c::Value(s.data(), 333), s.data() + 333, s.size() - 333);
  CHECK(whole == part);
}

TEST_CASE("crc32c: every implementation the CPU has equals the portable one") {
  std::string s(128 * 1024 + 123, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto& ch : s) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    ch = char(x);
  }
  using crc32c::Impl;
  // Every length around the lane, fold and hybrid sizes (768, 12,288, 256, 1,024, 352 and
  // 16 KiB), odd starts, and long inputs whose lane lengths set many bits.
  for (Impl impl : {Impl::kCrc32Lanes, Impl::kAvx512Fold, Impl::kHybrid}) {
    if (!crc32c::Available(impl)) continue;
    CAPTURE(int(impl));
    for (size_t n : {0, 1, 7, 8, 255, 256, 767, 768, 769, 1023, 1024, 1025, 1279, 1280, 1535, 1536, 4095, 12287,
                     12288, 12289, 24576 + 5, 65536, 351, 352, 353, 703, 704, 705, 16383, 16384, 16385,
                     104003, 128 * 1024, 352 * 370 + 351})
      for (size_t at : {0, 1, 3})
        CHECK(crc32c::ExtendUsing(impl, 0x12345678u, s.data() + at, n) ==
              crc32c::ExtendUsing(Impl::kPortable, 0x12345678u, s.data() + at, n));
  }
  CHECK(crc32c::Value(s.data(), s.size()) == crc32c::ExtendUsing(Impl::kPortable, 0, s.data(), s.size()));
  for (size_t n : {16384, 16385, 20000, 104003, 128 * 1024})  // the default path for long inputs
    CHECK(crc32c::Extend(0xCAFEu, s.data() + 1, n) == crc32c::ExtendUsing(Impl::kPortable, 0xCAFEu, s.data() + 1, n));
}

TEST_CASE("status names the code and errno text") {
  Status s = Status::FromErrno(ENOSPC, "write /x");
  CHECK(s.is(Status::Code::kNoSpace));
  CHECK(s.err() == ENOSPC);
  CHECK(s.ToString().find("write /x") != std::string::npos);
  CHECK(Status::OK().ok());
  Result<int> r = Status::NotFound("nope");
  CHECK(!r.ok());
  CHECK(r.status().is(Status::Code::kNotFound));
}

TEST_CASE("u128 decimal text round trips and rejects bad input") {
  CHECK(U128ToString(0) == "0");
  CHECK(U128ToString(kU128Max) == "340282366920938463463374607431768211455");
  CHECK(ParseU128("340282366920938463463374607431768211455") == kU128Max);
  CHECK(!ParseU128("340282366920938463463374607431768211456").has_value());
  CHECK(!ParseU128("").has_value());
  CHECK(!ParseU128("01").has_value());
  CHECK(!ParseU128("-1").has_value());
  CHECK(!ParseU128("12a").has_value());
  u128 half = u128(1) << 127;
  CHECK(U128ToString(half) == "170141183460469231731687303715884105728");
  uint8_t b[16];
  EncodeU128BE(b, half + 5);
  CHECK(b[0] == 0x80);
  CHECK(b[15] == 5);
  CHECK(DecodeU128BE(b) == half + 5);
}

TEST_CASE("ISO-8601 times: zone forms, comma decimals; no zone is UTC") {
  const int64_t base = 1764237073000;  // 2025-11-27T09:51:13Z
  CHECK(*ParseTimeMs("2025-11-27T09:51:13Z", 0) == base);
  CHECK(*ParseTimeMs("2025-11-27T09:51:13", 0) == base);
  CHECK(*ParseTimeMs("2025-11-27T10:51:13+01:00", 0) == base);
  CHECK(*ParseTimeMs("2025-11-27T10:51:13+0100", 0) == base);
  CHECK(*ParseTimeMs("2025-11-27T10:51:13+01", 0) == base);
  CHECK(*ParseTimeMs("2025-11-27T04:21:13-0530", 0) == base);
  CHECK(*ParseTimeMs("2025-11-27T09:51:13.250Z", 0) == base + 250);
  CHECK(*ParseTimeMs("2025-11-27T09:51:13,250Z", 0) == base + 250);
  for (const char* bad : {"2025-11-27T09:51:13+1", "2025-11-27T09:51:13+01:0", "2025-11-27T09:51:13+2400",
                          "2025-11-27T09:51:13+01:60", "2025-11-27T09:51:13Z+01"})
    CHECK_MESSAGE(!ParseTimeMs(bad, 0).ok(), bad);
}

#include "util/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

namespace streamkit::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Tables() {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
      for (int s = 1; s < 8; s++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
};
constexpr Tables kTables;

uint32_t ExtendPortable(uint32_t crc, const uint8_t* p, size_t n) {
  const auto& t = kTables.t;
  uint32_t c = ~crc;
  while (n >= 8) {
    uint32_t lo = c ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
                       uint32_t(p[3]) << 24);
    uint32_t hi = uint32_t(p[4]) | uint32_t(p[5]) << 8 | uint32_t(p[6]) << 16 | uint32_t(p[7]) << 24;
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
  return ~c;
}

#if defined(__x86_64__)
// The crc32 instruction has a latency of 3 cycles and a throughput of 1 per cycle,
// so one dependency chain runs at a third of its speed. Long inputs are cut into
// three lanes of `block` bytes, each lane CRC'd on its own chain (lanes 1 and 2
// starting from 0), and the lanes are joined with the identity
//   crc(s, X || Y) = shift(crc(s, X), |Y|) ^ crc(0, Y),
// where shift(s, n) is the state after n zero bytes: linear in s, so four 256-entry
// tables per block size give it in four lookups.
__attribute__((target("sse4.2"))) uint64_t Chain(uint64_t c, const uint8_t* p, size_t n) {
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  return c;
}

struct ShiftTable {
  std::array<std::array<uint32_t, 256>, 4> t{};
  uint32_t operator()(uint32_t s) const {
    return t[0][s & 0xff] ^ t[1][(s >> 8) & 0xff] ^ t[2][(s >> 16) & 0xff] ^ t[3][s >> 24];
  }
};

__attribute__((target("sse4.2"))) ShiftTable MakeShift(size_t zeros) {
  uint32_t basis[32];
  for (int b = 0; b < 32; b++) {
    uint64_t c = uint32_t(1) << b;
    for (size_t i = 0; i < zeros; i += 8) c = _mm_crc32_u64(c, 0);
    basis[b] = uint32_t(c);
  }
  ShiftTable st;
  for (int k = 0; k < 4; k++)
    for (uint32_t v = 0; v < 256; v++) {
      uint32_t x = 0;
      for (int i = 0; i < 8; i++)
        if (v & (1u << i)) x ^= basis[8 * k + i];
      st.t[k][v] = x;
    }
  return st;
}

constexpr size_t kLongBlock = 4096;  // 12 KiB per round
constexpr size_t kShortBlock = 256;  // 768 bytes per round

template <size_t kBlock>
__attribute__((target("sse4.2"))) uint64_t ThreeLanes(uint64_t c, const uint8_t*& p, size_t& n,
                                                      const ShiftTable& shift) {
  while (n >= 3 * kBlock) {
    uint64_t c1 = 0, c2 = 0;
    for (size_t i = 0; i < kBlock; i += 8) {
      uint64_t v0, v1, v2;
      std::memcpy(&v0, p + i, 8);
      std::memcpy(&v1, p + kBlock + i, 8);
      std::memcpy(&v2, p + 2 * kBlock + i, 8);
      c = _mm_crc32_u64(c, v0);
      c1 = _mm_crc32_u64(c1, v1);
      c2 = _mm_crc32_u64(c2, v2);
    }
    c = shift(shift(uint32_t(c)) ^ uint32_t(c1)) ^ uint32_t(c2);
    p += 3 * kBlock;
    n -= 3 * kBlock;
  }
  return c;
}

__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const uint8_t* p, size_t n) {
  static const ShiftTable kLong = MakeShift(kLongBlock);
  static const ShiftTable kShort = MakeShift(kShortBlock);
  uint64_t c = ~crc;
  if (n >= 3 * kLongBlock) c = ThreeLanes<kLongBlock>(c, p, n, kLong);
  if (n >= 3 * kShortBlock) c = ThreeLanes<kShortBlock>(c, p, n, kShort);
  c = Chain(c, p, n);
  p += n & ~size_t(7);
  n &= 7;
  uint32_t c32 = uint32_t(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}

bool DetectSse42() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & bit_SSE4_2) != 0;
}
const bool kHaveSse42 = DetectSse42();
#endif

}  // namespace

uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
  if (kHaveSse42) return ExtendSse42(crc, p, n);
#endif
  return ExtendPortable(crc, p, n);
}

uint32_t ExtendPortableForTesting(uint32_t crc, const void* data, size_t n) {
  return ExtendPortable(crc, static_cast<const uint8_t*>(data), n);
}

bool HardwareAccelerated() {
#if defined(__x86_64__)
  return kHaveSse42;
#else
  return false;
#endif
}

}  // namespace streamkit::crc32c

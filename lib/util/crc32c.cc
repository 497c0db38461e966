#include "util/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
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

// One chain over what is left, then the last bytes; the final inversion.
__attribute__((target("sse4.2"))) uint32_t Finish(uint64_t c, const uint8_t* p, size_t n) {
  c = Chain(c, p, n);
  p += n & ~size_t(7);
  n &= 7;
  uint32_t c32 = uint32_t(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
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
  return Finish(c, p, n);
}

// Long inputs on CPUs with AVX-512 and VPCLMULQDQ: carry-less multiplication folds
// 256 bytes per step (16 lanes of 16 bytes, four zmm registers) and the crc32
// instruction reduces the last 16 bytes (it computes exactly X(x)*x^32 mod P).
//
// Folding, in the bit-reflected layout the instruction uses: a 16-byte lane X whose
// low qword q0 holds the high-order coefficients is X = Q0*x^64 + Q1. Moving it D
// bytes forward (to be added to the lane D bytes later) multiplies it by x^(8D):
//   X*x^(8D) = Q0*(x^(8D+64) mod P) + Q1*(x^(8D) mod P)   (mod P),
// and a reflected 64x64 clmul yields the product times x, hence the constants
// x^(8D+63) and x^(8D-1) mod P, stored reflected in 64 bits.
uint64_t XPowModP(unsigned e) {  // x^e mod P, normal bit order (bit k = x^k)
  constexpr uint64_t kP = 0x11EDC6F41ull;
  uint64_t r = 1;
  for (unsigned i = 0; i < e; i++) {
    r <<= 1;
    if (r & (uint64_t(1) << 32)) r ^= kP;
  }
  return r;
}
uint64_t Reflect64(uint64_t poly) {  // bit k (x^k) -> bit 63-k
  uint64_t r = 0;
  for (int k = 0; k < 64; k++)
    if (poly & (uint64_t(1) << k)) r |= uint64_t(1) << (63 - k);
  return r;
}
struct FoldK {
  uint64_t k0, k1;  // multipliers of q0 and q1
  explicit FoldK(unsigned bytes) : k0(Reflect64(XPowModP(8 * bytes + 63))), k1(Reflect64(XPowModP(8 * bytes - 1))) {}
};

__attribute__((target("sse4.2,pclmul"))) __m128i Fold128(__m128i x, __m128i k, __m128i y) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), y);
}

__attribute__((target("avx512f,vpclmulqdq,sse4.2,pclmul"))) __m512i Fold512(__m512i x, __m512i k, __m512i y) {
  // (x.lo * k.lo) ^ (x.hi * k.hi) ^ y, lane by lane.
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11), y, 0x96);
}

constexpr size_t kFoldMin = 1024;

// Four registers (256 bytes of lanes) into the raw 32-bit state: fold them into one,
// its four 16-byte lanes into the last, and let the crc32 instruction reduce it.
__attribute__((target("avx512f,vpclmulqdq,sse4.2,pclmul"))) inline uint64_t Reduce512(__m512i x0, __m512i x1,
                                                                                        __m512i x2, __m512i x3) {
  static const FoldK k64(64), k48(48), k32(32), k16(16);
  const __m512i K64 = _mm512_set_epi64(int64_t(k64.k1), int64_t(k64.k0), int64_t(k64.k1), int64_t(k64.k0),
                                       int64_t(k64.k1), int64_t(k64.k0), int64_t(k64.k1), int64_t(k64.k0));
  x1 = Fold512(x0, K64, x1);
  x2 = Fold512(x1, K64, x2);
  x3 = Fold512(x2, K64, x3);
  alignas(64) __m128i lane[4];
  _mm512_store_si512(lane, x3);
  const __m128i l0 = lane[0], l1 = lane[1], l2 = lane[2], l3 = lane[3];
  __m128i acc = Fold128(l0, _mm_set_epi64x(int64_t(k48.k1), int64_t(k48.k0)), l3);
  acc = Fold128(l1, _mm_set_epi64x(int64_t(k32.k1), int64_t(k32.k0)), acc);
  acc = Fold128(l2, _mm_set_epi64x(int64_t(k16.k1), int64_t(k16.k0)), acc);
  uint64_t c = _mm_crc32_u64(0, uint64_t(_mm_cvtsi128_si64(acc)));
  return _mm_crc32_u64(c, uint64_t(_mm_extract_epi64(acc, 1)));
}

__attribute__((target("avx512f,vpclmulqdq,sse4.2,pclmul"))) inline __m512i K256() {
  static const FoldK k256(256);
  return _mm512_set_epi64(int64_t(k256.k1), int64_t(k256.k0), int64_t(k256.k1), int64_t(k256.k0),
                          int64_t(k256.k1), int64_t(k256.k0), int64_t(k256.k1), int64_t(k256.k0));
}

__attribute__((target("avx512f,vpclmulqdq,sse4.2,pclmul"))) uint32_t ExtendAvx512(uint32_t crc, const uint8_t* p,
                                                                                    size_t n) {
  const __m512i k = K256();
  // The running state enters as the first 4 message bytes XORed with it.
  __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_zextsi128_si512(_mm_cvtsi32_si128(int(~crc))));
  __m512i x1 = _mm512_loadu_si512(p + 64);
  __m512i x2 = _mm512_loadu_si512(p + 128);
  __m512i x3 = _mm512_loadu_si512(p + 192);
  p += 256;
  n -= 256;
  while (n >= 256) {
    x0 = Fold512(x0, k, _mm512_loadu_si512(p));
    x1 = Fold512(x1, k, _mm512_loadu_si512(p + 64));
    x2 = Fold512(x2, k, _mm512_loadu_si512(p + 128));
    x3 = Fold512(x3, k, _mm512_loadu_si512(p + 192));
    p += 256;
    n -= 256;
  }
  return Finish(Reduce512(x0, x1, x2, x3), p, n);  // the rest, under 256 bytes
}

// Long inputs: the folding is bound by the carry-less multiplier (~16 bytes per
// cycle on the CPUs measured), which leaves the crc32 instruction's unit idle. The
// hybrid runs both at once: the input is cut into a folded part of 256*k bytes and
// three crc32 lanes of 32*k bytes each, and every step folds 256 bytes and feeds 32
// to each lane (1.84 -> 1.38 us per 104 KB in the cache here, 57 -> 75 GB/s).
// The parts are joined with crc(s, X || Y) = shift(crc(s, X), |Y|) ^ crc(0, Y), where
// shift(s, n) = s * x^(8n) mod P is computed with one carry-less multiplication and
// one crc32 instruction (MulX33 below), so it costs a few dozen cycles whatever n is.
//
// MulX33(a, b) = a * b * x^33 mod P for reflected 32-bit a and b: the reflected
// clmul of two 32-bit values holds their product times x in a 64-bit message, and
// crc32 of that message is it times x^32 mod P. So with K(n) = x^(8n-33) mod P,
// shift(s, n) = MulX33(s, K(n)), and K(m + n) = MulX33(K(m), K(n)).
__attribute__((target("sse4.2,pclmul"))) inline uint32_t MulX33(uint32_t a, uint32_t b) {
  __m128i prod = _mm_clmulepi64_si128(_mm_cvtsi32_si128(int(a)), _mm_cvtsi32_si128(int(b)), 0x00);
  return uint32_t(_mm_crc32_u64(0, uint64_t(_mm_cvtsi128_si64(prod))));
}

// K(2^i) for i = 3..47: K(8) = x^31 (reflected: 1); K(2m) = MulX33(K(m), K(m)).
__attribute__((target("sse4.2,pclmul"))) std::array<uint32_t, 48> MakePow2Shifts() {
  std::array<uint32_t, 48> z{};
  z[3] = 1;
  for (size_t i = 3; i + 1 < z.size(); i++) z[i + 1] = MulX33(z[i], z[i]);
  return z;
}

// K(n) for n a multiple of 8 below 2^48.
__attribute__((target("sse4.2,pclmul"))) uint32_t ShiftConst(uint64_t n) {
  static const std::array<uint32_t, 48> z = MakePow2Shifts();
  uint32_t k = 0;
  bool first = true;
  for (size_t i = 3; i < z.size(); i++)
    if (n & (uint64_t(1) << i)) {
      k = first ? z[i] : MulX33(k, z[i]);
      first = false;
    }
  return k;
}

constexpr size_t kLaneStep = 32;                     // bytes per lane per 256-byte fold step
constexpr size_t kHybridStep = 256 + 3 * kLaneStep;  // 352
constexpr size_t kHybridMin = 16 * 1024;

constexpr size_t kFoldAhead = 4096;  // prefetch distances, measured best here
constexpr size_t kLaneAhead = 512;

// Prefetches n bytes from `ahead` bytes past p, which may lie beyond the input: a
// prefetch never faults (the address is formed as an integer, not as a pointer past
// the object).
__attribute__((target("sse"), always_inline)) inline void Prefetch(const uint8_t* p, size_t ahead, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p) + ahead;
  for (size_t i = 0; i < n; i += 64) _mm_prefetch(reinterpret_cast<const char*>(a + i), _MM_HINT_T0);
}

// One step of the three crc32 lanes of ExtendHybrid: kLaneStep bytes each.
__attribute__((target("sse4.2"), always_inline)) inline void LaneStep(uint64_t c[3], const uint8_t* q0,
                                                                     const uint8_t* q1, const uint8_t* q2) {
  for (size_t j = 0; j < kLaneStep; j += 8) {
    uint64_t v0, v1, v2;
    std::memcpy(&v0, q0 + j, 8);
    std::memcpy(&v1, q1 + j, 8);
    std::memcpy(&v2, q2 + j, 8);
    c[0] = _mm_crc32_u64(c[0], v0);
    c[1] = _mm_crc32_u64(c[1], v1);
    c[2] = _mm_crc32_u64(c[2], v2);
  }
}

__attribute__((target("avx512f,vpclmulqdq,sse4.2,pclmul"))) uint32_t ExtendHybrid(uint32_t crc, const uint8_t* p,
                                                                                    size_t n) {
  const size_t steps = n / kHybridStep;
  const size_t lane = kLaneStep * steps;
  const uint8_t* q0 = p + 256 * steps;
  const uint8_t* q1 = q0 + lane;
  const uint8_t* q2 = q1 + lane;
  const uint8_t* const rest = q2 + lane;
  uint64_t c[3] = {0, 0, 0};
  const __m512i k = K256();
  __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_zextsi128_si512(_mm_cvtsi32_si128(int(~crc))));
  __m512i x1 = _mm512_loadu_si512(p + 64);
  __m512i x2 = _mm512_loadu_si512(p + 128);
  __m512i x3 = _mm512_loadu_si512(p + 192);
  LaneStep(c, q0, q1, q2);
  for (size_t i = 1; i < steps; i++) {
    p += 256;
    // Four streams are more than the hardware prefetchers keep ahead of when the
    // input comes from memory (19 GB/s without these, 22-23 with; folding alone
    // reaches 22-25): fetch each stream's lines ahead.
    Prefetch(p, kFoldAhead, 256);
    if (i % 2 == 0) {
      Prefetch(q0, kLaneAhead, 64);
      Prefetch(q1, kLaneAhead, 64);
      Prefetch(q2, kLaneAhead, 64);
    }
    x0 = Fold512(x0, k, _mm512_loadu_si512(p));
    x1 = Fold512(x1, k, _mm512_loadu_si512(p + 64));
    x2 = Fold512(x2, k, _mm512_loadu_si512(p + 128));
    x3 = Fold512(x3, k, _mm512_loadu_si512(p + 192));
    LaneStep(c, q0 += kLaneStep, q1 += kLaneStep, q2 += kLaneStep);
  }
  const uint32_t k1 = ShiftConst(lane), k2 = MulX33(k1, k1), k3 = MulX33(k1, k2);
  const uint32_t s = MulX33(uint32_t(Reduce512(x0, x1, x2, x3)), k3) ^ MulX33(uint32_t(c[0]), k2) ^
                     MulX33(uint32_t(c[1]), k1) ^ uint32_t(c[2]);
  return Finish(s, rest, n - kHybridStep * steps);  // under 352 bytes
}

bool DetectAvx512Clmul() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq") &&
         __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.2");
}
const bool kHaveAvx512Clmul = DetectAvx512Clmul();

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
  if (n >= kFoldMin && kHaveAvx512Clmul) return n >= kHybridMin ? ExtendHybrid(crc, p, n) : ExtendAvx512(crc, p, n);
  if (kHaveSse42) return ExtendSse42(crc, p, n);
#endif
  return ExtendPortable(crc, p, n);
}

bool Available(Impl impl) {
  switch (impl) {
    case Impl::kPortable: return true;
#if defined(__x86_64__)
    case Impl::kCrc32Lanes: return kHaveSse42;
    case Impl::kAvx512Fold:
    case Impl::kHybrid: return kHaveAvx512Clmul;
#else
    default: return false;
#endif
  }
  return false;
}

uint32_t ExtendUsing(Impl impl, uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
  if (impl == Impl::kCrc32Lanes && kHaveSse42) return ExtendSse42(crc, p, n);
  if (impl == Impl::kAvx512Fold && kHaveAvx512Clmul && n >= kFoldMin) return ExtendAvx512(crc, p, n);
  if (impl == Impl::kHybrid && kHaveAvx512Clmul && n >= kHybridStep) return ExtendHybrid(crc, p, n);
  if ((impl == Impl::kAvx512Fold || impl == Impl::kHybrid) && kHaveSse42) return ExtendSse42(crc, p, n);
#endif
  return ExtendPortable(crc, p, n);
}

bool HardwareAccelerated() {
#if defined(__x86_64__)
  return kHaveSse42;
#else
  return false;
#endif
}

}  // namespace streamkit::crc32c

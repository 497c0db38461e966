// MD5 as specified in RFC 1321 section 3: pad to 448 mod 512 bits, append the bit
// length as 64 bits little-endian, then run the four-round compression function on
// each 512-bit block. The 64 steps are unrolled at compile time (Step<I> below) so
// the state stays in registers and every shift, table entry and message index is a
// constant.
#include "util/md5.h"

#include <cstddef>
#include <cstring>
#include <utility>

namespace streamkit {
namespace {

constexpr size_t kBlockBytes = 64;
constexpr size_t kLengthOffset = 56;  // where the 64-bit bit count starts in the last block

// RFC 1321 3.4: T[i] = floor(2^32 * abs(sin(i + 1))), i = 0..63.
constexpr uint32_t kT[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
    0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
    0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
    0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
    0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
    0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391,
};

// Left-rotation amounts, one row per round, cycling within the row.
constexpr int kShift[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

// RFC 1321 3.3: initial A, B, C, D.
constexpr uint32_t kInit[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};

constexpr uint32_t Rotl(uint32_t x, int s) { return (x << s) | (x >> (32 - s)); }

inline uint32_t Load32LE(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline void Store32LE(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (8 * i));
}

// Step I of 64: round I/16, operation I%16 of that round. The RFC names the four
// words a, b, c, d and rotates their roles every step ([ABCD], [DABC], [CDAB],
// [BCDA]); here the roles are array positions computed from I.
template <size_t I>
inline void Step(uint32_t (&v)[4], const uint32_t (&x)[16]) {
  constexpr size_t kRound = I / 16;
  constexpr size_t kOp = I % 16;
  constexpr size_t a = (4 - I % 4) % 4, b = (a + 1) % 4, c = (a + 2) % 4, d = (a + 3) % 4;
  // Which message word each round reads (RFC 1321 3.4, the [abcd k s i] lists).
  constexpr size_t k = kRound == 0   ? kOp
                       : kRound == 1 ? (1 + 5 * kOp) % 16
                       : kRound == 2 ? (5 + 3 * kOp) % 16
                                     : (7 * kOp) % 16;
  // a + X[k] + T[i] does not depend on the previous step's result (b); each round
  // function is written so that as little as possible waits for b, which keeps the
  // step-to-step dependency chain short.
  uint32_t sum = v[a] + x[k] + kT[I];
  uint32_t f;
  if constexpr (kRound == 0) {
    f = v[d] ^ (v[b] & (v[c] ^ v[d]));  // F(X,Y,Z) = XY v not(X)Z
  } else if constexpr (kRound == 1) {
    // G(X,Y,Z) = XZ v Y not(Z); the two terms share no bits, so v is +.
    sum += v[c] & ~v[d];
    f = v[b] & v[d];
  } else if constexpr (kRound == 2) {
    f = v[b] ^ (v[c] ^ v[d]);  // H(X,Y,Z) = X xor Y xor Z
  } else {
    f = v[c] ^ (v[b] | ~v[d]);  // I(X,Y,Z) = Y xor (X v not(Z))
  }
  v[a] = v[b] + Rotl(sum + f, kShift[kRound][I % 4]);
}

template <size_t... I>
inline void AllSteps(uint32_t (&v)[4], const uint32_t (&x)[16], std::index_sequence<I...>) {
  (Step<I>(v, x), ...);
}

void Compress(uint32_t (&state)[4], const uint8_t* block) {
  uint32_t x[16];
  for (int i = 0; i < 16; i++) x[i] = Load32LE(block + 4 * i);
  uint32_t v[4] = {state[0], state[1], state[2], state[3]};
  AllSteps(v, x, std::make_index_sequence<64>{});
  for (int i = 0; i < 4; i++) state[i] += v[i];
}

}  // namespace

Md5Digest Md5(std::string_view data) {
  uint32_t state[4] = {kInit[0], kInit[1], kInit[2], kInit[3]};
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t n = data.size();
  const uint64_t bit_length = uint64_t(n) * 8;  // modulo 2^64, as the RFC says

  for (; n >= kBlockBytes; p += kBlockBytes, n -= kBlockBytes) Compress(state, p);

  // The tail, the 0x80 pad byte, zeros and the length: one block if the tail leaves
  // room for the length (n < 56), else two.
  uint8_t last[2 * kBlockBytes] = {};
  if (n > 0) std::memcpy(last, p, n);
  last[n] = 0x80;
  const size_t blocks = n < kLengthOffset ? 1 : 2;
  uint8_t* len = last + (blocks - 1) * kBlockBytes + kLengthOffset;
  for (int i = 0; i < 8; i++) len[i] = uint8_t(bit_length >> (8 * i));
  for (size_t i = 0; i < blocks; i++) Compress(state, last + i * kBlockBytes);

  Md5Digest out;
  for (int i = 0; i < 4; i++) Store32LE(out.bytes + 4 * i, state[i]);
  return out;
}

u128 Md5HashKey(std::string_view partition_key) {
  return DecodeU128BE(Md5(partition_key).bytes);
}

}  // namespace streamkit

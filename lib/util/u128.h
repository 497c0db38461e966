// 128-bit unsigned integers for the Kinesis hash key space 0 .. 2^128-1: decimal
// text (as Kinesis prints HashKeyRange), and 16-byte big-endian encoding (as an MD5
// digest reads, and as explicit hash keys are stored in a batch).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace streamkit {

__extension__ typedef unsigned __int128 u128;
constexpr u128 kU128Max = ~u128(0);

inline void EncodeU128BE(uint8_t* p, u128 v) {
  for (int i = 15; i >= 0; i--) {
    p[i] = uint8_t(v);
    v >>= 8;
  }
}
inline u128 DecodeU128BE(const uint8_t* p) {
  u128 v = 0;
  for (int i = 0; i < 16; i++) v = (v << 8) | p[i];
  return v;
}

std::string U128ToString(u128 v);
// Accepts `0|[1-9][0-9]{0,38}` within 0 .. 2^128-1; anything else is nullopt.
std::optional<u128> ParseU128(std::string_view s);

}  // namespace streamkit

#include "util/u128.h"

#include <algorithm>

namespace streamkit {

std::string U128ToString(u128 v) {
  if (v == 0) return "0";
  std::string s;
  while (v != 0) {
    s.push_back(char('0' + int(v % 10)));
    v /= 10;
  }
  std::reverse(s.begin(), s.end());
  return s;
}

std::optional<u128> ParseU128(std::string_view s) {
  if (s.empty() || s.size() > 39) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  u128 v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    u128 d = u128(c - '0');
    if (v > (kU128Max - d) / 10) return std::nullopt;  // overflow
    v = v * 10 + d;
  }
  return v;
}

}  // namespace streamkit

#include "log/names.h"

#include <fmt/core.h>

namespace streamkit::log {

std::string SegmentFileName(uint64_t base_offset, std::string_view ext) {
  return fmt::format("{:020}{}", base_offset, ext);
}

std::string SegmentPath(const std::string& dir, uint64_t base_offset, std::string_view ext) {
  return fmt::format("{}/{:020}{}", dir, base_offset, ext);
}

std::optional<uint64_t> ParseSegmentFileName(std::string_view name, std::string_view ext) {
  if (name.size() != 20 + ext.size() || name.substr(20) != ext) return std::nullopt;
  uint64_t v = 0;
  for (char c : name.substr(0, 20)) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = uint64_t(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

}  // namespace streamkit::log

// File names of a shard directory, built and parsed in one place. Names are the
// 20-digit zero-padded base offset of the segment, so `ls` sorts them (FORMAT.md §1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace streamkit::log {

inline constexpr std::string_view kLogExt = ".log";
inline constexpr std::string_view kIndexExt = ".index";
inline constexpr std::string_view kTimeIndexExt = ".timeindex";
inline constexpr std::string_view kProducersExt = ".producers";
// Offset below which every segment was synced (FORMAT.md §1, §5).
inline constexpr std::string_view kRecoveryPointFile = "recovery-point";

// "00000000000000001234.log"
std::string SegmentFileName(uint64_t base_offset, std::string_view ext);
// dir + "/" + SegmentFileName(...)
std::string SegmentPath(const std::string& dir, uint64_t base_offset, std::string_view ext);
// The base offset when `name` is exactly 20 digits followed by `ext`.
std::optional<uint64_t> ParseSegmentFileName(std::string_view name, std::string_view ext);

}  // namespace streamkit::log

// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), the checksum of
// every streamkit batch. Uses the SSE4.2 crc32 instruction when the CPU has it (checked
// once at run time), else a slice-by-8 table. Crc32c("123456789") == 0xE3069283.
#pragma once

#include <cstddef>
#include <cstdint>

namespace streamkit::crc32c {

// Extends `crc` (the value returned for the preceding bytes; 0 to start) over n bytes.
uint32_t Extend(uint32_t crc, const void* data, size_t n);
inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }

// True when the hardware path is in use (for benchmark reports).
bool HardwareAccelerated();
// The implementations, for tests to compare whatever the CPU picks by default:
// tables; three interleaved crc32 chains (SSE4.2); 256-byte folding with AVX-512
// VPCLMULQDQ (inputs of 1 KiB and more; shorter ones take the crc32 chains); the
// folding and three crc32 chains at once (the default from 16 KiB; kHybrid takes it
// from 352 bytes, for tests).
enum class Impl { kPortable, kCrc32Lanes, kAvx512Fold, kHybrid };
bool Available(Impl impl);
uint32_t ExtendUsing(Impl impl, uint32_t crc, const void* data, size_t n);

}  // namespace streamkit::crc32c

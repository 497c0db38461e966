// Byte codecs: the one place where integers become bytes and back.
//
// Fixed-width integers are little-endian, written with explicit shifts (never a
// struct memcpy'd to disk). Varints are unsigned LEB128 (7 bits per byte, high bit
// = more follows, at most 10 bytes for 64 bits); signed values are zig-zag encoded
// first. The formats are documented in docs/FORMAT.md and docs/PROTOCOL.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace streamkit {

// An allocator that leaves new bytes uninitialised on resize(): buffers about to be
// overwritten by a read (fetch responses, batches) are not zero-filled first.
template <class T>
struct DefaultInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  DefaultInitAllocator() = default;
  template <class U>
  DefaultInitAllocator(const DefaultInitAllocator<U>&) noexcept {}  // NOLINT
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

using Bytes = std::vector<uint8_t, DefaultInitAllocator<uint8_t>>;

inline void EncodeFixed16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
inline void EncodeFixed32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (8 * i));
}
inline void EncodeFixed64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = uint8_t(v >> (8 * i));
}
inline uint16_t DecodeFixed16(const uint8_t* p) { return uint16_t(p[0] | (uint16_t(p[1]) << 8)); }
inline uint32_t DecodeFixed32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= uint32_t(p[i]) << (8 * i);
  return v;
}
inline uint64_t DecodeFixed64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

inline void PutFixed32(Bytes* dst, uint32_t v) {
  uint8_t b[4];
  EncodeFixed32(b, v);
  dst->insert(dst->end(), b, b + 4);
}
inline void PutFixed64(Bytes* dst, uint64_t v) {
  uint8_t b[8];
  EncodeFixed64(b, v);
  dst->insert(dst->end(), b, b + 8);
}

constexpr int kMaxVarint64Bytes = 10;

// Writes v at p (room for kMaxVarint64Bytes); returns one past the last byte.
inline uint8_t* EncodeVarint64(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = uint8_t(v | 0x80);
    v >>= 7;
  }
  *p++ = uint8_t(v);
  return p;
}
inline int VarintLength(uint64_t v) {
  int n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}
inline void PutVarint64(Bytes* dst, uint64_t v) {
  uint8_t b[kMaxVarint64Bytes];
  uint8_t* e = EncodeVarint64(b, v);
  dst->insert(dst->end(), b, e);
}
inline uint64_t ZigZagEncode(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
inline int64_t ZigZagDecode(uint64_t v) { return int64_t(v >> 1) ^ -int64_t(v & 1); }

// Reads a varint from [p, limit). Returns one past its last byte, or nullptr when
// the input ends first or the varint is longer than 10 bytes / overflows 64 bits.
inline const uint8_t* DecodeVarint64(const uint8_t* p, const uint8_t* limit, uint64_t* v) {
  if (p < limit && *p < 0x80) {  // one byte: most lengths and deltas in a batch
    *v = *p;
    return p + 1;
  }
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && p < limit; shift += 7) {
    uint64_t byte = *p++;
    if (shift == 63 && byte > 1) return nullptr;  // would overflow
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return p;
    }
  }
  return nullptr;
}

// A forward-only reader over a byte range; every getter fails (returns false)
// instead of reading past the end.
class ByteReader {
 public:
  ByteReader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  size_t remaining() const { return size_t(end_ - p_); }
  const uint8_t* pos() const { return p_; }
  bool Varint(uint64_t* v) {
    const uint8_t* q = DecodeVarint64(p_, end_, v);
    if (q == nullptr) return false;
    p_ = q;
    return true;
  }
  bool Fixed8(uint8_t* v) {
    if (remaining() < 1) return false;
    *v = *p_++;
    return true;
  }
  bool Skip(size_t n, const uint8_t** start) {
    if (remaining() < n) return false;
    *start = p_;
    p_ += n;
    return true;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace streamkit

// Field codecs for protocol messages (docs/PROTOCOL.md §2): fixed little-endian
// integers, u128 as 16 big-endian bytes, strings and byte blobs as a uvarint length
// followed by the bytes. Writer appends to a buffer; Reader never reads past the end
// (every getter returns false instead).
#pragma once

#include <string>
#include <string_view>

#include "util/coding.h"
#include "util/u128.h"

namespace streamkit::proto {

class Writer {
 public:
  explicit Writer(Bytes* out) : out_(out) {}
  Writer& u8(uint8_t v) {
    out_->push_back(v);
    return *this;
  }
  Writer& u16(uint16_t v) {
    uint8_t b[2];
    EncodeFixed16(b, v);
    out_->insert(out_->end(), b, b + 2);
    return *this;
  }
  Writer& u32(uint32_t v) {
    PutFixed32(out_, v);
    return *this;
  }
  Writer& u64(uint64_t v) {
    PutFixed64(out_, v);
    return *this;
  }
  Writer& i64(int64_t v) { return u64(uint64_t(v)); }
  Writer& i32(int32_t v) { return u32(uint32_t(v)); }
  Writer& h128(u128 v) {
    uint8_t b[16];
    EncodeU128BE(b, v);
    out_->insert(out_->end(), b, b + 16);
    return *this;
  }
  Writer& str(std::string_view s) {
    PutVarint64(out_, s.size());
    out_->insert(out_->end(), s.begin(), s.end());
    return *this;
  }
  // Raw bytes to the end of the frame (no length prefix): batches.
  Writer& tail(const uint8_t* p, size_t n) {
    out_->insert(out_->end(), p, p + n);
    return *this;
  }

 private:
  Bytes* out_;
};

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  size_t remaining() const { return size_t(end_ - p_); }
  bool u8(uint8_t* v) {
    if (remaining() < 1) return fail();
    *v = *p_++;
    return true;
  }
  bool u16(uint16_t* v) {
    if (remaining() < 2) return fail();
    *v = DecodeFixed16(p_);
    p_ += 2;
    return true;
  }
  bool u32(uint32_t* v) {
    if (remaining() < 4) return fail();
    *v = DecodeFixed32(p_);
    p_ += 4;
    return true;
  }
  bool u64(uint64_t* v) {
    if (remaining() < 8) return fail();
    *v = DecodeFixed64(p_);
    p_ += 8;
    return true;
  }
  bool i64(int64_t* v) {
    uint64_t u;
    if (!u64(&u)) return false;
    *v = int64_t(u);
    return true;
  }
  bool i32(int32_t* v) {
    uint32_t u;
    if (!u32(&u)) return false;
    *v = int32_t(u);
    return true;
  }
  bool h128(u128* v) {
    if (remaining() < 16) return fail();
    *v = DecodeU128BE(p_);
    p_ += 16;
    return true;
  }
  bool str(std::string* s, size_t max = 1u << 20) {
    uint64_t n;
    const uint8_t* q = DecodeVarint64(p_, end_, &n);
    if (q == nullptr || n > max || n > size_t(end_ - q)) return fail();
    s->assign(reinterpret_cast<const char*>(q), size_t(n));
    p_ = q + n;
    return true;
  }
  // Everything left (batches at the end of a frame).
  std::string_view tail() {
    std::string_view v(reinterpret_cast<const char*>(p_), remaining());
    p_ = end_;
    return v;
  }
  bool ok() const { return ok_; }

 private:
  bool fail() {
    ok_ = false;
    return false;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
};

}  // namespace streamkit::proto

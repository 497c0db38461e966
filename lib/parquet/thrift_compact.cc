#include "parquet/thrift_compact.h"

#include <cstring>

namespace streamkit::parquet::thrift {

void CompactWriter::PutVarint(uint64_t v) {
  while (v >= 0x80) {
    out_->push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out_->push_back(char(uint8_t(v)));
}

void CompactWriter::BeginStruct() {
  stack_.push_back(last_id_);
  last_id_ = 0;
}

void CompactWriter::EndStruct() {
  out_->push_back('\0');
  if (!stack_.empty()) {
    last_id_ = stack_.back();
    stack_.pop_back();
  }
}

void CompactWriter::FieldHeader(int16_t id, Type t) {
  int delta = int(id) - int(last_id_);
  if (delta > 0 && delta <= 15) {
    out_->push_back(char(uint8_t(delta << 4) | uint8_t(t)));
  } else {
    out_->push_back(char(uint8_t(t)));
    PutVarint(ZigZag(id));
  }
  last_id_ = id;
}

void CompactWriter::FieldBool(int16_t id, bool v) { FieldHeader(id, v ? Type::kBoolTrue : Type::kBoolFalse); }

void CompactWriter::FieldI16(int16_t id, int16_t v) {
  FieldHeader(id, Type::kI16);
  PutVarint(ZigZag(v));
}

void CompactWriter::FieldI32(int16_t id, int32_t v) {
  FieldHeader(id, Type::kI32);
  I32(v);
}

void CompactWriter::FieldI64(int16_t id, int64_t v) {
  FieldHeader(id, Type::kI64);
  I64(v);
}

void CompactWriter::FieldDouble(int16_t id, double v) {
  FieldHeader(id, Type::kDouble);
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  for (int i = 0; i < 8; i++) out_->push_back(char(uint8_t(bits >> (8 * i))));
}

void CompactWriter::FieldBinary(int16_t id, std::string_view v) {
  FieldHeader(id, Type::kBinary);
  Binary(v);
}

void CompactWriter::Binary(std::string_view v) {
  PutVarint(v.size());
  out_->append(v);
}

void CompactWriter::FieldStructBegin(int16_t id) {
  FieldHeader(id, Type::kStruct);
  BeginStruct();
}

void CompactWriter::FieldListBegin(int16_t id, Type elem, size_t size) {
  FieldHeader(id, Type::kList);
  if (size < 15) {
    out_->push_back(char(uint8_t(size << 4) | uint8_t(elem)));
  } else {
    out_->push_back(char(0xF0 | uint8_t(elem)));
    PutVarint(size);
  }
}

}  // namespace streamkit::parquet::thrift

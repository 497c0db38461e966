// A writer for the Thrift compact protocol: just enough to serialise Parquet's
// metadata structs (PageHeader, FileMetaData), which are written without any
// Thrift library or generated code.
//
// Encoding (Thrift's compact protocol spec):
//   - i16/i32/i64: zig-zag, then unsigned LEB128 varint; double: 8 bytes little-endian;
//     binary/string: varint length, then the bytes.
//   - A struct is a sequence of fields and a stop byte 0x00. A field header is one byte
//     `delta << 4 | type` when the id is 1..15 above the previous field's id in the same
//     struct, else the byte `type` followed by the id as a zig-zag varint. A bool field
//     carries its value in the type nibble (1 true, 2 false) and has no body.
//   - A list header is one byte `size << 4 | element type` for sizes 0..14, else
//     `0xF0 | element type` followed by the size as a varint.
//   - A union is a struct with exactly one field.
//
// Usage: the caller writes the fields of one struct in order; BeginStruct/EndStruct
// nest (each struct keeps its own "previous field id").
//
//   std::string out;
//   CompactWriter w(&out);
//   w.BeginStruct();
//   w.FieldI32(1, 42);
//   w.FieldStructBegin(2);  w.FieldBool(1, true);  w.EndStruct();
//   w.EndStruct();
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace streamkit::parquet::thrift {

// Field and list element types of the compact protocol.
enum class Type : uint8_t {
  kBoolTrue = 1,   // field headers only: a bool field's value is its type
  kBoolFalse = 2,  // (also the element type of a list of bools)
  kByte = 3,
  kI16 = 4,
  kI32 = 5,
  kI64 = 6,
  kDouble = 7,
  kBinary = 8,
  kList = 9,
  kSet = 10,
  kMap = 11,
  kStruct = 12,
};

// Appends to a caller-owned string.
class CompactWriter {
 public:
  explicit CompactWriter(std::string* out) : out_(out) {}

  // Starts a struct: at the top level, or as a list element (after ListBegin with
  // Type::kStruct). Field ids restart from 0 inside it.
  void BeginStruct();
  // Writes the stop byte and returns to the enclosing struct.
  void EndStruct();

  void FieldBool(int16_t id, bool v);
  void FieldI16(int16_t id, int16_t v);
  void FieldI32(int16_t id, int32_t v);
  void FieldI64(int16_t id, int64_t v);
  void FieldDouble(int16_t id, double v);
  void FieldBinary(int16_t id, std::string_view v);
  // A struct-valued (or union-valued) field; close it with EndStruct().
  void FieldStructBegin(int16_t id);
  // A list-valued field of `size` elements of `elem`; write exactly `size` elements
  // next (I32/I64/Binary/BeginStruct...EndStruct). Lists need no end marker.
  void FieldListBegin(int16_t id, Type elem, size_t size);

  // List elements.
  void I32(int32_t v) { PutVarint(ZigZag(v)); }
  void I64(int64_t v) { PutVarint(ZigZag(v)); }
  void Binary(std::string_view v);

  // Building blocks, public for tests.
  void PutVarint(uint64_t v);
  static uint64_t ZigZag(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }

 private:
  void FieldHeader(int16_t id, Type t);

  std::string* out_;
  int16_t last_id_ = 0;
  std::vector<int16_t> stack_;  // enclosing structs' last field ids
};

}  // namespace streamkit::parquet::thrift

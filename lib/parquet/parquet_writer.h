// A small Parquet writer: flat schemas of string, bigint, double, boolean and
// timestamp columns, rows appended as JSON objects, PLAIN-encoded V1 data pages,
// optional SNAPPY/GZIP/ZSTD page compression. What it writes, byte for byte, is
// described in docs/PARQUET.md.
//
//   auto schema = ParseSchema(R"({"columns":[{"name":"id","type":"bigint","nullable":false},
//                                            {"name":"msg","type":"string"}]})");
//   Writer w(*schema, Codec::kZstd);
//   SK_TRY(w.AppendJson(parser.parse(line)));   // once per row
//   SK_ASSIGN_OR_RETURN(std::string file, w.Finish());
//
// Rows are buffered column-wise; when the buffered row group reaches row_group_bytes
// it is encoded (and compressed) into the output, so memory holds the encoded file
// so far plus one row group. TakeOutput() hands out the finished part early, for
// callers that stream the file to disk.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/status.h"

namespace streamkit::parquet {

enum class ColumnType { kString, kInt64, kDouble, kBoolean, kTimestampMillis };
enum class Codec { kNone, kSnappy, kGzip, kZstd };

struct Column {
  std::string name;
  ColumnType type;
  bool nullable = true;
};

struct Schema {
  std::vector<Column> columns;
};

// Parses a Glue-table-like JSON schema: {"columns":[{"name":"id","type":"bigint"},...]}
// ("Columns"/"Name"/"Type" as in Glue's GetTable output are accepted too). Type names,
// case-insensitive, with an optional "(...)" parameter:
//   string, varchar, char -> kString;  bigint, int, integer, smallint, tinyint -> kInt64;
//   double, float -> kDouble;  boolean -> kBoolean;  timestamp -> kTimestampMillis (UTC).
// "nullable": false makes a column required (default true). Other keys are ignored.
// Column names must be non-empty and unique.
Result<Schema> ParseSchema(std::string_view json);

// "none" (or "uncompressed"), "snappy", "gzip", "zstd".
Result<Codec> ParseCodec(std::string_view name);
const char* CodecName(Codec c);
// The Glue type name used in messages: "string", "bigint", "double", "boolean", "timestamp".
const char* TypeName(ColumnType t);

// Parses an ISO-8601 timestamp to milliseconds since the Unix epoch:
// YYYY-MM-DD, optionally followed by T (or a space) HH:MM[:SS[.fraction]] and an offset
// Z, +HH:MM, +HHMM or +HH (no offset: UTC). Fraction digits beyond milliseconds are
// truncated toward the past. Years 0000-9999.
Result<int64_t> ParseTimestampMillis(std::string_view s);

class Writer {
 public:
  // The largest row group budget (page sizes must fit Parquet's int32 fields);
  // row_group_bytes is clamped to [1, kMaxRowGroupBytes].
  static constexpr size_t kMaxRowGroupBytes = size_t(1) << 30;
  // The largest encoded row AppendJson accepts.
  static constexpr size_t kMaxRowBytes = size_t(256) << 20;

  Writer(Schema schema, Codec codec, size_t row_group_bytes = size_t(64) << 20);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Appends one row from a JSON object. A missing key or JSON null is a null (an error
  // for a non-nullable column); keys not in the schema are ignored. A value of the wrong
  // type is an error naming the column ("column 'age': expected bigint, got string").
  // bigint takes integers in int64 range; double takes any number; timestamp takes
  // epoch milliseconds (an integer) or an ISO-8601 string (see ParseTimestampMillis).
  // On error nothing is appended.
  Status AppendJson(simdjson::dom::element row);

  size_t rows() const { return total_rows_; }          // rows appended so far
  size_t buffered_bytes() const { return buffered_; }  // of the current row group
  size_t row_groups() const;  // row groups finished so far

  // The file bytes finished so far (magic and complete row groups), removed from the
  // writer; the concatenation of every TakeOutput() and Finish() is the file.
  std::string TakeOutput();

  // Encodes the last row group and the footer; returns the (rest of the) file. The
  // writer is spent afterwards. With no rows the file is valid and has no row groups.
  Result<std::string> Finish();

 private:
  struct Cell;
  struct ColumnChunkMeta;
  struct RowGroupMeta;
  struct ColumnBuffer;

  Status FlushRowGroup();
  void WriteFooter();

  Schema schema_;
  Codec codec_;
  size_t row_group_bytes_;
  std::unordered_map<std::string_view, size_t> index_;  // column name -> index
  std::vector<ColumnBuffer> cols_;
  std::vector<Cell> cells_;  // the row being converted, reused
  std::vector<RowGroupMeta> row_groups_;
  std::string out_;           // encoded bytes not yet taken
  uint64_t file_offset_ = 0;  // bytes taken + out_.size() == position in the file
  size_t group_rows_ = 0;
  size_t total_rows_ = 0;
  size_t buffered_ = 0;
  Status failed_;  // sticky: a failed flush spends the writer
  bool finished_ = false;
};

namespace detail {
// Appends levels (each 0 or 1) in the RLE / bit-packed hybrid encoding, bit width 1,
// without the length prefix. Exposed for tests.
void EncodeLevels(const std::vector<uint8_t>& levels, std::string* out);
}  // namespace detail

}  // namespace streamkit::parquet

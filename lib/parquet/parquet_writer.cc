#include "parquet/parquet_writer.h"

#define ZLIB_CONST
#include <fmt/format.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <unordered_map>

#include "parquet/thrift_compact.h"

namespace streamkit::parquet {

namespace dom = simdjson::dom;
using thrift::CompactWriter;

namespace {

// Enum values from parquet.thrift.
namespace pq {
enum Type : int32_t { kBoolean = 0, kInt64 = 2, kDouble = 5, kByteArray = 6 };
enum ConvertedType : int32_t { kUtf8 = 0, kTimestampMillis = 9 };
enum Repetition : int32_t { kRequired = 0, kOptional = 1 };
enum Encoding : int32_t { kPlain = 0, kRle = 3 };
enum CompressionCodec : int32_t { kUncompressed = 0, kSnappy = 1, kGzip = 2, kZstd = 6 };
enum PageType : int32_t { kDataPage = 0 };
}  // namespace pq

constexpr std::string_view kMagic = "PAR1";
// String min/max statistics are written only when both fit in this many bytes.
constexpr size_t kMaxStringStatBytes = 64;
// Epoch milliseconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z.
constexpr int64_t kMinTimestampMillis = -62167219200000;
constexpr int64_t kMaxTimestampMillis = 253402300799999;

pq::Type PhysicalType(ColumnType t) {
  switch (t) {
    case ColumnType::kString: return pq::kByteArray;
    case ColumnType::kInt64: return pq::kInt64;
    case ColumnType::kDouble: return pq::kDouble;
    case ColumnType::kBoolean: return pq::kBoolean;
    case ColumnType::kTimestampMillis: return pq::kInt64;
  }
  return pq::kByteArray;
}

pq::CompressionCodec CodecId(Codec c) {
  switch (c) {
    case Codec::kNone: return pq::kUncompressed;
    case Codec::kSnappy: return pq::kSnappy;
    case Codec::kGzip: return pq::kGzip;
    case Codec::kZstd: return pq::kZstd;
  }
  return pq::kUncompressed;
}

std::string Lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = char(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

void PutFixed32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; i++) out->push_back(char(uint8_t(v >> (8 * i))));
}
void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; i++) out->push_back(char(uint8_t(v >> (8 * i))));
}
std::string Fixed64(uint64_t v) {
  std::string s;
  PutFixed64(&s, v);
  return s;
}
std::string DoubleBytes(double d) { return Fixed64(std::bit_cast<uint64_t>(d)); }

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out->push_back(char(uint8_t(v)));
}

// Values lv[start, start+count) (each 0 or 1) as one or more bit-packed runs, LSB first.
// Each run holds at most 63 groups of 8 (a one-byte header, as common writers emit);
// only the final group of the final run may be partial (zero-padded).
void PutBitPacked(const std::vector<uint8_t>& lv, size_t start, size_t count, std::string* out) {
  constexpr size_t kMaxRun = 63 * 8;
  while (count > 0) {
    size_t n = std::min(count, kMaxRun);
    size_t groups = (n + 7) / 8;
    PutVarint(out, (uint64_t(groups) << 1) | 1);
    for (size_t g = 0; g < groups; g++) {
      uint8_t byte = 0;
      for (size_t k = 0; k < 8 && g * 8 + k < n; k++) byte |= uint8_t((lv[start + g * 8 + k] & 1) << k);
      out->push_back(char(byte));
    }
    start += n;
    count -= n;
  }
}

// Compression of one page body.
Status Compress(Codec codec, std::string_view in, std::string* out) {
  switch (codec) {
    case Codec::kNone:
      out->assign(in);
      return Status::OK();
    case Codec::kSnappy: {
      out->resize(snappy::MaxCompressedLength(in.size()));
      size_t n = 0;
      snappy::RawCompress(in.data(), in.size(), out->data(), &n);
      out->resize(n);
      return Status::OK();
    }
    case Codec::kGzip: {
      z_stream zs{};
      // windowBits 15 + 16: a gzip header and trailer around the deflate stream.
      if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return Status::InvalidArgument("parquet: gzip: deflateInit2 failed");
      out->resize(deflateBound(&zs, uLong(in.size())));
      zs.next_in = reinterpret_cast<const Bytef*>(in.data());
      zs.avail_in = uInt(in.size());
      zs.next_out = reinterpret_cast<Bytef*>(out->data());
      zs.avail_out = uInt(out->size());
      int rc = deflate(&zs, Z_FINISH);
      size_t n = zs.total_out;
      deflateEnd(&zs);
      if (rc != Z_STREAM_END) return Status::InvalidArgument(fmt::format("parquet: gzip: deflate failed ({})", rc));
      out->resize(n);
      return Status::OK();
    }
    case Codec::kZstd: {
      out->resize(ZSTD_compressBound(in.size()));
      size_t n = ZSTD_compress(out->data(), out->size(), in.data(), in.size(), 3);
      if (ZSTD_isError(n))
        return Status::InvalidArgument(fmt::format("parquet: zstd: {}", ZSTD_getErrorName(n)));
      out->resize(n);
      return Status::OK();
    }
  }
  return Status::InvalidArgument("parquet: unknown codec");
}

// A short rendering of a JSON value for error messages.
std::string Snippet(dom::element v) {
  std::string s = simdjson::minify(v);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

const char* JsonTypeName(dom::element v) {
  switch (v.type()) {
    case dom::element_type::ARRAY: return "array";
    case dom::element_type::OBJECT: return "object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64: return "integer";
    case dom::element_type::DOUBLE: return "double";
    case dom::element_type::STRING: return "string";
    case dom::element_type::BOOL: return "boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "value";
}

Result<ColumnType> ParseTypeName(std::string_view raw) {
  std::string t = Lower(raw);
  // Trim spaces; a "(...)" parameter is allowed on char and varchar only.
  while (!t.empty() && t.back() == ' ') t.pop_back();
  while (!t.empty() && t.front() == ' ') t.erase(t.begin());
  std::string base = t;
  if (size_t p = t.find('('); p != std::string::npos) {
    base = t.substr(0, p);
    while (!base.empty() && base.back() == ' ') base.pop_back();
    if ((base != "char" && base != "varchar") || t.back() != ')') base = t;  // unsupported
  }
  if (base == "string" || base == "varchar" || base == "char") return ColumnType::kString;
  if (base == "bigint" || base == "int" || base == "integer" || base == "smallint" || base == "tinyint")
    return ColumnType::kInt64;
  if (base == "double" || base == "float") return ColumnType::kDouble;
  if (base == "boolean") return ColumnType::kBoolean;
  if (base == "timestamp") return ColumnType::kTimestampMillis;
  return Status::InvalidArgument(fmt::format(
      "unsupported type '{}' (supported: string, varchar, char, bigint, int, smallint, tinyint, double, "
      "float, boolean, timestamp)",
      raw));
}

// The first of `keys` present in `obj`.
bool Lookup(dom::object obj, std::initializer_list<std::string_view> keys, dom::element* out) {
  for (std::string_view k : keys)
    if (!obj.at_key(k).get(*out)) return true;
  return false;
}

}  // namespace

const char* CodecName(Codec c) {
  switch (c) {
    case Codec::kNone: return "none";
    case Codec::kSnappy: return "snappy";
    case Codec::kGzip: return "gzip";
    case Codec::kZstd: return "zstd";
  }
  return "?";
}

const char* TypeName(ColumnType t) {
  switch (t) {
    case ColumnType::kString: return "string";
    case ColumnType::kInt64: return "bigint";
    case ColumnType::kDouble: return "double";
    case ColumnType::kBoolean: return "boolean";
    case ColumnType::kTimestampMillis: return "timestamp";
  }
  return "?";
}

Result<Codec> ParseCodec(std::string_view name) {
  std::string n = Lower(name);
  if (n == "none" || n == "uncompressed") return Codec::kNone;
  if (n == "snappy") return Codec::kSnappy;
  if (n == "gzip") return Codec::kGzip;
  if (n == "zstd") return Codec::kZstd;
  return Status::InvalidArgument(fmt::format("unknown compression '{}' (none, snappy, gzip, zstd)", name));
}

Result<Schema> ParseSchema(std::string_view json) {
  dom::parser parser;
  simdjson::padded_string padded(json);
  dom::element doc;
  if (auto e = parser.parse(padded).get(doc); e)
    return Status::InvalidArgument(fmt::format("schema: invalid JSON: {}", simdjson::error_message(e)));
  dom::object root;
  if (doc.get_object().get(root))
    return Status::InvalidArgument("schema: expected a JSON object with a \"columns\" array");
  // Glue's `get-table` output nests the columns in Table.StorageDescriptor.
  dom::element table, sd;
  if (Lookup(root, {"Table"}, &table) && table.is_object() &&
      Lookup(table.get_object().value_unsafe(), {"StorageDescriptor"}, &sd) && sd.is_object())
    root = sd.get_object().value_unsafe();
  dom::element cols_el;
  if (!Lookup(root, {"columns", "Columns"}, &cols_el))
    return Status::InvalidArgument("schema: no \"columns\" array");
  dom::array cols;
  if (cols_el.get_array().get(cols)) return Status::InvalidArgument("schema: \"columns\" is not an array");

  Schema schema;
  std::unordered_map<std::string, size_t> seen;
  size_t i = 0;
  for (dom::element c : cols) {
    i++;
    dom::object obj;
    if (c.get_object().get(obj)) return Status::InvalidArgument(fmt::format("schema: column {} is not an object", i));
    dom::element name_el, type_el, nullable_el;
    std::string_view name, type;
    if (!Lookup(obj, {"name", "Name"}, &name_el) || name_el.get_string().get(name))
      return Status::InvalidArgument(fmt::format("schema: column {}: missing \"name\" string", i));
    if (name.empty()) return Status::InvalidArgument(fmt::format("schema: column {}: empty name", i));
    if (!Lookup(obj, {"type", "Type"}, &type_el) || type_el.get_string().get(type))
      return Status::InvalidArgument(fmt::format("schema: column '{}': missing \"type\" string", name));
    auto t = ParseTypeName(type);
    if (!t.ok()) return Status::InvalidArgument(fmt::format("schema: column '{}': {}", name, t.status().message()));
    Column col{std::string(name), *t, true};
    if (Lookup(obj, {"nullable", "Nullable"}, &nullable_el) && nullable_el.get_bool().get(col.nullable))
      return Status::InvalidArgument(fmt::format("schema: column '{}': \"nullable\" must be true or false", name));
    if (!seen.emplace(col.name, i).second)
      return Status::InvalidArgument(fmt::format("schema: duplicate column name '{}'", name));
    schema.columns.push_back(std::move(col));
  }
  if (schema.columns.empty()) return Status::InvalidArgument("schema: no columns");
  return schema;
}

Result<int64_t> ParseTimestampMillis(std::string_view s) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(fmt::format("invalid timestamp '{}': {}", s, why));
  };
  constexpr std::string_view kShape = "expected YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM]";
  size_t p = 0;
  auto digits = [&](size_t n, int* v) {
    if (p + n > s.size()) return false;
    int r = 0;
    for (size_t k = 0; k < n; k++) {
      char c = s[p + k];
      if (c < '0' || c > '9') return false;
      r = r * 10 + (c - '0');
    }
    *v = r;
    p += n;
    return true;
  };
  auto lit = [&](char c) {
    if (p < s.size() && s[p] == c) {
      p++;
      return true;
    }
    return false;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0, oh = 0, om = 0, sign = 0;
  if (!digits(4, &y) || !lit('-') || !digits(2, &mo) || !lit('-') || !digits(2, &d)) return bad(kShape);
  if (p < s.size()) {
    if (!(lit('T') || lit('t') || lit(' '))) return bad(kShape);
    if (!digits(2, &h) || !lit(':') || !digits(2, &mi)) return bad(kShape);
    if (lit(':')) {
      if (!digits(2, &sec)) return bad(kShape);
      if (lit('.') || lit(',')) {
        size_t start = p;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
          if (p - start < 3) ms = ms * 10 + (s[p] - '0');
          p++;
        }
        if (p == start) return bad(kShape);
        for (size_t k = p - start; k < 3; k++) ms *= 10;
      }
    }
    if (lit('Z') || lit('z')) {
    } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
      sign = s[p++] == '+' ? 1 : -1;
      if (!digits(2, &oh)) return bad(kShape);
      if (p < s.size()) {
        lit(':');
        if (!digits(2, &om)) return bad(kShape);
      }
    }
    if (p != s.size()) return bad(kShape);
  }
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{unsigned(mo)}, day{unsigned(d)}};
  if (!ymd.ok()) return bad("no such date");
  if (h > 23 || mi > 59 || sec > 59) return bad("no such time of day");
  if (oh > 23 || om > 59) return bad("bad UTC offset");
  int64_t days = sys_days(ymd).time_since_epoch().count();
  int64_t secs = ((days * 24 + h) * 60 + mi) * 60 + sec - int64_t(sign) * (oh * 60 + om) * 60;
  return secs * 1000 + ms;
}

// ---------------------------------------------------------------------------
// Writer

// One converted value of the row being appended.
struct Writer::Cell {
  enum Kind : uint8_t { kNull, kInt, kDouble, kBool, kString } kind = kNull;
  int64_t i = 0;
  double d = 0;
  std::string_view s;  // points into the caller's JSON document
};

// The current row group's data of one column.
struct Writer::ColumnBuffer {
  std::string values;         // PLAIN-encoded non-null values; booleans one byte each until flushed
  std::vector<uint8_t> defs;  // nullable columns: definition level per row (1 value, 0 null)
  int64_t nulls = 0;
  // Statistics (of non-null values).
  bool has_minmax = false;
  int64_t imin = 0, imax = 0;  // bigint, timestamp, boolean (0/1)
  double dmin = 0, dmax = 0;
  int64_t nan_count = 0;
  std::string smin, smax;

  void Reset() {
    values.clear();
    defs.clear();
    nulls = 0;
    has_minmax = false;
    nan_count = 0;
    smin.clear();
    smax.clear();
  }
};

struct Writer::ColumnChunkMeta {
  int64_t num_values = 0;
  int64_t uncompressed = 0;  // page header + uncompressed page
  int64_t compressed = 0;    // page header + compressed page
  int64_t offset = 0;        // of the page header
  int64_t nulls = 0;
  bool has_minmax = false;
  std::string min, max;  // PLAIN bytes
  bool is_double = false;
  int64_t nan_count = 0;
};

struct Writer::RowGroupMeta {
  std::vector<ColumnChunkMeta> columns;
  int64_t num_rows = 0;
  int64_t offset = 0;
};

Writer::Writer(Schema schema, Codec codec, size_t row_group_bytes)
    : schema_(std::move(schema)),
      codec_(codec),
      row_group_bytes_(std::clamp<size_t>(row_group_bytes, 1, kMaxRowGroupBytes)),
      cols_(schema_.columns.size()),
      cells_(schema_.columns.size()) {
  out_ = kMagic;
  for (size_t k = 0; k < schema_.columns.size(); k++) {
    const Column& c = schema_.columns[k];
    if (c.name.empty()) failed_ = Status::InvalidArgument("parquet writer: a column has an empty name");
    if (!index_.emplace(c.name, k).second)
      failed_ = Status::InvalidArgument(fmt::format("parquet writer: duplicate column name '{}'", c.name));
  }
  if (schema_.columns.empty()) failed_ = Status::InvalidArgument("parquet writer: the schema has no columns");
}

Writer::~Writer() = default;

size_t Writer::row_groups() const { return row_groups_.size(); }

Status Writer::AppendJson(dom::element row) {
  if (!failed_.ok()) return failed_;
  if (finished_) return Status::Closed("parquet writer: already finished");
  dom::object obj;
  if (row.get_object().get(obj))
    return Status::InvalidArgument(fmt::format("row is not a JSON object (got {})", JsonTypeName(row)));

  const size_t ncols = schema_.columns.size();
  for (Cell& c : cells_) c.kind = Cell::kNull;
  // Convert every value first, so that a bad value appends nothing. With a key given
  // twice the last one counts (as in jq).
  for (dom::key_value_pair kv : obj) {
    auto it = index_.find(kv.key);
    if (it == index_.end()) continue;
    size_t ci = it->second;
    const Column& col = schema_.columns[ci];
    Cell& cell = cells_[ci];
    dom::element v = kv.value;
    dom::element_type jt = v.type();
    cell.kind = Cell::kNull;
    if (jt == dom::element_type::NULL_VALUE) continue;
    auto mismatch = [&] {
      return Status::InvalidArgument(fmt::format("column '{}': expected {}, got {} {}", col.name,
                                                 TypeName(col.type), JsonTypeName(v), Snippet(v)));
    };
    switch (col.type) {
      case ColumnType::kString:
        if (jt != dom::element_type::STRING) return mismatch();
        cell.s = v.get_string().value_unsafe();
        cell.kind = Cell::kString;
        break;
      case ColumnType::kInt64:
        if (jt == dom::element_type::UINT64)
          return Status::InvalidArgument(
              fmt::format("column '{}': integer {} out of bigint range", col.name, Snippet(v)));
        if (jt != dom::element_type::INT64) return mismatch();
        cell.i = v.get_int64().value_unsafe();
        cell.kind = Cell::kInt;
        break;
      case ColumnType::kDouble:
        if (jt == dom::element_type::DOUBLE) {
          cell.d = v.get_double().value_unsafe();
        } else if (jt == dom::element_type::INT64) {
          cell.d = double(v.get_int64().value_unsafe());
        } else if (jt == dom::element_type::UINT64) {
          cell.d = double(v.get_uint64().value_unsafe());
        } else {
          return mismatch();
        }
        cell.kind = Cell::kDouble;
        break;
      case ColumnType::kBoolean:
        if (jt != dom::element_type::BOOL) return mismatch();
        cell.i = v.get_bool().value_unsafe() ? 1 : 0;
        cell.kind = Cell::kBool;
        break;
      case ColumnType::kTimestampMillis:
        if (jt == dom::element_type::STRING) {
          auto ts = ParseTimestampMillis(v.get_string().value_unsafe());
          if (!ts.ok())
            return Status::InvalidArgument(fmt::format("column '{}': {}", col.name, ts.status().message()));
          cell.i = *ts;
        } else if (jt == dom::element_type::INT64) {
          cell.i = v.get_int64().value_unsafe();
        } else if (jt == dom::element_type::UINT64) {
          cell.i = kMaxTimestampMillis + 1;  // out of range below
        } else {
          return mismatch();
        }
        if (cell.i < kMinTimestampMillis || cell.i > kMaxTimestampMillis)
          return Status::InvalidArgument(fmt::format(
              "column '{}': timestamp {} out of range (epoch milliseconds of years 0000-9999)", col.name,
              Snippet(v)));
        cell.kind = Cell::kInt;
        break;
    }
  }

  size_t row_bytes = 0;
  for (size_t k = 0; k < ncols; k++) {
    const Column& col = schema_.columns[k];
    const Cell& cell = cells_[k];
    if (cell.kind == Cell::kNull && !col.nullable)
      return Status::InvalidArgument(fmt::format("column '{}': missing or null, but the column is not nullable",
                                                 col.name));
    row_bytes += col.nullable ? 1 : 0;
    if (cell.kind == Cell::kString) row_bytes += 4 + cell.s.size();
    else if (cell.kind == Cell::kBool) row_bytes += 1;
    else if (cell.kind != Cell::kNull) row_bytes += 8;
  }
  if (row_bytes > kMaxRowBytes)
    return Status::InvalidArgument(
        fmt::format("row too large for a Parquet page: {} bytes (at most {})", row_bytes, kMaxRowBytes));

  // Commit.
  for (size_t k = 0; k < ncols; k++) {
    const Column& col = schema_.columns[k];
    const Cell& cell = cells_[k];
    ColumnBuffer& b = cols_[k];
    if (col.nullable) b.defs.push_back(cell.kind == Cell::kNull ? 0 : 1);
    bool first = !b.has_minmax;
    switch (cell.kind) {
      case Cell::kNull:
        b.nulls++;
        break;
      case Cell::kInt:
      case Cell::kBool:
        if (cell.kind == Cell::kBool) b.values.push_back(char(cell.i));
        else PutFixed64(&b.values, uint64_t(cell.i));
        if (first || cell.i < b.imin) b.imin = cell.i;
        if (first || cell.i > b.imax) b.imax = cell.i;
        b.has_minmax = true;
        break;
      case Cell::kDouble:
        PutFixed64(&b.values, std::bit_cast<uint64_t>(cell.d));
        if (std::isnan(cell.d)) {
          b.nan_count++;
        } else {
          if (first || cell.d < b.dmin) b.dmin = cell.d;
          if (first || cell.d > b.dmax) b.dmax = cell.d;
          b.has_minmax = true;
        }
        break;
      case Cell::kString: {
        PutFixed32(&b.values, uint32_t(cell.s.size()));
        b.values.append(cell.s);
        // std::string_view compares as unsigned bytes (char_traits<char>::compare is memcmp).
        if (first || cell.s < std::string_view(b.smin)) b.smin = cell.s;
        if (first || cell.s > std::string_view(b.smax)) b.smax = cell.s;
        b.has_minmax = true;
        break;
      }
    }
  }
  buffered_ += row_bytes;
  group_rows_++;
  total_rows_++;
  if (buffered_ >= row_group_bytes_) {
    Status s = FlushRowGroup();
    if (!s.ok()) {
      failed_ = s;
      return s;
    }
  }
  return Status::OK();
}

// Runs of at least 8 equal values become RLE runs, the rest bit-packed runs. A
// bit-packed run must hold a multiple of 8 values unless it ends the data, so values
// are taken from the start of a long run to complete the pending bit-packed groups.
void detail::EncodeLevels(const std::vector<uint8_t>& lv, std::string* out) {
  const size_t n = lv.size();
  size_t i = 0;
  size_t lit = 0;  // pending bit-packed values: lv[i - lit, i)
  while (i < n) {
    size_t j = i;
    while (j < n && lv[j] == lv[i]) j++;
    size_t run = j - i;
    size_t pad = (8 - lit % 8) % 8;
    if (run >= pad + 8) {
      if (lit + pad > 0) PutBitPacked(lv, i - lit, lit + pad, out);
      i += pad;
      run -= pad;
      PutVarint(out, uint64_t(run) << 1);
      out->push_back(char(lv[i] & 1));
      i += run;
      lit = 0;
    } else {
      lit += run;
      i = j;
    }
  }
  if (lit > 0) PutBitPacked(lv, i - lit, lit, out);
}

Status Writer::FlushRowGroup() {
  if (group_rows_ == 0) return Status::OK();
  RowGroupMeta rg;
  rg.num_rows = int64_t(group_rows_);
  rg.offset = int64_t(file_offset_ + out_.size());
  std::string page, compressed, header;
  for (size_t k = 0; k < cols_.size(); k++) {
    const Column& col = schema_.columns[k];
    ColumnBuffer& b = cols_[k];
    // The page: [4-byte length, definition levels] (nullable only), then PLAIN values.
    page.clear();
    if (col.nullable) {
      PutFixed32(&page, 0);
      detail::EncodeLevels(b.defs, &page);
      uint32_t len = uint32_t(page.size() - 4);
      for (int i = 0; i < 4; i++) page[size_t(i)] = char(uint8_t(len >> (8 * i)));
    }
    if (col.type == ColumnType::kBoolean) {
      // PLAIN booleans are bit-packed, LSB first.
      size_t n = b.values.size();
      for (size_t g = 0; g < n; g += 8) {
        uint8_t byte = 0;
        for (size_t q = 0; q < 8 && g + q < n; q++) byte |= uint8_t((b.values[g + q] & 1) << q);
        page.push_back(char(byte));
      }
    } else {
      page.append(b.values);
    }
    SK_TRY(Compress(codec_, page, &compressed));

    ColumnChunkMeta cm;
    cm.num_values = rg.num_rows;
    cm.nulls = b.nulls;
    cm.offset = int64_t(file_offset_ + out_.size());

    header.clear();
    CompactWriter w(&header);
    w.BeginStruct();  // PageHeader
    w.FieldI32(1, pq::kDataPage);
    w.FieldI32(2, int32_t(page.size()));
    w.FieldI32(3, int32_t(compressed.size()));
    w.FieldI32(4, int32_t(uint32_t(crc32_z(0, reinterpret_cast<const Bytef*>(compressed.data()),
                                           compressed.size()))));
    w.FieldStructBegin(5);  // DataPageHeader
    w.FieldI32(1, int32_t(rg.num_rows));
    w.FieldI32(2, pq::kPlain);
    w.FieldI32(3, pq::kRle);
    w.FieldI32(4, pq::kRle);
    w.EndStruct();
    w.EndStruct();

    cm.uncompressed = int64_t(header.size() + page.size());
    cm.compressed = int64_t(header.size() + compressed.size());
    out_ += header;
    out_ += compressed;

    // Statistics, PLAIN-encoded (strings without their length prefix).
    cm.has_minmax = b.has_minmax;
    switch (col.type) {
      case ColumnType::kInt64:
      case ColumnType::kTimestampMillis:
        cm.min = Fixed64(uint64_t(b.imin));
        cm.max = Fixed64(uint64_t(b.imax));
        break;
      case ColumnType::kBoolean:
        cm.min = std::string(1, char(b.imin));
        cm.max = std::string(1, char(b.imax));
        break;
      case ColumnType::kDouble:
        // Zeros: -0.0 as the minimum, +0.0 as the maximum (parquet.thrift, ColumnOrder).
        cm.min = DoubleBytes(b.dmin == 0 ? -0.0 : b.dmin);
        cm.max = DoubleBytes(b.dmax == 0 ? +0.0 : b.dmax);
        cm.is_double = true;
        cm.nan_count = b.nan_count;
        break;
      case ColumnType::kString:
        if (b.smin.size() > kMaxStringStatBytes || b.smax.size() > kMaxStringStatBytes) cm.has_minmax = false;
        cm.min = std::move(b.smin);
        cm.max = std::move(b.smax);
        break;
    }
    if (!cm.has_minmax) {
      cm.min.clear();
      cm.max.clear();
    }
    rg.columns.push_back(std::move(cm));
    b.Reset();
  }
  row_groups_.push_back(std::move(rg));
  group_rows_ = 0;
  buffered_ = 0;
  return Status::OK();
}

void Writer::WriteFooter() {
  std::string meta;
  CompactWriter w(&meta);
  w.BeginStruct();  // FileMetaData
  w.FieldI32(1, 1);  // version
  w.FieldListBegin(2, thrift::Type::kStruct, schema_.columns.size() + 1);
  w.BeginStruct();  // the root group
  w.FieldBinary(4, "schema");
  w.FieldI32(5, int32_t(schema_.columns.size()));
  w.EndStruct();
  for (const Column& c : schema_.columns) {
    w.BeginStruct();  // SchemaElement
    w.FieldI32(1, PhysicalType(c.type));
    w.FieldI32(3, c.nullable ? pq::kOptional : pq::kRequired);
    w.FieldBinary(4, c.name);
    if (c.type == ColumnType::kString) {
      w.FieldI32(6, pq::kUtf8);
      w.FieldStructBegin(10);  // LogicalType
      w.FieldStructBegin(1);   // STRING
      w.EndStruct();
      w.EndStruct();
    } else if (c.type == ColumnType::kTimestampMillis) {
      w.FieldI32(6, pq::kTimestampMillis);
      w.FieldStructBegin(10);  // LogicalType
      w.FieldStructBegin(8);   // TIMESTAMP
      w.FieldBool(1, true);    // isAdjustedToUTC
      w.FieldStructBegin(2);   // unit: TimeUnit
      w.FieldStructBegin(1);   // MILLIS
      w.EndStruct();
      w.EndStruct();
      w.EndStruct();
      w.EndStruct();
    }
    w.EndStruct();
  }
  w.FieldI64(3, int64_t(total_rows_));
  w.FieldListBegin(4, thrift::Type::kStruct, row_groups_.size());
  for (size_t g = 0; g < row_groups_.size(); g++) {
    const RowGroupMeta& rg = row_groups_[g];
    int64_t total_uncompressed = 0, total_compressed = 0;
    w.BeginStruct();  // RowGroup
    w.FieldListBegin(1, thrift::Type::kStruct, rg.columns.size());
    for (size_t k = 0; k < rg.columns.size(); k++) {
      const ColumnChunkMeta& cm = rg.columns[k];
      const Column& c = schema_.columns[k];
      total_uncompressed += cm.uncompressed;
      total_compressed += cm.compressed;
      w.BeginStruct();  // ColumnChunk
      w.FieldI64(2, 0);  // file_offset: deprecated, 0
      w.FieldStructBegin(3);  // ColumnMetaData
      w.FieldI32(1, PhysicalType(c.type));
      w.FieldListBegin(2, thrift::Type::kI32, 2);
      w.I32(pq::kPlain);
      w.I32(pq::kRle);
      w.FieldListBegin(3, thrift::Type::kBinary, 1);
      w.Binary(c.name);
      w.FieldI32(4, CodecId(codec_));
      w.FieldI64(5, cm.num_values);
      w.FieldI64(6, cm.uncompressed);
      w.FieldI64(7, cm.compressed);
      w.FieldI64(9, cm.offset);
      w.FieldStructBegin(12);  // Statistics
      w.FieldI64(3, cm.nulls);
      if (cm.has_minmax) {
        w.FieldBinary(5, cm.max);
        w.FieldBinary(6, cm.min);
        w.FieldBool(7, true);
        w.FieldBool(8, true);
      }
      if (cm.is_double) w.FieldI64(9, cm.nan_count);
      w.EndStruct();
      w.EndStruct();
      w.EndStruct();
    }
    w.FieldI64(2, total_uncompressed);
    w.FieldI64(3, rg.num_rows);
    w.FieldI64(5, rg.offset);
    w.FieldI64(6, total_compressed);
    if (g <= size_t(std::numeric_limits<int16_t>::max())) w.FieldI16(7, int16_t(g));
    w.EndStruct();
  }
  w.FieldBinary(6, "streamkit version " STREAMKIT_VERSION);
  // column_orders: TYPE_ORDER for every column, which gives min/max statistics meaning.
  w.FieldListBegin(7, thrift::Type::kStruct, schema_.columns.size());
  for (size_t k = 0; k < schema_.columns.size(); k++) {
    w.BeginStruct();  // ColumnOrder
    w.FieldStructBegin(1);
    w.EndStruct();
    w.EndStruct();
  }
  w.EndStruct();

  out_ += meta;
  PutFixed32(&out_, uint32_t(meta.size()));
  out_ += kMagic;
}

std::string Writer::TakeOutput() {
  std::string r = std::move(out_);
  out_.clear();
  file_offset_ += r.size();
  return r;
}

Result<std::string> Writer::Finish() {
  if (!failed_.ok()) return failed_;
  if (finished_) return Status::Closed("parquet writer: already finished");
  finished_ = true;
  Status s = FlushRowGroup();
  if (!s.ok()) {
    failed_ = s;
    return s;
  }
  WriteFooter();
  return TakeOutput();
}

}  // namespace streamkit::parquet

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "parquet/parquet_writer.h"
#include "parquet/thrift_compact.h"

using namespace streamkit;
using namespace streamkit::parquet;

namespace {

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string r;
  for (unsigned char c : s) {
    if (!r.empty()) r += ' ';
    r += d[c >> 4];
    r += d[c & 15];
  }
  return r;
}

Status Append(Writer& w, std::string_view json) {
  static simdjson::dom::parser parser;
  simdjson::padded_string p(json);
  simdjson::dom::element row;
  auto e = parser.parse(p).get(row);
  REQUIRE(!e);
  return w.AppendJson(row);
}

Schema MustSchema(std::string_view json) {
  auto s = ParseSchema(json);
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return *s;
}

std::string SchemaError(std::string_view json) {
  auto s = ParseSchema(json);
  REQUIRE(!s.ok());
  return s.status().message();
}

// ---- A minimal Thrift compact-protocol reader, written for the tests only: it decodes
// any struct into a tree so the tests can check the writer's metadata field by field.
struct TValue {
  int type = 0;
  int64_t i = 0;
  double d = 0;
  std::string bin;
  std::vector<TValue> list;
  std::map<int, TValue> fields;
  const TValue& operator[](int id) const {
    auto it = fields.find(id);
    REQUIRE_MESSAGE(it != fields.end(), "missing field " << id);
    return it->second;
  }
  bool has(int id) const { return fields.count(id) > 0; }
};

struct TReader {
  const std::string& s;
  size_t p;
  uint8_t Byte() {
    REQUIRE(p < s.size());
    return uint8_t(s[p++]);
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = Byte();
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    FAIL("varint too long");
    return 0;
  }
  int64_t Zigzag() {
    uint64_t v = Varint();
    return int64_t(v >> 1) ^ -int64_t(v & 1);
  }
  TValue Value(int type) {
    TValue v;
    v.type = type;
    switch (type) {
      case 1: v.i = 1; break;  // bool true (field header)
      case 2: v.i = 0; break;  // bool false
      case 3: v.i = int8_t(Byte()); break;
      case 4:
      case 5:
      case 6: v.i = Zigzag(); break;
      case 7: {
        uint64_t bits = 0;
        for (int k = 0; k < 8; k++) bits |= uint64_t(Byte()) << (8 * k);
        std::memcpy(&v.d, &bits, 8);
        break;
      }
      case 8: {
        uint64_t n = Varint();
        REQUIRE(p + n <= s.size());
        v.bin = s.substr(p, n);
        p += n;
        break;
      }
      case 9: {
        uint8_t h = Byte();
        uint64_t n = h >> 4;
        if (n == 15) n = Varint();
        for (uint64_t k = 0; k < n; k++) v.list.push_back(Value(h & 15));
        break;
      }
      case 12: {
        int last = 0;
        for (;;) {
          uint8_t h = Byte();
          if (h == 0) break;
          int id = (h >> 4) ? last + (h >> 4) : int(Zigzag());
          v.fields[id] = Value(h & 15);
          last = id;
        }
        break;
      }
      default: FAIL("unexpected thrift type " << type);
    }
    return v;
  }
};

TValue DecodeStruct(const std::string& s, size_t* pos) {
  TReader r{s, *pos};
  TValue v = r.Value(12);
  *pos = r.p;
  return v;
}

// The RLE / bit-packed hybrid, decoded independently of the encoder.
std::vector<uint8_t> DecodeHybrid(const std::string& s, size_t n) {
  std::vector<uint8_t> out;
  TReader r{s, 0};
  while (out.size() < n) {
    uint64_t h = r.Varint();
    if (h & 1) {
      for (uint64_t g = 0; g < (h >> 1); g++) {
        uint8_t b = r.Byte();
        for (int k = 0; k < 8; k++) out.push_back((b >> k) & 1);
      }
    } else {
      uint8_t v = r.Byte();
      out.insert(out.end(), h >> 1, v);
    }
  }
  CHECK(r.p == s.size());
  out.resize(n);
  return out;
}

uint32_t Crc32(std::string_view s) {  // CRC-32 (IEEE, reflected 0xEDB88320), bit by bit
  uint32_t c = 0xffffffffu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}

uint32_t Le32(const std::string& s, size_t p) {
  uint32_t v = 0;
  for (int k = 0; k < 4; k++) v |= uint32_t(uint8_t(s[p + size_t(k)])) << (8 * k);
  return v;
}

uint64_t Le64(std::string_view s) {
  uint64_t v = 0;
  for (int k = 0; k < 8; k++) v |= uint64_t(uint8_t(s[size_t(k)])) << (8 * k);
  return v;
}

// Checks the file's framing and returns its FileMetaData.
TValue Footer(const std::string& f) {
  REQUIRE(f.size() >= 12);
  CHECK(f.substr(0, 4) == "PAR1");
  CHECK(f.substr(f.size() - 4) == "PAR1");
  uint32_t len = Le32(f, f.size() - 8);
  REQUIRE(len + 12 <= f.size());
  size_t start = f.size() - 8 - len;
  size_t p = start;
  TValue meta = DecodeStruct(f, &p);
  CHECK(p == f.size() - 8);  // the footer length is exact
  return meta;
}

const char* kAllTypes = R"({"columns":[
  {"name":"s","type":"string"},
  {"name":"i","type":"bigint","nullable":false},
  {"name":"d","type":"double"},
  {"name":"b","type":"boolean"},
  {"name":"t","type":"timestamp"}]})";

}  // namespace

// ---------------------------------------------------------------- Thrift compact

TEST_CASE("thrift: varints and zig-zag") {
  std::string out;
  thrift::CompactWriter w(&out);
  auto enc = [&](uint64_t v) {
    out.clear();
    w.PutVarint(v);
    return Hex(out);
  };
  CHECK(enc(0) == "00");
  CHECK(enc(1) == "01");
  CHECK(enc(127) == "7f");
  CHECK(enc(128) == "80 01");
  CHECK(enc(50399) == "df 89 03");  // the example in the compact protocol spec
  CHECK(enc(UINT64_MAX) == "ff ff ff ff ff ff ff ff ff 01");
  using W = thrift::CompactWriter;
  CHECK(W::ZigZag(0) == 0);
  CHECK(W::ZigZag(-1) == 1);
  CHECK(W::ZigZag(1) == 2);
  CHECK(W::ZigZag(-2) == 3);
  CHECK(W::ZigZag(INT64_MAX) == UINT64_MAX - 1);
  CHECK(W::ZigZag(INT64_MIN) == UINT64_MAX);
}

TEST_CASE("thrift: field headers use deltas, long form for jumps and going back") {
  std::string out;
  thrift::CompactWriter w(&out);
  w.BeginStruct();
  w.FieldI32(1, 42);     // delta 1, i32: 0x15, zigzag 84
  w.FieldI32(3, -1);     // delta 2: 0x25, zigzag 1
  w.FieldI64(18, 2);     // delta 15: still short, i64: 0xf6
  w.FieldI64(40, 2);     // delta 22: long form 0x06, id zigzag(40) = 80
  w.FieldI32(2, 0);      // backwards: long form 0x05, id zigzag(2) = 4
  w.FieldI32(300, 1);    // id 300: zigzag 600 = 0xd8 0x04
  w.EndStruct();
  CHECK(Hex(out) == "15 54 25 01 f6 04 06 50 04 05 04 00 05 d8 04 02 00");
}

TEST_CASE("thrift: bools, binary, doubles, i16") {
  std::string out;
  thrift::CompactWriter w(&out);
  w.BeginStruct();
  w.FieldBool(1, true);
  w.FieldBool(2, false);
  w.FieldBinary(4, "abc");
  w.FieldDouble(5, 1.0);
  w.FieldI16(7, 3);
  w.FieldBinary(8, "");
  w.EndStruct();
  CHECK(Hex(out) == "11 12 28 03 61 62 63 17 00 00 00 00 00 00 f0 3f 24 06 18 00 00");
}

TEST_CASE("thrift: lists, short and long headers") {
  std::string out;
  thrift::CompactWriter w(&out);
  w.BeginStruct();
  w.FieldListBegin(2, thrift::Type::kI32, 3);
  w.I32(0);
  w.I32(3);
  w.I32(-3);
  w.FieldListBegin(3, thrift::Type::kBinary, 1);
  w.Binary("x");
  w.FieldListBegin(4, thrift::Type::kI64, 0);
  w.EndStruct();
  CHECK(Hex(out) == "29 35 00 06 05 19 18 01 78 19 06 00");

  for (size_t n : {14u, 15u, 300u}) {
    out.clear();
    thrift::CompactWriter l(&out);
    l.BeginStruct();
    l.FieldListBegin(1, thrift::Type::kI32, n);
    for (size_t k = 0; k < n; k++) l.I32(1);
    l.EndStruct();
    std::string head = Hex(out.substr(0, n < 15 ? 2 : n < 128 ? 3 : 4));
    if (n == 14) CHECK(head == "19 e5");
    if (n == 15) CHECK(head == "19 f5 0f");
    if (n == 300) CHECK(head == "19 f5 ac 02");
    size_t p = 0;
    TValue v = DecodeStruct(out, &p);
    CHECK(v[1].list.size() == n);
  }
}

TEST_CASE("thrift: nested structs restore the enclosing field id") {
  std::string out;
  thrift::CompactWriter w(&out);
  w.BeginStruct();
  w.FieldI32(5, 1);        // 0x55 0x02
  w.FieldStructBegin(6);   // 0x1c
  w.FieldI32(1, 7);        // 0x15 0x0e
  w.FieldStructBegin(20);  // long form: 0x0c 0x28
  w.EndStruct();           // 0x00
  w.EndStruct();           // 0x00
  w.FieldI32(7, 2);        // delta 1 from field 6, not from the inner fields: 0x15 0x04
  w.FieldListBegin(8, thrift::Type::kStruct, 2);  // 0x19 0x2c
  w.BeginStruct();
  w.FieldI32(2, 1);        // 0x25 0x02
  w.EndStruct();
  w.BeginStruct();
  w.FieldI32(2, 1);        // ids restart in each element: 0x25 0x02
  w.EndStruct();
  w.FieldI32(9, 0);        // 0x15 0x00
  w.EndStruct();
  CHECK(Hex(out) == "55 02 1c 15 0e 0c 28 00 00 15 04 19 2c 25 02 00 25 02 00 15 00 00");
  size_t p = 0;
  TValue v = DecodeStruct(out, &p);
  CHECK(p == out.size());
  CHECK(v[6][1].i == 7);
  CHECK(v[7].i == 2);
  CHECK(v[8].list.size() == 2);
  CHECK(v[9].i == 0);
}

// ---------------------------------------------------------------- levels

TEST_CASE("definition levels: RLE / bit-packed hybrid") {
  auto enc = [](std::vector<uint8_t> lv) {
    std::string out;
    parquet::detail::EncodeLevels(lv, &out);
    return out;
  };
  CHECK(Hex(enc(std::vector<uint8_t>(10, 1))) == "14 01");     // RLE run of 10 ones
  CHECK(Hex(enc({1, 0, 1})) == "03 05");                         // one bit-packed group
  CHECK(Hex(enc({0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1})) ==
        "03 fe 12 01");  // a group topped up from the long run, then RLE of 9
  CHECK(enc({}).empty());

  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 300; iter++) {
    size_t n = rng() % 2000;
    std::vector<uint8_t> lv;
    while (lv.size() < n) {
      size_t run = rng() % 4 == 0 ? rng() % 40 : 1;
      uint8_t v = uint8_t(rng() & 1);
      for (size_t k = 0; k < run && lv.size() < n; k++) lv.push_back(rng() % 9 == 0 ? !v : v);
    }
    std::string out;
    parquet::detail::EncodeLevels(lv, &out);
    REQUIRE(DecodeHybrid(out, n) == lv);
  }
}

// ---------------------------------------------------------------- schema

TEST_CASE("schema: every accepted type name") {
  Schema s = MustSchema(R"J({"columns":[
    {"name":"a","type":"string"},{"name":"b","type":"VARCHAR(255)"},{"name":"c","type":"char(1)"},
    {"name":"d","type":"bigint"},{"name":"e","type":"int"},{"name":"f","type":"integer"},
    {"name":"g","type":"smallint"},{"name":"h","type":"TinyInt"},
    {"name":"i","type":"double"},{"name":"j","type":"float"},
    {"name":"k","type":"boolean"},{"name":"l","type":"timestamp","nullable":false},
    {"name":"m","type":"string","comment":"ignored"}]})J");
  REQUIRE(s.columns.size() == 13);
  ColumnType want[] = {ColumnType::kString,  ColumnType::kString,  ColumnType::kString, ColumnType::kInt64,
                       ColumnType::kInt64,   ColumnType::kInt64,   ColumnType::kInt64,  ColumnType::kInt64,
                       ColumnType::kDouble,  ColumnType::kDouble,  ColumnType::kBoolean,
                       ColumnType::kTimestampMillis, ColumnType::kString};
  for (size_t k = 0; k < 13; k++) CHECK(s.columns[k].type == want[k]);
  CHECK(s.columns[0].nullable);
  CHECK(!s.columns[11].nullable);
  CHECK(s.columns[11].name == "l");
}

TEST_CASE("schema: Glue's get-table output and capitalised keys") {
  Schema s = MustSchema(R"({"Table":{"Name":"t","StorageDescriptor":{"Columns":[
      {"Name":"id","Type":"bigint"},{"Name":"msg","Type":"string"}]}}})");
  REQUIRE(s.columns.size() == 2);
  CHECK(s.columns[0].name == "id");
  CHECK(s.columns[1].type == ColumnType::kString);
}

TEST_CASE("schema: bad inputs say what is wrong") {
  CHECK(SchemaError("{").find("schema: invalid JSON") == 0);
  CHECK(SchemaError("[]") == "schema: expected a JSON object with a \"columns\" array");
  CHECK(SchemaError("{}") == "schema: no \"columns\" array");
  CHECK(SchemaError(R"({"columns":{}})") == "schema: \"columns\" is not an array");
  CHECK(SchemaError(R"({"columns":[]})") == "schema: no columns");
  CHECK(SchemaError(R"({"columns":[1]})") == "schema: column 1 is not an object");
  CHECK(SchemaError(R"({"columns":[{"type":"string"}]})") == "schema: column 1: missing \"name\" string");
  CHECK(SchemaError(R"({"columns":[{"name":"","type":"string"}]})") == "schema: column 1: empty name");
  CHECK(SchemaError(R"({"columns":[{"name":"a"}]})") == "schema: column 'a': missing \"type\" string");
  CHECK(SchemaError(R"J({"columns":[{"name":"a","type":"string"},{"name":"p","type":"decimal(10,2)"}]})J")
            .find("schema: column 'p': unsupported type 'decimal(10,2)' (supported: string,") == 0);
  CHECK(SchemaError(R"({"columns":[{"name":"a","type":"array<string>"}]})")
            .find("unsupported type 'array<string>'") != std::string::npos);
  CHECK(SchemaError(R"J({"columns":[{"name":"a","type":"bigint(3)"}]})J")
            .find("unsupported type 'bigint(3)'") != std::string::npos);
  CHECK(SchemaError(R"({"columns":[{"name":"a","type":"string","nullable":"no"}]})") ==
        "schema: column 'a': \"nullable\" must be true or false");
  CHECK(SchemaError(R"({"columns":[{"name":"a","type":"string"},{"name":"a","type":"int"}]})") ==
        "schema: duplicate column name 'a'");
}

TEST_CASE("codec names") {
  CHECK(*ParseCodec("none") == Codec::kNone);
  CHECK(*ParseCodec("UNCOMPRESSED") == Codec::kNone);
  CHECK(*ParseCodec("snappy") == Codec::kSnappy);
  CHECK(*ParseCodec("gzip") == Codec::kGzip);
  CHECK(*ParseCodec("zstd") == Codec::kZstd);
  CHECK(ParseCodec("lz4").status().message() == "unknown compression 'lz4' (none, snappy, gzip, zstd)");
  CHECK(std::string(CodecName(Codec::kZstd)) == "zstd");
}

// ---------------------------------------------------------------- timestamps

TEST_CASE("timestamps: ISO-8601 forms") {
  auto ms = [](std::string_view s) {
    auto r = ParseTimestampMillis(s);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return *r;
  };
  CHECK(ms("1970-01-01T00:00:00Z") == 0);
  CHECK(ms("2024-05-01T12:00:00Z") == 1714564800000);
  CHECK(ms("2024-05-01T12:00:00") == 1714564800000);  // no offset: UTC
  CHECK(ms("2024-05-01 12:00:00") == 1714564800000);
  CHECK(ms("2024-05-01t12:00:00z") == 1714564800000);
  CHECK(ms("2024-05-01T12:00Z") == 1714564800000);
  CHECK(ms("2024-05-01") == 1714521600000);
  CHECK(ms("2024-05-01T12:00:00.123Z") == 1714564800123);
  CHECK(ms("2024-05-01T12:00:00.1Z") == 1714564800100);
  CHECK(ms("2024-05-01T12:00:00.12Z") == 1714564800120);
  CHECK(ms("2024-05-01T12:00:00.123999999Z") == 1714564800123);  // truncated
  CHECK(ms("2024-05-01T12:00:00,5Z") == 1714564800500);
  CHECK(ms("2024-05-01T12:00:00+02:00") == 1714557600000);
  CHECK(ms("2024-05-01T12:00:00+0200") == 1714557600000);
  CHECK(ms("2024-05-01T12:00:00+02") == 1714557600000);
  CHECK(ms("2024-05-01T12:00:00.250-05:30") == 1714584600250);
  CHECK(ms("2024-02-29T23:59:59Z") == 1709251199000);
  CHECK(ms("1969-12-31T23:59:59.999Z") == -1);
  CHECK(ms("1900-03-01T00:00:00Z") == -2203891200000);
  CHECK(ms("0000-01-01T00:00:00Z") == -62167219200000);
  CHECK(ms("9999-12-31T23:59:59.999Z") == 253402300799999);
}

TEST_CASE("timestamps: malformed or impossible values are rejected") {
  auto err = [](std::string_view s) {
    auto r = ParseTimestampMillis(s);
    REQUIRE_MESSAGE(!r.ok(), s);
    return r.status().message();
  };
  CHECK(err("yesterday") ==
        "invalid timestamp 'yesterday': expected YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM]");
  for (std::string_view s : {"", "2024-5-01", "2024-05-01T", "2024-05-01T12", "2024-05-01T12:00:00.Z",
                             "2024-05-01T12:00:00Zjunk", "2024-05-01T12:00:00+2", "2024-05-01T12:00:00+02:",
                             "2024-05-01X12:00:00", "20240501T120000Z", " 2024-05-01"})
    CHECK_MESSAGE(err(s).find("expected YYYY-MM-DD") != std::string::npos, s);
  CHECK(err("2023-02-29").find("no such date") != std::string::npos);
  CHECK(err("2024-13-01").find("no such date") != std::string::npos);
  CHECK(err("2024-04-31T00:00:00Z").find("no such date") != std::string::npos);
  CHECK(err("2024-05-01T24:00:00Z").find("no such time of day") != std::string::npos);
  CHECK(err("2024-05-01T12:60:00Z").find("no such time of day") != std::string::npos);
  CHECK(err("2024-05-01T12:00:60Z").find("no such time of day") != std::string::npos);
  CHECK(err("2024-05-01T12:00:00+24:00").find("bad UTC offset") != std::string::npos);
}

// ---------------------------------------------------------------- rows

TEST_CASE("rows: type errors name the column, and append nothing") {
  Writer w(MustSchema(kAllTypes), Codec::kNone);
  auto err = [&](std::string_view row) {
    Status s = Append(w, row);
    REQUIRE(!s.ok());
    CHECK(s.is(Status::Code::kInvalidArgument));
    return s.message();
  };
  CHECK(err(R"({"i":"42"})") == "column 'i': expected bigint, got string \"42\"");
  CHECK(err(R"({"i":1.5})") == "column 'i': expected bigint, got double 1.5");
  CHECK(err(R"({"i":18446744073709551615})") == "column 'i': integer 18446744073709551615 out of bigint range");
  CHECK(err(R"({"i":1,"s":7})") == "column 's': expected string, got integer 7");
  CHECK(err(R"({"i":1,"d":"1.5"})") == "column 'd': expected double, got string \"1.5\"");
  CHECK(err(R"({"i":1,"b":1})") == "column 'b': expected boolean, got integer 1");
  CHECK(err(R"({"i":1,"b":[true]})") == "column 'b': expected boolean, got array [true]");
  CHECK(err(R"({"i":1,"t":1.5})") == "column 't': expected timestamp, got double 1.5");
  CHECK(err(R"({"i":1,"t":{"a":1}})") == "column 't': expected timestamp, got object {\"a\":1}");
  CHECK(err(R"({"i":1,"t":"2024-02-30"})") == "column 't': invalid timestamp '2024-02-30': no such date");
  CHECK(err(R"({"i":1,"t":1714564800000000})") ==
        "column 't': timestamp 1714564800000000 out of range (epoch milliseconds of years 0000-9999)");
  CHECK(err(R"({"i":1,"s":"x","b":true,"d":"oops"})").find("column 'd'") == 0);
  CHECK(err(R"([1,2])") == "row is not a JSON object (got array)");
  CHECK(err(R"("x")") == "row is not a JSON object (got string)");
  CHECK(err(R"({"i":1,"s":")" + std::string(80, 'x') + R"(","t":true})")
            .find("column 't': expected timestamp, got boolean true") == 0);
  CHECK(w.rows() == 0);
  CHECK(w.buffered_bytes() == 0);
}

TEST_CASE("rows: nulls, missing keys and non-nullable columns") {
  Writer w(MustSchema(kAllTypes), Codec::kNone);
  CHECK(Append(w, R"({"i":1})").ok());  // every nullable column missing
  CHECK(Append(w, R"({"i":2,"s":null,"d":null,"b":null,"t":null,"extra":[1,2]})").ok());
  Status s = Append(w, R"({"s":"x"})");
  CHECK(s.message() == "column 'i': missing or null, but the column is not nullable");
  s = Append(w, R"({"i":null})");
  CHECK(s.message() == "column 'i': missing or null, but the column is not nullable");
  CHECK(Append(w, R"({"i":3,"i":4})").ok());  // a repeated key: the last one counts
  CHECK(Append(w, R"({"i":-9223372036854775808,"d":5,"s":"","b":false,"t":"2024-05-01T12:00:00Z"})").ok());
  CHECK(Append(w, R"({"i":9223372036854775807,"d":18446744073709551615,"t":-1})").ok());
  CHECK(w.rows() == 5);
  auto f = w.Finish();
  REQUIRE(f.ok());
  TValue meta = Footer(*f);
  CHECK(meta[3].i == 5);
  // Statistics of the bigint column: min INT64_MIN, max INT64_MAX, no nulls.
  const TValue& icol = meta[4].list[0][1].list[1][3];
  CHECK(icol[12][3].i == 0);
  CHECK(Le64(icol[12][6].bin) == uint64_t(INT64_MIN));
  CHECK(Le64(icol[12][5].bin) == uint64_t(INT64_MAX));
  // The string column: 4 nulls, one empty string (min = max = "").
  const TValue& scol = meta[4].list[0][1].list[0][3];
  CHECK(scol[12][3].i == 4);
  CHECK(scol[12][6].bin.empty());
  CHECK(scol[12][5].bin.empty());
}

TEST_CASE("writer: a schema not from ParseSchema is checked too") {
  Writer w(Schema{{{"a", ColumnType::kInt64, true}, {"a", ColumnType::kString, true}}}, Codec::kNone);
  CHECK(Append(w, R"({"a":1})").message() == "parquet writer: duplicate column name 'a'");
  CHECK(!w.Finish().ok());
  Writer empty(Schema{}, Codec::kNone);
  CHECK(Append(empty, "{}").message() == "parquet writer: the schema has no columns");
}

// ---------------------------------------------------------------- file layout

// Checks magic, footer, offsets and sizes of every column chunk and page header;
// with Codec::kNone also the page bytes. Returns the metadata.
TValue CheckLayout(const std::string& f, const Schema& schema, Codec codec) {
  TValue meta = Footer(f);
  CHECK(meta[1].i == 1);
  CHECK(meta[6].bin == "streamkit version " STREAMKIT_VERSION);
  const auto& sch = meta[2].list;
  REQUIRE(sch.size() == schema.columns.size() + 1);
  CHECK(sch[0][5].i == int64_t(schema.columns.size()));
  CHECK(!sch[0].has(1));
  for (size_t k = 0; k < schema.columns.size(); k++) {
    CHECK(sch[k + 1][4].bin == schema.columns[k].name);
    CHECK(sch[k + 1][3].i == (schema.columns[k].nullable ? 1 : 0));
  }
  CHECK(meta[7].list.size() == schema.columns.size());
  size_t pos = 4;  // column chunks follow the magic back to back
  int64_t rows = 0;
  for (size_t g = 0; g < meta[4].list.size(); g++) {
    const TValue& rg = meta[4].list[g];
    CHECK(rg[5].i == int64_t(pos));
    CHECK(rg[7].i == int64_t(g));
    int64_t sum_c = 0, sum_u = 0;
    for (size_t k = 0; k < rg[1].list.size(); k++) {
      const TValue& cm = rg[1].list[k][3];
      CHECK(cm[3].list[0].bin == schema.columns[k].name);
      CHECK(cm[5].i == rg[3].i);
      CHECK(cm[9].i == int64_t(pos));
      size_t p = pos;
      TValue ph = DecodeStruct(f, &p);
      size_t hsize = p - pos;
      CHECK(ph[1].i == 0);
      CHECK(int64_t(hsize) + ph[3].i == cm[7].i);
      CHECK(int64_t(hsize) + ph[2].i == cm[6].i);
      CHECK(ph[5][1].i == rg[3].i);
      std::string body = f.substr(p, size_t(ph[3].i));
      CHECK(uint32_t(ph[4].i) == Crc32(body));
      if (codec == Codec::kNone) {
        CHECK(ph[2].i == ph[3].i);
        if (schema.columns[k].nullable) CHECK(Le32(body, 0) + 4 <= body.size());
      }
      sum_c += cm[7].i;
      sum_u += cm[6].i;
      pos += size_t(cm[7].i);
    }
    CHECK(rg[6].i == sum_c);
    CHECK(rg[2].i == sum_u);
    rows += rg[3].i;
  }
  CHECK(rows == meta[3].i);
  CHECK(pos == f.size() - 8 - Le32(f, f.size() - 8));  // the footer follows the last chunk
  return meta;
}

TEST_CASE("file layout: magic, footer, offsets, for every codec") {
  Schema schema = MustSchema(kAllTypes);
  for (Codec codec : {Codec::kNone, Codec::kSnappy, Codec::kGzip, Codec::kZstd}) {
    CAPTURE(CodecName(codec));
    Writer w(schema, codec);
    for (int r = 0; r < 100; r++) {
      std::string row = fmt::format(R"({{"s":"row {}","i":{},"d":{}.5,"b":{},"t":{}}})", r, r * 7 - 300, r,
                                    r % 3 == 0 ? "true" : "false", int64_t(r) * 1000);
      if (r % 10 == 0) row = fmt::format(R"({{"i":{}}})", r);
      REQUIRE(Append(w, row).ok());
    }
    auto f = w.Finish();
    REQUIRE(f.ok());
    TValue meta = CheckLayout(*f, schema, codec);
    REQUIRE(meta[4].list.size() == 1);
    const int32_t codec_id[] = {0, 1, 2, 6};
    CHECK(meta[4].list[0][1].list[0][3][4].i == codec_id[int(codec)]);
    if (codec == Codec::kGzip) {  // the gzip member header
      const TValue& cm = meta[4].list[0][1].list[0][3];
      size_t p = size_t(cm[9].i);
      DecodeStruct(*f, &p);
      CHECK(Hex(f->substr(p, 3)) == "1f 8b 08");
    }
    // Timestamp and string logical types.
    const auto& sch = meta[2].list;
    CHECK(sch[1][1].i == 6);
    CHECK(sch[1][6].i == 0);
    CHECK(sch[1][10].has(1));
    CHECK(sch[5][1].i == 2);
    CHECK(sch[5][6].i == 9);
    CHECK(sch[5][10][8][1].i == 1);
    CHECK(sch[5][10][8][2].has(1));
    CHECK(!sch[2].has(6));
  }
}

TEST_CASE("file layout: uncompressed page bytes") {
  Schema schema = MustSchema(R"({"columns":[{"name":"s","type":"string"},
                                            {"name":"b","type":"boolean","nullable":false}]})");
  Writer w(schema, Codec::kNone);
  REQUIRE(Append(w, R"({"s":"ab","b":true})").ok());
  REQUIRE(Append(w, R"({"b":false})").ok());
  REQUIRE(Append(w, R"({"s":"","b":true})").ok());
  auto f = w.Finish();
  REQUIRE(f.ok());
  TValue meta = CheckLayout(*f, schema, Codec::kNone);
  auto body = [&](size_t col) {
    size_t p = size_t(meta[4].list[0][1].list[col][3][9].i);
    TValue ph = DecodeStruct(*f, &p);
    return f->substr(p, size_t(ph[3].i));
  };
  // Levels 1,0,1 as one bit-packed group behind a 4-byte length; then "ab" and "".
  CHECK(Hex(body(0)) == "02 00 00 00 03 05 02 00 00 00 61 62 00 00 00 00");
  CHECK(Hex(body(1)) == "05");  // true, false, true bit-packed; no levels
  // Statistics: min "" max "ab"; booleans 0 / 1.
  CHECK(meta[4].list[0][1].list[0][3][12][6].bin.empty());
  CHECK(meta[4].list[0][1].list[0][3][12][5].bin == "ab");
  CHECK(Hex(meta[4].list[0][1].list[1][3][12][6].bin) == "00");
  CHECK(Hex(meta[4].list[0][1].list[1][3][12][5].bin) == "01");
}

TEST_CASE("file layout: row groups, TakeOutput, an empty file") {
  Schema schema = MustSchema(kAllTypes);
  auto fill = [&](Writer& w, std::string* taken) {
    for (int r = 0; r < 1000; r++) {
      REQUIRE(Append(w, fmt::format(R"({{"s":"{}","i":{},"d":-0.0}})", std::string(size_t(r % 50), 'z'), r)).ok());
      if (taken && r % 97 == 0) *taken += w.TakeOutput();
    }
  };
  Writer a(schema, Codec::kZstd, 4096);
  fill(a, nullptr);
  CHECK(a.row_groups() >= 5);
  CHECK(a.buffered_bytes() < 4096);
  auto fa = a.Finish();
  REQUIRE(fa.ok());
  TValue meta = CheckLayout(*fa, schema, Codec::kZstd);
  CHECK(meta[4].list.size() >= 6);
  CHECK(meta[3].i == 1000);
  for (const TValue& rg : meta[4].list) {
    const TValue& st = rg[1].list[2][3][12];  // the double column: all -0.0
    CHECK(Le64(st[6].bin) == 0x8000000000000000ull);  // min written as -0.0
    CHECK(Le64(st[5].bin) == 0);                      // max written as +0.0
    CHECK(st[9].i == 0);                              // nan_count
  }
  CHECK(!a.Finish().ok());

  Writer b(schema, Codec::kZstd, 4096);
  std::string taken;
  fill(b, &taken);
  auto fb = b.Finish();
  REQUIRE(fb.ok());
  CHECK(taken + *fb == *fa);

  Writer e(schema, Codec::kSnappy);
  auto fe = e.Finish();
  REQUIRE(fe.ok());
  TValue em = CheckLayout(*fe, schema, Codec::kSnappy);
  CHECK(em[3].i == 0);
  CHECK(em[4].list.empty());
}

TEST_CASE("statistics: long strings are left without min/max") {
  Schema schema = MustSchema(R"({"columns":[{"name":"s","type":"string"}]})");
  Writer w(schema, Codec::kNone);
  REQUIRE(Append(w, R"({"s":"short"})").ok());
  REQUIRE(Append(w, R"({"s":")" + std::string(65, 'x') + R"("})").ok());
  auto f = w.Finish();
  REQUIRE(f.ok());
  TValue meta = CheckLayout(*f, schema, Codec::kNone);
  const TValue& st = meta[4].list[0][1].list[0][3][12];
  CHECK(st[3].i == 0);
  CHECK(!st.has(5));
  CHECK(!st.has(6));
}

// parquet_gen: the test driver of streamkit_parquet. Reads NDJSON rows on stdin and
// writes them as one Parquet file, the way `stream-firehose --format parquet` will.
//
//   parquet_gen --schema SCHEMA.json [--codec none|snappy|gzip|zstd]
//               [--row-group-bytes N] OUT.parquet < rows.ndjson
//
// Prints "rows=N row_groups=M bytes=B" on success. Exit codes: 0 ok, 1 I/O error,
// 2 usage, 3 bad input (the message names the line).
#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "parquet/parquet_writer.h"

using namespace streamkit;
using namespace streamkit::parquet;

namespace {

int Usage(const char* msg) {
  std::fprintf(stderr,
               "parquet_gen: %s\nusage: parquet_gen --schema FILE [--codec none|snappy|gzip|zstd] "
               "[--row-group-bytes N] OUT < rows.ndjson\n",
               msg);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string schema_path, out_path;
  Codec codec = Codec::kNone;
  size_t row_group_bytes = size_t(64) << 20;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if ((a == "--schema" || a == "--codec" || a == "--row-group-bytes") && i + 1 >= argc)
      return Usage("missing value");
    if (a == "--schema") {
      schema_path = argv[++i];
    } else if (a == "--codec") {
      auto c = ParseCodec(argv[++i]);
      if (!c.ok()) return Usage(c.status().message().c_str());
      codec = *c;
    } else if (a == "--row-group-bytes") {
      char* end = nullptr;
      row_group_bytes = std::strtoull(argv[++i], &end, 10);
      if (*end != '\0' || row_group_bytes == 0) return Usage("bad --row-group-bytes");
    } else if (!a.empty() && a[0] == '-') {
      return Usage(("unknown option " + a).c_str());
    } else if (out_path.empty()) {
      out_path = a;
    } else {
      return Usage("more than one output file");
    }
  }
  if (schema_path.empty() || out_path.empty()) return Usage("--schema and OUT are required");

  std::ifstream sf(schema_path);
  if (!sf) {
    std::fprintf(stderr, "parquet_gen: cannot read %s\n", schema_path.c_str());
    return 1;
  }
  std::stringstream ss;
  ss << sf.rdbuf();
  auto schema = ParseSchema(ss.str());
  if (!schema.ok()) {
    std::fprintf(stderr, "parquet_gen: %s: %s\n", schema_path.c_str(), schema.status().message().c_str());
    return 3;
  }

  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  if (!out) {
    std::fprintf(stderr, "parquet_gen: cannot write %s\n", out_path.c_str());
    return 1;
  }
  Writer w(std::move(*schema), codec, row_group_bytes);
  simdjson::dom::parser parser;
  std::string line;
  size_t lineno = 0, bytes = 0;
  while (std::getline(std::cin, line)) {
    lineno++;
    if (line.empty()) continue;
    simdjson::dom::element row;
    if (auto e = parser.parse(line).get(row); e) {
      std::fprintf(stderr, "parquet_gen: line %zu: invalid JSON: %s\n", lineno, simdjson::error_message(e));
      return 3;
    }
    Status s = w.AppendJson(row);
    if (!s.ok()) {
      std::fprintf(stderr, "parquet_gen: line %zu: %s\n", lineno, s.message().c_str());
      return 3;
    }
    // Stream finished row groups to the file as they appear.
    std::string part = w.TakeOutput();
    bytes += part.size();
    out.write(part.data(), std::streamsize(part.size()));
  }
  auto rest = w.Finish();
  if (!rest.ok()) {
    std::fprintf(stderr, "parquet_gen: %s\n", rest.status().ToString().c_str());
    return 1;
  }
  bytes += rest->size();
  out.write(rest->data(), std::streamsize(rest->size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "parquet_gen: write %s failed\n", out_path.c_str());
    return 1;
  }
  std::printf("rows=%zu row_groups=%zu bytes=%zu\n", w.rows(), w.row_groups(), bytes);
  return 0;
}

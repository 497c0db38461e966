// The pieces of stream-firehose that are pure functions: Firehose-style prefixes
// (!{timestamp:...}, !{partitionKeyFromQuery:...}, !{firehose:...}), partition key
// sanitising, base64, and whole-file compression (gzip, zstd, snappy framing).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace streamkit::firehose {

// ---- base64 (RFC 4648, with padding) ------------------------------------------------
std::string Base64Encode(std::string_view in);
Result<std::string> Base64Decode(std::string_view in);

// ---- timestamps ----------------------------------------------------------------------
// Formats `ms` (UTC) with a Java DateTimeFormatter-like pattern: yyyy yy MM dd HH mm ss
// SSS, text in single quotes is literal ('' is a quote), other characters are copied.
std::string FormatTimestamp(std::string_view pattern, int64_t ms);

// ---- prefixes --------------------------------------------------------------------------
// A prefix template: literal text and !{namespace:value} expressions.
class Prefix {
 public:
  struct Part {
    enum Kind { kLiteral, kTimestamp, kPartitionKey, kRandom, kErrorType } kind;
    std::string text;  // literal text, timestamp pattern, or partition key name
  };
  // Parses `text`. `keys`: the partition key names defined (--partition-key);
  // `error_prefix`: whether !{firehose:error-output-type} is allowed. As Firehose does,
  // a prefix without a timestamp expression gets !{timestamp:yyyy/MM/dd/HH/} appended.
  static Result<Prefix> Parse(std::string_view text, const std::vector<std::string>& keys, bool error_prefix);

  struct Context {
    int64_t arrival_ms = 0;                        // of the oldest record in the file
    const std::map<std::string, std::string>* keys = nullptr;
    std::string_view error_type;                   // processing-failed, ...
    uint64_t seed = 0;                             // !{firehose:random-string}: 11 chars from it
  };
  // The evaluated prefix, a relative path (checked by SafeRelativePath by the caller).
  std::string Evaluate(const Context& c) const;
  bool uses_keys() const { return uses_keys_; }
  const std::string& text() const { return text_; }

 private:
  std::vector<Part> parts_;
  std::string text_;
  bool uses_keys_ = false;
};

// A partition key value is used as one path component: empty, "." or "..", and values
// with '/', '\', NUL or other control characters, or longer than kMaxKeyValue bytes,
// are refused (the record goes to the error prefix). Returns the reason, or OK.
constexpr size_t kMaxKeyValue = 512;
Status CheckKeyValue(std::string_view v);
// An evaluated prefix + file name must be a relative path with no empty, "." or ".."
// component, at most 1024 bytes.
Status SafeRelativePath(std::string_view p);

// ---- compression ------------------------------------------------------------------------
enum class Compression { kNone, kGzip, kZstd, kSnappy };
Result<Compression> ParseCompression(std::string_view name);
const char* CompressionExtension(Compression c);  // "", ".gz", ".zst", ".snappy"
// Compresses a whole file. gzip: RFC 1952 (zlib, level 6); zstd: one frame (level 1,
// with content checksum); snappy: the framing format (stream identifier, chunks of at
// most 64 KiB with masked CRC-32C), as `snzip`/Hadoop-free tools read it.
Status Compress(Compression c, std::string_view in, std::string* out);
// The inverse, for tests and --verify.
Result<std::string> Decompress(Compression c, std::string_view in);

}  // namespace streamkit::firehose

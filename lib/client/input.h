// Client-side input handling for stream-put: cutting a byte stream (usually stdin)
// into records, and pulling a partition key out of a JSON record.
//
// InputReader reads a file descriptor in large read(2) calls into one bounded
// buffer (max_record_bytes + kInputReadBytes) and hands out records as views into
// it; it never holds the whole input. KeyExtractor and ValidateJson check one JSON
// value with simdjson, reusing one parser and one padded copy buffer, so the common
// case allocates nothing per record.
//
// Thread-safety: an InputReader or a KeyExtractor belongs to one thread at a time.
// ValidateJson may be called from any thread (each thread gets its own parser).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

namespace streamkit::client {

// Bytes asked for per read(2) call (and the buffer space beyond one record).
constexpr size_t kInputReadBytes = size_t(1) << 20;
// The largest max_record_bytes an InputReader accepts (it allocates that much).
constexpr size_t kMaxInputRecordLimit = size_t(1) << 30;
// JSON nesting deeper than this is rejected as invalid.
constexpr int kMaxJsonDepth = 1024;
// Limits on a key path: its text length and its number of steps.
constexpr size_t kMaxKeyPathBytes = 1024;
constexpr size_t kMaxKeyPathSteps = 64;

enum class Framing {
  kLines,   // records end at '\n'
  kNul,     // records end at '\0' (find -print0, xargs -0)
  kNdjson,  // records end at '\n'; blank lines are skipped
  kRaw,     // the whole input is one record
};

// Splits the bytes of a file descriptor into records.
//
// Framing rules:
//  - kLines: the '\n' ending a line is not part of the record; a '\r' before it IS
//    kept (CRLF input gives records ending in '\r': the bytes are stored as given).
//    An empty line is an empty record. A last line without '\n' is still a record.
//  - kNdjson: as kLines, but lines holding only JSON whitespace (space, tab, '\r')
//    are skipped, like jq; they still count in line_number(). (A whitespace line
//    longer than the limit is reported as over-size, not skipped.) Records are not
//    validated here (see ValidateJson / KeyExtractor).
//  - kNul: as kLines with '\0' as the terminator; no '\r' or blank-line handling.
//  - kRaw: everything up to end of input is one record.
//  - Any framing: an empty input yields no record at all.
//
// Over-size records: a unit longer than max_record_bytes is not an error of the
// reader. Next() returns true with oversize() set, the record holding the unit's
// first max_record_bytes bytes, and the rest of the unit already skipped, so the
// caller can report "line N: record of M bytes exceeds the limit" and then stop or
// carry on with the next unit. oversize_bytes() is the unit's full length, except
// for kRaw: the reader stops reading at max_record_bytes + 1 bytes (input may be
// endless), so it reports max_record_bytes + 1, meaning "more than the limit", and
// the following Next() returns false.
//
// Reads retry on EINTR and wait with poll(2) on a non-blocking descriptor. The
// reader does not own or close the descriptor.
class InputReader {
 public:
  // max_record_bytes above kMaxInputRecordLimit makes the first Next() fail with
  // kInvalidArgument.
  InputReader(int fd, Framing framing, size_t max_record_bytes);

  InputReader(const InputReader&) = delete;
  InputReader& operator=(const InputReader&) = delete;
  InputReader(InputReader&&) noexcept = default;
  InputReader& operator=(InputReader&&) noexcept = default;

  // The next record; the view stays valid until the next call. False at end of input
  // or on a read error (then status() says why; later calls keep returning false).
  bool Next(std::string_view* record);

  // 1-based number of the unit just returned (line, or NUL-terminated unit; 1 for
  // kRaw). Skipped blank ndjson lines are counted.
  uint64_t line_number() const { return line_; }
  const Status& status() const { return status_; }
  // True when Next() can answer without reading: a whole unit is buffered, or the
  // input has ended. (A producer polls stdin only when this is false.)
  bool HasBufferedUnit() const;
  // About the record just returned; see the class comment.
  bool oversize() const { return oversize_; }
  uint64_t oversize_bytes() const { return oversize_bytes_; }

 private:
  bool NextRaw(std::string_view* record);
  // Returns the unit [begin, begin+len) as the record, applying the size limit.
  void Emit(size_t begin, size_t len, std::string_view* record);
  // The buffered part of the current unit is longer than the limit: keep its first
  // max_ bytes, read and drop the rest of the unit, then return the kept bytes.
  bool SkipOversize(std::string_view* record);
  // Moves the unread bytes to the front of the buffer.
  void Compact();
  // One read(2) into [end_, end_ + n); returns the byte count (0 at end of input) or
  // -1 with status_ set.
  ptrdiff_t ReadSome(size_t at, size_t n);

  int fd_;
  Framing framing_;
  char delim_;
  size_t max_;
  size_t cap_ = 0;
  std::unique_ptr<char[]> buf_;
  size_t begin_ = 0;  // first unread byte
  size_t scan_ = 0;   // bytes [begin_, scan_) are known to hold no delimiter
  size_t end_ = 0;    // end of buffered data
  bool eof_ = false;
  bool done_ = false;
  uint64_t line_ = 0;
  bool oversize_ = false;
  uint64_t oversize_bytes_ = 0;
  Status status_;
};

// Pulls the partition key out of JSON records by a path fixed at Parse time.
//
// Path syntax, either:
//  - jq-like: one or more steps, each `.name` (name = any bytes but '.', '[' and
//    '"'), `."quoted name"` (with \" and \\ escapes) or `[N]` (array index), e.g.
//    `.user.id`, `.items[0].sku`, `."a.b"`;
//  - a JSON pointer (RFC 6901): `/user/id`, with ~0 for '~' and ~1 for '/'; a
//    token names an object member, or an array index when it is 0 or [1-9][0-9]*.
// "" and "." are invalid (there is no key to take from the whole record).
//
// The key is the value's text: a string's unescaped contents; a number exactly as
// written (42, 3.50, 1e3); true/false as "true"/"false". null, objects and arrays
// are errors. If a member name repeats, the last one counts (as in jq).
class KeyExtractor {
 public:
  static Result<KeyExtractor> Parse(std::string_view path);

  KeyExtractor(KeyExtractor&&) noexcept;
  KeyExtractor& operator=(KeyExtractor&&) noexcept;
  ~KeyExtractor();

  // Checks that `json` is exactly one valid JSON value and returns the key.
  // kInvalidArgument: "invalid JSON: <reason>", "field .user.id is missing",
  // "field .user.id is null, not a string or number".
  Result<std::string> Extract(std::string_view json);
  // As Extract, writing into *key (reusing its capacity: no allocation once warm).
  Status ExtractInto(std::string_view json, std::string* key);

  const std::string& path() const;

 private:
  struct Impl;
  explicit KeyExtractor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Checks that `json` is exactly one complete, valid JSON value (whitespace around
// it allowed). kInvalidArgument "invalid JSON: <reason>" otherwise.
Status ValidateJson(std::string_view json);

}  // namespace streamkit::client

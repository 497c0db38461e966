#include "client/input.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/core.h>
#include <simdjson.h>

namespace streamkit::client {

// ---------------------------------------------------------------------------
// InputReader
//
// Buffer layout: one allocation of cap_ = max_ + kInputReadBytes bytes. Unread data
// is [begin_, end_); a record is returned as a view into it and stays untouched
// until the next call. Before a read, if less than kInputReadBytes is free at the
// tail, the partial unit at [begin_, end_) (at most max_ bytes, else it is over-size)
// moves to the front, so every read(2) asks for at least kInputReadBytes.

namespace {

bool IsBlankLine(const char* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return false;
  return true;
}

}  // namespace

InputReader::InputReader(int fd, Framing framing, size_t max_record_bytes)
    : fd_(fd),
      framing_(framing),
      delim_(framing == Framing::kNul ? '\0' : '\n'),
      max_(max_record_bytes) {
  if (max_ > kMaxInputRecordLimit) {
    status_ = Status::InvalidArgument(fmt::format(
        "record size limit {} is above the largest supported, {}", max_, kMaxInputRecordLimit));
    return;
  }
  cap_ = max_ + kInputReadBytes;
  buf_ = std::make_unique_for_overwrite<char[]>(cap_);
}

ptrdiff_t InputReader::ReadSome(size_t at, size_t n) {
  SK_ASSERT(at + n <= cap_ && n > 0, "read of {} bytes at {} in a {}-byte buffer", n, at, cap_);
  for (;;) {
    ssize_t r = ::read(fd_, buf_.get() + at, n);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      // A non-blocking descriptor: wait until it has data (or hangs up).
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, -1) >= 0 || errno == EINTR) continue;
    }
    status_ = Status::FromErrno(errno, fmt::format("read input (fd {})", fd_));
    return -1;
  }
}

void InputReader::Compact() {
  if (begin_ == 0) return;
  size_t n = end_ - begin_;
  if (n > 0) std::memmove(buf_.get(), buf_.get() + begin_, n);
  scan_ -= begin_;
  end_ = n;
  begin_ = 0;
}

void InputReader::Emit(size_t begin, size_t len, std::string_view* record) {
  if (len > max_) {
    oversize_ = true;
    oversize_bytes_ = len;
    len = max_;
  }
  *record = std::string_view(buf_.get() + begin, len);
}

bool InputReader::HasBufferedUnit() const {
  if (done_ || eof_ || !status_.ok()) return true;
  if (framing_ == Framing::kRaw || end_ <= scan_) return false;
  return std::memchr(buf_.get() + scan_, delim_, end_ - scan_) != nullptr;
}

bool InputReader::Next(std::string_view* record) {
  oversize_ = false;
  oversize_bytes_ = 0;
  if (!status_.ok() || done_) return false;
  if (framing_ == Framing::kRaw) return NextRaw(record);

  const bool skip_blank = framing_ == Framing::kNdjson;
  for (;;) {
    if (scan_ < end_) {
      const void* hit = std::memchr(buf_.get() + scan_, delim_, end_ - scan_);
      if (hit != nullptr) {
        size_t at = size_t(static_cast<const char*>(hit) - buf_.get());
        size_t start = begin_;
        begin_ = scan_ = at + 1;
        line_++;
        size_t len = at - start;
        if (skip_blank && len <= max_ && IsBlankLine(buf_.get() + start, len)) continue;
        Emit(start, len, record);
        return true;
      }
      scan_ = end_;
    }
    if (eof_) {
      if (begin_ == end_) {
        done_ = true;
        return false;
      }
      // The last unit, without a terminator.
      size_t start = begin_;
      size_t len = end_ - begin_;
      begin_ = scan_ = end_;
      line_++;
      if (skip_blank && len <= max_ && IsBlankLine(buf_.get() + start, len)) {
        done_ = true;
        return false;
      }
      Emit(start, len, record);
      return true;
    }
    if (end_ - begin_ > max_) return SkipOversize(record);
    if (begin_ == end_) {
      begin_ = scan_ = end_ = 0;
    } else if (cap_ - end_ < kInputReadBytes) {
      Compact();
    }
    ptrdiff_t n = ReadSome(end_, cap_ - end_);
    if (n < 0) return false;
    if (n == 0) {
      eof_ = true;
    } else {
      end_ += size_t(n);
    }
  }
}

bool InputReader::SkipOversize(std::string_view* record) {
  // [begin_, end_) is longer than max_ and holds no terminator. Keep its first max_
  // bytes at the front; use the rest of the buffer to read and drop the remainder.
  Compact();
  uint64_t total = end_;
  end_ = max_;
  char* scratch = buf_.get() + max_;
  for (;;) {
    ptrdiff_t n = ReadSome(max_, cap_ - max_);
    if (n < 0) return false;
    if (n == 0) {  // the unit ends at end of input
      eof_ = true;
      begin_ = scan_ = end_ = max_;
      break;
    }
    const void* hit = std::memchr(scratch, delim_, size_t(n));
    if (hit != nullptr) {
      size_t at = size_t(static_cast<const char*>(hit) - buf_.get());
      total += at - max_;
      begin_ = scan_ = at + 1;  // the next unit starts here
      end_ = max_ + size_t(n);
      break;
    }
    total += uint64_t(n);
  }
  line_++;
  oversize_ = true;
  oversize_bytes_ = total;
  *record = std::string_view(buf_.get(), max_);
  return true;
}

bool InputReader::NextRaw(std::string_view* record) {
  done_ = true;  // one record at most
  // Read up to max_ + 1 bytes: enough to tell "fits" from "too big".
  while (!eof_ && end_ <= max_) {
    ptrdiff_t n = ReadSome(end_, max_ + 1 - end_);
    if (n < 0) return false;
    if (n == 0) {
      eof_ = true;
    } else {
      end_ += size_t(n);
    }
  }
  if (end_ == 0) return false;
  line_ = 1;
  Emit(0, end_, record);
  return true;
}

// ---------------------------------------------------------------------------
// JSON checking and key extraction
//
// Fast path: simdjson's DOM parser, which validates the whole value (structure,
// strings and their escapes, UTF-8, numbers, literals, trailing content) in one
// SIMD pass; the key path is then followed on the parsed tree. The DOM keeps a
// number's value, not its text, so when the key is a number a second, On-Demand pass
// follows the path again to read the token as written.
//
// Slow path: the DOM parser also rejects numbers that are valid JSON but fit
// neither a double nor a 64-bit integer (123456789012345678901234567890, 1e400), so
// on NUMBER_ERROR the value is judged again by a full On-Demand walk: On Demand only
// checks what it is asked to read, so the walk reads everything (every member name
// and string is unescaped, every number and literal is checked against the RFC 8259
// grammar here, nothing may follow the root value) and captures the key on the way.
//
// Both paths follow the key path the same way: when a member name repeats, the last
// occurrence counts (as in jq; simdjson's own lookups take the first).

namespace {

namespace od = simdjson::ondemand;
namespace dom = simdjson::dom;
using simdjson::error_code;

constexpr size_t kOffPath = SIZE_MAX;

// One step of a key path.
struct PathStep {
  std::string name;      // the member name, when the step can select a member
  uint64_t index = 0;    // the array index, when the step can select an element
  bool member = false;   // may select an object member
  bool element = false;  // may select an array element
  size_t text_end = 0;   // where this step ends in the path text (for messages)
};

enum class Kind : uint8_t { kObject, kArray, kString, kNumber, kBoolean, kNull };

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kObject: return "an object";
    case Kind::kArray: return "an array";
    case Kind::kString: return "a string";
    case Kind::kNumber: return "a number";
    case Kind::kBoolean: return "a boolean";
    case Kind::kNull: return "null";
  }
  return "unknown";
}

Kind KindOf(od::json_type t) {
  switch (t) {
    case od::json_type::object: return Kind::kObject;
    case od::json_type::array: return Kind::kArray;
    case od::json_type::string: return Kind::kString;
    case od::json_type::number: return Kind::kNumber;
    case od::json_type::boolean: return Kind::kBoolean;
    case od::json_type::null: return Kind::kNull;
  }
  SK_UNREACHABLE("unknown ondemand json_type {}", int(t));
}

Kind KindOf(dom::element_type t) {
  switch (t) {
    case dom::element_type::OBJECT: return Kind::kObject;
    case dom::element_type::ARRAY: return Kind::kArray;
    case dom::element_type::STRING: return Kind::kString;
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return Kind::kNumber;
    case dom::element_type::BOOL: return Kind::kBoolean;
    case dom::element_type::NULL_VALUE: return Kind::kNull;
  }
  SK_UNREACHABLE("unknown dom element_type {}", int(t));
}

bool IsJsonWhitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && IsJsonWhitespace(s.back())) s.remove_suffix(1);
  return s;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// RFC 8259 section 6: number = [ "-" ] int [ frac ] [ exp ].
bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  if (i < n && s[i] == '-') i++;
  if (i >= n) return false;
  if (s[i] == '0') {
    i++;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < n && IsDigit(s[i])) i++;
  } else {
    return false;
  }
  if (i < n && s[i] == '.') {
    i++;
    if (i >= n || !IsDigit(s[i])) return false;
    while (i < n && IsDigit(s[i])) i++;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    if (i >= n || !IsDigit(s[i])) return false;
    while (i < n && IsDigit(s[i])) i++;
  }
  return i == n;
}

// "0" or [1-9][0-9]* that fits in 64 bits (RFC 6901 array-index).
bool ParseArrayIndex(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19 || (s.size() > 1 && s[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    v = v * 10 + uint64_t(c - '0');
  }
  *out = v;
  return true;
}

Status InvalidJson(error_code e) {
  return Status::InvalidArgument(fmt::format("invalid JSON: {}", simdjson::error_message(e)));
}

// Checks one JSON value and, when given a path, captures the value at that path.
// Owns the reusable parsers and the padded copy of the input.
class JsonChecker {
 public:
  // `steps` null: validate only. Otherwise `*key` receives the key and `path` is the
  // path text for messages.
  Status Check(std::string_view json, const std::vector<PathStep>* steps, std::string_view path,
               std::string* key);

 private:
  // What following the path found; the last occurrence wins (Enter resets it).
  void Enter();
  // The value at `step` is of kind k: capture it if it is the target, note a dead end
  // if it cannot be descended. Returns whether its children can be on the path.
  bool Visit(Kind k, size_t step);
  Status Report(std::string_view path) const;

  // Fast path.
  void FollowDom(dom::element e, size_t step);
  error_code NumberText(od::value v, size_t step);

  // Slow path.
  error_code SlowCheck(size_t root);
  error_code WalkValue(od::value v, size_t step, int depth);
  error_code WalkObject(od::object obj, size_t step, int depth);
  error_code WalkArray(od::array arr, size_t step, int depth);
  // A number, true, false or null token: check its text and capture it if targeted.
  error_code Atom(std::string_view raw, Kind k, size_t step);
  void String(std::string_view s, size_t step);

  dom::parser dom_;
  od::parser od_;
  std::unique_ptr<char[]> pad_;
  size_t pad_cap_ = 0;
  size_t len_ = 0;

  // Per call.
  const std::vector<PathStep>* steps_ = nullptr;
  std::string* key_ = nullptr;
  bool found_ = false;
  Kind found_kind_ = Kind::kNull;
  size_t blocked_step_ = kOffPath;  // a value on the path that could not be descended
  Kind blocked_kind_ = Kind::kNull;
};

void JsonChecker::Enter() {
  // A (later) member or element matching the path overrides whatever an earlier
  // duplicate along the path produced.
  found_ = false;
  blocked_step_ = kOffPath;
}

bool JsonChecker::Visit(Kind k, size_t step) {
  if (step == kOffPath) return false;
  if (step == steps_->size()) {
    found_ = true;
    found_kind_ = k;
    return false;  // the target's own children are not on the path
  }
  const PathStep& s = (*steps_)[step];
  if ((k == Kind::kObject && s.member) || (k == Kind::kArray && s.element)) return true;
  blocked_step_ = step;
  blocked_kind_ = k;
  return false;
}

Status JsonChecker::Report(std::string_view path) const {
  if (!found_) {
    if (blocked_step_ == kOffPath) {
      return Status::InvalidArgument(fmt::format("field {} is missing", path));
    }
    const PathStep& s = (*steps_)[blocked_step_];
    std::string_view prefix =
        path.substr(0, blocked_step_ == 0 ? 0 : (*steps_)[blocked_step_ - 1].text_end);
    const char* want = s.member && s.element ? "an object or array"
                       : s.member            ? "an object"
                                             : "an array";
    return Status::InvalidArgument(
        fmt::format("field {} is missing ({} is {}, not {})", path,
                    prefix.empty() ? std::string_view("the record") : prefix,
                    KindName(blocked_kind_), want));
  }
  switch (found_kind_) {
    case Kind::kString:
    case Kind::kNumber:
    case Kind::kBoolean:
      return Status::OK();
    default:
      return Status::InvalidArgument(
          fmt::format("field {} is {}, not a string or number", path, KindName(found_kind_)));
  }
}

void JsonChecker::FollowDom(dom::element e, size_t step) {
  const Kind k = KindOf(e.type());
  if (!Visit(k, step)) {
    if (found_ && step == steps_->size()) {
      std::string_view s;
      bool b = false;
      if (k == Kind::kString && !e.get_string().get(s)) {
        key_->assign(s);  // DOM strings are already unescaped
      } else if (k == Kind::kBoolean && !e.get_bool().get(b)) {
        key_->assign(b ? "true" : "false");
      }
      // A number's text comes from NumberText once the walk is over.
    }
    return;
  }
  const PathStep& s = (*steps_)[step];
  dom::object obj;
  dom::array arr;
  if (k == Kind::kObject && !e.get_object().get(obj)) {
    for (dom::key_value_pair member : obj) {
      if (member.key == s.name) {
        Enter();
        FollowDom(member.value, step + 1);
      }
    }
  } else if (k == Kind::kArray && !e.get_array().get(arr)) {
    uint64_t i = 0;
    for (dom::element child : arr) {
      if (i++ == s.index) {
        Enter();
        FollowDom(child, step + 1);
        break;
      }
    }
  }
}

error_code JsonChecker::NumberText(od::value v, size_t step) {
  // The document is known valid and the last path occurrence is known to be a number;
  // follow every occurrence, later ones overwriting earlier ones.
  if (step == steps_->size()) {
    key_->assign(TrimRight(v.raw_json_token()));
    return simdjson::SUCCESS;
  }
  od::json_type t;
  if (error_code e = v.type().get(t)) return e;
  const PathStep& s = (*steps_)[step];
  if (t == od::json_type::object && s.member) {
    od::object obj;
    if (error_code e = v.get_object().get(obj)) return e;
    for (auto member : obj) {
      od::field f;
      if (error_code e = std::move(member).get(f)) return e;
      std::string_view name;
      if (error_code e = f.unescaped_key().get(name)) return e;
      if (name == s.name) {
        if (error_code e = NumberText(f.value(), step + 1)) return e;
      }
    }
  } else if (t == od::json_type::array && s.element) {
    od::array arr;
    if (error_code e = v.get_array().get(arr)) return e;
    uint64_t i = 0;
    for (auto element : arr) {
      od::value child;
      if (error_code e = std::move(element).get(child)) return e;
      if (i++ == s.index) {
        if (error_code e = NumberText(child, step + 1)) return e;
      }
    }
  }
  return simdjson::SUCCESS;
}

void JsonChecker::String(std::string_view s, size_t step) {
  if (Visit(Kind::kString, step)) return;  // never true: a string has no children
  if (found_ && step == steps_->size()) key_->assign(s);
}

error_code JsonChecker::Atom(std::string_view raw, Kind k, size_t step) {
  raw = TrimRight(raw);
  switch (k) {
    case Kind::kNumber:
      if (!IsJsonNumber(raw)) return simdjson::NUMBER_ERROR;
      break;
    case Kind::kBoolean:
      if (raw != "true" && raw != "false") {
        return raw.starts_with('t') ? simdjson::T_ATOM_ERROR : simdjson::F_ATOM_ERROR;
      }
      break;
    case Kind::kNull:
      if (raw != "null") return simdjson::N_ATOM_ERROR;
      break;
    default:
      SK_UNREACHABLE("Atom called for {}", KindName(k));
  }
  Visit(k, step);
  if (found_ && step == steps_->size() && k != Kind::kNull) key_->assign(raw);
  return simdjson::SUCCESS;
}

error_code JsonChecker::WalkObject(od::object obj, size_t step, int depth) {
  if (depth > kMaxJsonDepth) return simdjson::DEPTH_ERROR;
  const PathStep* want = step != kOffPath ? &(*steps_)[step] : nullptr;
  for (auto member : obj) {
    od::field f;
    if (error_code e = std::move(member).get(f)) return e;
    std::string_view name;
    if (error_code e = f.unescaped_key().get(name)) return e;  // checks the escapes
    size_t child = kOffPath;
    if (want != nullptr && want->member && name == want->name) {
      child = step + 1;
      Enter();
    }
    if (error_code e = WalkValue(f.value(), child, depth)) return e;
  }
  return simdjson::SUCCESS;
}

error_code JsonChecker::WalkArray(od::array arr, size_t step, int depth) {
  if (depth > kMaxJsonDepth) return simdjson::DEPTH_ERROR;
  const PathStep* want = step != kOffPath ? &(*steps_)[step] : nullptr;
  uint64_t i = 0;
  for (auto element : arr) {
    od::value v;
    if (error_code e = std::move(element).get(v)) return e;
    size_t child = kOffPath;
    if (want != nullptr && want->element && i == want->index) {
      child = step + 1;
      Enter();
    }
    if (error_code e = WalkValue(v, child, depth)) return e;
    i++;
  }
  return simdjson::SUCCESS;
}

error_code JsonChecker::WalkValue(od::value v, size_t step, int depth) {
  od::json_type t;
  if (error_code e = v.type().get(t)) return e;
  switch (t) {
    case od::json_type::object: {
      od::object obj;
      if (error_code e = v.get_object().get(obj)) return e;
      return WalkObject(obj, Visit(Kind::kObject, step) ? step : kOffPath, depth + 1);
    }
    case od::json_type::array: {
      od::array arr;
      if (error_code e = v.get_array().get(arr)) return e;
      return WalkArray(arr, Visit(Kind::kArray, step) ? step : kOffPath, depth + 1);
    }
    case od::json_type::string: {
      std::string_view s;
      if (error_code e = v.get_string().get(s)) return e;  // checks the escapes
      String(s, step);
      return simdjson::SUCCESS;
    }
    default:
      // Left unconsumed: the enclosing iteration steps over the token.
      return Atom(v.raw_json_token(), KindOf(t), step);
  }
}

error_code JsonChecker::SlowCheck(size_t root) {
  od::document doc;
  if (error_code e = od_.iterate(pad_.get(), len_, pad_cap_).get(doc)) return e;
  od::json_type t;
  if (error_code e = doc.type().get(t)) return e;
  if (t == od::json_type::object || t == od::json_type::array) {
    error_code e;
    if (t == od::json_type::object) {
      od::object obj;
      e = doc.get_object().get(obj);
      if (!e) e = WalkObject(obj, Visit(Kind::kObject, root) ? root : kOffPath, 1);
    } else {
      od::array arr;
      e = doc.get_array().get(arr);
      if (!e) e = WalkArray(arr, Visit(Kind::kArray, root) ? root : kOffPath, 1);
    }
    if (e) return e;
    // Anything left after the closing bracket is trailing content.
    if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
      return simdjson::TRAILING_CONTENT;
    }
    return simdjson::SUCCESS;
  }
  // A root scalar must be the only token: its text runs to the end of the input,
  // give or take whitespace.
  std::string_view raw;
  if (error_code e = doc.raw_json_token().get(raw)) return e;
  raw = TrimRight(raw);
  if (raw.data() + raw.size() != pad_.get() + TrimRight({pad_.get(), len_}).size()) {
    return simdjson::TRAILING_CONTENT;
  }
  if (t == od::json_type::string) {
    std::string_view s;
    if (error_code e = doc.get_string().get(s)) return e;
    String(s, root);
    return simdjson::SUCCESS;
  }
  return Atom(raw, KindOf(t), root);
}

Status JsonChecker::Check(std::string_view json, const std::vector<PathStep>* steps,
                          std::string_view path, std::string* key) {
  steps_ = steps;
  key_ = key;
  found_ = false;
  blocked_step_ = kOffPath;

  // simdjson may read up to SIMDJSON_PADDING bytes past the input.
  const size_t need = json.size() + simdjson::SIMDJSON_PADDING;
  if (need > pad_cap_) {
    size_t cap = std::max(need, pad_cap_ * 2);
    pad_ = std::make_unique_for_overwrite<char[]>(cap);
    pad_cap_ = cap;
  }
  if (!json.empty()) std::memcpy(pad_.get(), json.data(), json.size());
  std::memset(pad_.get() + json.size(), 0, simdjson::SIMDJSON_PADDING);
  len_ = json.size();
  const size_t root = steps == nullptr ? kOffPath : 0;

  dom::element doc;
  error_code e = dom_.parse(pad_.get(), len_, /*realloc_if_needed=*/false).get(doc);
  if (e == simdjson::NUMBER_ERROR) {
    // Maybe a valid number the DOM cannot hold: let the full walk decide.
    e = SlowCheck(root);
    if (e) return InvalidJson(e);
  } else if (e) {
    return InvalidJson(e);
  } else if (steps != nullptr) {
    FollowDom(doc, 0);
    if (found_ && found_kind_ == Kind::kNumber) {
      od::document od_doc;
      od::value v;
      e = od_.iterate(pad_.get(), len_, pad_cap_).get(od_doc);
      if (!e) e = od_doc.get_value().get(v);  // the root is an object or array here
      if (!e) e = NumberText(v, 0);
      if (e) return InvalidJson(e);  // not expected: the DOM parser accepted it
    }
  }
  if (steps == nullptr) return Status::OK();
  return Report(path);
}

}  // namespace

// ---------------------------------------------------------------------------
// KeyExtractor

struct KeyExtractor::Impl {
  std::string path;
  std::vector<PathStep> steps;
  JsonChecker checker;
};

namespace {

Status BadPath(std::string_view path, std::string_view why) {
  return Status::InvalidArgument(fmt::format("invalid key path '{}': {}", path, why));
}

// jq-like: (.name | ."quoted" | [N])+
Status ParseJqPath(std::string_view path, std::vector<PathStep>* steps) {
  size_t i = 0;
  while (i < path.size()) {
    PathStep step;
    if (path[i] == '[') {
      size_t close = path.find(']', i);
      if (close == std::string_view::npos) return BadPath(path, "'[' without ']'");
      if (!ParseArrayIndex(path.substr(i + 1, close - i - 1), &step.index)) {
        return BadPath(path, "an array index must be 0 or a number without leading zeros");
      }
      step.element = true;
      i = close + 1;
    } else if (path[i] == '.') {
      i++;
      if (i < path.size() && path[i] == '[') continue;  // ".[0]", as jq allows
      if (i < path.size() && path[i] == '"') {
        i++;
        bool closed = false;
        while (i < path.size()) {
          char c = path[i++];
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\') {
            if (i >= path.size() || (path[i] != '"' && path[i] != '\\')) {
              return BadPath(path, "only \\\" and \\\\ may be escaped in a quoted name");
            }
            c = path[i++];
          }
          step.name += c;
        }
        if (!closed) return BadPath(path, "unterminated quoted name");
      } else {
        size_t start = i;
        while (i < path.size() && path[i] != '.' && path[i] != '[' && path[i] != '"') i++;
        if (i == start) {
          return BadPath(path, i < path.size() && path[i] == '"'
                                   ? "a quoted name must follow '.' directly"
                                   : "empty name after '.'");
        }
        if (i < path.size() && path[i] == '"') return BadPath(path, "'\"' inside a name");
        step.name.assign(path.substr(start, i - start));
      }
      step.member = true;
    } else {
      return BadPath(path, fmt::format("expected '.' or '[' at offset {}", i));
    }
    step.text_end = i;
    steps->push_back(std::move(step));
    if (steps->size() > kMaxKeyPathSteps) {
      return BadPath(path, fmt::format("more than {} steps", kMaxKeyPathSteps));
    }
  }
  return Status::OK();
}

// RFC 6901: ("/" reference-token)*, "~0" is '~' and "~1" is '/'.
Status ParsePointer(std::string_view path, std::vector<PathStep>* steps) {
  size_t i = 0;
  while (i < path.size()) {
    SK_ASSERT(path[i] == '/', "pointer token at {} does not start with '/'", i);
    i++;
    PathStep step;
    while (i < path.size() && path[i] != '/') {
      char c = path[i++];
      if (c == '~') {
        if (i >= path.size() || (path[i] != '0' && path[i] != '1')) {
          return BadPath(path, "'~' must be followed by 0 or 1 in a JSON pointer");
        }
        c = path[i++] == '0' ? '~' : '/';
      }
      step.name += c;
    }
    step.member = true;
    step.element = ParseArrayIndex(step.name, &step.index);
    step.text_end = i;
    steps->push_back(std::move(step));
    if (steps->size() > kMaxKeyPathSteps) {
      return BadPath(path, fmt::format("more than {} steps", kMaxKeyPathSteps));
    }
  }
  return Status::OK();
}

}  // namespace

KeyExtractor::KeyExtractor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KeyExtractor::KeyExtractor(KeyExtractor&&) noexcept = default;
KeyExtractor& KeyExtractor::operator=(KeyExtractor&&) noexcept = default;
KeyExtractor::~KeyExtractor() = default;

Result<KeyExtractor> KeyExtractor::Parse(std::string_view path) {
  if (path.empty() || path == ".") {
    return BadPath(path, "it selects the whole record; name a field, like .user.id or /user/id");
  }
  if (path.size() > kMaxKeyPathBytes) {
    return Status::InvalidArgument(
        fmt::format("invalid key path: longer than {} bytes", kMaxKeyPathBytes));
  }
  auto impl = std::make_unique<Impl>();
  impl->path.assign(path);
  if (path[0] == '/') {
    SK_TRY(ParsePointer(path, &impl->steps));
  } else if (path[0] == '.') {
    SK_TRY(ParseJqPath(path, &impl->steps));
  } else {
    return BadPath(path, "start with '.' (like .user.id) or '/' (a JSON pointer, like /user/id)");
  }
  return KeyExtractor(std::move(impl));
}

const std::string& KeyExtractor::path() const { return impl_->path; }

Status KeyExtractor::ExtractInto(std::string_view json, std::string* key) {
  key->clear();
  Status s = impl_->checker.Check(json, &impl_->steps, impl_->path, key);
  if (!s.ok()) key->clear();
  return s;
}

Result<std::string> KeyExtractor::Extract(std::string_view json) {
  std::string key;
  SK_TRY(ExtractInto(json, &key));
  return key;
}

Status ValidateJson(std::string_view json) {
  thread_local JsonChecker checker;
  return checker.Check(json, nullptr, {}, nullptr);
}

}  // namespace streamkit::client

// Status and Result<T>: how the streamkit library reports failure.
//
// The library never throws. Every fallible function returns a [[nodiscard]] Status
// (or Result<T>, a value or a Status). Only a tool's main() turns a Status into a
// message on stderr and an exit code. A Status carries a code, the errno when the
// failure came from the operating system, and a one-line message naming what failed
// (the operation and the path or field).
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "util/assert.h"

namespace streamkit {

class [[nodiscard]] Status {
 public:
  enum class Code : unsigned char {
    kOk = 0,
    kNotFound,         // a stream, shard, file or offset that does not exist
    kCorruption,       // bytes on disk or on the wire fail validation
    kInvalidArgument,  // the caller passed something out of range
    kIoError,          // the operating system refused (errno says why)
    kNoSpace,          // ENOSPC / EDQUOT
    kBusy,             // a lock is held by someone else
    kOutOfOrder,       // idempotent producer: sequence gap
    kFenced,           // idempotent producer: stale epoch
    kUnsupported,      // feature unavailable here (e.g. io_uring)
    kClosed,           // the object was closed or shut down
    kOutOfRange,       // a record routed to a shard whose hash range excludes it
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status OutOfOrder(std::string msg) { return Status(Code::kOutOfOrder, std::move(msg)); }
  static Status Fenced(std::string msg) { return Status(Code::kFenced, std::move(msg)); }
  static Status Unsupported(std::string msg, int err = 0) {
    return Status(Code::kUnsupported, std::move(msg), err);
  }
  static Status Busy(std::string msg) { return Status(Code::kBusy, std::move(msg)); }
  static Status Closed(std::string msg) { return Status(Code::kClosed, std::move(msg)); }
  static Status OutOfRange(std::string msg) { return Status(Code::kOutOfRange, std::move(msg)); }
  // A failure to reach something (kIoError whatever the errno, e.g. a missing socket).
  static Status IoError(std::string msg, int err = 0) { return Status(Code::kIoError, std::move(msg), err); }
  // An operating-system failure: `what` names the operation and the path.
  static Status FromErrno(int err, std::string_view what);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  int err() const { return errno_; }
  const std::string& message() const { return message_; }
  bool is(Code c) const { return code_ == c; }

  // "corruption: segment 00000000000000000000.log: crc mismatch at byte 4096"
  std::string ToString() const;
  static const char* CodeName(Code c);

 private:
  Status(Code c, std::string msg, int err = 0) : code_(c), errno_(err), message_(std::move(msg)) {}

  Code code_ = Code::kOk;
  int errno_ = 0;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status s) : v_(std::move(s)) {      // NOLINT: implicit by design
    SK_ASSERT(!std::get<Status>(v_).ok(), "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & {
    SK_ASSERT(ok(), "Result::value() on error: {}", std::get<Status>(v_).ToString());
    return std::get<T>(v_);
  }
  T&& value() && {
    SK_ASSERT(ok(), "Result::value() on error: {}", std::get<Status>(v_).ToString());
    return std::get<T>(std::move(v_));
  }
  const T& value() const& {
    SK_ASSERT(ok(), "Result::value() on error: {}", std::get<Status>(v_).ToString());
    return std::get<T>(v_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace streamkit

// Early return on failure: SK_TRY(file->sync());
#define SK_TRY(expr)                           \
  do {                                         \
    ::streamkit::Status sk_try_s_ = (expr);    \
    if (!sk_try_s_.ok()) return sk_try_s_;     \
  } while (0)

#define SK_CONCAT_INNER(a, b) a##b
#define SK_CONCAT(a, b) SK_CONCAT_INNER(a, b)
// SK_ASSIGN_OR_RETURN(auto f, io.open(path)); returns the Status on failure.
#define SK_ASSIGN_OR_RETURN(lhs, expr) SK_ASSIGN_OR_RETURN_IMPL(SK_CONCAT(sk_r_, __LINE__), lhs, expr)
#define SK_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

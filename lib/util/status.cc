#include "util/status.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace streamkit {

namespace detail {
void AssertFail(const char* file, int line, const char* cond, const std::string& msg) {
  std::fprintf(stderr, "streamkit: assertion failed at %s:%d: %s: %s\n", file, line, cond,
               msg.c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail

Status Status::FromErrno(int err, std::string_view what) {
  std::string msg = fmt::format("{}: {}", what, std::strerror(err));
  Code c = (err == ENOSPC || err == EDQUOT) ? Code::kNoSpace
           : err == ENOENT                  ? Code::kNotFound
                                            : Code::kIoError;
  return Status(c, std::move(msg), err);
}

const char* Status::CodeName(Code c) {
  switch (c) {
    case Code::kOk: return "ok";
    case Code::kNotFound: return "not found";
    case Code::kCorruption: return "corruption";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kIoError: return "I/O error";
    case Code::kNoSpace: return "no space";
    case Code::kBusy: return "busy";
    case Code::kOutOfOrder: return "out of order sequence";
    case Code::kFenced: return "fenced";
    case Code::kUnsupported: return "unsupported";
    case Code::kClosed: return "closed";
    case Code::kOutOfRange: return "out of range";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return fmt::format("{}: {}", CodeName(code_), message_);
}

}  // namespace streamkit

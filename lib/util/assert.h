// Always-on assertions for programming errors (never for bad input or I/O: those
// are Status values). A failed assertion prints file:line and a formatted message
// to stderr and aborts, in release builds too.
#pragma once

#include <fmt/core.h>

namespace streamkit::detail {
[[noreturn]] void AssertFail(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace streamkit::detail

#define SK_ASSERT(cond, ...)                                                             \
  do {                                                                                   \
    if (__builtin_expect(!(cond), 0))                                                    \
      ::streamkit::detail::AssertFail(__FILE__, __LINE__, #cond, fmt::format(__VA_ARGS__)); \
  } while (0)

#define SK_UNREACHABLE(...) \
  ::streamkit::detail::AssertFail(__FILE__, __LINE__, "unreachable", fmt::format(__VA_ARGS__))

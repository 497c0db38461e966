// Test hook: a process started with STREAMKIT_CRASH_AT=NAME kills itself with SIGKILL
// (no cleanup, like kill -9) when it reaches the crash point NAME, so tests can stop a
// server at an exact step of a multi-step change (e.g. in the middle of a reshard).
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace streamkit {

inline void CrashPoint(const char* name) {
  static const char* want = std::getenv("STREAMKIT_CRASH_AT");
  if (want != nullptr && std::strcmp(want, name) == 0) ::kill(::getpid(), SIGKILL);
}

}  // namespace streamkit

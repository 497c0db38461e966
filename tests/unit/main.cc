// Test runner: honours STREAMKIT_IO like the tools do. With STREAMKIT_IO=io_uring on
// a machine that cannot set up a ring, the whole run is skipped (exit 77).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "io/io.h"

int main(int argc, char** argv) {
  const char* want = std::getenv("STREAMKIT_IO");
  if (want != nullptr && std::string_view(want) == "io_uring") {
    auto r = streamkit::io::UringIo();
    if (!r.ok()) {
      std::printf("io_uring unavailable here (%s): skipping\n", std::strerror(r.status().err()));
      return 77;
    }
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}

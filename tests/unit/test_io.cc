#include <doctest/doctest.h>

#include "io/io.h"
#include "test_helpers.h"

using namespace streamkit;
using streamkit::testing::TempDir;
using streamkit::testing::TestIo;

TEST_CASE("files write, read, sync, truncate through the backend under test") {
  TempDir dir;
  auto io = TestIo();
  MESSAGE("backend: " << std::string(io->name()));
  auto f = io->Open(dir.sub("a"), io::OpenMode::kCreate);
  REQUIRE(f.ok());
  std::string s = "hello, streamkit";
  REQUIRE((*f)->WriteAt(s.data(), s.size(), 0).ok());
  REQUIRE((*f)->WriteAt("!", 1, s.size()).ok());
  REQUIRE((*f)->DataSync().ok());
  CHECK(*(*f)->Size() == s.size() + 1);
  char buf[64];
  auto n = (*f)->ReadAt(buf, sizeof buf, 0);
  REQUIRE(n.ok());
  CHECK(std::string(buf, *n) == s + "!");
  n = (*f)->ReadAt(buf, 4, 7);
  CHECK(std::string(buf, *n) == "stre");
  REQUIRE((*f)->Truncate(5).ok());
  CHECK(*(*f)->Size() == 5);
  auto missing = io->Open(dir.sub("nope"), io::OpenMode::kRead);
  CHECK(missing.status().is(Status::Code::kNotFound));
  CHECK(missing.status().message().find("nope") != std::string::npos);
}

TEST_CASE("atomic write replaces a file whole") {
  TempDir dir;
  auto io = TestIo();
  std::string p = dir.sub("state");
  REQUIRE(io::WriteFileAtomic(*io, p, "one", 3).ok());
  REQUIRE(io::WriteFileAtomic(*io, p, "second", 6).ok());
  CHECK(*io::ReadSmallFile(*io, p, 100) == "second");
  CHECK(!io->Exists(p + ".tmp"));
  CHECK(io::ReadSmallFile(*io, p, 3).status().is(Status::Code::kCorruption));
}

TEST_CASE("fault injection fails writes, short writes, syncs and reads, then clears") {
  TempDir dir;
  auto fault = std::make_shared<io::FaultIo>(TestIo());
  auto f = fault->Open(dir.sub("f"), io::OpenMode::kCreate);
  REQUIRE(f.ok());
  fault->FailWrites(ENOSPC);
  Status s = (*f)->WriteAt("abcdef", 6, 0);
  CHECK(s.is(Status::Code::kNoSpace));
  CHECK(*(*f)->Size() == 0);
  fault->FailWrites(EIO, 1, 2);
  s = (*f)->WriteAt("abcdef", 6, 0);
  CHECK(s.is(Status::Code::kIoError));
  CHECK(*(*f)->Size() == 2);  // the short write really landed
  CHECK((*f)->WriteAt("abcdef", 6, 0).ok());
  fault->FailSyncs(EIO);
  CHECK(!(*f)->DataSync().ok());
  CHECK((*f)->DataSync().ok());
  fault->FailReads(EIO);
  char b[6];
  CHECK(!(*f)->ReadAt(b, 6, 0).ok());
  CHECK(*(*f)->ReadAt(b, 6, 0) == 6);
}

TEST_CASE("STREAMKIT_IO selects the backend") {
  auto io = io::DefaultIo();
  const char* want = std::getenv("STREAMKIT_IO");
  if (want && std::string(want) == "posix") CHECK(std::string(io->name()) == "posix");
  if (want && std::string(want) == "io_uring") CHECK(std::string(io->name()) == "io_uring");
}

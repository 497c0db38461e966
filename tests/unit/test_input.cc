#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "client/input.h"

using namespace streamkit;
using namespace streamkit::client;

namespace {

// The read end of a pipe fed by a thread in chunks of `chunk` bytes (0: all at once),
// optionally after a delay. Drains what is left before closing, so the writer never
// blocks or takes SIGPIPE when a test stops reading early.
class PipeFeed {
 public:
  explicit PipeFeed(std::string data, size_t chunk = 0, int delay_ms = 0) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    read_fd_ = fds[0];
    writer_ = std::thread([w = fds[1], data = std::move(data), chunk, delay_ms] {
      if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      size_t off = 0;
      while (off < data.size()) {
        size_t n = chunk == 0 ? data.size() - off : std::min(chunk, data.size() - off);
        ssize_t r = ::write(w, data.data() + off, n);
        if (r <= 0) break;
        off += size_t(r);
      }
      ::close(w);
    });
  }
  ~PipeFeed() {
    char sink[65536];
    while (::read(read_fd_, sink, sizeof sink) > 0) {
    }
    ::close(read_fd_);
    writer_.join();
  }
  int fd() const { return read_fd_; }

 private:
  int read_fd_ = -1;
  std::thread writer_;
};

// A temporary file holding `data`, positioned at its start.
class TempInput {
 public:
  explicit TempInput(const std::string& data) : f_(std::tmpfile()) {
    REQUIRE(f_ != nullptr);
    REQUIRE(std::fwrite(data.data(), 1, data.size(), f_) == data.size());
    REQUIRE(std::fflush(f_) == 0);
    REQUIRE(::lseek(fileno(f_), 0, SEEK_SET) == 0);
  }
  ~TempInput() { std::fclose(f_); }
  int fd() const { return fileno(f_); }

 private:
  FILE* f_;
};

struct Rec {
  std::string bytes;
  uint64_t line;
  bool oversize;
  uint64_t oversize_bytes;
};

std::vector<Rec> ReadAll(InputReader& r) {
  std::vector<Rec> out;
  std::string_view rec;
  while (r.Next(&rec)) {
    out.push_back({std::string(rec), r.line_number(), r.oversize(), r.oversize_bytes()});
  }
  return out;
}

std::vector<Rec> ReadAll(const std::string& data, Framing f, size_t max = 1 << 20,
                         size_t chunk = 0) {
  PipeFeed feed(data, chunk);
  InputReader r(feed.fd(), f, max);
  std::vector<Rec> out = ReadAll(r);
  CHECK(r.status().ok());
  return out;
}

std::vector<std::string> Bytes(const std::vector<Rec>& recs) {
  std::vector<std::string> out;
  for (const Rec& r : recs) out.push_back(r.bytes);
  return out;
}

using Strings = std::vector<std::string>;

}  // namespace

// ---------------------------------------------------------------------------
// InputReader

TEST_CASE("lines: the newline ends a record and is not part of it; a carriage return is kept") {
  CHECK(Bytes(ReadAll("a\nbc\r\nd\n", Framing::kLines)) == Strings{"a", "bc\r", "d"});
}

TEST_CASE("lines: a last line without a newline is still a record") {
  CHECK(Bytes(ReadAll("a\nb", Framing::kLines)) == Strings{"a", "b"});
  CHECK(Bytes(ReadAll("only", Framing::kLines)) == Strings{"only"});
}

TEST_CASE("lines: an empty line is an empty record; an empty input yields no record") {
  CHECK(Bytes(ReadAll("\n", Framing::kLines)) == Strings{""});
  CHECK(Bytes(ReadAll("a\n\n\nb\n", Framing::kLines)) == Strings{"a", "", "", "b"});
  CHECK(ReadAll("", Framing::kLines).empty());
  CHECK(ReadAll("", Framing::kNul).empty());
  CHECK(ReadAll("", Framing::kNdjson).empty());
  CHECK(ReadAll("", Framing::kRaw).empty());
}

TEST_CASE("lines: line numbers count every line, empty ones included") {
  auto recs = ReadAll("a\n\nb\n", Framing::kLines);
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].line == 1);
  CHECK(recs[1].line == 2);
  CHECK(recs[2].line == 3);
}

TEST_CASE("ndjson: blank lines are skipped but still counted") {
  auto recs = ReadAll("{\"a\":1}\n\n  \t\r\n{\"b\":2}\r\n \n", Framing::kNdjson);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].bytes == "{\"a\":1}");
  CHECK(recs[0].line == 1);
  CHECK(recs[1].bytes == "{\"b\":2}\r");
  CHECK(recs[1].line == 4);
  CHECK(ReadAll("\n\n   ", Framing::kNdjson).empty());
}

TEST_CASE("nul: records split on NUL bytes and newlines are data") {
  auto recs = ReadAll(std::string("a\nb\0\0c d\0e", 10), Framing::kNul);
  CHECK(Bytes(recs) == Strings{"a\nb", "", "c d", "e"});
  REQUIRE(recs.size() == 4);
  CHECK(recs[3].line == 4);
}

TEST_CASE("raw: the whole input is one record, NULs and newlines included") {
  std::string data("x\ny\0z\n", 6);
  auto recs = ReadAll(data, Framing::kRaw);
  REQUIRE(recs.size() == 1);
  CHECK(recs[0].bytes == data);
  CHECK(recs[0].line == 1);
  CHECK(!recs[0].oversize);
}

TEST_CASE("records that straddle read and buffer boundaries come out whole") {
  // Many lines, some longer than one read (1 MiB), delivered in odd-sized pieces.
  std::vector<std::string> lines;
  std::string data;
  for (int i = 0; i < 2000; i++) {
    size_t len = i % 500 == 7 ? (size_t(1) << 20) + size_t(i) : size_t(i % 97);
    std::string line(len, char('a' + i % 26));
    data += line + "\n";
    lines.push_back(std::move(line));
  }
  auto recs = ReadAll(data, Framing::kLines, 2 << 20, /*chunk=*/4093);
  REQUIRE(recs.size() == lines.size());
  for (size_t i = 0; i < lines.size(); i++) {
    CHECK(recs[i].bytes == lines[i]);
    CHECK(!recs[i].oversize);
    CHECK(recs[i].line == i + 1);
  }
}

TEST_CASE("a record of exactly the limit is not over-size; one byte more is") {
  auto recs = ReadAll("12345\n123456\n", Framing::kLines, 5);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].bytes == "12345");
  CHECK(!recs[0].oversize);
  CHECK(recs[1].bytes == "12345");
  CHECK(recs[1].oversize);
  CHECK(recs[1].oversize_bytes == 6);
}

TEST_CASE("an over-size line is cut to the limit, reports its full length, and reading goes on") {
  const size_t big = 3 * (size_t(1) << 20) + 17;  // several reads long
  std::string data = "first\n" + std::string(big, 'x') + "\nnext\n";
  for (size_t chunk : {size_t(0), size_t(65536), size_t(999)}) {
    CAPTURE(chunk);
    auto recs = ReadAll(data, Framing::kLines, 100, chunk);
    REQUIRE(recs.size() == 3);
    CHECK(recs[0].bytes == "first");
    CHECK(recs[1].bytes == std::string(100, 'x'));
    CHECK(recs[1].oversize);
    CHECK(recs[1].oversize_bytes == big);
    CHECK(recs[1].line == 2);
    CHECK(recs[2].bytes == "next");
    CHECK(!recs[2].oversize);
    CHECK(recs[2].line == 3);
  }
}

TEST_CASE("an over-size last unit without a terminator is reported with its length") {
  std::string data = std::string("ok") + '\0' + std::string(5000, 'z');
  auto recs = ReadAll(data, Framing::kNul, 10);
  REQUIRE(recs.size() == 2);
  CHECK(recs[1].oversize);
  CHECK(recs[1].oversize_bytes == 5000);
  CHECK(recs[1].bytes == std::string(10, 'z'));
}

TEST_CASE("a limit of zero makes every non-empty record over-size") {
  auto recs = ReadAll("\nab\n", Framing::kLines, 0);
  REQUIRE(recs.size() == 2);
  CHECK(!recs[0].oversize);
  CHECK(recs[1].oversize);
  CHECK(recs[1].bytes.empty());
  CHECK(recs[1].oversize_bytes == 2);
}

TEST_CASE("raw: over-size input is detected after limit + 1 bytes without reading the rest") {
  TempInput in(std::string(5 << 20, 'r'));
  InputReader r(in.fd(), Framing::kRaw, 1000);
  std::string_view rec;
  REQUIRE(r.Next(&rec));
  CHECK(r.oversize());
  CHECK(r.oversize_bytes() == 1001);  // "more than the limit"
  CHECK(rec == std::string(1000, 'r'));
  CHECK(::lseek(in.fd(), 0, SEEK_CUR) == 1001);  // the other 5 MiB were never read
  CHECK(!r.Next(&rec));
  CHECK(r.status().ok());
}

TEST_CASE("raw: input of exactly the limit is one whole record") {
  auto recs = ReadAll(std::string(4096, 'q'), Framing::kRaw, 4096);
  REQUIRE(recs.size() == 1);
  CHECK(!recs[0].oversize);
  CHECK(recs[0].bytes.size() == 4096);
}

TEST_CASE("a non-blocking descriptor is waited on, not reported as an error") {
  PipeFeed feed("late\n", 0, /*delay_ms=*/50);
  int flags = ::fcntl(feed.fd(), F_GETFL);
  REQUIRE(::fcntl(feed.fd(), F_SETFL, flags | O_NONBLOCK) == 0);
  InputReader r(feed.fd(), Framing::kLines, 100);
  auto recs = ReadAll(r);
  CHECK(r.status().ok());
  CHECK(Bytes(recs) == Strings{"late"});
}

TEST_CASE("a read error ends the input with a status naming the descriptor") {
  int dir = ::open("/", O_RDONLY | O_DIRECTORY);
  REQUIRE(dir >= 0);
  InputReader r(dir, Framing::kLines, 100);
  std::string_view rec;
  CHECK(!r.Next(&rec));
  CHECK(r.status().is(Status::Code::kIoError));
  CHECK(r.status().err() == EISDIR);
  CHECK(r.status().message().find("fd") != std::string::npos);
  CHECK(!r.Next(&rec));  // stays failed
  ::close(dir);
}

TEST_CASE("a record size limit above the supported maximum is refused") {
  InputReader r(0, Framing::kLines, kMaxInputRecordLimit + 1);
  std::string_view rec;
  CHECK(!r.Next(&rec));
  CHECK(r.status().is(Status::Code::kInvalidArgument));
}

// ---------------------------------------------------------------------------
// KeyExtractor

namespace {

std::string Key(std::string_view path, std::string_view json) {
  auto kx = KeyExtractor::Parse(path);
  REQUIRE(kx.ok());
  auto r = kx->Extract(json);
  if (!r.ok()) return "ERROR: " + r.status().message();
  return *r;
}

std::string PathError(std::string_view path) {
  auto kx = KeyExtractor::Parse(path);
  if (kx.ok()) return "accepted";
  CHECK(kx.status().is(Status::Code::kInvalidArgument));
  return kx.status().message();
}

}  // namespace

TEST_CASE("key paths: jq-like and JSON pointer forms are accepted") {
  for (const char* p : {".user.id", ".a", ".items[0].sku", ".a.[1]", ".[0]", "./x", ".\"a.b\"",
                        ".\"q\\\"t\"", ".user-id", "/user/id", "/", "/a~0b/c~1d", "/items/0"}) {
    CAPTURE(p);
    CHECK(KeyExtractor::Parse(p).ok());
  }
}

TEST_CASE("key paths: the whole record and malformed paths are refused with a reason") {
  CHECK(PathError("").find("selects the whole record") != std::string::npos);
  CHECK(PathError(".").find("selects the whole record") != std::string::npos);
  CHECK(PathError("user.id").find("start with '.'") != std::string::npos);
  CHECK(PathError(".a.").find("empty name") != std::string::npos);
  CHECK(PathError("..a").find("empty name") != std::string::npos);
  CHECK(PathError(".a[").find("without ']'") != std::string::npos);
  CHECK(PathError(".a[x]").find("array index") != std::string::npos);
  CHECK(PathError(".a[01]").find("array index") != std::string::npos);
  CHECK(PathError(".\"a").find("unterminated") != std::string::npos);
  CHECK(PathError(".a\"b").find("'\"'") != std::string::npos);
  CHECK(PathError("/a~2").find("'~'") != std::string::npos);
  CHECK(PathError("/a~").find("'~'") != std::string::npos);
  CHECK(PathError(std::string(kMaxKeyPathBytes + 1, '/')).find("longer") != std::string::npos);
  CHECK(PathError(".user.id").find("accepted") == 0);
}

TEST_CASE("keys: strings give their unescaped text") {
  CHECK(Key(".user.id", R"({"user":{"id":"u-1"}})") == "u-1");
  CHECK(Key(".k", R"({"k":"a\"b\\c\u00e9\n"})") == "a\"b\\c\xc3\xa9\n");
  CHECK(Key(".k", R"({"k":"\ud83d\ude00"})") == "\xf0\x9f\x98\x80");
  CHECK(Key(".k", R"({"k":""})").empty());
  CHECK(Key(".k", "  {\"k\" : \"spaced\" }  ") == "spaced");
}

TEST_CASE("keys: numbers give their JSON text exactly as written") {
  CHECK(Key(".n", R"({"n":42})") == "42");
  CHECK(Key(".n", R"({"n":3.50})") == "3.50");
  CHECK(Key(".n", R"({"n":-0})") == "-0");
  CHECK(Key(".n", R"({"n":1E+3 , "m":1})") == "1E+3");
  CHECK(Key(".n", R"({"n":18446744073709551616})") == "18446744073709551616");
  CHECK(Key(".n", R"({"n":123456789012345678901234567890123})") ==
        "123456789012345678901234567890123");
  CHECK(Key(".n", R"({"n":1e400})") == "1e400");
  CHECK(Key(".a[1]", R"({"a":[0, 7.25 ]})") == "7.25");
}

TEST_CASE("keys: booleans give true or false") {
  CHECK(Key(".b", R"({"b":true})") == "true");
  CHECK(Key(".b", R"({"b":false})") == "false");
}

TEST_CASE("keys: null, objects and arrays are errors that name the field") {
  CHECK(Key(".user.id", R"({"user":{"id":null}})") ==
        "ERROR: field .user.id is null, not a string or number");
  CHECK(Key(".user.id", R"({"user":{"id":{}}})") ==
        "ERROR: field .user.id is an object, not a string or number");
  CHECK(Key(".user.id", R"({"user":{"id":[1]}})") ==
        "ERROR: field .user.id is an array, not a string or number");
}

TEST_CASE("keys: a missing field is an error that names the path") {
  CHECK(Key(".user.id", R"({"user":{}})") == "ERROR: field .user.id is missing");
  CHECK(Key(".user.id", R"({})") == "ERROR: field .user.id is missing");
  CHECK(Key(".user.id", R"({"user":"bob"})") ==
        "ERROR: field .user.id is missing (.user is a string, not an object)");
  CHECK(Key(".user.id", R"([1])") ==
        "ERROR: field .user.id is missing (the record is an array, not an object)");
  CHECK(Key(".a[3]", R"({"a":[1,2]})") == "ERROR: field .a[3] is missing");
  CHECK(Key(".a[0]", R"({"a":{"0":1}})") ==
        "ERROR: field .a[0] is missing (.a is an object, not an array)");
}

TEST_CASE("keys: JSON pointers unescape ~0 and ~1 and index arrays") {
  CHECK(Key("/a~1b/c~0d", R"({"a/b":{"c~d":"x"}})") == "x");
  CHECK(Key("/", R"({"":"empty name"})") == "empty name");
  CHECK(Key("/items/1/sku", R"({"items":[{"sku":"s0"},{"sku":"s1"}]})") == "s1");
  CHECK(Key("/m/1", R"({"m":{"1":"member"}})") == "member");  // objects: a name
  CHECK(Key("/a/01", R"({"a":[1,2]})").starts_with("ERROR: field /a/01 is missing"));
  CHECK(Key("/a/-", R"({"a":[1,2]})").starts_with("ERROR: field /a/- is missing"));
}

TEST_CASE("keys: jq-like paths take quoted names and indexes") {
  CHECK(Key(".\"a.b\".c", R"({"a.b":{"c":"dotted"}})") == "dotted");
  CHECK(Key(".items[1].sku", R"({"items":[{"sku":"s0"},{"sku":"s1"}]})") == "s1");
  CHECK(Key(".[0]", R"(["first"])") == "first");
  CHECK(Key(".user-id", R"({"user-id":"dash"})") == "dash");
}

TEST_CASE("keys: member names are compared unescaped") {
  CHECK(Key(".user", R"({"us\u0065r":"escaped"})") == "escaped");
}

TEST_CASE("keys: when a member name repeats, the last one counts (as in jq)") {
  CHECK(Key(".a", R"({"a":1,"a":2})") == "2");
  CHECK(Key(".a.b", R"({"a":{"b":"x"},"a":{"c":1}})") == "ERROR: field .a.b is missing");
  CHECK(Key(".a.b", R"({"a":"s","a":{"b":"y"}})") == "y");
  CHECK(Key(".a", R"({"a":"x","a":null})") == "ERROR: field .a is null, not a string or number");
  // The same rules hold on the slow path (a number the DOM parser cannot hold).
  CHECK(Key(".a", R"({"z":1e999,"a":1,"a":"2"})") == "2");
  CHECK(Key(".a.b", R"({"z":1e999,"a":{"b":"x"},"a":{"c":1}})") ==
        "ERROR: field .a.b is missing");
}

TEST_CASE("keys: the whole record is validated, not just the part up to the key") {
  CHECK(Key(".a", R"({"a":"x","b":tru})").starts_with("ERROR: invalid JSON: "));
  CHECK(Key(".a", R"({"a":"x"} {})").starts_with("ERROR: invalid JSON: "));
  CHECK(Key(".a", R"({"a":"x",})").starts_with("ERROR: invalid JSON: "));
  CHECK(Key(".a", R"({"a":"x","b":1e999,"c":01})").starts_with("ERROR: invalid JSON: "));
  CHECK(Key(".a", "").starts_with("ERROR: invalid JSON: "));
}

TEST_CASE("keys: one extractor serves many records without leftovers from the last") {
  auto kx = KeyExtractor::Parse(".id");
  REQUIRE(kx.ok());
  std::string key;
  CHECK(kx->ExtractInto(R"({"id":"first"})", &key).ok());
  CHECK(key == "first");
  CHECK(!kx->ExtractInto(R"({"other":1})", &key).ok());
  CHECK(key.empty());
  CHECK(!kx->ExtractInto(R"({"id":"x",)", &key).ok());
  CHECK(kx->ExtractInto(R"({"id":7})", &key).ok());
  CHECK(key == "7");
  // A record far longer than the previous ones.
  std::string big = R"({"pad":")" + std::string(100000, 'p') + R"(","id":"big"})";
  CHECK(kx->ExtractInto(big, &key).ok());
  CHECK(key == "big");
  CHECK(kx->ExtractInto(R"({"id":"small"})", &key).ok());
  CHECK(key == "small");
  CHECK(kx->path() == ".id");
}

TEST_CASE("keys: an extractor can be moved") {
  auto kx = KeyExtractor::Parse("/k");
  REQUIRE(kx.ok());
  KeyExtractor moved = std::move(kx).value();
  auto r = moved.Extract(R"({"k":"v"})");
  REQUIRE(r.ok());
  CHECK(*r == "v");
}

// ---------------------------------------------------------------------------
// ValidateJson

TEST_CASE("validate: one complete JSON value of any kind passes") {
  for (const char* j : {"{}", "[]", "0", "-1.5e-3", "\"s\"", "true", "false", "null",
                        " \t\r\n{\"a\":[1,{\"b\":null}]} \n", "123456789012345678901234567890",
                        "[1e400]", "{\"a\":\"\\u00e9\"}", "\"\xc3\xa9\""}) {
    CAPTURE(j);
    Status s = ValidateJson(j);
    CHECK(s.ok());
  }
}

TEST_CASE("validate: anything else fails with 'invalid JSON: <reason>'") {
  const std::vector<std::string> cases = {
      "", "   ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "{} {}", "{}x",
      "42 43", "\"s\" x", "01", "-", "1.", ".5", "+1", "1e", "tru", "nul", "truex", "'s'",
      "\"unterminated", "\"bad \\x escape\"", "\"\\ud800\"", "[NaN]", "[Infinity]",
      std::string("\"ctl \x01 char\""), std::string("\"\xff\""), std::string("{}\0", 3),
      std::string("[1e400,01]")};
  for (const std::string& j : cases) {
    CAPTURE(j);
    Status s = ValidateJson(j);
    CHECK(s.is(Status::Code::kInvalidArgument));
    CHECK(s.message().starts_with("invalid JSON: "));
  }
}

TEST_CASE("validate: nesting is limited") {
  std::string ok = std::string(500, '[') + std::string(500, ']');
  CHECK(ValidateJson(ok).ok());
  std::string deep = std::string(5000, '[') + std::string(5000, ']');
  CHECK(!ValidateJson(deep).ok());
  std::string deep_slow = std::string(5000, '[') + "1e400" + std::string(5000, ']');
  CHECK(!ValidateJson(deep_slow).ok());
}

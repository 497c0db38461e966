// stream-firehose's pure parts: prefixes, timestamps, key sanitising, base64, compression.
#include <doctest/doctest.h>

#include <random>

#include "firehose/firehose.h"

using namespace streamkit;
using namespace streamkit::firehose;

TEST_CASE("firehose: timestamp patterns (Java DateTimeFormatter subset, UTC)") {
  int64_t ms = 1714564800123;  // 2024-05-01T12:00:00.123Z
  CHECK(FormatTimestamp("yyyy/MM/dd/HH/", ms) == "2024/05/01/12/");
  CHECK(FormatTimestamp("yyyy-MM-dd-HH-mm-ss", ms) == "2024-05-01-12-00-00");
  CHECK(FormatTimestamp("yy'y='yyyy' ''x'", ms) == "24y=2024 'x");
  CHECK(FormatTimestamp("SSS", ms) == "123");
  CHECK(FormatTimestamp("yyyy", -1) == "1969");
}

TEST_CASE("firehose: prefixes") {
  std::vector<std::string> keys{"cust"};
  auto p = Prefix::Parse("c=!{partitionKeyFromQuery:cust}/!{timestamp:yyyy}/", keys, false);
  REQUIRE(p.ok());
  std::map<std::string, std::string> kv{{"cust", "acme"}};
  CHECK(p->Evaluate({1714564800000, &kv, "", 1}) == "c=acme/2024/");
  // No timestamp expression: yyyy/MM/dd/HH/ appended, as Firehose does.
  auto d = Prefix::Parse("", keys, false);
  REQUIRE(d.ok());
  CHECK(d->Evaluate({1714564800000, nullptr, "", 1}) == "2024/05/01/12/");
  auto r = Prefix::Parse("x/!{firehose:random-string}/", keys, false);
  REQUIRE(r.ok());
  std::string a = r->Evaluate({0, nullptr, "", 7}), b = r->Evaluate({0, nullptr, "", 7});
  CHECK(a == b);  // deterministic for the same file
  CHECK(a.size() == std::string("x/").size() + 11 + std::string("/1970/01/01/00/").size());
  auto e = Prefix::Parse("errors/!{firehose:error-output-type}/", keys, true);
  REQUIRE(e.ok());
  CHECK(e->Evaluate({0, nullptr, "processing-failed", 0}) == "errors/processing-failed/1970/01/01/00/");
  CHECK(!Prefix::Parse("!{firehose:error-output-type}/", keys, false).ok());
  CHECK(!Prefix::Parse("!{partitionKeyFromQuery:nope}/", keys, false).ok());
  CHECK(!Prefix::Parse("!{partitionKeyFromQuery:cust}/", keys, true).ok());
  CHECK(!Prefix::Parse("!{bogus:x}", keys, false).ok());
  CHECK(!Prefix::Parse("!{timestamp:yyyy", keys, false).ok());
}

TEST_CASE("firehose: hostile partition key values and paths") {
  CHECK(CheckKeyValue("acme").ok());
  CHECK(CheckKeyValue("a b-c_d.e").ok());
  for (std::string bad : {std::string(), std::string("."), std::string(".."), std::string("../../etc"),
                          std::string("/"), std::string("a\\b"), std::string("a\0b", 3), std::string("a\nb"),
                          std::string(513, 'x')})
    CHECK(!CheckKeyValue(bad).ok());
  CHECK(SafeRelativePath("a/b/c.ndjson").ok());
  CHECK(!SafeRelativePath("/etc/passwd").ok());
  CHECK(!SafeRelativePath("a/../../b").ok());
  CHECK(!SafeRelativePath("a//b").ok());
  CHECK(!SafeRelativePath(std::string(1025, 'a')).ok());
}

TEST_CASE("firehose: base64") {
  CHECK(Base64Encode("") == "");
  CHECK(Base64Encode("f") == "Zg==");
  CHECK(Base64Encode("fo") == "Zm8=");
  CHECK(Base64Encode("foo") == "Zm9v");
  CHECK(Base64Encode("foobar") == "Zm9vYmFy");
  std::mt19937_64 rng(1);
  for (int n = 0; n < 200; n++) {
    std::string s(size_t(n), '\0');
    for (auto& c : s) c = char(rng());
    auto back = Base64Decode(Base64Encode(s));
    REQUIRE(back.ok());
    CHECK(*back == s);
  }
  CHECK(!Base64Decode("Zm9v!").ok());
}

TEST_CASE("firehose: compression round trips") {
  std::mt19937_64 rng(2);
  std::string text;
  for (int i = 0; i < 100000; i++) text += "{\"id\":" + std::to_string(rng() % 1000) + "}\n";
  std::string noise(300000, '\0');
  for (auto& c : noise) c = char(rng());
  for (auto c : {Compression::kNone, Compression::kGzip, Compression::kZstd, Compression::kSnappy})
    for (const std::string* in : {&text, &noise}) {
      std::string out;
      REQUIRE(Compress(c, *in, &out).ok());
      if (c != Compression::kNone && in == &text) CHECK(out.size() < in->size() / 2);
      auto back = Decompress(c, out);
      REQUIRE(back.ok());
      CHECK(*back == *in);
    }
  std::string out;
  REQUIRE(Compress(Compression::kSnappy, text, &out).ok());
  out[out.size() / 2] ^= 1;
  CHECK(!Decompress(Compression::kSnappy, out).ok());
  CHECK(!ParseCompression("lz4").ok());
}

#include <doctest/doctest.h>

#include <string>

#include "util/md5.h"
#include "util/u128.h"

using namespace streamkit;

namespace {

std::string Hex(const Md5Digest& d) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d.bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

std::string Md5Hex(std::string_view s) { return Hex(Md5(s)); }

}  // namespace

TEST_CASE("md5 matches the RFC 1321 appendix A.5 test suite") {
  CHECK(Md5Hex("") == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(Md5Hex("a") == "0cc175b9c0f1b6a831c399e269772661");
  CHECK(Md5Hex("abc") == "900150983cd24fb0d6963f7d28e17f72");
  CHECK(Md5Hex("message digest") == "f96b697d7cb7938d525a2f31aaf161d0");
  CHECK(Md5Hex("abcdefghijklmnopqrstuvwxyz") == "c3fcd3d76192e4007dfb496cca67e13b");
  CHECK(Md5Hex("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") ==
        "d174ab98d277d9f5a5611c2c9f419d9f");
  CHECK(Md5Hex("1234567890123456789012345678901234567890"
               "1234567890123456789012345678901234567890") ==
        "57edf4a22be3c955ac49da2e2107b67a");
}

// Expected values from coreutils: head -c N /dev/zero | tr '\0' a | md5sum
TEST_CASE("md5 is right at every padding boundary (55, 56, 63, 64, 65 bytes)") {
  CHECK(Md5Hex(std::string(55, 'a')) == "ef1772b6dff9a122358552954ad0df65");  // one final block
  CHECK(Md5Hex(std::string(56, 'a')) == "3b0c8ac703f828b04c6c197006d17218");  // length spills
  CHECK(Md5Hex(std::string(63, 'a')) == "b06521f39153d618550606be297466d5");
  CHECK(Md5Hex(std::string(64, 'a')) == "014842d480b571495a4a0363793f7367");  // exactly one block
  CHECK(Md5Hex(std::string(65, 'a')) == "c743a45e0d2e6a95cb859adae0248435");
}

TEST_CASE("md5 hashes arbitrary bytes over several blocks, NULs included") {
  std::string s;
  for (int rep = 0; rep < 4; rep++)
    for (int i = 0; i < 256; i++) s += char(i);
  CHECK(Md5Hex(s) == "b2ea9f7fcea831a4a63b213f41a8855b");  // md5sum of the same 1024 bytes
}

TEST_CASE("md5 reads only the bytes of the view, not past it") {
  std::string s = "abcdef";
  CHECK(Md5Hex(std::string_view(s).substr(0, 3)) == "900150983cd24fb0d6963f7d28e17f72");
}

TEST_CASE("the hash key is the digest read as a big-endian integer") {
  // "a" -> 0cc175b9...: the first digest byte is the most significant.
  u128 k = Md5HashKey("a");
  CHECK(uint8_t(k >> 120) == 0x0c);
  CHECK(uint8_t(k) == 0x61);
  CHECK(U128ToString(k) == "16955237001963240173058271559858726497");
  CHECK(U128ToString(Md5HashKey("user-42")) == "157107139746365290205026809710278036035");
  uint8_t be[16];
  EncodeU128BE(be, Md5HashKey("message digest"));
  Md5Digest d = Md5("message digest");
  for (int i = 0; i < 16; i++) CHECK(be[i] == d.bytes[i]);
}

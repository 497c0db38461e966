// MD5 (RFC 1321) and the Kinesis partition-key hash built on it.
//
// Kinesis routes a record to the shard whose hash-key range holds
// MD5(partition key) read as a big-endian unsigned 128-bit integer. That runs once
// per record, so Md5 works on the caller's bytes in place: no allocation, 64-byte
// blocks straight from the input, only the final one or two padded blocks copied to
// the stack. MD5 is used here for routing only, never for integrity or security.
//
// Thread-safety: pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <string_view>

#include "util/u128.h"

namespace streamkit {

struct Md5Digest {
  uint8_t bytes[16];  // the RFC's output order: A, B, C, D, each little-endian
};

// MD5 of `data`. Md5("") is d41d8cd98f00b204e9800998ecf8427e.
Md5Digest Md5(std::string_view data);

// The Kinesis hash key of a partition key: its MD5 digest as a big-endian integer
// in 0 .. 2^128-1 (digest byte 0 is the most significant).
u128 Md5HashKey(std::string_view partition_key);

}  // namespace streamkit

#include "firehose/firehose.h"

#include <fmt/core.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <memory>

#include <algorithm>
#include <chrono>

#include "util/crc32c.h"

namespace streamkit::firehose {

// ---- base64 ----------------------------------------------------------------------------

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string Base64Encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  auto u = [&](size_t k) { return uint32_t(uint8_t(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = u(i) << 16 | u(i + 1) << 8 | u(i + 2);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = u(i) << 16;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = u(i) << 16 | u(i + 1) << 8;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return Status::InvalidArgument("invalid base64 length");
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) return Status::InvalidArgument(fmt::format("invalid base64 character '{}'", c));
    acc = acc << 6 | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  return out;
}

// ---- timestamps ----------------------------------------------------------------------------

std::string FormatTimestamp(std::string_view pattern, int64_t ms) {
  using namespace std::chrono;
  sys_time<milliseconds> tp{milliseconds(ms)};
  auto day = floor<days>(tp);
  year_month_day ymd{day};
  hh_mm_ss<milliseconds> hms{tp - day};
  int y = int(ymd.year());
  unsigned mo = unsigned(ymd.month()), d = unsigned(ymd.day());
  std::string out;
  for (size_t i = 0; i < pattern.size();) {
    char c = pattern[i];
    if (c == '\'') {
      size_t j = i + 1;
      if (j < pattern.size() && pattern[j] == '\'') {
        out += '\'';
        i += 2;
        continue;
      }
      while (j < pattern.size()) {
        if (pattern[j] == '\'') {
          if (j + 1 < pattern.size() && pattern[j + 1] == '\'') {
            out += '\'';
            j += 2;
            continue;
          }
          break;
        }
        out += pattern[j++];
      }
      i = j + 1;
      continue;
    }
    size_t n = 1;
    while (i + n < pattern.size() && pattern[i + n] == c) n++;
    auto num = [&](long v, size_t width) { out += fmt::format("{:0{}}", v, width); };
    switch (c) {
      case 'y': n == 2 ? num(y % 100, 2) : num(y, std::max<size_t>(n, 4)); break;
      case 'M': num(mo, n); break;
      case 'd': num(d, n); break;
      case 'H': num(hms.hours().count(), n); break;
      case 'm': num(hms.minutes().count(), n); break;
      case 's': num(hms.seconds().count(), n); break;
      case 'S': num(hms.subseconds().count(), 3); break;
      default: out.append(n, c);
    }
    i += n;
  }
  return out;
}

// ---- prefixes ----------------------------------------------------------------------------

Result<Prefix> Prefix::Parse(std::string_view text, const std::vector<std::string>& keys, bool error_prefix) {
  Prefix p;
  p.text_ = std::string(text);
  bool has_time = false;
  size_t i = 0;
  while (i < text.size()) {
    size_t at = text.find("!{", i);
    if (at == std::string_view::npos) {
      p.parts_.push_back({Part::kLiteral, std::string(text.substr(i))});
      break;
    }
    if (at > i) p.parts_.push_back({Part::kLiteral, std::string(text.substr(i, at - i))});
    size_t end = text.find('}', at);
    if (end == std::string_view::npos)
      return Status::InvalidArgument(fmt::format("prefix '{}': '!{{' without a closing '}}'", text));
    std::string_view expr = text.substr(at + 2, end - at - 2);
    size_t colon = expr.find(':');
    if (colon == std::string_view::npos)
      return Status::InvalidArgument(fmt::format("prefix '{}': expression !{{{}}} needs namespace:value", text, expr));
    std::string_view ns = expr.substr(0, colon), val = expr.substr(colon + 1);
    if (ns == "timestamp") {
      if (val.empty()) return Status::InvalidArgument(fmt::format("prefix '{}': empty timestamp pattern", text));
      p.parts_.push_back({Part::kTimestamp, std::string(val)});
      has_time = true;
    } else if (ns == "partitionKeyFromQuery" || ns == "partitionKeyFromLambda") {
      if (error_prefix)
        return Status::InvalidArgument(fmt::format("error prefix '{}': partition keys are not allowed in it", text));
      if (std::none_of(keys.begin(), keys.end(), [&](const std::string& k) { return k == val; }))
        return Status::InvalidArgument(fmt::format(
            "prefix '{}': partition key '{}' is not defined (add --partition-key {}=.path)", text, val, val));
      p.parts_.push_back({Part::kPartitionKey, std::string(val)});
      p.uses_keys_ = true;
    } else if (ns == "firehose" && val == "random-string") {
      p.parts_.push_back({Part::kRandom, ""});
    } else if (ns == "firehose" && val == "error-output-type") {
      if (!error_prefix)
        return Status::InvalidArgument(
            fmt::format("prefix '{}': !{{firehose:error-output-type}} is only allowed in --error-prefix", text));
      p.parts_.push_back({Part::kErrorType, ""});
    } else {
      return Status::InvalidArgument(fmt::format(
          "prefix '{}': unknown expression !{{{}}} (use timestamp:, partitionKeyFromQuery:, firehose:random-string, "
          "firehose:error-output-type)",
          text, expr));
    }
    i = end + 1;
  }
  if (!has_time) p.parts_.push_back({Part::kTimestamp, "yyyy/MM/dd/HH/"});
  return p;
}

std::string Prefix::Evaluate(const Context& c) const {
  std::string out;
  uint64_t seed = c.seed;
  for (const Part& part : parts_) {
    switch (part.kind) {
      case Part::kLiteral: out += part.text; break;
      case Part::kTimestamp: out += FormatTimestamp(part.text, c.arrival_ms); break;
      case Part::kPartitionKey: {
        auto it = c.keys ? c.keys->find(part.text) : decltype(c.keys->end()){};
        if (c.keys && it != c.keys->end()) out += it->second;
        break;
      }
      case Part::kRandom: {
        // Deterministic "random": the same file gets the same name after a restart.
        static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        for (int k = 0; k < 11; k++) {
          seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
          out += kAlnum[(seed >> 33) % 36];
        }
        break;
      }
      case Part::kErrorType: out += c.error_type; break;
    }
  }
  return out;
}

Status CheckKeyValue(std::string_view v) {
  if (v.empty()) return Status::InvalidArgument("empty partition key value");
  if (v == "." || v == "..") return Status::InvalidArgument(fmt::format("partition key value '{}' is a path step", v));
  if (v.size() > kMaxKeyValue)
    return Status::InvalidArgument(fmt::format("partition key value of {} bytes (at most {})", v.size(), kMaxKeyValue));
  for (char c : v) {
    if (c == '/' || c == '\\') return Status::InvalidArgument("partition key value contains a path separator");
    if (uint8_t(c) < 0x20 || c == 0x7f) return Status::InvalidArgument("partition key value contains a control character");
  }
  return Status::OK();
}

Status SafeRelativePath(std::string_view p) {
  if (p.empty()) return Status::InvalidArgument("empty path");
  if (p.size() > 1024) return Status::InvalidArgument(fmt::format("path of {} bytes (at most 1024)", p.size()));
  if (p.front() == '/') return Status::InvalidArgument("absolute path");
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view comp = p.substr(i, j - i);
    if ((comp.empty() && j != p.size()) || comp == "." || comp == "..")
      return Status::InvalidArgument(fmt::format("path '{}' has an empty, '.' or '..' step", p));
    for (char c : comp)
      if (c == '\0') return Status::InvalidArgument("path contains NUL");
    i = j + 1;
  }
  return Status::OK();
}

// ---- compression ----------------------------------------------------------------------------

Result<Compression> ParseCompression(std::string_view name) {
  if (name == "none" || name == "uncompressed") return Compression::kNone;
  if (name == "gzip") return Compression::kGzip;
  if (name == "zstd") return Compression::kZstd;
  if (name == "snappy") return Compression::kSnappy;
  return Status::InvalidArgument(fmt::format("unknown compression '{}': use none, gzip, zstd or snappy", name));
}

const char* CompressionExtension(Compression c) {
  switch (c) {
    case Compression::kNone: return "";
    case Compression::kGzip: return ".gz";
    case Compression::kZstd: return ".zst";
    case Compression::kSnappy: return ".snappy";
  }
  return "";
}

namespace {

uint32_t MaskedCrc(std::string_view data) {
  uint32_t crc = crc32c::Value(data.data(), data.size());
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

void Put24(std::string* out, uint32_t v) {
  out->push_back(char(v & 0xff));
  out->push_back(char((v >> 8) & 0xff));
  out->push_back(char((v >> 16) & 0xff));
}

void Put32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; i++) out->push_back(char((v >> (8 * i)) & 0xff));
}

constexpr std::string_view kSnappyStreamId("\xff\x06\x00\x00sNaPpY", 10);

}  // namespace

Status Compress(Compression c, std::string_view in, std::string* out) {
  switch (c) {
    case Compression::kNone: out->append(in); return Status::OK();
    case Compression::kZstd: {
      // One context per thread, freed when the thread ends.
      thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> ctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
      ZSTD_CCtx* cctx = ctx.get();
      ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
      ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1);
      ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
      size_t base = out->size(), bound = ZSTD_compressBound(in.size());
      out->resize(base + bound);
      size_t n = ZSTD_compress2(cctx, out->data() + base, bound, in.data(), in.size());
      if (ZSTD_isError(n)) return Status::IoError(fmt::format("zstd: {}", ZSTD_getErrorName(n)));
      out->resize(base + n);
      return Status::OK();
    }
    case Compression::kGzip: {
      z_stream z{};
      if (deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) return Status::IoError("gzip: init");
      size_t base = out->size(), bound = deflateBound(&z, uLong(in.size())) + 32;
      out->resize(base + bound);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      z.avail_in = uInt(in.size());
      z.next_out = reinterpret_cast<Bytef*>(out->data() + base);
      z.avail_out = uInt(bound);
      int rc = deflate(&z, Z_FINISH);
      size_t n = bound - z.avail_out;
      deflateEnd(&z);
      if (rc != Z_STREAM_END) return Status::IoError("gzip: deflate failed");
      out->resize(base + n);
      return Status::OK();
    }
    case Compression::kSnappy: {
      out->append(kSnappyStreamId);
      std::string block;
      for (size_t i = 0; i < in.size(); i += 65536) {
        std::string_view chunk = in.substr(i, 65536);
        block.clear();
        snappy::Compress(chunk.data(), chunk.size(), &block);
        bool raw = block.size() >= chunk.size();
        std::string_view body = raw ? chunk : std::string_view(block);
        out->push_back(raw ? '\x01' : '\x00');
        Put24(out, uint32_t(body.size() + 4));
        Put32(out, MaskedCrc(chunk));
        out->append(body);
      }
      return Status::OK();
    }
  }
  return Status::InvalidArgument("unknown compression");
}

Result<std::string> Decompress(Compression c, std::string_view in) {
  std::string out;
  switch (c) {
    case Compression::kNone: return std::string(in);
    case Compression::kZstd: {
      ZSTD_DCtx* d = ZSTD_createDCtx();
      ZSTD_inBuffer ib{in.data(), in.size(), 0};
      std::string buf(1 << 16, '\0');
      size_t rc = 1;
      while (ib.pos < ib.size) {
        ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
        rc = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(rc)) {
          ZSTD_freeDCtx(d);
          return Status::Corruption(fmt::format("zstd: {}", ZSTD_getErrorName(rc)));
        }
        out.append(buf.data(), ob.pos);
      }
      ZSTD_freeDCtx(d);
      return out;
    }
    case Compression::kGzip: {
      z_stream z{};
      if (inflateInit2(&z, 31) != Z_OK) return Status::IoError("gzip: init");
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      z.avail_in = uInt(in.size());
      std::string buf(1 << 16, '\0');
      int rc = Z_OK;
      while (rc != Z_STREAM_END) {
        z.next_out = reinterpret_cast<Bytef*>(buf.data());
        z.avail_out = uInt(buf.size());
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
          inflateEnd(&z);
          return Status::Corruption("gzip: bad data");
        }
        out.append(buf.data(), buf.size() - z.avail_out);
      }
      inflateEnd(&z);
      return out;
    }
    case Compression::kSnappy: {
      if (in.substr(0, kSnappyStreamId.size()) != kSnappyStreamId) return Status::Corruption("snappy: no stream id");
      size_t i = kSnappyStreamId.size();
      while (i < in.size()) {
        if (in.size() - i < 4) return Status::Corruption("snappy: truncated chunk header");
        uint8_t type = uint8_t(in[i]);
        uint32_t len = uint8_t(in[i + 1]) | uint32_t(uint8_t(in[i + 2])) << 8 | uint32_t(uint8_t(in[i + 3])) << 16;
        i += 4;
        if (in.size() - i < len) return Status::Corruption("snappy: truncated chunk");
        std::string_view body = in.substr(i, len);
        i += len;
        if (type == 0x00 || type == 0x01) {
          if (len < 4) return Status::Corruption("snappy: short chunk");
          uint32_t want = uint8_t(body[0]) | uint32_t(uint8_t(body[1])) << 8 | uint32_t(uint8_t(body[2])) << 16 |
                          uint32_t(uint8_t(body[3])) << 24;
          std::string chunk;
          if (type == 0x00) {
            if (!snappy::Uncompress(body.data() + 4, body.size() - 4, &chunk))
              return Status::Corruption("snappy: bad block");
          } else {
            chunk.assign(body.substr(4));
          }
          if (MaskedCrc(chunk) != want) return Status::Corruption("snappy: checksum mismatch");
          out += chunk;
        } else if (type < 0x80 || type == 0xff) {
          if (type != 0xff) return Status::Corruption("snappy: reserved unskippable chunk");
        }
      }
      return out;
    }
  }
  return Status::InvalidArgument("unknown compression");
}

}  // namespace streamkit::firehose

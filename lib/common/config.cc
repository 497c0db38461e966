#include "common/config.h"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <ctime>

#include <fmt/core.h>

namespace streamkit {
namespace {
std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}
// Splits "1.5MiB" into 1.5 and "MiB"; false when there is no non-negative number first.
bool SplitNumberUnit(std::string_view t, double* v, std::string_view* unit) {
  size_t i = 0;
  while (i < t.size() && ((t[i] >= '0' && t[i] <= '9') || t[i] == '.')) i++;
  std::string_view num = t.substr(0, i);
  *unit = t.substr(i);
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), *v);
  return !num.empty() && ec == std::errc() && p == num.data() + num.size() && *v >= 0;
}
bool ParseInt(std::string_view s, int64_t* v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}
}  // namespace

std::string DefaultSocketPath() {
  if (auto s = Env("STREAMKIT_SOCKET"); !s.empty()) return s;
  if (auto r = Env("XDG_RUNTIME_DIR"); !r.empty()) return r + "/streamkit/serve.sock";
  return fmt::format("/tmp/streamkit-{}/serve.sock", ::getuid());
}

std::string DefaultDataDir() {
  if (auto s = Env("STREAMKIT_DATA"); !s.empty()) return s;
  if (auto x = Env("XDG_DATA_HOME"); !x.empty()) return x + "/streamkit";
  std::string home = Env("HOME");
  if (home.empty()) home = "/tmp";
  return home + "/.local/share/streamkit";
}

bool AutostartDisabledByEnv() {
  std::string v = Env("STREAMKIT_NO_AUTOSTART");
  return !v.empty() && v != "0";
}

Result<int64_t> ParseDurationMs(std::string_view t, int64_t bare_unit_ms) {
  double v = 0;
  std::string_view unit;
  if (!SplitNumberUnit(t, &v, &unit))
    return Status::InvalidArgument(fmt::format("'{}' is not a duration (e.g. 24h, 15m, 500ms)", t));
  int64_t mult;
  if (unit.empty()) mult = bare_unit_ms;
  else if (unit == "ms") mult = 1;
  else if (unit == "s") mult = 1000;
  else if (unit == "m" || unit == "min") mult = 60 * 1000;
  else if (unit == "h") mult = 3600 * 1000;
  else if (unit == "d") mult = 24 * 3600 * 1000LL;
  else if (unit == "w") mult = 7 * 24 * 3600 * 1000LL;
  else
    return Status::InvalidArgument(fmt::format("'{}': unknown unit '{}' (use ms, s, m, h, d)", t, unit));
  double ms = v * double(mult);
  // Beyond ~292 million years int64 ms overflow: refused here, not wrapped negative.
  if (!(ms < 9.2e18)) return Status::InvalidArgument(fmt::format("'{}': duration too long", t));
  return int64_t(ms);
}

std::string FormatDuration(int64_t ms) {
  if (ms % (3600 * 1000) == 0) return fmt::format("{}h", ms / (3600 * 1000));
  if (ms % (60 * 1000) == 0) return fmt::format("{}m", ms / (60 * 1000));
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

Result<uint64_t> ParseSize(std::string_view t) {
  double v = 0;
  std::string_view unit;
  if (!SplitNumberUnit(t, &v, &unit))
    return Status::InvalidArgument(fmt::format("'{}' is not a size (e.g. 1MiB, 512KiB, 4096)", t));
  uint64_t mult;
  if (unit.empty() || unit == "B" || unit == "b") mult = 1;
  else if (unit == "KiB" || unit == "k" || unit == "K" || unit == "KB" || unit == "kB") mult = 1024;
  else if (unit == "MiB" || unit == "M" || unit == "MB" || unit == "m") mult = 1024 * 1024;
  else if (unit == "GiB" || unit == "G" || unit == "GB" || unit == "g") mult = 1024ull * 1024 * 1024;
  else return Status::InvalidArgument(fmt::format("'{}': unknown unit '{}' (use B, KiB, MiB, GiB)", t, unit));
  return uint64_t(v * double(mult));
}

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Result<int64_t> ParseTimeMs(std::string_view t, int64_t now_ms) {
  if (!t.empty() && t[0] == '-') {
    SK_ASSIGN_OR_RETURN(int64_t d, ParseDurationMs(t.substr(1), 1000));
    return now_ms - d;
  }
  int64_t epoch;
  if (ParseInt(t, &epoch)) return epoch;
  // ISO-8601: YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM|±HHMM|±HH]; no zone: UTC. A
  // comma may stand for the decimal point, as the standard allows.
  int Y, M, D, h = 0, m = 0, s = 0, ms = 0;
  auto bad = [&] {
    return Status::InvalidArgument(fmt::format(
        "'{}' is not a time (ISO-8601 like 2026-11-26T10:00:00Z, epoch ms, or -15m)", t));
  };
  auto num = [&](size_t at, size_t n, int* out) {
    if (at + n > t.size()) return false;
    int64_t v;
    if (!ParseInt(t.substr(at, n), &v)) return false;
    *out = int(v);
    return true;
  };
  if (!num(0, 4, &Y) || t.size() < 10 || t[4] != '-' || !num(5, 2, &M) || t[7] != '-' || !num(8, 2, &D))
    return bad();
  size_t i = 10;
  if (i < t.size() && (t[i] == 'T' || t[i] == ' ')) {
    if (!num(i + 1, 2, &h) || i + 3 >= t.size() || t[i + 3] != ':' || !num(i + 4, 2, &m)) return bad();
    i += 6;
    if (i < t.size() && t[i] == ':') {
      if (!num(i + 1, 2, &s)) return bad();
      i += 3;
      if (i < t.size() && (t[i] == '.' || t[i] == ',')) {
        size_t j = i + 1;
        int frac = 0, digits = 0;
        while (j < t.size() && t[j] >= '0' && t[j] <= '9') {
          if (digits < 3) { frac = frac * 10 + (t[j] - '0'); digits++; }
          j++;
        }
        while (digits < 3) { frac *= 10; digits++; }
        ms = frac;
        i = j;
      }
    }
  }
  int64_t offset_min = 0;
  if (i < t.size()) {
    if (t[i] == 'Z' && i + 1 == t.size()) {
    } else if (t[i] == '+' || t[i] == '-') {
      int oh = 0, om = 0;
      size_t rest = t.size() - i - 1;
      bool ok = rest == 5   ? t[i + 3] == ':' && num(i + 1, 2, &oh) && num(i + 4, 2, &om)
                : rest == 4 ? num(i + 1, 2, &oh) && num(i + 3, 2, &om)
                : rest == 2 && num(i + 1, 2, &oh);
      if (!ok || oh > 23 || om > 59) return bad();
      offset_min = (oh * 60 + om) * (t[i] == '+' ? 1 : -1);
    } else {
      return bad();
    }
  }
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || s > 60) return bad();
  struct tm tm{};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = s;
  int64_t secs = int64_t(timegm(&tm)) - offset_min * 60;
  return secs * 1000 + ms;
}

void AppendJsonString(std::string* o, std::string_view s) {
  o->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': *o += "\\\""; break;
      case '\\': *o += "\\\\"; break;
      case '\n': *o += "\\n"; break;
      case '\r': *o += "\\r"; break;
      case '\t': *o += "\\t"; break;
      default:
        if (c < 0x20) *o += fmt::format("\\u{:04x}", c);
        else o->push_back(char(c));
    }
  }
  o->push_back('"');
}

std::string FormatTimeMs(int64_t ms) {
  time_t secs = time_t(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms % 1000));
}

}  // namespace streamkit

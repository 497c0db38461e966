// Defaults every tool honours, and the parsers for values given on the command line.
//   socket: --socket, else STREAMKIT_SOCKET, else $XDG_RUNTIME_DIR/streamkit/serve.sock,
//           else /tmp/streamkit-$UID/serve.sock
//   data:   --data, else STREAMKIT_DATA, else $XDG_DATA_HOME/streamkit,
//           else ~/.local/share/streamkit
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace streamkit {

std::string DefaultSocketPath();
std::string DefaultDataDir();
// True when autostart is turned off by STREAMKIT_NO_AUTOSTART=1.
bool AutostartDisabledByEnv();

// "24h", "90m", "15s", "500ms", "2d", "1w"; a bare number is in `bare_unit_ms`.
Result<int64_t> ParseDurationMs(std::string_view text, int64_t bare_unit_ms = 1);
std::string FormatDuration(int64_t ms);
// "1MiB", "512KiB", "64k", "1M", "1048576" (bytes).
Result<uint64_t> ParseSize(std::string_view text);
// "2026-11-26T10:00:00Z", "2026-11-26T10:00:00.250+01:00", "2026-11-26", or a
// relative "-15m" (before now), or epoch milliseconds.
Result<int64_t> ParseTimeMs(std::string_view text, int64_t now_ms);
std::string FormatTimeMs(int64_t ms);  // ISO-8601 UTC with milliseconds
// Appends `s` as a JSON string literal (quotes, backslashes and control bytes escaped).
void AppendJsonString(std::string* out, std::string_view s);
inline std::string JsonQuote(std::string_view s) {
  std::string o;
  AppendJsonString(&o, s);
  return o;
}
int64_t NowMs();

}  // namespace streamkit

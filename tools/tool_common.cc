#include "tool_common.h"

#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace streamkit::tools {

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return kExitOk;
    case Status::Code::kNotFound: return kExitNotFound;
    case Status::Code::kInvalidArgument: return kExitBadInput;
    default: return kExitFailure;
  }
}

int Fail(const char* tool, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", tool, s.message().c_str());
  return ExitCodeFor(s);
}

int FailMsg(const char* tool, int code, const std::string& msg) {
  std::fprintf(stderr, "%s: %s\n", tool, msg.c_str());
  return code;
}

void AddClientFlags(CLI::App& app, client::ConnectOptions* opts, bool* no_autostart) {
  app.add_option("--socket", opts->socket_path,
                 "Server socket (default: $STREAMKIT_SOCKET, $XDG_RUNTIME_DIR/streamkit/serve.sock, /tmp/streamkit-$UID/serve.sock)")
      ->group("Connection");
  app.add_option("--data", opts->data_dir,
                 "Data dir for an autostarted server (default: $STREAMKIT_DATA, $XDG_DATA_HOME/streamkit, ~/.local/share/streamkit)")
      ->group("Connection");
  app.add_flag("--no-autostart", *no_autostart,
               "Do not start stream-serve when no server answers (also STREAMKIT_NO_AUTOSTART=1)")
      ->group("Connection");
}

void AddVersionFlag(CLI::App& app, const char* tool) {
  app.set_version_flag("--version", fmt::format("{} (streamkit) {}", tool, STREAMKIT_VERSION));
}

int Parse(CLI::App& app, int argc, char** argv, const char* tool) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: error: %s\nTry '%s --help' for more information.\n", tool, e.what(), tool);
    return kExitUsage;
  }
  // An option given an empty value (--socket "", --data "$UNSET") is a mistake, not a
  // request for the default: it must not land on the user's real server or data.
  for (const CLI::Option* opt : app.get_options())
    if (opt->nonpositional() && opt->count() > 0 && opt->get_expected_max() > 0)
      for (const std::string& v : opt->results())
        if (v.empty()) {
          std::fprintf(stderr, "%s: error: %s: empty value\n", tool, opt->get_name().c_str());
          return kExitUsage;
        }
  return -1;
}

void IgnoreSigpipe() { std::signal(SIGPIPE, SIG_IGN); }

namespace {
// Read by worker threads too: a lock-free atomic (async-signal-safe), not just volatile.
std::atomic<bool> g_stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free);
void OnStopSignal(int) { g_stop_requested.store(true, std::memory_order_relaxed); }
}  // namespace

void KeepFreedMemory() {
  mallopt(M_MMAP_THRESHOLD, 512 << 20);
  mallopt(M_TRIM_THRESHOLD, 1024 << 20);
}

namespace {
bool g_sched_changed = false;
}

void EnsureStdFds() {
  for (int fd = 0; fd <= 2; fd++) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    // open returns the lowest free number: this one (the lower ones are open by now).
    int n = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (n >= 0 && n != fd) ::close(n);
  }
}

void UseBatchScheduling(const char* tool) {
#if defined(__linux__) && defined(SCHED_BATCH)
  const char* v = std::getenv("STREAMKIT_SCHED");
  std::string_view want = v && *v ? std::string_view(v) : std::string_view("batch");
  if (want == "normal") return;
  if (want != "batch")
    std::fprintf(stderr, "%s: STREAMKIT_SCHED='%s' is neither 'batch' nor 'normal'; using batch\n", tool, v);
  if (::sched_getscheduler(0) != SCHED_OTHER) return;  // the user's choice
  sched_param p{};
  p.sched_priority = 0;
  g_sched_changed = ::sched_setscheduler(0, SCHED_BATCH, &p) == 0;
#else
  (void)tool;
#endif
}

void RestoreSchedulingInChild() {
#if defined(__linux__) && defined(SCHED_BATCH)
  if (!g_sched_changed) return;
  sched_param p{};
  p.sched_priority = 0;
  (void)::sched_setscheduler(0, SCHED_OTHER, &p);
#endif
}

void CatchStopSignals() {
  struct sigaction sa{};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool StopRequested() { return g_stop_requested.load(std::memory_order_relaxed); }

}  // namespace streamkit::tools

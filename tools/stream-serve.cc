// stream-serve: owns a data dir and serves streams on a Unix socket.
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "common/config.h"
#include "server/server.h"
#include "tool_common.h"

using namespace streamkit;

int main(int argc, char** argv) {
  const char* tool = "stream-serve";
  tools::KeepFreedMemory();  // batches and answers of MiBs come and go
  tools::EnsureStdFds();
  tools::UseBatchScheduling(tool);
  CLI::App app{"stream-serve: the streamkit server. Owns one data dir and serves its streams on a Unix socket."};
  server::ServerOptions opts;
  std::string mode = "0600", fsync = "interval=200", faults, segment_bytes = "128MiB";
  app.add_option("--socket", opts.socket_path, "Socket to listen on (default: $STREAMKIT_SOCKET, $XDG_RUNTIME_DIR/streamkit/serve.sock, /tmp/streamkit-$UID/serve.sock)");
  app.add_option("--data", opts.data_dir, "Data dir (default: $STREAMKIT_DATA, $XDG_DATA_HOME/streamkit, ~/.local/share/streamkit)");
  app.add_option("--socket-mode", mode, "Permissions of the socket, octal (default 0600: only this user)");
  app.add_option("--fsync", fsync, "Durability: always | interval=MS | never (default interval=200)");
  app.add_option("--segment-bytes", segment_bytes, "Start a new segment file of a shard at this size (default 128MiB; 64KiB to 4080MiB)");
  app.add_option("--inject-faults", faults, "Test clients' retries: throttle=RATE,fail=RATE,latency=MS");
  app.add_flag("-v,--verbose", opts.verbose, "Log stream changes and retention");
  tools::AddVersionFlag(app, tool);
  app.footer("Examples:\n  stream-serve                         # default socket and data dir\n"
             "  stream-serve --fsync always          # acknowledge only after fdatasync\n"
             "  stream-serve --inject-faults throttle=0.05,latency=2ms");
  if (int rc = tools::Parse(app, argc, argv, tool); rc >= 0) return rc;

  if (opts.socket_path.empty()) opts.socket_path = DefaultSocketPath();
  if (opts.data_dir.empty()) opts.data_dir = DefaultDataDir();
  auto d = log::Durability::Parse(fsync);
  if (!d.ok()) return tools::FailMsg(tool, tools::kExitUsage, d.status().message());
  opts.durability = *d;
  auto seg = ParseSize(segment_bytes);
  if (!seg.ok() || *seg < (64u << 10) || *seg > (4080ull << 20))
    return tools::FailMsg(tool, tools::kExitUsage,
                          fmt::format("--segment-bytes '{}': expected a size from 64KiB to 4080MiB, like 128MiB", segment_bytes));
  opts.segment_bytes = *seg;
  char* end = nullptr;
  opts.socket_mode = unsigned(std::strtoul(mode.c_str(), &end, 8));
  if (mode.empty() || *end != '\0' || opts.socket_mode > 0777)
    return tools::FailMsg(tool, tools::kExitUsage, fmt::format("--socket-mode '{}' is not an octal mode like 0600", mode));
  if (!faults.empty()) {
    auto f = server::FaultSpec::Parse(faults);
    if (!f.ok()) return tools::FailMsg(tool, tools::kExitUsage, f.status().message());
    opts.faults = *f;
  }
  tools::IgnoreSigpipe();
  // Many shards mean many open segment files.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  // Signals go to one thread that asks the server to stop.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  // Started by a client (autostart): tell it how the start went, on the pipe it gave
  // (lib/client/client.cc SpawnServer): 'R' serving, 'B' another server owns the data
  // dir or the socket, 'F' failed (the reason is on stderr, i.e. serve.log).
  int ready_fd = -1;
  if (const char* e = std::getenv("STREAMKIT_READY_FD")) {
    char* rest = nullptr;
    long v = std::strtol(e, &rest, 10);
    if (*e && *rest == '\0' && v > 2 && v < 1 << 20 && ::fcntl(int(v), F_GETFD) >= 0) {
      ready_fd = int(v);
      ::fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
    }
    ::unsetenv("STREAMKIT_READY_FD");
  }
  auto tell = [&ready_fd](char c) {
    if (ready_fd < 0) return;
    (void)!::write(ready_fd, &c, 1);
    ::close(ready_fd);
    ready_fd = -1;
  };

  server::Server srv(opts);
  // A failure to start: 3 for an invalid setting (a socket path too long or naming a
  // file that is not a socket), 4 for a file the data dir needs that is missing, else 1
  // (2 is kept for usage errors).
  if (Status s = srv.Start(); !s.ok()) {
    // The reason goes to stderr (serve.log) before the client is told: it reads the
    // log's last line as soon as it hears 'F'.
    int rc;
    if ((s.err() == EMFILE || s.err() == ENFILE) && s.message().find("ulimit -n") == std::string::npos)
      rc = tools::FailMsg(tool, tools::kExitFailure,
                          fmt::format("{} (the open-file limit is {}: raise it with ulimit -n or LimitNOFILE=)",
                                      s.message(), uint64_t(rl.rlim_cur)));
    else
      rc = tools::Fail(tool, s);
    std::fflush(stderr);
    tell(s.is(Status::Code::kBusy) ? 'B' : 'F');
    return rc;
  }
  tell('R');
  std::atomic<bool> signalled{false};
  std::thread waiter([&srv, &signalled, set] {
    int sig;
    sigwait(&set, &sig);
    signalled = true;
    srv.Shutdown();
  });
  Status s = srv.Run();
  // Stopped by a signal: the waiter is done with the server; otherwise it still waits.
  if (signalled) waiter.join();
  else waiter.detach();
  return s.ok() ? 0 : tools::FailMsg(tool, tools::kExitFailure, s.message());
}

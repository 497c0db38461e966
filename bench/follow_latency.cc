// follow_latency: put-to-tail latency through the real tools.
//
// Starts `stream-put STREAM --linger 0` and `stream-tail -f STREAM --from latest`
// as child processes, writes N records at a fixed rate (absolute schedule) into the
// producer's stdin, each carrying its CLOCK_MONOTONIC send time, and reads the
// follower's stdout: latency = receive time - send time. Prints p50/p99/p99.9/max.
// One warm-up record goes through the tools before the timed records (start-up of
// stream-put is not follow latency).
//
// Usage: follow_latency BIN_DIR STREAM [N=10000] [RATE=1000] [tools|client|client-stay]
// (The stream must exist; the tools use STREAMKIT_SOCKET from the environment.)
// Mode `client` measures the same through the client library in one process (a
// producer thread and a follower thread on two connections), which is how the
// peers' W3 figures (Redis XADD -> XREAD BLOCK) are taken: one Fetch per answer.
// Mode `client-stay` follows with one Fetch that stays parked (kFetchStay, as
// stream-tail -f does): fewer requests, but on this 2-vCPU VM no lower latency
// (README, "Follow latency").
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "log/batch.h"

namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Sleeps, then spins, until the monotonic clock reaches `due_ns` (an absolute
// schedule: a late send does not delay the ones after it).
void WaitUntil(int64_t due_ns) {
  while (NowNs() < due_ns) {
    int64_t left = due_ns - NowNs();
    if (left > 200000) std::this_thread::sleep_for(std::chrono::nanoseconds(left - 100000));
  }
}

pid_t Spawn(const std::vector<std::string>& argv, int in_fd, int out_fd) {
  pid_t pid = fork();
  if (pid == 0) {
    if (in_fd >= 0) dup2(in_fd, 0);
    if (out_fd >= 0) dup2(out_fd, 1);
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    std::perror("execv");
    _exit(127);
  }
  return pid;
}

// FL_DUMP=FILE: each record's latency in ns, one per line, in arrival order (to
// look for periodic stalls).
void DumpLatencies(const std::vector<int64_t>& lat) {
  const char* path = std::getenv("FL_DUMP");
  if (!path || !*path) return;
  if (FILE* f = std::fopen(path, "w")) {
    for (int64_t v : lat) std::fprintf(f, "%lld\n", (long long)v);
    std::fclose(f);
  }
}

}  // namespace

int ClientMode(const std::string& stream, int n, int rate, bool stay) {
  using namespace streamkit;
  client::ConnectOptions co;
  co.autostart = false;
  auto prod = client::Client::Connect(co);
  auto cons = client::Client::Connect(co);
  if (!prod.ok() || !cons.ok()) {
    std::fprintf(stderr, "connect: %s\n", (!prod.ok() ? prod : cons).status().ToString().c_str());
    return 1;
  }
  auto info = (*cons)->CallOk(proto::Type::kListOffset, [&](proto::Writer& w) {
    w.str(stream).u32(0).u8(uint8_t(proto::OffsetKind::kLatest)).i64(0);
  });
  if (!info.ok()) return 1;
  uint64_t offset = 0;
  auto rd = info->body();
  rd.u64(&offset);
  std::vector<int64_t> lat;
  lat.reserve(size_t(n));
  std::thread follower([&] {
    // `stay`: the fetch stays parked (kFetchStay) and answers each new batch without a
    // new request; when an answer lacks kFetchMore, ask again.
    bool parked = false;
    while (int(lat.size()) < n) {
      if (!parked) {
        auto s = (*cons)->Send(proto::Type::kFetch, [&](proto::Writer& w) {
          w.str(stream).u32(0).u64(offset).u32(1 << 20).u32(1000).u8(stay ? proto::kFetchStay : 0);
        });
        if (!s.ok()) return;
      }
      auto r = (*cons)->Receive();
      if (!r.ok() || !r->ok()) return;
      auto b = r->body();
      uint64_t next = 0, end = 0, start = 0;
      uint8_t flags = 0;
      b.u64(&next);
      b.u64(&end);
      b.u64(&start);
      b.u8(&flags);
      parked = (flags & proto::kFetchMore) != 0;
      std::string_view t = b.tail();
      log::RecordCursor rc(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(t.data()), t.size()), offset);
      log::Record rec;
      while (rc.Next(&rec)) {
        lat.push_back(NowNs() - std::atoll(std::string(rec.data.substr(0, 19)).c_str()));
        offset = rec.offset + 1;
      }
    }
  });
  log::BatchBuilder bb;
  std::string pad(80, 'x');
  int64_t start = NowNs() + 1000000, period = 1000000000LL / rate;
  for (int i = 0; i < n; i++) {
    WaitUntil(start + i * period);
    char buf[160];
    int len = std::snprintf(buf, sizeof buf, "%019lld %s", (long long)NowNs(), pad.c_str());
    bb.Add("lat", nullptr, std::string_view(buf, size_t(len)), 0);
    Bytes batch = bb.Finish();
    auto r = (*prod)->CallOk(proto::Type::kProduce, [&](proto::Writer& w) { w.str(stream).u32(0).tail(batch.data(), batch.size()); });
    if (!r.ok()) {
      std::fprintf(stderr, "produce: %s\n", r.status().ToString().c_str());
      return 1;
    }
  }
  follower.join();
  DumpLatencies(lat);
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return double(lat[std::min(lat.size() - 1, size_t(p * double(lat.size())))]) / 1000.0; };
  std::printf("follow_latency mode=%s records=%zu of=%d rate=%d p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n",
              stay ? "client-stay" : "client", lat.size(), n, rate, pct(0.50), pct(0.99), pct(0.999), double(lat.back()) / 1000.0);
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 5 && (std::string(argv[5]) == "client" || std::string(argv[5]) == "client-stay"))
    return ClientMode(argv[2], std::atoi(argv[3]), std::atoi(argv[4]), std::string(argv[5]) == "client-stay");
  if (argc < 3) {
    std::fprintf(stderr, "usage: follow_latency BIN_DIR STREAM [N] [RATE]\n");
    return 2;
  }
  std::string bin = argv[1], stream = argv[2];
  int n = argc > 3 ? std::atoi(argv[3]) : 10000;
  int rate = argc > 4 ? std::atoi(argv[4]) : 1000;

  int to_put[2], from_tail[2];
  if (pipe2(to_put, O_CLOEXEC) != 0 || pipe2(from_tail, O_CLOEXEC) != 0) return 1;
  pid_t tail = Spawn({bin + "/stream-tail", "-f", stream, "--from", "latest"}, -1, from_tail[1]);
  close(from_tail[1]);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // follower parked at the end
  pid_t put = Spawn({bin + "/stream-put", stream, "--linger", "0", "--key-fixed", "lat"}, to_put[0], -1);
  close(to_put[0]);

  std::vector<int64_t> lat;
  lat.reserve(size_t(n));
  std::atomic<bool> warm{false};
  std::thread reader([&] {
    FILE* f = fdopen(from_tail[0], "r");
    char line[256];
    while (int(lat.size()) < n && fgets(line, sizeof line, f)) {
      int64_t now = NowNs();
      if (line[0] == 'w') {  // the warm-up record
        warm = true;
        continue;
      }
      lat.push_back(now - std::atoll(line));
    }
  });
  // Steady state, not process start-up: stream-put takes milliseconds to start
  // (exec, connect, shard map), which the first timed records would otherwise wait
  // for. One record goes through the pipeline before the clock starts.
  const char warmup[] = "warm-up\n";
  if (write(to_put[1], warmup, sizeof warmup - 1) != ssize_t(sizeof warmup - 1)) return 1;
  for (int i = 0; i < 1000 && !warm; i++) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (!warm) std::fprintf(stderr, "follow_latency: the warm-up record did not come back within 5 s\n");
  int64_t start = NowNs() + 1000000;
  int64_t period = 1000000000LL / rate;
  std::string pad(80, 'x');
  for (int i = 0; i < n; i++) {
    WaitUntil(start + i * period);
    char buf[160];
    int len = std::snprintf(buf, sizeof buf, "%019lld %s\n", (long long)NowNs(), pad.c_str());
    if (write(to_put[1], buf, size_t(len)) != len) break;
  }
  close(to_put[1]);
  int st;
  waitpid(put, &st, 0);
  // Wait (bounded) for the follower to deliver the rest.
  for (int i = 0; i < 500 && int(lat.size()) < n; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  kill(tail, SIGTERM);
  reader.join();
  waitpid(tail, &st, 0);
  if (lat.empty()) {
    std::fprintf(stderr, "no records came back\n");
    return 1;
  }
  DumpLatencies(lat);
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return double(lat[std::min(lat.size() - 1, size_t(p * double(lat.size())))]) / 1000.0; };
  std::printf("follow_latency mode=tools records=%zu of=%d rate=%d p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n",
              lat.size(), n, rate, pct(0.50), pct(0.99), pct(0.999), double(lat.back()) / 1000.0);
  return int(lat.size()) == n ? 0 : 1;
}

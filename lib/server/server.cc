#include "server/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <set>

#include "common/config.h"

namespace streamkit::server {

using proto::Err;
using proto::Reader;
using proto::Type;
using proto::Writer;

namespace {

// The scheduling policy the server's threads run under (tools/tool_common.h,
// UseBatchScheduling), for the start-up line.
const char* SchedulingPolicyName() {
#if defined(__linux__) && defined(SCHED_BATCH)
  switch (::sched_getscheduler(0)) {
    case SCHED_OTHER: return "normal";
    case SCHED_BATCH: return "batch";
    case SCHED_IDLE: return "idle";
    case SCHED_FIFO: return "fifo";
    case SCHED_RR: return "rr";
    default: return "other";
  }
#else
  return "normal";
#endif
}

constexpr int64_t kRetentionEveryMs = 30 * 1000;
constexpr int kMaxParkedFetches = 16384;  // per connection (a stream has at most 10,000 shards)
// A kFetchStay fetch stays parked only while its connection's unsent answers hold less
// than this: a follower that does not keep up is back to one answer per request.
constexpr size_t kStayMaxQueuedBytes = 1u << 20;

// Whether a kFetchStay fetch answered up to `next` stays parked there: the answer carried
// records and reached the durable end of an open shard, and its client keeps up.
bool Stays(Connection& c, uint64_t offset, uint64_t next, uint64_t durable, bool closed) {
  return next > offset && next >= durable && !closed && c.QueuedBytes() < kStayMaxQueuedBytes;
}

Bytes ErrorFrame(uint32_t corr, uint16_t type, Err err, std::string_view msg) {
  Bytes out;
  proto::BeginResponse(&out, corr, Type(type & ~proto::kResponseBit), err, msg);
  proto::FinishFrame(&out, 0);
  return out;
}
}  // namespace

// ---- workers ----------------------------------------------------------------------

// Runs the requests that fsync metadata files, off the event loops.
class WorkerPool {
 public:
  explicit WorkerPool(int n) {
    for (int i = 0; i < n; i++) threads_.emplace_back([this] { Work(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Submit(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> g(mu_);
      jobs_.push_back(std::move(job));
      busy_++;
    }
    cv_.notify_one();
  }
  // Waits until every submitted job has run.
  void Drain() {
    std::unique_lock<std::mutex> l(mu_);
    idle_cv_.wait(l, [&] { return busy_ == 0; });
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
      std::lock_guard<std::mutex> g(mu_);
      if (--busy_ == 0) idle_cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::function<void()>> jobs_;
  int busy_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// ---- faults ----------------------------------------------------------------------

Result<FaultSpec> FaultSpec::Parse(std::string_view text) {
  FaultSpec f;
  if (text.empty() || text.back() == ',')
    return Status::InvalidArgument(fmt::format("faults '{}': expected name=value items separated by commas", text));
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos)
      return Status::InvalidArgument(fmt::format("fault '{}': expected name=value", item));
    std::string_view k = item.substr(0, eq), v = item.substr(eq + 1);
    if (k == "latency") {
      SK_ASSIGN_OR_RETURN(int64_t ms, ParseDurationMs(v));
      f.latency_ms = int(ms);
    } else if (k == "throttle" || k == "fail") {
      char* end = nullptr;
      std::string vs(v);
      double d = std::strtod(vs.c_str(), &end);
      if (end == vs.c_str() || *end != '\0' || !(d >= 0 && d <= 1))  // NaN fails both
        return Status::InvalidArgument(fmt::format("fault '{}': the rate must be 0 to 1", item));
      (k == "throttle" ? f.throttle : f.fail) = d;
    } else {
      return Status::InvalidArgument(
          fmt::format("unknown fault '{}' (use throttle=RATE, fail=RATE, latency=MS)", k));
    }
  }
  return f;
}

// ---- server ----------------------------------------------------------------------

Server::Server(ServerOptions opts) : opts_(std::move(opts)) {}

// Stops the event loops at once (no draining) and forgets them.
void Server::DropLoops() {
  for (auto& l : loops_) l->StopReading();
  for (auto& l : loops_) l->Finish(0);
  for (auto& l : loops_) l->Join();
  loops_.clear();
}

Server::~Server() {
  // Normally Run() has stopped everything; after a failed Start() some may still run.
  DropLoops();
  {
    std::lock_guard<std::mutex> g(sync_mu_);
    sync_stop_ = true;
  }
  sync_cv_.notify_all();
  {
    std::lock_guard<std::mutex> g(timer_mu_);
    timer_stop_ = true;
    timer_cv_.notify_all();
  }
  if (sync_thread_.joinable()) sync_thread_.join();
  if (timer_thread_.joinable()) timer_thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
  for (int fd : wake_pipe_)
    if (fd >= 0) ::close(fd);
}

void Server::Log(const std::string& line) { std::fprintf(stderr, "stream-serve: %s\n", line.c_str()); }

namespace {

// True when a server accepts connections on the Unix socket at `path`.
bool SocketLive(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  bool live = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(probe);
  return live;
}

}  // namespace

Status Server::Start() {
  io_ = io::DefaultIo();
  // A live server on our socket: say so before touching anything (a mistyped --data
  // must not leave a new empty data dir behind). Checked again before binding.
  if (SocketLive(opts_.socket_path))
    return Status::Busy(fmt::format("another server is listening on {}", opts_.socket_path));
  // A data dir made here is private (0700), like the socket: the records are the
  // user's. An existing one keeps the permissions it has.
  bool new_dir = !io_->Exists(opts_.data_dir);
  SK_TRY(io_->CreateDirs(opts_.data_dir));
  if (new_dir && ::chmod(opts_.data_dir.c_str(), 0700) != 0)
    return Status::FromErrno(errno, fmt::format("chmod {}", opts_.data_dir));
  std::string lock_path = opts_.data_dir + "/serve.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return Status::FromErrno(errno, fmt::format("open {}", lock_path));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    ssize_t n = ::pread(lock_fd_, pid, sizeof pid - 1, 0);
    std::string who = n > 0 ? fmt::format(" (pid {})", std::string(pid, size_t(n)).substr(0, std::string(pid, size_t(n)).find('\n'))) : "";
    return Status::Busy(fmt::format("another stream-serve{} already owns the data dir {}", who, opts_.data_dir));
  }
  std::string pid = fmt::format("{}\n", ::getpid());
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, pid.data(), pid.size(), 0) < 0)
    return Status::FromErrno(errno, fmt::format("write {}", lock_path));
  // The server's identity (told in Hello): stream-mirror uses it to never mirror a
  // stream onto itself or back to where it came from.
  {
    std::string id_path = opts_.data_dir + "/server.id";
    auto id = io::ReadSmallFile(*io_, id_path, 256);
    if (id.ok() && id->size() >= 32) {
      server_id_ = id->substr(0, 32);
    } else if (id.ok() || id.status().err() != ENOENT) {
      // Never replaced behind the user's back: mirrors know this server by it.
      return Status::Corruption(fmt::format("{}: unreadable or damaged ({}); restore it, or remove it to give "
                                            "this server a new identity", id_path,
                                            id.ok() ? "too short" : id.status().message()));
    } else {
      std::random_device rd;
      server_id_ = fmt::format("{:08x}{:08x}{:08x}{:08x}", rd(), rd(), rd(), rd());
      std::string text = server_id_ + "\n";
      SK_TRY(io::WriteFileAtomic(*io_, id_path, text.data(), text.size()));
    }
  }

  StoreOptions so;
  so.data_dir = opts_.data_dir;
  so.durability = opts_.durability;
  so.segment_bytes = opts_.segment_bytes;
  store_ = std::make_unique<Store>(io_, so);
  SK_TRY(store_->Open());
  next_producer_id_ = NowMs() * 1000;

  // The socket: its directory private to the user, a stale socket file replaced.
  sockaddr_un addr{};
  if (opts_.socket_path.size() >= sizeof addr.sun_path)
    return Status::InvalidArgument(fmt::format("socket path {} is too long", opts_.socket_path));
  auto slash = opts_.socket_path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    std::string sdir = opts_.socket_path.substr(0, slash);
    if (!io_->Exists(sdir)) {
      SK_TRY(io_->CreateDirs(sdir));
      ::chmod(sdir.c_str(), 0700);
    }
  }
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status::FromErrno(errno, "socket");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, opts_.socket_path.c_str(), opts_.socket_path.size());
  if (struct stat st; ::lstat(opts_.socket_path.c_str(), &st) == 0) {
    // Only a socket file is ever replaced: a path given by mistake may name a file
    // that matters.
    if (!S_ISSOCK(st.st_mode))
      return Status::InvalidArgument(fmt::format("{} exists and is not a socket; not replacing it", opts_.socket_path));
    if (SocketLive(opts_.socket_path))
      return Status::Busy(fmt::format("another server is listening on {}", opts_.socket_path));
    ::unlink(opts_.socket_path.c_str());
  }
  mode_t old = ::umask(0777 & ~opts_.socket_mode);
  int rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0) return Status::FromErrno(errno, fmt::format("bind {}", opts_.socket_path));
  ::chmod(opts_.socket_path.c_str(), opts_.socket_mode);
  if (::listen(listen_fd_, 128) != 0) return Status::FromErrno(errno, "listen");
  // Every loop accepts when epoll says the socket is ready; several loops may wake
  // for one connection, and the losers must not block in accept.
  ::fcntl(listen_fd_, F_SETFL, ::fcntl(listen_fd_, F_GETFL) | O_NONBLOCK);
  if (::pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) return Status::FromErrno(errno, "pipe");

  sync_thread_ = std::thread([this] { SyncLoop(); });
  timer_thread_ = std::thread([this] { TimerLoop(); });

  workers_ = std::make_unique<WorkerPool>(2);
  // Loops last: they start serving at once.
  // Event loops: one per core (at most 4), all on the same backend.
  // STREAMKIT_NET=epoll|io_uring overrides the choice (the default follows the I/O backend).
  const char* net = std::getenv("STREAMKIT_NET");
  bool uring = net ? std::string_view(net) == "io_uring" : std::string_view(io_->name()) == "io_uring";
  const bool wanted_uring = uring;
  unsigned nloops = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  if (const char* n = std::getenv("STREAMKIT_NET_LOOPS"); n && std::atoi(n) > 0) nloops = unsigned(std::atoi(n));
  for (;;) {
    Status started;
    for (unsigned i = 0; i < nloops && started.ok(); i++) {
      SK_ASSIGN_OR_RETURN(auto loop, EventLoop::Create(uring, listen_fd_, this));
      uring = loop->backend() == EventLoop::Backend::kUring;
      started = loop->Start();
      if (started.ok()) loops_.push_back(std::move(loop));
    }
    if (started.ok()) break;
    if (!uring) return started;
    // A loop could not make its ring (memlock limit on older kernels): all on epoll.
    DropLoops();
    uring = false;
  }
  if (wanted_uring && !uring) Log("io_uring cannot serve sockets here; using epoll for the network");

  Log(fmt::format("serving {} on {} (io: {}, net: {} x{}, fsync: {}, sched: {}, {} streams)", opts_.data_dir,
                  opts_.socket_path, io_->name(), loops_[0]->name(), loops_.size(),
                  opts_.durability.ToString(), SchedulingPolicyName(), store_->List().size()));
  return Status::OK();
}

void Server::Shutdown() {
  char c = 1;
  ssize_t n = ::write(wake_pipe_[1], &c, 1);
  (void)n;
}

Status Server::Run() {
  pollfd wake{wake_pipe_[0], POLLIN, 0};
  for (;;) {
    int n = ::poll(&wake, 1, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "poll");
    break;
  }
  // Shutdown: stop accepting and reading requests, finish those in progress, send
  // the last answers, make everything durable.
  stopping_ = true;
  ::unlink(opts_.socket_path.c_str());
  for (auto& l : loops_) l->StopReading();
  for (auto& l : loops_) l->WaitReadingStopped();  // no request is being handled on a loop
  workers_->Drain();                                // nor on a worker
  {
    std::lock_guard<std::mutex> g(timer_mu_);
    timer_stop_ = true;  // its last sweep now sees every delayed answer and parked fetch
    timer_cv_.notify_all();
  }
  {
    std::lock_guard<std::mutex> g(sync_mu_);
    sync_stop_ = true;
  }
  sync_cv_.notify_all();
  if (sync_thread_.joinable()) sync_thread_.join();    // group-commit acks sent
  if (timer_thread_.joinable()) timer_thread_.join();  // parked fetches answered
  int64_t deadline = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now().time_since_epoch()).count() + 2000;
  for (auto& l : loops_) l->Finish(deadline);
  for (auto& l : loops_) l->Join();
  loops_.clear();
  workers_.reset();
  ::close(listen_fd_);
  listen_fd_ = -1;
  Status s = store_->CloseAll();
  Log(s.ok() ? "stopped; all data durable" : "stopped with an error: " + s.ToString());
  return s;
}

void Server::OnClosed(Connection* c) {
  std::lock_guard<std::mutex> g(waiters_mu_);
  c->gone = true;  // a kFetchStay fetch being answered right now is not parked again
  if (c->parked_fetches > 0) (void)waiters_.TakeConnection(c);
}

Bytes Server::BadFrame(uint32_t corr, uint16_t type, uint32_t length) {
  return ErrorFrame(corr, type, Err::kInvalidRequest, fmt::format("frame of {} bytes is out of range", length));
}

bool Server::OnFrame(const std::shared_ptr<Connection>& c, uint32_t corr, uint16_t type, Bytes&& frame) {
  // Requests that write and fsync metadata files run on a worker: a loop never
  // waits for a disk flush, and the connection's later requests wait their turn.
  bool slow = false;
  switch (Type(type)) {
    case Type::kCreateStream:
    case Type::kDeleteStream:
    case Type::kSetRetention:
    case Type::kReshard:
    case Type::kSetScaling:
    case Type::kCreateMirror:
    case Type::kGroupHeartbeat:
    case Type::kGroupCommit:
    case Type::kGroupList:
    case Type::kGroupReset:
      slow = c->hello_done;
      break;
    default:
      break;
  }
  if (!slow) {
    Handle(c, corr, type, std::move(frame));
    return false;
  }
  workers_->Submit([this, c, corr, type, f = std::move(frame)]() mutable {
    Handle(c, corr, type, std::move(f));
    c->Resume();
  });
  return true;
}

void Server::Answer(const std::shared_ptr<Connection>& c, Bytes&& frame) {
  if (opts_.faults.latency_ms <= 0) return c->Send(std::move(frame));
  int64_t due = NowMs() + opts_.faults.latency_ms;
  {
    std::lock_guard<std::mutex> g(delayed_mu_);
    delayed_.push_back(Delayed{due, c, std::move(frame)});
  }
  KickTimer(due);
}

bool Server::Inject(double rate) {
  if (rate <= 0) return false;
  std::lock_guard<std::mutex> g(rng_mu_);
  return std::uniform_real_distribution<double>(0, 1)(rng_) < rate;
}

void Server::Handle(const std::shared_ptr<Connection>& c, uint32_t corr, uint16_t type, Bytes&& frame) {
  Reader r(frame.data() + proto::kFrameHeaderSize, frame.size() - proto::kFrameHeaderSize);
  auto reply = [&](Err err, std::string_view msg, auto&& body) {
    Bytes out;
    proto::BeginResponse(&out, corr, Type(type), err, msg);
    if (err == Err::kNone) {
      Writer w(&out);
      body(w);
    }
    proto::FinishFrame(&out, 0);
    Answer(c, std::move(out));
  };
  auto fail = [&](Err err, std::string_view msg) { reply(err, msg, [](Writer&) {}); };
  auto bad = [&] { fail(Err::kInvalidRequest, "malformed request"); };

  if (!c->hello_done && type != uint16_t(Type::kHello)) {
    fail(Err::kInvalidRequest, "the first request must be Hello");
    c->Shutdown();
    return;
  }
  if (stopping_) return fail(Err::kShuttingDown, "the server is shutting down");
  if (type != uint16_t(Type::kHello) && Inject(opts_.faults.fail))
    return fail(Err::kInjectedFailure, "injected failure (--inject-faults)");

  auto stream_of = [&](const std::string& name) -> std::shared_ptr<Stream> {
    auto s = store_->Get(name);
    if (!s) fail(Err::kStreamNotFound, fmt::format("stream '{}' does not exist", name));
    return s;
  };

  switch (Type(type)) {
    case Type::kHello: {
      uint16_t lo, hi;
      std::string who;
      if (!(r.u16(&lo) && r.u16(&hi) && r.str(&who))) return bad();
      if (lo > proto::kProtocolVersion || hi < proto::kProtocolVersion)
        return fail(Err::kUnsupportedVersion,
                    fmt::format("server speaks protocol {}, client {}-{}", proto::kProtocolVersion, lo, hi));
      c->hello_done = true;
      return reply(Err::kNone, "", [&](Writer& w) {
        w.u16(proto::kProtocolVersion).str(STREAMKIT_VERSION).u32(proto::kMaxFrameBytes).str(server_id_);
      });
    }
    case Type::kCreateStream: {
      std::string name;
      uint32_t shards, max_rec;
      int64_t ret;
      uint8_t flags;
      if (!(r.str(&name) && r.u32(&shards) && r.i64(&ret) && r.u8(&flags) && r.u32(&max_rec))) return bad();
      auto s = store_->Create(name, shards, ret, flags, max_rec);
      if (!s.ok())
        return fail(s.status().is(Status::Code::kBusy)                ? Err::kStreamExists
                    : s.status().is(Status::Code::kInvalidArgument) ? Err::kInvalidRequest
                                                                    : Err::kStorage,
                    s.status().message());
      if (opts_.verbose) Log(fmt::format("created stream {} with {} shards", name, shards));
      return reply(Err::kNone, "", [&](Writer& w) { store_->Describe(**s).Encode(w); });
    }
    case Type::kDeleteStream: {
      std::string name;
      if (!r.str(&name)) return bad();
      Status s = store_->Delete(name);
      if (!s.ok())
        return fail(s.is(Status::Code::kNotFound) ? Err::kStreamNotFound : Err::kStorage, s.message());
      return reply(Err::kNone, "", [](Writer&) {});
    }
    case Type::kListStreams: {
      auto all = store_->List();
      return reply(Err::kNone, "", [&](Writer& w) {
        w.u32(uint32_t(all.size()));
        for (auto& s : all) store_->Describe(*s).Encode(w);
      });
    }
    case Type::kDescribeStream: {
      std::string name;
      if (!r.str(&name)) return bad();
      auto s = stream_of(name);
      if (!s) return;
      return reply(Err::kNone, "", [&](Writer& w) { store_->Describe(*s).Encode(w); });
    }
    case Type::kSetRetention: {
      std::string name;
      int64_t ms;
      if (!(r.str(&name) && r.i64(&ms))) return bad();
      Status s = store_->SetRetention(name, ms);
      if (!s.ok())
        return fail(s.is(Status::Code::kNotFound)          ? Err::kStreamNotFound
                    : s.is(Status::Code::kInvalidArgument) ? Err::kInvalidRequest
                                                           : Err::kStorage,
                    s.message());
      return reply(Err::kNone, "", [](Writer&) {});
    }
    case Type::kInitProducer: {
      int64_t id = next_producer_id_++;
      return reply(Err::kNone, "", [&](Writer& w) { w.i64(id).u16(0); });
    }
    case Type::kReshard: {
      std::string name;
      uint8_t dry, mode;
      if (!(r.str(&name) && r.u8(&dry) && r.u8(&mode))) return bad();
      auto s = stream_of(name);
      if (!s) return;
      std::vector<server::ReshardOp> ops;
      std::string why;
      if (mode == 1) {
        uint32_t target;
        if (!r.u32(&target)) return bad();
        auto plan = store_->PlanScale(*s, target);
        if (!plan.ok()) return fail(Err::kInvalidRequest, plan.status().message());
        ops = std::move(*plan);
        why = fmt::format("stream-reshard scale {}", target);
      } else {
        uint32_t n;
        if (!r.u32(&n) || n > 100000) return bad();
        for (uint32_t i = 0; i < n; i++) {
          proto::ReshardStep st;
          if (!st.Decode(r)) return bad();
          server::ReshardOp op;
          op.kind = st.kind == 2 ? server::ReshardOp::kMerge : server::ReshardOp::kSplit;
          op.shard = st.shard;
          op.adjacent = st.adjacent;
          op.at = st.at;
          ops.push_back(op);
        }
        why = "stream-reshard";
      }
      std::vector<std::shared_ptr<Shard>> closed;
      Status st = store_->Reshard(*s, &ops, dry != 0, why, &closed);
      if (!st.ok())
        return fail(st.is(Status::Code::kNotFound) || st.is(Status::Code::kInvalidArgument) ? Err::kInvalidRequest
                                                                                          : Err::kStorage,
                    st.message());
      // Followers parked on a closed shard learn at once that it ended.
      for (auto& sh : closed) WakeWaiters(sh);
      if (!dry)
        for (auto& op : ops)
          Log(op.kind == server::ReshardOp::kSplit
                  ? fmt::format("{}: split {} -> {}, {}", name, proto::ShardIdName(op.shard),
                                proto::ShardIdName(op.child1), proto::ShardIdName(uint32_t(op.child2)))
                  : fmt::format("{}: merge {} + {} -> {}", name, proto::ShardIdName(op.shard),
                                proto::ShardIdName(op.adjacent), proto::ShardIdName(op.child1)));
      return reply(Err::kNone, "", [&](Writer& w) {
        w.u32(uint32_t(ops.size()));
        for (auto& op : ops)
          proto::ReshardStep{uint8_t(op.kind), op.shard, op.adjacent, op.at, op.child1, op.child2}.Encode(w);
        store_->Describe(*s).Encode(w);
      });
    }
    case Type::kSetScaling: {
      std::string name;
      proto::ScalingInfo si;
      if (!(r.str(&name) && si.Decode(r))) return bad();
      auto s = stream_of(name);
      if (!s) return;
      server::ScalingPolicy p{si.on_demand != 0, si.min_shards, si.max_shards, si.split_bytes_per_s,
                              si.split_records_per_s, si.merge_pct, si.hot_ms, si.cold_ms};
      Status st = store_->SetScaling(*s, p);
      if (!st.ok())
        return fail(st.is(Status::Code::kInvalidArgument) ? Err::kInvalidRequest : Err::kStorage, st.message());
      Log(fmt::format("{}: on-demand scaling {}", name, p.on_demand ? "on" : "off"));
      return reply(Err::kNone, "", [&](Writer& w) { store_->Describe(*s).Encode(w); });
    }
    case Type::kProduce: return HandleProduce(c, corr, r, frame, false);
    case Type::kMirrorProduce: return HandleProduce(c, corr, r, frame, true);
    case Type::kCreateMirror: {
      server::StreamMeta m;
      uint32_t n;
      if (!(r.str(&m.name) && r.str(&m.origin) && r.i64(&m.retention_ms) && r.u32(&m.max_record_bytes) &&
            r.u32(&m.next_shard_index) && r.u32(&n)) || n > 100000)
        return bad();
      for (uint32_t i = 0; i < n; i++) {
        server::ShardMeta sm;
        if (!(r.u32(&sm.index) && r.i32(&sm.parent) && r.i32(&sm.adjacent_parent) && r.h128(&sm.start) &&
              r.h128(&sm.end) && r.u8(&sm.state) && r.u64(&sm.initial_offset)))
          return bad();
        m.shards.push_back(sm);
      }
      auto s = store_->CreateMirror(std::move(m));
      if (!s.ok())
        return fail(s.status().is(Status::Code::kBusy)              ? Err::kStreamExists
                    : s.status().is(Status::Code::kInvalidArgument) ? Err::kInvalidRequest
                                                                    : Err::kStorage,
                    s.status().message());
      return reply(Err::kNone, "", [&](Writer& w) { store_->Describe(**s).Encode(w); });
    }
    case Type::kFetch: return HandleFetch(c, corr, r);
    case Type::kListOffset: {
      std::string name;
      uint32_t shard;
      uint8_t kind;
      int64_t ts;
      if (!(r.str(&name) && r.u32(&shard) && r.u8(&kind) && r.i64(&ts))) return bad();
      auto s = stream_of(name);
      if (!s) return;
      std::shared_ptr<Shard> sh = s->FindShard(shard);
      if (!sh) return fail(Err::kWrongShard, fmt::format("stream '{}' has no {}", name, proto::ShardIdName(shard)));
      uint64_t off;
      if (kind > uint8_t(proto::OffsetKind::kTime)) return fail(Err::kInvalidRequest, fmt::format("unknown offset kind {}", kind));
      if (kind == uint8_t(proto::OffsetKind::kTrimHorizon)) {
        off = sh->log->start_offset();
      } else if (kind == uint8_t(proto::OffsetKind::kLatest)) {
        off = sh->log->durable_offset();
      } else {
        auto o = sh->log->OffsetForTime(ts);
        if (!o.ok()) return fail(Err::kStorage, o.status().message());
        off = std::max(*o, sh->log->start_offset());
      }
      return reply(Err::kNone, "", [&](Writer& w) { w.u64(off); });
    }
    case Type::kGroupHeartbeat: {
      std::string name, group, member;
      uint8_t leaving;
      if (!(r.str(&name) && r.str(&group) && r.str(&member) && r.u8(&leaving))) return bad();
      auto s = stream_of(name);
      if (!s) return;
      uint32_t gen = 0;
      auto a = store_->GroupHeartbeat(*s, group, member, leaving != 0, &gen);
      if (!a.ok()) return fail(Err::kInvalidRequest, a.status().message());
      return reply(Err::kNone, "", [&](Writer& w) {
        w.u32(gen).u32(uint32_t(store_->options().session_timeout_ms)).u32(uint32_t(a->size()));
        for (auto& x : *a) w.u32(x.shard).u64(x.checkpoint);
      });
    }
    case Type::kGroupCommit: {
      std::string name, group, member;
      uint32_t shard;
      uint64_t off;
      if (!(r.str(&name) && r.str(&group) && r.str(&member) && r.u32(&shard) && r.u64(&off))) return bad();
      auto s = stream_of(name);
      if (!s) return;
      Status st = store_->GroupCommit(*s, group, member, shard, off);
      if (!st.ok())
        return fail(st.is(Status::Code::kFenced) ? Err::kNotAssigned
                    : st.is(Status::Code::kNotFound) ? Err::kGroupNotFound : Err::kStorage,
                    st.message());
      return reply(Err::kNone, "", [](Writer&) {});
    }
    case Type::kGroupList: {
      std::string name;
      if (!r.str(&name)) return bad();
      auto s = stream_of(name);
      if (!s) return;
      auto groups = store_->GroupList(*s);
      return reply(Err::kNone, "", [&](Writer& w) {
        w.u32(uint32_t(groups.size()));
        for (auto& g : groups) g.Encode(w);
      });
    }
    case Type::kGroupReset: {
      std::string name, group, target;
      if (!(r.str(&name) && r.str(&group) && r.str(&target))) return bad();
      auto s = stream_of(name);
      if (!s) return;
      Status st = store_->GroupReset(*s, group, target);
      if (!st.ok())
        return fail(st.is(Status::Code::kBusy) ? Err::kGroupBusy
                    : st.is(Status::Code::kInvalidArgument) ? Err::kInvalidRequest : Err::kStorage,
                    st.message());
      return reply(Err::kNone, "", [](Writer&) {});
    }
  }
  fail(Err::kInvalidRequest, fmt::format("unknown request type {}", type));
}

void Server::HandleProduce(const std::shared_ptr<Connection>& c, uint32_t corr, Reader& r, Bytes& frame,
                           bool keep_time) {
  const Type type = keep_time ? Type::kMirrorProduce : Type::kProduce;
  auto fail = [&](Err err, std::string_view msg) { c->Send(ErrorFrame(corr, uint16_t(type), err, msg)); };
  std::string name;
  uint32_t shard_index;
  if (!(r.str(&name) && r.u32(&shard_index))) return fail(Err::kInvalidRequest, "malformed request");
  std::string_view batch = r.tail();
  auto s = store_->Get(name);
  if (!s) return fail(Err::kStreamNotFound, fmt::format("stream '{}' does not exist", name));
  std::shared_ptr<Shard> shard = s->FindShard(shard_index);
  if (!shard) return fail(Err::kWrongShard, fmt::format("{} of stream '{}' is unknown", proto::ShardIdName(shard_index), name));
  // A closed shard's log is sealed: it refuses appends under its own lock (none lands
  // after the close), but only after its producer check, so a batch stored before the
  // close and sent again (a producer that reconnected) is answered as the duplicate it
  // is, not as "closed", which would make the producer store it again in a child.
  if (Inject(opts_.faults.throttle))
    return fail(Err::kThrottled, "throttled (injected by --inject-faults)");
  int64_t now = NowMs();
  uint32_t count = batch.size() >= log::kBatchHeaderSize
                       ? DecodeFixed32(reinterpret_cast<const uint8_t*>(batch.data()) + log::kRecordCountPos)
                       : 0;
  if (shard->enforce_limits &&
      (!shard->in_bytes.Take(double(batch.size()), now) || !shard->in_records.Take(count, now)))
    return fail(Err::kThrottled, fmt::format("{} is over its provisioned throughput (1 MiB/s, 1000 records/s)",
                                             proto::ShardIdName(shard_index)));
  // The batch is stamped in place inside the request frame: no copy, no re-encoding.
  std::span<uint8_t> bytes(frame.data() + (reinterpret_cast<const uint8_t*>(batch.data()) - frame.data()),
                           batch.size());
  auto res = shard->log->Append(bytes, keep_time);
  if (!res.ok()) {
    const Status& st = res.status();
    if (st.is(Status::Code::kOutOfRange) && shard->closed.load())
      return fail(Err::kWrongShard, fmt::format("{} of stream '{}' is closed (resharded): refresh the shard map",
                                                proto::ShardIdName(shard_index), name));
    return fail(proto::ErrFromStatus(st), st.message());
  }
  if (!res->duplicate) shard->writes.Add(batch.size(), count, now);
  Bytes out;
  proto::BeginResponse(&out, corr, type, Err::kNone, "");
  Writer(&out).u64(res->base_offset).u64(res->last_offset).i64(res->append_time_ms).u8(res->duplicate);
  proto::FinishFrame(&out, 0);
  if (opts_.durability.mode == log::Durability::Mode::kAlways) {
    std::lock_guard<std::mutex> g(sync_mu_);
    pending_.push_back(PendingAck{c, shard, res->last_offset + 1, std::move(out)});
    sync_cv_.notify_all();
    return;
  }
  // Followers first, then the producer's acknowledgement: the follow path is the
  // latency-sensitive one, the producer pipelines anyway.
  if (!res->duplicate) WakeWaiters(shard, bytes, res->base_offset, res->last_offset + 1);
  else WakeWaiters(shard);
  Answer(c, std::move(out));
}

bool Server::AnswerFetch(const std::shared_ptr<Connection>& c, uint32_t corr, Shard& shard,
                         uint64_t offset, uint32_t max_bytes, bool force, bool empty, uint64_t* stay_at) {
  if (stay_at) *stay_at = UINT64_MAX;
  // `closed` first: once it is set every append to the shard is done and synced, so
  // the durable end read after it is the shard's final end.
  bool closed = shard.closed.load();
  uint64_t durable = shard.log->durable_offset();
  if (offset >= durable && !force && !closed) return false;
  Bytes out;
  proto::BeginResponse(&out, corr, Type::kFetch, Err::kNone, "");
  size_t fields = out.size();
  Writer(&out).u64(offset).u64(durable).u64(shard.log->start_offset()).u8(0);
  auto rr = empty ? Result<log::ReadResult>(log::ReadResult{offset, 0})
                  : shard.log->Read(offset, std::min(max_bytes, proto::kMaxFetchBytes), &out, durable);
  if (!rr.ok()) {
    // Damage found in stored data is a storage error, not a bad request.
    Err err = rr.status().is(Status::Code::kCorruption) ? Err::kStorage : proto::ErrFromStatus(rr.status());
    std::string msg = rr.status().is(Status::Code::kCorruption)
                          ? fmt::format("damaged data at offset {}: {}", offset, rr.status().message())
                          : rr.status().message();
    c->Send(ErrorFrame(corr, uint16_t(Type::kFetch), err, msg));
    return true;
  }
  if (shard.enforce_limits) shard.out_bytes.Charge(double(rr->bytes));
  EncodeFixed64(out.data() + fields, rr->next_offset);
  if (closed && rr->next_offset >= durable) out[fields + 24] = proto::kFetchShardEnd;
  if (stay_at && Stays(*c, offset, rr->next_offset, durable, closed)) {
    out[fields + 24] = proto::kFetchMore;
    *stay_at = rr->next_offset;
  }
  proto::FinishFrame(&out, 0);
  c->Send(std::move(out));
  return true;
}

void Server::HandleFetch(const std::shared_ptr<Connection>& c, uint32_t corr, Reader& r) {
  auto fail = [&](Err err, std::string_view msg) { c->Send(ErrorFrame(corr, uint16_t(Type::kFetch), err, msg)); };
  std::string name;
  uint32_t shard_index, max_bytes, wait_ms;
  uint64_t offset;
  if (!(r.str(&name) && r.u32(&shard_index) && r.u64(&offset) && r.u32(&max_bytes) && r.u32(&wait_ms)))
    return fail(Err::kInvalidRequest, "malformed request");
  uint8_t fetch_flags = 0;
  if (r.remaining() > 0) r.u8(&fetch_flags);  // optional: absent from older clients
  bool stay = (fetch_flags & proto::kFetchStay) && wait_ms > 0;
  if (stay) {
    // A fetch that stays parks: only while the connection has room for one more.
    std::lock_guard<std::mutex> g(waiters_mu_);
    stay = c->parked_fetches < kMaxParkedFetches;
  }
  auto s = store_->Get(name);
  if (!s) return fail(Err::kStreamNotFound, fmt::format("stream '{}' does not exist", name));
  std::shared_ptr<Shard> shard = s->FindShard(shard_index);
  if (!shard) return fail(Err::kWrongShard, fmt::format("stream '{}' has no {}", name, proto::ShardIdName(shard_index)));
  // Provisioned reads: 2 MiB/s per shard, shared by all readers and charged by what
  // each answer carries (AnswerFetch), as Kinesis does for GetRecords: after a large
  // answer the shard's next fetches are throttled until the bucket refills.
  // Answers are kept to 1 MiB there (at least one whole batch) so the rate shows
  // within a second.
  if (shard->enforce_limits) max_bytes = std::min<uint32_t>(max_bytes, 1u << 20);
  if (shard->enforce_limits && !shard->out_bytes.Ready(NowMs()))
    return fail(Err::kThrottled, fmt::format("{} is over its provisioned read throughput (2 MiB/s)",
                                             proto::ShardIdName(shard_index)));
  uint64_t start = shard->log->start_offset();
  if (offset < start)
    return fail(Err::kOffsetOutOfRange,
                fmt::format("offset {} of {} was removed by retention; the oldest is {}", offset,
                            proto::ShardIdName(shard_index), start));
  uint64_t stay_at = UINT64_MAX;
  if (AnswerFetch(c, corr, *shard, offset, max_bytes, wait_ms == 0, false, stay ? &stay_at : nullptr)) {
    if (stay_at == UINT64_MAX) return;
    offset = stay_at;  // answered up to the end: wait there for what comes next
  }
  {
    std::unique_lock<std::mutex> g(waiters_mu_);
    // Parked fetches cost memory and a look at each append to their shard: a
    // connection parks at most kMaxParkedFetches (a follower parks one per shard);
    // beyond that the fetch is answered at once, with no records. (One that has
    // answered with kFetchMore parks regardless: it was checked before answering.)
    if (c->parked_fetches >= kMaxParkedFetches && stay_at == UINT64_MAX) {
      g.unlock();
      AnswerFetch(c, corr, *shard, offset, max_bytes, true);
      return;
    }
    c->parked_fetches++;
    waiters_.Park(Waiter{c, corr, shard, offset, max_bytes, NowMs() + wait_ms, stay});
  }
  KickTimer(NowMs() + wait_ms);
  WakeWaiters(shard);  // data may have landed between the check and parking
}

void Server::WakeWaiters(const std::shared_ptr<Shard>& shard, std::span<const uint8_t> fresh,
                         uint64_t fresh_base, uint64_t fresh_next) {
  std::vector<Waiter> ready;
  {
    std::lock_guard<std::mutex> g(waiters_mu_);
    if (waiters_.empty()) return;
    bool closed = shard->closed.load();
    uint64_t durable = shard->log->durable_offset();
    ready = waiters_.TakeReady(shard.get(), [&](const Waiter& w) { return w.offset < durable || closed; });
    for (auto& w : ready) w.conn->parked_fetches--;
  }
  std::vector<Waiter> again;  // kFetchStay fetches that stay parked
  for (auto& w : ready) {
    // A client with 64 MiB of unread answers gets no more data (it asks again once
    // it reads): parked fetches stay within the same cap as pipelined ones.
    if (w.conn->Backlogged()) {
      AnswerFetch(w.conn, w.corr, *w.shard, w.offset, w.max_bytes, true, true);
      continue;
    }
    // A follower waiting exactly at the batch just appended gets those bytes as
    // received, straight from the request (no file read on the follow path).
    if (!fresh.empty() && w.offset >= fresh_base && w.offset < fresh_next &&
        shard->log->durable_offset() >= fresh_next && shard->log->start_offset() <= fresh_base) {
      uint64_t durable = shard->log->durable_offset();
      bool stays = w.stay && Stays(*w.conn, w.offset, fresh_next, durable, shard->closed.load());
      Bytes out;
      proto::BeginResponse(&out, w.corr, Type::kFetch, Err::kNone, "");
      Writer(&out).u64(fresh_next).u64(durable).u64(shard->log->start_offset()).u8(stays ? proto::kFetchMore : 0);
      out.insert(out.end(), fresh.begin(), fresh.end());
      proto::FinishFrame(&out, 0);
      w.conn->Send(std::move(out));
      if (stays) {
        w.offset = fresh_next;
        again.push_back(std::move(w));
      }
      continue;
    }
    uint64_t stay_at = UINT64_MAX;
    AnswerFetch(w.conn, w.corr, *w.shard, w.offset, w.max_bytes, true, false, w.stay ? &stay_at : nullptr);
    if (stay_at != UINT64_MAX) {
      w.offset = stay_at;
      again.push_back(std::move(w));
    }
  }
  if (again.empty()) return;
  {
    // Each was taken from the parked set just above: the count goes back to what it was.
    std::lock_guard<std::mutex> g(waiters_mu_);
    for (auto& w : again) {
      if (w.conn->gone) continue;
      w.conn->parked_fetches++;
      waiters_.Park(std::move(w));
    }
  }
  WakeWaiters(shard);  // data may have become durable meanwhile (--fsync always: the sync thread)
}

void Server::SyncLoop() {
  const bool always = opts_.durability.mode == log::Durability::Mode::kAlways;
  const auto interval = std::chrono::milliseconds(
      opts_.durability.mode == log::Durability::Mode::kInterval ? opts_.durability.interval_ms : 1000);
  auto next_periodic = std::chrono::steady_clock::now() + interval;
  for (;;) {
    std::vector<PendingAck> batch;
    {
      std::unique_lock<std::mutex> l(sync_mu_);
      sync_cv_.wait_until(l, next_periodic, [&] { return sync_stop_ || !pending_.empty(); });
      batch.swap(pending_);
      if (sync_stop_ && batch.empty()) break;
    }
    if (!batch.empty()) {
      // Group commit: one fdatasync per shard covers every append waiting now.
      std::map<Shard*, Status> synced;
      for (auto& p : batch)
        if (!synced.count(p.shard.get())) synced[p.shard.get()] = p.shard->log->Sync();
      std::set<Shard*> woken;
      for (auto& p : batch) {
        const Status& st = synced[p.shard.get()];
        if (st.ok()) {
          p.conn->Send(std::move(p.response));
        } else {
          uint32_t corr = DecodeFixed32(p.response.data() + 4);
          uint16_t req = uint16_t(DecodeFixed16(p.response.data() + 8) & ~proto::kResponseBit);
          p.conn->Send(ErrorFrame(corr, req, Err::kStorage, st.message()));
        }
        if (woken.insert(p.shard.get()).second) WakeWaiters(p.shard);
      }
    }
    if (std::chrono::steady_clock::now() >= next_periodic) {
      next_periodic = std::chrono::steady_clock::now() + interval;
      if (opts_.durability.mode == log::Durability::Mode::kInterval || always) {
        for (auto& s : store_->List()) {
          std::vector<std::shared_ptr<Shard>> shards;
          {
            std::lock_guard<std::mutex> g(s->mu);
            for (auto& [i, sh] : s->shards) shards.push_back(sh);
          }
          for (auto& sh : shards)
            if (sh->log->synced_offset() < sh->log->end_offset()) {
              Status st = sh->log->Sync();
              if (!st.ok()) Log(st.ToString());
            }
        }
      }
    }
  }
}

void Server::SendDelayed(int64_t now) {
  std::vector<Delayed> due;
  {
    std::lock_guard<std::mutex> g(delayed_mu_);
    while (!delayed_.empty() && delayed_.front().due_ms <= now) {
      due.push_back(std::move(delayed_.front()));
      delayed_.pop_front();
    }
  }
  for (auto& d : due) d.conn->Send(std::move(d.frame));
}

void Server::KickTimer(int64_t due_ms) {
  if (due_ms >= timer_due_ms_.load()) return;  // it wakes in time anyway
  std::lock_guard<std::mutex> g(timer_mu_);
  timer_kick_ = true;
  timer_cv_.notify_one();
}

void Server::TimerLoop() {
  int64_t next_retention = NowMs() + kRetentionEveryMs;
  int64_t next_autoscale = NowMs() + 1000;
  while (!timer_stop_) {
    // Sleeps until the next thing is due (no fixed tick: an idle server stays idle);
    // parking a fetch or delaying an answer that is due sooner wakes it.
    int64_t due = std::min(next_autoscale, next_retention);
    {
      std::lock_guard<std::mutex> g(waiters_mu_);
      due = std::min(due, waiters_.NextDeadline());
    }
    {
      std::lock_guard<std::mutex> g(delayed_mu_);
      if (!delayed_.empty()) due = std::min(due, delayed_.front().due_ms);
    }
    {
      std::unique_lock<std::mutex> l(timer_mu_);
      timer_due_ms_ = due;
      int64_t wait = due - NowMs();
      if (wait > 0 && !timer_stop_ && !timer_kick_)
        timer_cv_.wait_for(l, std::chrono::milliseconds(wait), [&] { return timer_stop_ || timer_kick_; });
      timer_kick_ = false;
      timer_due_ms_ = INT64_MAX;  // awake: nobody needs to kick
    }
    if (timer_stop_) break;
    int64_t now = NowMs();
    std::vector<Waiter> expired;
    {
      std::lock_guard<std::mutex> g(waiters_mu_);
      expired = waiters_.TakeExpired(now);
      for (auto& w : expired) w.conn->parked_fetches--;
    }
    for (auto& w : expired) AnswerFetch(w.conn, w.corr, *w.shard, w.offset, w.max_bytes, true, w.conn->Backlogged());
    SendDelayed(now);
    if (now >= next_autoscale) {
      // On-demand scaling: split hot shards, merge cold neighbours.
      next_autoscale = now + 1000;
      std::vector<std::shared_ptr<Shard>> closed;
      for (const std::string& line : store_->AutoScale(&closed)) Log(line);
      for (auto& sh : closed) WakeWaiters(sh);
    }
    if (now >= next_retention) {
      next_retention = now + kRetentionEveryMs;
      int n = store_->ApplyRetention();
      if (n > 0 && opts_.verbose) Log(fmt::format("retention removed {} segment(s)", n));
    }
  }
  SendDelayed(INT64_MAX);
  // Answer whoever still waits, so clients see an orderly end.
  std::lock_guard<std::mutex> g(waiters_mu_);
  for (auto& w : waiters_.TakeAll())
    w.conn->Send(ErrorFrame(w.corr, uint16_t(Type::kFetch), Err::kShuttingDown, "the server is shutting down"));
}

}  // namespace streamkit::server

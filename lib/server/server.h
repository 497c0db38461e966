// stream-serve's engine: owns one data dir (Store) and serves the wire protocol
// (docs/PROTOCOL.md) on a Unix stream socket.
//
// Threads: event loops (server/event_loop.h: recv and send on io_uring, or epoll
// alone as the portable fallback; one per core, at most 4) that parse requests and
// answer the quick ones (produce, fetch, describe) on the spot; two workers for the
// requests that fsync metadata (create, delete, reshard, group checkpoints), so
// those never hold up a loop; one sync thread that makes logs durable (group commit
// for `always`: every append waiting at once shares one fdatasync per shard; a
// periodic sync for `interval=MS`); a timer thread that answers long-poll fetches
// whose wait ran out, sends answers delayed by --inject-faults latency, and applies
// retention and on-demand scaling.
//
// Follow: a fetch with wait_ms > 0 at the end of a shard is parked and answered as
// soon as new batches are durable under the policy (no polling).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "server/event_loop.h"
#include "server/parked.h"
#include "server/store.h"

namespace streamkit::server {

struct FaultSpec {
  double throttle = 0;  // fraction of produce requests answered kThrottled
  double fail = 0;      // fraction of requests answered kInjectedFailure
  int latency_ms = 0;   // added before each response
  static Result<FaultSpec> Parse(std::string_view text);  // "throttle=0.1,fail=0.01,latency=5ms"
};

struct ServerOptions {
  std::string socket_path;
  std::string data_dir;
  unsigned socket_mode = 0600;
  log::Durability durability;
  uint64_t segment_bytes = 128u << 20;  // a shard's segment rolls before passing this
  FaultSpec faults;
  bool verbose = false;
};

class WorkerPool;

class Server final : public FrameHandler {
 public:
  explicit Server(ServerOptions opts);
  ~Server();
  // Takes the data dir lock, opens every stream and binds the socket.
  Status Start();
  // Serves until Shutdown() (e.g. from a signal handler thread); then finishes
  // in-flight work, makes data durable and closes everything.
  Status Run();
  void Shutdown();  // async-signal-safe: writes to a pipe

  // FrameHandler (called by the event loops).
  bool OnFrame(const std::shared_ptr<Connection>& c, uint32_t corr, uint16_t type, Bytes&& frame) override;
  void OnClosed(Connection* c) override;
  Bytes BadFrame(uint32_t corr, uint16_t type, uint32_t length) override;

 private:
  struct Waiter {
    std::shared_ptr<Connection> conn;
    uint32_t corr;
    std::shared_ptr<Shard> shard;
    uint64_t offset;
    uint32_t max_bytes;
    int64_t deadline_ms;
    bool stay = false;  // kFetchStay: parked again after each answer that reaches the end
  };
  struct PendingAck {
    std::shared_ptr<Connection> conn;
    std::shared_ptr<Shard> shard;
    uint64_t end;
    Bytes response;
  };

  void Handle(const std::shared_ptr<Connection>& c, uint32_t corr, uint16_t type, Bytes&& frame);
  // Stops the event loops at once (no draining) and forgets them.
  void DropLoops();
  // Sends an answer, after the --inject-faults latency when there is one.
  void Answer(const std::shared_ptr<Connection>& c, Bytes&& frame);
  void HandleProduce(const std::shared_ptr<Connection>& c, uint32_t corr, proto::Reader& r,
                     Bytes& frame, bool keep_time);
  void HandleFetch(const std::shared_ptr<Connection>& c, uint32_t corr, proto::Reader& r);
  // Answers a fetch now. Returns false (and sends nothing) when there is no data yet.
  // `empty`: answer with no records (the client asks again), for a connection
  // whose unread answers are already at the cap.
  // `stay_at`, when given (a kFetchStay fetch), receives where the fetch stays parked
  // if the answer says kFetchMore, else UINT64_MAX.
  bool AnswerFetch(const std::shared_ptr<Connection>& c, uint32_t corr, Shard& shard,
                   uint64_t offset, uint32_t max_bytes, bool force, bool empty = false,
                   uint64_t* stay_at = nullptr);
  // Answers parked fetches that new durable data satisfies. `fresh` is the batch
  // just appended ([fresh_base, fresh_next)), served from memory when it fits.
  void WakeWaiters(const std::shared_ptr<Shard>& shard, std::span<const uint8_t> fresh = {},
                   uint64_t fresh_base = 0, uint64_t fresh_next = 0);
  void SendDelayed(int64_t now);
  void KickTimer(int64_t due_ms);  // something is due at due_ms: wake the timer if it sleeps past it
  void SyncLoop();
  void TimerLoop();
  bool Inject(double rate);
  void Log(const std::string& line);

  ServerOptions opts_;
  std::shared_ptr<io::Io> io_;
  std::unique_ptr<Store> store_;
  int lock_fd_ = -1;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::unique_ptr<WorkerPool> workers_;
  struct Delayed {
    int64_t due_ms;
    std::shared_ptr<Connection> conn;
    Bytes frame;
  };
  std::mutex delayed_mu_;
  std::deque<Delayed> delayed_;  // due times are increasing: one fixed latency
  std::string server_id_;

  std::mutex waiters_mu_;
  ParkedFetches<Waiter> waiters_;

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::vector<PendingAck> pending_;
  bool sync_stop_ = false;
  std::thread sync_thread_, timer_thread_;
  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  bool timer_kick_ = false;
  std::atomic<bool> timer_stop_{false};  // set (under timer_mu_) once no request is in hand
  std::atomic<int64_t> timer_due_ms_{0};  // when the sleeping timer wakes; INT64_MAX while awake

  std::mutex rng_mu_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::atomic<int64_t> next_producer_id_{0};
};

}  // namespace streamkit::server

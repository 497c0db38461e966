// stream-serve's engine: owns one data dir (Store) and serves the wire protocol
// (docs/PROTOCOL.md) on a Unix stream socket.
//
// Threads: an accept loop; per connection a reader (parses and handles requests,
// in order) and a writer (drains that connection's bounded outbound queue, so a slow
// consumer only ever stalls itself); one sync thread that makes logs durable (group
// commit for `always`: every append waiting at once shares one fdatasync per shard;
// a periodic sync for `interval=MS`); a timer thread that answers long-poll fetches
// whose wait ran out and applies retention.
//
// Follow: a fetch with wait_ms > 0 at the end of a shard is parked and answered as
// soon as new batches are durable under the policy (no polling).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

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
  FaultSpec faults;
  bool verbose = false;
};

class Connection;

class Server {
 public:
  explicit Server(ServerOptions opts);
  ~Server();
  // Takes the data dir lock, opens every stream and binds the socket.
  Status Start();
  // Serves until Shutdown() (e.g. from a signal handler thread); then finishes
  // in-flight work, makes data durable and closes everything.
  Status Run();
  void Shutdown();  // async-signal-safe: writes to a pipe

  // Used by connections.
  void Handle(const std::shared_ptr<Connection>& c, uint32_t corr, uint16_t type, Bytes&& frame);
  void ConnectionClosed(Connection* c);

 private:
  struct Waiter {
    std::shared_ptr<Connection> conn;
    uint32_t corr;
    std::shared_ptr<Shard> shard;
    uint64_t offset;
    uint32_t max_bytes;
    int64_t deadline_ms;
  };
  struct PendingAck {
    std::shared_ptr<Connection> conn;
    std::shared_ptr<Shard> shard;
    uint64_t end;
    Bytes response;
  };

  void HandleProduce(const std::shared_ptr<Connection>& c, uint32_t corr, proto::Reader& r,
                     Bytes& frame, bool keep_time);
  void HandleFetch(const std::shared_ptr<Connection>& c, uint32_t corr, proto::Reader& r);
  // Answers a fetch now. Returns false (and sends nothing) when there is no data yet.
  bool AnswerFetch(const std::shared_ptr<Connection>& c, uint32_t corr, Shard& shard,
                   uint64_t offset, uint32_t max_bytes, bool force);
  // Answers parked fetches that new durable data satisfies. `fresh` is the batch
  // just appended ([fresh_base, fresh_next)), served from memory when it fits.
  void WakeWaiters(const std::shared_ptr<Shard>& shard, std::span<const uint8_t> fresh = {},
                   uint64_t fresh_base = 0, uint64_t fresh_next = 0);
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
  std::string server_id_;

  std::mutex conns_mu_;
  std::vector<std::shared_ptr<Connection>> conns_;

  std::mutex waiters_mu_;
  std::vector<Waiter> waiters_;

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::vector<PendingAck> pending_;
  bool sync_stop_ = false;
  std::thread sync_thread_, timer_thread_;

  std::mutex rng_mu_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::atomic<int64_t> next_producer_id_{0};
};

}  // namespace streamkit::server

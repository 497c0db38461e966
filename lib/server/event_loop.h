// The network side of stream-serve: a few event loops, each one thread that owns a
// set of connections. Every loop sleeps in epoll_wait (on its sockets, an eventfd and
// the listening socket, accepted with accept4) and moves bytes through io_uring:
// receives and sends are non-blocking ring operations, so they are done inside the
// io_uring_enter that submits them (why the loop does not sleep in the ring: see
// WaitAndDispatch). Where no ring can be set up (the portable fallback: old kernels,
// seccomp'd containers, STREAMKIT_IO=posix) the loop does the same with recv and
// sendmsg.
//
// A loop parses whole request frames from a connection's receive buffer and hands
// each to a FrameHandler (the Server) on the loop thread. Quick requests (produce,
// fetch, describe) are answered right there; slow ones (anything that fsyncs a
// metadata file: create, reshard, checkpoints) go to a worker, and the loop parses
// nothing more from that connection until the worker calls Resume(): requests of one
// connection are handled in order, and no loop ever waits for an fsync (the two
// workers are shared: one slow fsync can delay other clients' checkpoints, never
// their produce and fetch requests).
//
// Output: Connection::Send() is thread-safe and never blocks. On the loop thread a
// frame is queued and sent when the loop drains its output (one submission per
// connection's send, so a follower woken by the first is not held up by the next). From another thread (group commit, long-poll timer,
// workers) a frame for an idle socket is written at once with one non-blocking
// send() (no hand-off, lower follow latency); anything the socket does not take
// is queued and the loop is woken through an eventfd. A connection whose queue
// holds more than 64 MiB is not read until it drains to half: a slow consumer only
// ever stalls itself.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "util/coding.h"
#include "util/status.h"

struct io_uring;
struct epoll_event;

namespace streamkit::server {

class EventLoop;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(int fd, EventLoop* loop);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Queues a finished frame (thread-safe, never blocks). Dropped once the
  // connection is closed.
  void Send(Bytes&& frame);
  // Reads no more requests; the connection closes once its queued frames are sent.
  void Shutdown();
  // From a worker that finished this connection's request: the loop goes on
  // parsing its requests.
  void Resume();

  // True while the answers queued for this connection hold 64 MiB or more (its
  // requests are not read meanwhile). Thread-safe.
  bool Backlogged();
  // Server memory held by the answers queued for this connection. Thread-safe.
  size_t QueuedBytes();

  // Set by the Hello handler; read and written only by whoever handles the
  // connection's current request (one at a time).
  bool hello_done = false;
  // Long-poll fetches of this connection parked in the server (guarded by the
  // server's waiter lock).
  int parked_fetches = 0;
  // Set (under the same lock) once the connection closed: nothing parks for it again.
  bool gone = false;

 private:
  friend class EventLoop;

  int fd_;
  EventLoop* loop_;

  // Loop-thread state.
  Bytes rbuf_;
  size_t rhave_ = 0;
  bool recv_pending_ = false;  // a receive is wanted: waits for EPOLLIN, or (io_uring) is in the ring
  bool read_eof_ = false;      // peer closed, error, or shut down: no more requests
  bool busy_ = false;          // a request is on a worker
  bool paused_ = false;        // backpressure: too much output queued
  bool loop_sending_ = false;  // the loop has a send in progress (sending_/iov_)
  bool removed_ = false;
  uint32_t epoll_events_ = 0;
  bool epoll_deleted_ = false;  // taken off epoll after a hang-up with nothing to do
  bool recv_in_ring_ = false;   // io_uring: the receive is in the ring (queued or done, not yet handled)
  bool recv_filled_ = false;    // io_uring: the last receive filled its buffer (more is likely there)
  bool wait_writable_ = false;  // io_uring: the send found no room; EPOLLOUT resubmits it
  std::vector<Bytes> sending_;
  std::vector<iovec> iov_;
  size_t iov_at_ = 0;
  size_t sending_bytes_ = 0;  // what sending_ holds (counted in out_bytes_ until sent)
  msghdr mh_{};

  // Shared state, under mu_.
  std::mutex mu_;
  std::deque<Bytes> out_;
  size_t out_bytes_ = 0;  // memory held by out_ and sending_ (capacities)
  bool sending_now_ = false;      // someone (loop or a direct sender) is writing to fd_
  bool flush_requested_ = false;  // the connection is on its loop's flush list
  bool closed_ = false;           // nothing more is sent
  bool close_waiting_ = false;    // the loop would close it once the direct sender is done
  std::atomic<bool> shutdown_requested_{false};
};

class FrameHandler {
 public:
  virtual ~FrameHandler() = default;
  // Handles one request frame (header included) on the loop thread. Returns true
  // when the request went to a worker, which calls c->Resume() when done.
  virtual bool OnFrame(const std::shared_ptr<Connection>& c, uint32_t corr, uint16_t type, Bytes&& frame) = 0;
  // The connection is gone (after its last request was handled).
  virtual void OnClosed(Connection* c) = 0;
  // A frame whose length field is out of range: the answer to send before closing.
  virtual Bytes BadFrame(uint32_t corr, uint16_t type, uint32_t length) = 0;
};

class EventLoop {
 public:
  enum class Backend { kUring, kEpoll };
  // io_uring when `want_uring` and a ring can be set up, else epoll.
  static Result<std::unique_ptr<EventLoop>> Create(bool want_uring, int listen_fd, FrameHandler* handler);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  Backend backend() const { return backend_; }
  const char* name() const { return backend_ == Backend::kUring ? "io_uring" : "epoll"; }

  // Runs the loop on its own thread; fails (and ends the thread) when an io_uring
  // loop cannot make its ring, so the caller can fall back to epoll.
  Status Start();
  // Thread-safe. Phase 1: accept nothing more and read no more requests (queued
  // answers still go out). Phase 2: once every queue is empty and no worker holds a
  // connection, or at `deadline_ms` (steady clock), close everything and end.
  void StopReading();
  void WaitReadingStopped();  // until phase 1 took effect (no request in hand)
  void Finish(int64_t deadline_ms);
  void Join();

  bool InLoopThread() const { return std::this_thread::get_id() == tid_; }

 private:
  friend class Connection;
  EventLoop(Backend b, int listen_fd, FrameHandler* handler);
  Status Init();
  Status MakeRing();
  void Run(std::promise<Status>* made);
  void PauseAccepting();
  void ResumeAcceptingIfDue();

  // Thread-safe requests from connections.
  void RequestFlush(Connection* c);  // c->flush_requested_ was just set
  void RequestResume(Connection* c);
  void Wake();

  // Loop thread.
  void Accepted(int fd);
  void Parse(Connection* c);
  void ArmRecv(Connection* c);
  void RecvDone(Connection* c, long res);
  void StartSend(Connection* c);
  void SendDone(Connection* c, long res);
  void SendFailed(Connection* c);
  void MaybeClose(Connection* c);
  void Remove(Connection* c);
  void DrainRequests();
  void StopReadingNow();
  bool Idle();
  void CloseAll();
  // Backend primitives.
  void SubmitRecv(Connection* c);
  void SubmitSend(Connection* c);
  void SetEpollInterest(Connection* c);
  void WaitAndDispatch(int timeout_ms);
  void DispatchEpoll(const epoll_event* evs, int n);
  bool DispatchCompletions();  // io_uring; true when there were any
  void AcceptReady();
  void QueueRecv(Connection* c);  // io_uring
  void EpollSendNow(Connection* c);

  Backend backend_;
  int listen_fd_;
  FrameHandler* handler_;
  std::unique_ptr<io_uring> ring_;
  bool ring_ready_ = false;
  int epfd_ = -1;
  int wake_fd_ = -1;
  int rounds_without_epoll_ = 0;  // io_uring: loop rounds that found completions and skipped epoll
  int64_t accept_paused_until_ = 0;  // steady ms; accept errors (EMFILE) pause accepting
  std::thread thread_;
  std::thread::id tid_;

  std::unordered_map<Connection*, std::shared_ptr<Connection>> conns_;
  std::vector<std::shared_ptr<Connection>> local_flush_;  // loop thread
  std::vector<Connection*> epoll_sends_;                  // epoll: sends to try now
  std::vector<std::shared_ptr<Connection>> graveyard_;    // removed this iteration

  std::mutex mu_;  // guards the remote lists
  std::vector<std::shared_ptr<Connection>> remote_flush_, remote_resume_;
  std::atomic<bool> wake_pending_{false};
  std::atomic<int> phase_{0};  // 0 running, 1 stop reading, 2 finish
  std::atomic<int64_t> deadline_ms_{0};
  bool reading_stopped_ = false;
  std::atomic<bool> reading_stopped_ack_{false};
};

}  // namespace streamkit::server

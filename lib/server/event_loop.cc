#include "server/event_loop.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>

#include "proto/protocol.h"

namespace streamkit::server {

namespace {
constexpr size_t kMaxQueuedBytes = 64u << 20;  // per connection, before its reading pauses
constexpr size_t kReadChunk = 256u << 10;
constexpr uint32_t kMaxFrameBeforeHello = 64u << 10;
constexpr size_t kMaxFramesPerSend = 64;
constexpr unsigned kRingEntries = 512;
constexpr int kMaxCqes = 128;

// The memory a queued frame holds, which is what the 64 MiB cap counts: its capacity,
// not its size. A fetch answer reads up to max_bytes and keeps only whole batches, so
// an answer of 450 KB can hold 1 MiB (counting sizes, a client that did not read its
// answers got ~140 MiB queued when the stream's batches were small).
size_t Held(const Bytes& frame) { return frame.capacity(); }

enum Op : uint64_t { kOpRecv = 2, kOpSend = 3 };
uint64_t Tag(const void* p, Op op) { return reinterpret_cast<uint64_t>(p) | op; }
Connection* TagConn(uint64_t tag) { return reinterpret_cast<Connection*>(tag & ~uint64_t(7)); }
Op TagOp(uint64_t tag) { return Op(tag & 7); }

// Epoll's marks for the listening socket and the eventfd (never a Connection*).
char kListenMark, kWakeMark;

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

// ---- Connection --------------------------------------------------------------------

Connection::Connection(int fd, EventLoop* loop) : fd_(fd), loop_(loop) {}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

void Connection::Send(Bytes&& frame) {
  std::unique_lock<std::mutex> l(mu_);
  if (closed_) return;
  if (!loop_->InLoopThread() && out_.empty() && !sending_now_) {
    // Idle socket, foreign thread: write now, no hand-off to the loop.
    sending_now_ = true;
    l.unlock();
    ssize_t n;
    do {
      n = ::send(fd_, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    l.lock();
    sending_now_ = false;
    size_t sent = n > 0 ? size_t(n) : 0;  // an error shows again on the loop's next send
    if (sent == frame.size() && out_.empty() && !flush_requested_ && !close_waiting_) return;
    if (sent < frame.size()) {
      if (sent > 0) frame.erase(frame.begin(), frame.begin() + long(sent));
      out_bytes_ += Held(frame);
      out_.push_front(std::move(frame));  // anything queued meanwhile came after it
    }
  } else {
    out_bytes_ += Held(frame);
    out_.push_back(std::move(frame));
  }
  if (flush_requested_) return;
  flush_requested_ = true;
  l.unlock();
  loop_->RequestFlush(this);
}

bool Connection::Backlogged() {
  std::lock_guard<std::mutex> g(mu_);
  return out_bytes_ >= kMaxQueuedBytes;
}

size_t Connection::QueuedBytes() {
  std::lock_guard<std::mutex> g(mu_);
  return out_bytes_;
}

void Connection::Shutdown() {
  shutdown_requested_ = true;
  std::unique_lock<std::mutex> l(mu_);
  if (closed_ || flush_requested_) return;
  flush_requested_ = true;
  l.unlock();
  loop_->RequestFlush(this);
}

void Connection::Resume() { loop_->RequestResume(this); }

// ---- EventLoop: setup and thread-safe entry points ------------------------------------

EventLoop::EventLoop(Backend b, int listen_fd, FrameHandler* handler)
    : backend_(b), listen_fd_(listen_fd), handler_(handler) {}

Result<std::unique_ptr<EventLoop>> EventLoop::Create(bool want_uring, int listen_fd, FrameHandler* handler) {
  if (want_uring) {
    std::unique_ptr<EventLoop> loop(new EventLoop(Backend::kUring, listen_fd, handler));
    if (loop->Init().ok()) return loop;
  }
  std::unique_ptr<EventLoop> loop(new EventLoop(Backend::kEpoll, listen_fd, handler));
  SK_TRY(loop->Init());
  return loop;
}

Status EventLoop::Init() {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return Status::FromErrno(errno, "eventfd");
  // Both backends sleep in epoll_wait: the eventfd and the listening socket (accepted
  // with accept4 when ready, by whichever loop epoll wakes) are always in the set.
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return Status::FromErrno(errno, "epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &kWakeMark;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) return Status::FromErrno(errno, "epoll_ctl");
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  ev.data.ptr = &kListenMark;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) return Status::FromErrno(errno, "epoll_ctl");
  if (backend_ == Backend::kUring) {
    // The ring itself is made by the loop thread (Run): a single-issuer ring belongs
    // to the task that creates it. Here: can one be made at all?
    io_uring probe;
    int rc = io_uring_queue_init(8, &probe, 0);
    if (rc < 0) return Status::Unsupported("io_uring_queue_init", -rc);
    // The operations the loop uses (RECV 5.6, SENDMSG 5.3): older kernels get epoll.
    bool ops = false;
    if (io_uring_probe* pr = io_uring_get_probe_ring(&probe)) {
      ops = io_uring_opcode_supported(pr, IORING_OP_RECV) && io_uring_opcode_supported(pr, IORING_OP_SENDMSG);
      io_uring_free_probe(pr);
    }
    io_uring_queue_exit(&probe);
    if (!ops) return Status::Unsupported("io_uring lacks recv/sendmsg", ENOSYS);
  }
  return Status::OK();
}

EventLoop::~EventLoop() {
  if (thread_.joinable()) thread_.join();
  if (ring_ready_) io_uring_queue_exit(ring_.get());
  conns_.clear();
  if (epfd_ >= 0) ::close(epfd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status EventLoop::Start() {
  std::promise<Status> made;
  std::future<Status> ready = made.get_future();
  thread_ = std::thread([this, &made] { Run(&made); });
  Status s = ready.get();
  if (!s.ok()) thread_.join();  // the loop thread ends at once when it has no ring
  return s;
}

void EventLoop::StopReading() {
  int expected = 0;
  phase_.compare_exchange_strong(expected, 1);
  Wake();
}

void EventLoop::Finish(int64_t deadline_ms) {
  deadline_ms_ = deadline_ms;
  phase_ = 2;
  Wake();
}

void EventLoop::WaitReadingStopped() {
  while (thread_.joinable() && !reading_stopped_ack_.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void EventLoop::Join() {
  if (thread_.joinable()) thread_.join();
}

void EventLoop::Wake() {
  if (wake_pending_.exchange(true)) return;
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;
}

void EventLoop::RequestFlush(Connection* c) {
  if (InLoopThread()) {
    local_flush_.push_back(c->shared_from_this());
    return;
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    remote_flush_.push_back(c->shared_from_this());
  }
  Wake();
}

void EventLoop::RequestResume(Connection* c) {
  {
    std::lock_guard<std::mutex> g(mu_);
    remote_resume_.push_back(c->shared_from_this());
  }
  Wake();
}

// ---- the loop ------------------------------------------------------------------------

// Completions run only when the loop asks for them (DEFER_TASKRUN, one issuer): no
// interrupting the loop to run them, and a wake-up only when a completion is due.
// Older kernels (before 6.1) refuse these flags and get a plain ring.
Status EventLoop::MakeRing() {
  ring_ = std::make_unique<io_uring>();
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int rc = io_uring_queue_init_params(kRingEntries, ring_.get(), &p);
  if (rc < 0) {
    p = io_uring_params{};
    p.flags = IORING_SETUP_COOP_TASKRUN;
    rc = io_uring_queue_init_params(kRingEntries, ring_.get(), &p);
  }
  if (rc < 0) rc = io_uring_queue_init(kRingEntries, ring_.get(), 0);
  if (rc < 0) return Status::Unsupported("io_uring_queue_init", -rc);
  ring_ready_ = true;
  return Status::OK();
}

void EventLoop::Run(std::promise<Status>* made) {
  tid_ = std::this_thread::get_id();
  if (backend_ == Backend::kUring) {
    // e.g. RLIMIT_MEMLOCK on kernels before 5.12: the probe's small ring fit, this one not.
    Status s = MakeRing();
    made->set_value(s);
    if (!s.ok()) return;
  } else {
    made->set_value(Status::OK());
  }
  for (;;) {
    graveyard_.clear();
    DrainRequests();
    int phase = phase_.load();
    if (phase >= 1 && !reading_stopped_) {
      StopReadingNow();
      reading_stopped_ack_ = true;
    }
    if (phase == 2) {
      if (Idle() || SteadyMs() >= deadline_ms_.load()) break;
    }
    if (!local_flush_.empty()) continue;  // handling a resume queued more output
    ResumeAcceptingIfDue();
    int timeout = phase == 2 ? 10 : -1;
    if (accept_paused_until_ != 0) timeout = int(std::clamp<int64_t>(accept_paused_until_ - SteadyMs(), 1, 100));
    WaitAndDispatch(timeout);
  }
  CloseAll();
}

void EventLoop::DrainRequests() {
  std::vector<std::shared_ptr<Connection>> flush, resume;
  {
    std::lock_guard<std::mutex> g(mu_);
    flush.swap(remote_flush_);
    resume.swap(remote_resume_);
  }
  for (auto& c : resume) {
    c->busy_ = false;
    if (!c->removed_) Parse(c.get());
  }
  // Output queued by the loop itself (while handling requests) or by other threads.
  for (int round = 0; round < 4 && (!flush.empty() || !local_flush_.empty()); round++) {
    for (auto& c : local_flush_) flush.push_back(std::move(c));
    local_flush_.clear();
    for (auto& c : flush) {
      {
        std::lock_guard<std::mutex> g(c->mu_);
        c->flush_requested_ = false;
      }
      if (c->removed_) continue;
      if (c->shutdown_requested_ && !c->read_eof_) c->read_eof_ = true;
      StartSend(c.get());
      MaybeClose(c.get());
    }
    flush.clear();
  }
  if (backend_ == Backend::kEpoll) {
    // Sends started above run now; what the socket does not take waits for EPOLLOUT.
    std::vector<Connection*> sends;
    sends.swap(epoll_sends_);
    for (Connection* c : sends) EpollSendNow(c);
  }
}

void EventLoop::StopReadingNow() {
  reading_stopped_ = true;
  // Pending receives end with 0 (end of file); queued answers still go out.
  for (auto& [p, c] : conns_) {
    c->read_eof_ = true;
    ::shutdown(c->fd_, SHUT_RD);
    // A receive already in the ring ends with 0 (end of file) and closes from there.
    if (!c->recv_in_ring_) {
      c->recv_pending_ = false;
      SetEpollInterest(c.get());
      MaybeClose(c.get());
    }
  }
  if (accept_paused_until_ == 0) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
}

bool EventLoop::Idle() {
  for (auto& [p, c] : conns_) {
    if (c->busy_ || c->loop_sending_) return false;
    std::lock_guard<std::mutex> g(c->mu_);
    if (!c->closed_ && (!c->out_.empty() || c->sending_now_)) return false;
  }
  return local_flush_.empty();
}

void EventLoop::CloseAll() {
  for (auto& [p, c] : conns_) {
    {
      std::lock_guard<std::mutex> g(c->mu_);
      c->closed_ = true;
      c->out_.clear();
      c->out_bytes_ = 0;
    }
    c->removed_ = true;
    handler_->OnClosed(c.get());
    ::shutdown(c->fd_, SHUT_RDWR);
  }
  // The ring (and any operation still pending on these sockets) goes away with the
  // loop object; the sockets' buffers live until then (conns_ keeps them).
}

void EventLoop::Accepted(int fd) {
  if (reading_stopped_) {
    ::close(fd);
    return;
  }
  // Big fetch answers (MiBs) go out in fewer, larger writes and wake the reader
  // less often (the kernel caps this at net.core.wmem_max).
  int sndbuf = 4 << 20;
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  auto c = std::make_shared<Connection>(fd, this);
  Connection* raw = c.get();
  conns_.emplace(raw, std::move(c));
  // Level-triggered interest that follows what the connection wants (SetEpollInterest).
  epoll_event ev{};
  ev.events = 0;
  ev.data.ptr = raw;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    Remove(raw);
    return;
  }
  ArmRecv(raw);
}

// Parses and handles every whole frame received so far (unless a worker holds the
// connection or its output is backed up), then asks for more bytes.
void EventLoop::Parse(Connection* c) {
  size_t at = 0;
  std::shared_ptr<Connection> self = conns_.at(c);
  while (!c->busy_ && !c->paused_ && !c->read_eof_ && !c->shutdown_requested_ &&
         c->rhave_ - at >= proto::kFrameHeaderSize) {
    proto::FrameHeader h = proto::DecodeFrameHeader(c->rbuf_.data() + at);
    if (h.length < 6 || h.length > proto::kMaxFrameBytes) {
      c->Send(handler_->BadFrame(h.correlation_id, h.type, h.length));
      c->read_eof_ = true;
      c->shutdown_requested_ = true;
      break;
    }
    if (!c->hello_done && h.length > kMaxFrameBeforeHello) {
      // Only a Hello may come first; a huge header must not size the buffer.
      c->Send(handler_->BadFrame(h.correlation_id, h.type, h.length));
      c->read_eof_ = true;
      c->shutdown_requested_ = true;
      break;
    }
    size_t total = 4 + size_t(h.length);
    if (c->rhave_ - at < total) break;
    Bytes frame(c->rbuf_.begin() + long(at), c->rbuf_.begin() + long(at + total));
    at += total;
    if (handler_->OnFrame(self, h.correlation_id, h.type, std::move(frame))) c->busy_ = true;
    // Backpressure per request: a client that pipelines many fetches without
    // reading gets no further than the cap (the rest stays unparsed).
    std::lock_guard<std::mutex> g(c->mu_);
    if (c->out_bytes_ >= kMaxQueuedBytes) {
      c->paused_ = true;
      break;
    }
  }
  if (at > 0) {
    std::memmove(c->rbuf_.data(), c->rbuf_.data() + at, c->rhave_ - at);
    c->rhave_ -= at;
    // Back to the usual size after a large frame (no receive is pending here).
    if (c->rbuf_.size() > 4 * kReadChunk && c->rhave_ < kReadChunk) {
      c->rbuf_.resize(kReadChunk);
      c->rbuf_.shrink_to_fit();
    }
  }
  {
    std::lock_guard<std::mutex> g(c->mu_);
    c->paused_ = c->out_bytes_ >= kMaxQueuedBytes;
  }
  ArmRecv(c);
  MaybeClose(c);
}

void EventLoop::ArmRecv(Connection* c) {
  if (c->recv_pending_ || c->read_eof_ || c->busy_ || c->paused_ || c->removed_ || reading_stopped_) return;
  // Room for the frame in progress (its length is known once its header is in).
  size_t want = c->rhave_ + kReadChunk / 4;
  if (c->rhave_ >= proto::kFrameHeaderSize) {
    proto::FrameHeader h = proto::DecodeFrameHeader(c->rbuf_.data());
    want = std::max(want, 4 + size_t(h.length));
  }
  if (c->rbuf_.size() < want) c->rbuf_.resize(std::max(want, c->rhave_ + kReadChunk));
  c->recv_pending_ = true;
  SubmitRecv(c);
}

void EventLoop::RecvDone(Connection* c, long res) {
  c->recv_pending_ = false;
  if (res == -EINTR || res == -EAGAIN) {
    ArmRecv(c);
    return;
  }
  if (res <= 0) {
    c->read_eof_ = true;
    MaybeClose(c);
    return;
  }
  c->recv_filled_ = c->rhave_ + size_t(res) == c->rbuf_.size();
  c->rhave_ += size_t(res);
  Parse(c);
}

void EventLoop::StartSend(Connection* c) {
  if (c->loop_sending_ || c->removed_) return;
  {
    std::lock_guard<std::mutex> g(c->mu_);
    if (c->closed_ || c->sending_now_ || c->out_.empty()) return;
    c->sending_now_ = true;
    while (!c->out_.empty() && c->sending_.size() < kMaxFramesPerSend) {
      c->sending_.push_back(std::move(c->out_.front()));
      c->out_.pop_front();
    }
  }
  c->loop_sending_ = true;
  c->iov_.clear();
  c->sending_bytes_ = 0;
  for (auto& b : c->sending_) {
    c->iov_.push_back({b.data(), b.size()});
    c->sending_bytes_ += Held(b);
  }
  c->iov_at_ = 0;
  SubmitSend(c);
}

void EventLoop::SendDone(Connection* c, long res) {
  if (res == -EINTR || res == -EAGAIN) {
    SubmitSend(c);
    return;
  }
  if (res <= 0) return SendFailed(c);
  size_t k = size_t(res);
  while (k > 0 && c->iov_at_ < c->iov_.size()) {
    iovec& v = c->iov_[c->iov_at_];
    if (k >= v.iov_len) {
      k -= v.iov_len;
      c->iov_at_++;
    } else {
      v.iov_base = static_cast<uint8_t*>(v.iov_base) + k;
      v.iov_len -= k;
      k = 0;
    }
  }
  if (c->iov_at_ < c->iov_.size()) {
    SubmitSend(c);
    return;
  }
  // Everything in this send is out.
  c->sending_.clear();
  c->loop_sending_ = false;
  bool resume;
  {
    std::lock_guard<std::mutex> g(c->mu_);
    c->sending_now_ = false;
    c->out_bytes_ -= c->sending_bytes_;
    resume = c->paused_ && c->out_bytes_ < kMaxQueuedBytes / 2;
  }
  if (resume) {
    c->paused_ = false;
    Parse(c);  // frames already buffered, then more receives
  }
  StartSend(c);
  MaybeClose(c);
}

void EventLoop::SendFailed(Connection* c) {
  c->sending_.clear();
  c->loop_sending_ = false;
  {
    std::lock_guard<std::mutex> g(c->mu_);
    c->sending_now_ = false;
    c->closed_ = true;
    c->out_.clear();
    c->out_bytes_ = 0;
  }
  c->read_eof_ = true;
  // A pending receive ends now.
  ::shutdown(c->fd_, SHUT_RDWR);
  MaybeClose(c);
}

// A connection leaves the loop once it reads no more, no worker holds it, nothing
// is pending on the socket and its queue is empty (or can no longer be sent).
void EventLoop::MaybeClose(Connection* c) {
  if (c->removed_) return;
  if (c->shutdown_requested_ && !c->read_eof_) c->read_eof_ = true;
  if (!c->read_eof_ || c->busy_ || c->loop_sending_) return;
  bool queued;
  {
    std::lock_guard<std::mutex> g(c->mu_);
    c->close_waiting_ = c->sending_now_;
    if (c->sending_now_) return;  // a direct sender: it asks for a flush when done
    queued = !c->closed_ && !c->out_.empty();
  }
  if (queued) {
    StartSend(c);
    return;
  }
  if (reading_stopped_) return;  // shutting down: CloseAll, after the last answers
  if (c->recv_in_ring_) {
    ::shutdown(c->fd_, SHUT_RDWR);  // the receive completes, then we come back here
    return;
  }
  {
    // Closed under the same lock that saw no direct sender, so none starts after.
    std::lock_guard<std::mutex> g(c->mu_);
    if (c->sending_now_) {
      c->close_waiting_ = true;
      return;
    }
    if (!c->closed_ && !c->out_.empty()) return;  // a frame queued just now: its flush comes back here
    c->closed_ = true;
  }
  c->recv_pending_ = false;
  Remove(c);
}

void EventLoop::Remove(Connection* c) {
  auto it = conns_.find(c);
  if (it == conns_.end()) return;
  // Kept until the end of this loop iteration: callers up the stack still use c.
  graveyard_.push_back(std::move(it->second));
  conns_.erase(it);
  {
    std::lock_guard<std::mutex> g(c->mu_);
    c->closed_ = true;
    c->out_.clear();
    c->out_bytes_ = 0;
  }
  c->removed_ = true;
  // A receive of c may still wait in the submission queue: it goes now (and, like
  // every socket operation here, is done once submitted), so nothing in the ring
  // refers to c's buffer or descriptor once c is freed.
  if (backend_ == Backend::kUring && io_uring_sq_ready(ring_.get()) > 0) io_uring_submit(ring_.get());
  if (!c->epoll_deleted_) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd_, nullptr);
  handler_->OnClosed(c);
  // The descriptor is closed with the last reference (waiters may hold one; their
  // sends are dropped), so its number is never reused under them.
  ::shutdown(c->fd_, SHUT_RDWR);
}

// ---- backends ----------------------------------------------------------------------

namespace {
io_uring_sqe* GetSqe(io_uring* ring) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  while (!sqe) {
    io_uring_submit(ring);
    sqe = io_uring_get_sqe(ring);
  }
  return sqe;
}
}  // namespace

void EventLoop::SubmitRecv(Connection* c) {
  if (backend_ == Backend::kEpoll) {
    SetEpollInterest(c);
    return;
  }
  // A receive that filled its buffer is tried again at once (more is likely waiting);
  // otherwise the socket's EPOLLIN puts the next one in the ring.
  if (c->recv_filled_) return QueueRecv(c);
  SetEpollInterest(c);
}

void EventLoop::QueueRecv(Connection* c) {
  c->recv_in_ring_ = true;
  io_uring_sqe* sqe = GetSqe(ring_.get());
  io_uring_prep_recv(sqe, c->fd_, c->rbuf_.data() + c->rhave_, c->rbuf_.size() - c->rhave_, MSG_DONTWAIT);
  io_uring_sqe_set_data64(sqe, Tag(c, kOpRecv));
}

void EventLoop::SubmitSend(Connection* c) {
  if (backend_ == Backend::kEpoll) {
    epoll_sends_.push_back(c);
    return;
  }
  c->mh_ = msghdr{};
  c->mh_.msg_iov = c->iov_.data() + c->iov_at_;
  c->mh_.msg_iovlen = c->iov_.size() - c->iov_at_;
  io_uring_sqe* sqe = GetSqe(ring_.get());
  io_uring_prep_sendmsg(sqe, c->fd_, &c->mh_, MSG_NOSIGNAL | MSG_DONTWAIT);
  io_uring_sqe_set_data64(sqe, Tag(c, kOpSend));
  // Each send is submitted (and done: MSG_DONTWAIT) at once, not gathered into the
  // loop's next io_uring_enter. A follower woken by the first send (a fetch answer,
  // queued before the producer's acknowledgement) then runs on this CPU as soon as
  // the loop returns to user space, instead of the second send waking a thread on
  // the other, idle CPU while the follower waits behind it (README: ~1 IPI per
  // record fewer; with the loop asleep in epoll, follow p50 ~100 -> ~45 us on this VM).
  io_uring_submit(ring_.get());
}

void EventLoop::PauseAccepting() {
  accept_paused_until_ = SteadyMs() + 100;
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
}

void EventLoop::ResumeAcceptingIfDue() {
  if (accept_paused_until_ == 0 || SteadyMs() < accept_paused_until_) return;
  accept_paused_until_ = 0;
  if (reading_stopped_) return;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  ev.data.ptr = &kListenMark;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, listen_fd_, &ev);
}

void EventLoop::SetEpollInterest(Connection* c) {
  uint32_t want = 0;
  if (c->recv_pending_) want |= EPOLLIN;
  if (backend_ == Backend::kEpoll ? c->loop_sending_ && c->iov_at_ < c->iov_.size() : c->wait_writable_)
    want |= EPOLLOUT;
  if (c->removed_ || (want == c->epoll_events_ && !c->epoll_deleted_)) return;
  if (c->epoll_deleted_ && want == 0) return;  // stays off until it has something to do
  epoll_event ev{};
  ev.events = want;
  ev.data.ptr = c;
  int op = c->epoll_deleted_ ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (::epoll_ctl(epfd_, op, c->fd_, &ev) == 0) {
    c->epoll_events_ = want;
    c->epoll_deleted_ = false;
  }
}

void EventLoop::EpollSendNow(Connection* c) {
  if (c->removed_ || !c->loop_sending_) return;
  for (;;) {
    msghdr mh{};
    mh.msg_iov = c->iov_.data() + c->iov_at_;
    mh.msg_iovlen = std::min<size_t>(c->iov_.size() - c->iov_at_, IOV_MAX);
    ssize_t n = ::sendmsg(c->fd_, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      SetEpollInterest(c);  // EPOLLOUT: the rest when the socket has room
      return;
    }
    // SendDone queues another try when part is left or more frames wait.
    size_t before = epoll_sends_.size();
    SendDone(c, n < 0 ? -long(errno) : long(n));
    // SendDone may have queued this connection again (partial send, or the next
    // frames): those are handled by the loop below on the next DrainRequests pass.
    if (epoll_sends_.size() > before && epoll_sends_.back() == c) {
      epoll_sends_.pop_back();
      if (c->removed_ || !c->loop_sending_) return;
      continue;
    }
    SetEpollInterest(c);
    return;
  }
}

void EventLoop::AcceptReady() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      Accepted(fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    // EMFILE, ENFILE, ENOMEM: try again in a while, do not spin
    if (errno != EAGAIN && errno != EWOULDBLOCK) PauseAccepting();
    return;
  }
}

// Epoll events. The eventfd and the listening socket are handled alike on both
// backends; a connection's event means, for epoll, "do the receive or send it wants"
// and, for io_uring, "the receive or send that found the socket empty or full can be
// submitted again".
void EventLoop::DispatchEpoll(const epoll_event* evs, int n) {
  for (int i = 0; i < n; i++) {
    void* p = evs[i].data.ptr;
    if (p == &kWakeMark) {
      uint64_t v;
      ssize_t r = ::read(wake_fd_, &v, sizeof v);
      (void)r;
      wake_pending_ = false;
      continue;
    }
    if (p == &kListenMark) {
      AcceptReady();
      continue;
    }
    auto* c = static_cast<Connection*>(p);
    if (!conns_.count(c)) continue;
    uint32_t e = evs[i].events;
    if (backend_ == Backend::kUring) {
      bool hup = e & (EPOLLERR | EPOLLHUP);
      if ((hup || (e & EPOLLOUT)) && c->wait_writable_) {
        c->wait_writable_ = false;
        SubmitSend(c);
      }
      if ((hup || (e & EPOLLIN)) && c->recv_pending_ && !c->recv_in_ring_) QueueRecv(c);
      if (hup && !c->recv_pending_ && !c->loop_sending_ && !c->epoll_deleted_) {
        ::epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd_, nullptr);  // as below
        c->epoll_deleted_ = true;
      }
      SetEpollInterest(c);
      continue;
    }
    if ((e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->loop_sending_) EpollSendNow(c);
    if (c->removed_) continue;
    if ((e & (EPOLLIN | EPOLLERR | EPOLLHUP)) && c->recv_pending_) {
      ssize_t r;
      do {
        r = ::recv(c->fd_, c->rbuf_.data() + c->rhave_, c->rbuf_.size() - c->rhave_, MSG_DONTWAIT);
      } while (r < 0 && errno == EINTR);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      RecvDone(c, r < 0 ? -long(errno) : long(r));
      if (conns_.count(c)) SetEpollInterest(c);
    } else if (!c->recv_pending_ && !c->loop_sending_ && (e & (EPOLLERR | EPOLLHUP))) {
      // The peer is gone while nothing is asked of the socket (a worker holds the
      // connection, or the server is stopping). Epoll reports a hang-up whatever
      // the interest, so stop watching the socket instead of waking for it again;
      // what is left (an answer, the close) finds the error on its own.
      // (Requests already received still run: end of file shows on the next receive.)
      if (!c->removed_ && !c->loop_sending_ && !c->epoll_deleted_) {
        ::epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd_, nullptr);
        c->epoll_deleted_ = true;
      }
    }
  }
}

// io_uring: every socket operation in the ring is non-blocking (MSG_DONTWAIT), so it
// completes inside the io_uring_enter that submits it and the ring never holds one
// that waits. The loop sleeps in epoll_wait instead, on its sockets (level-triggered,
// like the epoll backend: EPOLLIN while a receive is wanted, EPOLLOUT while a send
// waits for room), the eventfd and the listening socket; EPOLLIN puts the receive in
// the ring (a receive that filled its buffer goes in again at once). Why not sleep in
// the ring: a thread waiting in io_uring_enter is woken by task work, without the
// "sync" hint a socket gives its epoll waiter, and the scheduler then sends it to the
// other, idle CPU, which on this VM costs an inter-processor interrupt and 30-80 us
// per request (measured, README). Per record followed, the server makes about as
// many system calls as the epoll backend (7; one costs ~1 us on this VM).
void EventLoop::WaitAndDispatch(int timeout_ms) {
  epoll_event evs[64];
  if (backend_ == Backend::kEpoll) {
    int n = ::epoll_wait(epfd_, evs, 64, timeout_ms);
    if (n > 0) DispatchEpoll(evs, n);
    return;
  }
  io_uring* ring = ring_.get();
  // Every operation completes in the io_uring_enter that submits it: with nothing to
  // submit there is nothing to wait for in the ring (no system call).
  if (io_uring_sq_ready(ring) > 0) io_uring_submit_and_get_events(ring);
  bool worked = DispatchCompletions();
  // Work done (output queued, receives to submit): go round again before epoll, which
  // is still looked at, without sleeping, every 16 such rounds (no connection waits
  // behind a busy one).
  if (worked && ++rounds_without_epoll_ < 16) return;
  rounds_without_epoll_ = 0;
  int timeout = worked || io_uring_sq_ready(ring) > 0 ? 0 : timeout_ms;
  int n = ::epoll_wait(epfd_, evs, 64, timeout);
  if (n > 0) DispatchEpoll(evs, n);
}

bool EventLoop::DispatchCompletions() {
  struct Done {
    uint64_t tag;
    long res;
  };
  io_uring* ring = ring_.get();
  io_uring_cqe* cqes[kMaxCqes];
  Done done[kMaxCqes];
  bool any = false;
  for (;;) {
    unsigned n = io_uring_peek_batch_cqe(ring, cqes, kMaxCqes);
    if (n == 0) return any;
    any = true;
    for (unsigned i = 0; i < n; i++) done[i] = {cqes[i]->user_data, long(cqes[i]->res)};
    io_uring_cq_advance(ring, n);
    for (unsigned i = 0; i < n; i++) {
      Connection* c = TagConn(done[i].tag);
      long res = done[i].res;
      if (!conns_.count(c)) continue;
      if (TagOp(done[i].tag) == kOpRecv) {
        c->recv_in_ring_ = false;
        if (res == -EAGAIN) {
          c->recv_filled_ = false;  // stays recv_pending_: EPOLLIN puts it in the ring again
          SetEpollInterest(c);
          continue;
        }
        RecvDone(c, res);
      } else {
        if (res == -EAGAIN) {
          c->wait_writable_ = true;
          SetEpollInterest(c);
          continue;
        }
        SendDone(c, res);
      }
      if (conns_.count(c)) SetEpollInterest(c);  // e.g. no more EPOLLIN while a worker holds it
    }
  }
}

}  // namespace streamkit::server

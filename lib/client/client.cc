#include "client/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <thread>
#include <vector>

#include "common/config.h"

namespace streamkit::client {
namespace {

Result<int> ConnectUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path)
    return Status::InvalidArgument(fmt::format("socket path {} is too long", path));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  // Produce requests carry batches of up to MiBs: fewer, larger writes (capped by
  // net.core.wmem_max).
  int sndbuf = 4 << 20;
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    return Status::FromErrno(err, fmt::format("connect to stream-serve at {}", path));
  }
  return fd;
}

// The stream-serve next to this executable, else the one on PATH.
std::string ServerExecutable() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto cand = self.parent_path() / "stream-serve";
    if (::access(cand.c_str(), X_OK) == 0) return cand.string();
  }
  return "stream-serve";
}

// Starts `stream-serve --socket S --data D` detached from this process (double fork,
// new session), its output appended to D/serve.log. Returns the read end of a pipe
// whose write end the server inherits as STREAMKIT_READY_FD: the server writes one
// byte there once its Start is over ('R' serving, 'B' another server owns the data dir
// or socket, 'F' failed) and closes it, so a server that cannot start is reported at
// once instead of after the whole connect timeout (EOF without a byte: it died first).
Result<int> SpawnServer(const std::string& socket, const std::string& data) {
  std::error_code ec;
  // A new data dir is private, like the socket (stream-serve(1)).
  if (!std::filesystem::exists(data, ec) && std::filesystem::create_directories(data, ec))
    std::filesystem::permissions(data, std::filesystem::perms::owner_all, ec);
  std::string logfile = data + "/serve.log";
  std::string exe = ServerExecutable();
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
  // Everything the child needs is made before fork (another thread may hold a lock).
  std::vector<std::string> env_store;
  for (char** e = environ; *e; e++)
    if (std::strncmp(*e, "STREAMKIT_READY_FD=", 19) != 0) env_store.emplace_back(*e);
  env_store.push_back(fmt::format("STREAMKIT_READY_FD={}", ready[1]));
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* argv[] = {exe.c_str(), "--socket", socket.c_str(), "--data", data.c_str(), nullptr};
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(ready[0]);
    ::close(ready[1]);
    return Status::FromErrno(err, "fork");
  }
  if (pid == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(logfile.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in >= 0) ::dup2(in, 0);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    ::fcntl(ready[1], F_SETFD, 0);  // the server inherits it
    ::execvpe(exe.c_str(), const_cast<char* const*>(argv), envp.data());
    std::fprintf(stderr, "streamkit: cannot run %s: %s\n", exe.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(ready[1]);
  int st;
  ::waitpid(pid, &st, 0);
  return ready[0];
}

// The last non-empty line of a (log) file, or "".
std::string LastLine(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[4096];
  off_t size = ::lseek(fd, 0, SEEK_END);
  off_t from = size > off_t(sizeof buf) ? size - off_t(sizeof buf) : 0;
  ssize_t n = ::pread(fd, buf, sizeof buf, from);
  ::close(fd);
  if (n <= 0) return "";
  std::string_view v(buf, size_t(n));
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.remove_suffix(1);
  auto nl = v.find_last_of('\n');
  return std::string(nl == std::string_view::npos ? v : v.substr(nl + 1));
}

}  // namespace

Status ResponseStatus(const Response& r) {
  using proto::Err;
  switch (r.err) {
    case Err::kNone: return Status::OK();
    case Err::kStreamNotFound:
    case Err::kGroupNotFound: return Status::NotFound(r.message);
    case Err::kStreamExists:
    case Err::kThrottled:
    case Err::kGroupBusy: return Status::Busy(r.message);
    case Err::kInvalidRequest:
    case Err::kLimitExceeded:
    case Err::kInvalidBatch: return Status::InvalidArgument(r.message);
    case Err::kWrongShard: return Status::OutOfRange(r.message);
    case Err::kOutOfOrderSequence: return Status::OutOfOrder(r.message);
    case Err::kFenced:
    case Err::kNotAssigned: return Status::Fenced(r.message);
    case Err::kStorage: return Status::IoError(fmt::format("{}: {}", proto::ErrName(r.err), r.message));
    case Err::kInjectedFailure: return Status::IoError(r.message);  // says it was injected
    default: return Status::FromErrno(EIO, fmt::format("{}: {}", proto::ErrName(r.err), r.message));
  }
}

Result<std::unique_ptr<Client>> Client::Connect(const ConnectOptions& opts) {
  std::string path = opts.socket_path.empty() ? DefaultSocketPath() : opts.socket_path;
  auto fd = ConnectUnix(path);
  bool absent = !fd.ok() && (fd.status().err() == ENOENT || fd.status().err() == ECONNREFUSED);
  if (!fd.ok() && absent && opts.autostart && !AutostartDisabledByEnv()) {
    std::string data = opts.data_dir.empty() ? DefaultDataDir() : opts.data_dir;
    SK_ASSIGN_OR_RETURN(int ready, SpawnServer(path, data));
    // Connect as soon as the socket is there; stop early when the server says it
    // cannot start. 'B' (a server started at the same moment by another client won
    // the data dir or socket): that one is coming, keep trying.
    char said = 0;
    bool heard = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
      fd = ConnectUnix(path);
      if (fd.ok() || std::chrono::steady_clock::now() >= deadline) break;
      if (heard) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      pollfd p{ready, POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      ssize_t n = ::read(ready, &said, 1);
      if (n < 0 && errno == EINTR) continue;
      heard = true;
      if (n != 1) said = 0;
      if (said != 'R' && said != 'B') break;
    }
    ::close(ready);
    if (!fd.ok()) {
      std::string log = data + "/serve.log";
      if (heard && said != 'R' && said != 'B') {
        std::string why = LastLine(log);
        return Status::IoError(fmt::format("the stream-serve started for {} exited at once{}{} (see {})", path,
                                           why.empty() ? "" : ": ", why, log));
      }
      return Status::IoError(fmt::format("started stream-serve but cannot connect to {} (see {})", path, log),
                             fd.status().err());
    }
  }
  if (!fd.ok()) {
    if (absent)
      return Status::IoError(fmt::format("no stream-serve at {} (start one with `stream-serve`, or {})", path,
                                         opts.autostart ? "unset STREAMKIT_NO_AUTOSTART" : "drop --no-autostart"),
                             fd.status().err());
    return Status::IoError(fd.status().message(), fd.status().err());
  }
  std::unique_ptr<Client> c(new Client(*fd, path));
  auto hello = c->CallOk(proto::Type::kHello, [&](proto::Writer& w) {
    w.u16(proto::kProtocolVersion).u16(proto::kProtocolVersion).str(opts.client_name);
  });
  if (!hello.ok()) return hello.status();
  {
    auto rd = hello->body();
    uint16_t version;
    std::string release;
    uint32_t max_frame;
    if (rd.u16(&version) && rd.str(&release) && rd.u32(&max_frame)) (void)rd.str(&c->server_id_);
  }
  return c;
}

Client::~Client() { ::close(fd_); }

Result<uint32_t> Client::Send(proto::Type type, const Fill& fill, std::span<const uint8_t> tail) {
  uint32_t corr = next_corr_++;
  Bytes head;
  proto::BeginFrame(&head, corr, uint16_t(type));
  proto::Writer w(&head);
  fill(w);
  EncodeFixed32(head.data(), uint32_t(head.size() - 4 + tail.size()));
  iovec iov[2] = {{head.data(), head.size()}, {const_cast<uint8_t*>(tail.data()), tail.size()}};
  size_t total = head.size() + tail.size(), sent = 0;
  int idx = 0;
  while (sent < total) {
    msghdr mh{};
    mh.msg_iov = iov + idx;
    mh.msg_iovlen = size_t(2 - idx);
    ssize_t n = ::sendmsg(fd_, &mh, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, fmt::format("send to {}", socket_path_));
    sent += size_t(n);
    size_t k = size_t(n);
    while (k > 0) {
      if (k >= iov[idx].iov_len) {
        k -= iov[idx].iov_len;
        iov[idx].iov_len = 0;
        idx++;
      } else {
        iov[idx].iov_base = static_cast<uint8_t*>(iov[idx].iov_base) + k;
        iov[idx].iov_len -= k;
        k = 0;
      }
    }
    while (idx < 2 && iov[idx].iov_len == 0) idx++;
  }
  in_flight_++;
  return corr;
}

bool Client::HasBufferedResponse() const {
  if (!parked_.empty()) return true;
  if (rhave_ < 4) return false;
  return rhave_ >= 4 + size_t(DecodeFixed32(rbuf_.data()));
}

Result<Response> Client::ReadOne(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  for (;;) {
    if (rhave_ >= proto::kFrameHeaderSize) {
      proto::FrameHeader h = proto::DecodeFrameHeader(rbuf_.data());
      if (h.length < 6 || h.length > proto::kMaxFrameBytes)
        return Status::Corruption(fmt::format("bad frame of {} bytes from {}", h.length, socket_path_));
      size_t total = 4 + size_t(h.length);
      if (rhave_ >= total) {
        Response r;
        r.corr = h.correlation_id;
        r.type = h.type;
        if (rhave_ == total && total >= 64 * 1024) {
          // A large frame that is all we have (a big fetch answer): hand the buffer
          // over instead of copying it.
          rbuf_.resize(total);
          r.frame.swap(rbuf_);
          rbuf_.clear();
        } else {
          r.frame.assign(rbuf_.begin(), rbuf_.begin() + long(total));
          std::memmove(rbuf_.data(), rbuf_.data() + total, rhave_ - total);
        }
        rhave_ -= total;
        proto::Reader rd(r.frame.data() + proto::kFrameHeaderSize, total - proto::kFrameHeaderSize);
        uint16_t err;
        if (!rd.u16(&err) || !rd.str(&r.message))
          return Status::Corruption(fmt::format("malformed response from {}", socket_path_));
        r.err = proto::Err(err);
        r.body_at = total - rd.remaining();
        if (in_flight_ > 0) in_flight_--;
        return r;
      }
      if (rbuf_.size() < total) rbuf_.resize(total);
    }
    if (rbuf_.size() - rhave_ < 64 * 1024) rbuf_.resize(rhave_ + 256 * 1024);
    if (timeout_ms > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      int n = ::poll(&p, 1, int(std::max<long>(0, left)));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) return Status::Busy("timeout");
    }
    // Never sleep inside recv(): a thread blocked there is woken each time the server
    // reads one of our requests (the kernel's "writable again" wake-up reaches every
    // sleeper on a Unix socket, whatever it waits for), which costs a spurious switch
    // and preempts the server in the middle of that request. poll(POLLIN) sleeps
    // through those. So: one non-blocking receive (enough when the answer is there, as
    // it is after the caller's own poll, or with timeout 0), and only when nothing is
    // there, poll and receive again.
    ssize_t n = ::recv(fd_, rbuf_.data() + rhave_, rbuf_.size() - rhave_, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (timeout_ms == 0) return Status::Busy("timeout");
      if (timeout_ms < 0) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, -1) < 0 && errno != EINTR)
          return Status::FromErrno(errno, fmt::format("wait for {}", socket_path_));
      }
      continue;  // timeout > 0: the loop polls again with what is left
    }
    if (n < 0) return Status::FromErrno(errno, fmt::format("receive from {}", socket_path_));
    if (n == 0) return Status::Closed(fmt::format("stream-serve at {} closed the connection", socket_path_));
    rhave_ += size_t(n);
  }
}

Result<Response> Client::Receive(int timeout_ms) {
  if (!parked_.empty()) {
    Response r = std::move(parked_.front());
    parked_.pop_front();
    return r;
  }
  return ReadOne(timeout_ms);
}

Result<Response> Client::Call(proto::Type type, const Fill& fill) {
  // Throttling and injected faults (stream-serve --inject-faults) are retried with
  // backoff here, so every tool survives them; produce pipelines handle their own.
  constexpr int kAttempts = 12;
  for (int attempt = 0;; attempt++) {
    SK_ASSIGN_OR_RETURN(uint32_t corr, Send(type, fill));
    Response r;
    for (;;) {
      SK_ASSIGN_OR_RETURN(r, ReadOne(-1));
      if (r.corr == corr) break;
      parked_.push_back(std::move(r));
    }
    bool retry = r.err == proto::Err::kThrottled || r.err == proto::Err::kInjectedFailure;
    if (!retry || attempt + 1 >= kAttempts) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, 5 << attempt)));
  }
}

Result<Response> Client::CallOk(proto::Type type, const Fill& fill) {
  SK_ASSIGN_OR_RETURN(Response r, Call(type, fill));
  if (!r.ok()) return ResponseStatus(r);
  return r;
}

Result<proto::StreamInfo> DescribeStream(Client& c, const std::string& stream) {
  SK_ASSIGN_OR_RETURN(auto r, c.CallOk(proto::Type::kDescribeStream, [&](proto::Writer& w) { w.str(stream); }));
  proto::StreamInfo si;
  auto rd = r.body();
  if (!si.Decode(rd)) return Status::Corruption("malformed describe response");
  return si;
}

Result<std::map<uint32_t, uint64_t>> GroupHeartbeat(Client& c, const std::string& stream, const std::string& group,
                                                    const std::string& member, bool leaving) {
  SK_ASSIGN_OR_RETURN(auto r, c.Call(proto::Type::kGroupHeartbeat, [&](proto::Writer& w) {
    w.str(stream).str(group).str(member).u8(leaving ? 1 : 0);
  }));
  if (!r.ok()) return ResponseStatus(r);
  std::map<uint32_t, uint64_t> assigned;
  if (leaving) return assigned;
  auto rd = r.body();
  uint32_t gen, session, n;
  if (!(rd.u32(&gen) && rd.u32(&session) && rd.u32(&n))) return Status::Corruption("malformed heartbeat response");
  for (uint32_t i = 0; i < n; i++) {
    uint32_t sh;
    uint64_t ck;
    if (!(rd.u32(&sh) && rd.u64(&ck))) return Status::Corruption("malformed heartbeat response");
    assigned[sh] = ck;
  }
  return assigned;
}

namespace {

// A response holding u32 count, then that many T.
template <typename T>
Result<std::vector<T>> DecodeList(const Response& r, const char* what) {
  auto rd = r.body();
  uint32_t n = 0;
  if (!rd.u32(&n) || n > 1000000) return Status::Corruption(fmt::format("malformed {} response", what));
  std::vector<T> out(n);
  for (auto& x : out)
    if (!x.Decode(rd)) return Status::Corruption(fmt::format("malformed {} response", what));
  return out;
}

}  // namespace

Result<std::vector<proto::StreamInfo>> ListStreams(Client& c) {
  SK_ASSIGN_OR_RETURN(auto r, c.CallOk(proto::Type::kListStreams, [](proto::Writer&) {}));
  return DecodeList<proto::StreamInfo>(r, "list");
}

Result<std::vector<proto::GroupInfo>> ListGroups(Client& c, const std::string& stream) {
  SK_ASSIGN_OR_RETURN(auto r, c.CallOk(proto::Type::kGroupList, [&](proto::Writer& w) { w.str(stream); }));
  return DecodeList<proto::GroupInfo>(r, "groups");
}

Result<bool> GroupHasSilentMembers(Client& c, const std::string& stream, const std::string& group,
                                   const std::string& me, int64_t since_ms) {
  SK_ASSIGN_OR_RETURN(auto groups, ListGroups(c, stream));
  for (auto& g : groups) {
    if (g.name != group) continue;
    for (auto& m : g.members)
      if (m.member != me && !m.shards.empty() && m.last_heartbeat_ms < since_ms) return true;
  }
  return false;
}

}  // namespace streamkit::client

// A connection to stream-serve: the version handshake, pipelined requests with
// correlation ids, and autostart of a server in the background (like tmux) when the
// socket is absent.
//
// Thread safety: one Client per thread.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "proto/protocol.h"

namespace streamkit::client {

struct ConnectOptions {
  std::string socket_path;  // empty: DefaultSocketPath()
  std::string data_dir;     // for autostart; empty: DefaultDataDir()
  bool autostart = true;    // also off with STREAMKIT_NO_AUTOSTART=1
  std::string client_name = "streamkit";
};

struct Response {
  uint32_t corr = 0;
  uint16_t type = 0;
  proto::Err err = proto::Err::kNone;
  std::string message;
  Bytes frame;
  size_t body_at = 0;
  proto::Reader body() const { return proto::Reader(frame.data() + body_at, frame.size() - body_at); }
  bool ok() const { return err == proto::Err::kNone; }
};

// A library Status for a failed response: kNotFound for a missing stream or group,
// kBusy for throttling and existing streams, kInvalidArgument for rejected input,
// kIoError for the rest. The message is the server's.
Status ResponseStatus(const Response& r);

class Client {
 public:
  static Result<std::unique_ptr<Client>> Connect(const ConnectOptions& opts);
  ~Client();

  using Fill = std::function<void(proto::Writer&)>;
  // Sends a request; the batch bytes, if any, follow the fields without a copy.
  Result<uint32_t> Send(proto::Type type, const Fill& fill, std::span<const uint8_t> tail = {});
  // The next response, in arrival order. timeout_ms >= 0 bounds the wait (kBusy on
  // timeout); a closed connection is kClosed.
  Result<Response> Receive(int timeout_ms = -1);
  // Sends and waits for that request's response; others arriving meanwhile are kept.
  Result<Response> Call(proto::Type type, const Fill& fill);
  // Call() that turns an error response into a Status.
  Result<Response> CallOk(proto::Type type, const Fill& fill);

  int fd() const { return fd_; }
  // The server's identity (from Hello): a random id kept in its data dir.
  const std::string& server_id() const { return server_id_; }
  bool HasBufferedResponse() const;
  const std::string& socket_path() const { return socket_path_; }
  uint32_t in_flight() const { return in_flight_; }

 private:
  Client(int fd, std::string path) : fd_(fd), socket_path_(std::move(path)) {}
  Result<Response> ReadOne(int timeout_ms);

  int fd_;
  std::string socket_path_;
  std::string server_id_;
  uint32_t next_corr_ = 1;
  uint32_t in_flight_ = 0;
  Bytes rbuf_;
  size_t rhave_ = 0;
  std::deque<Response> parked_;
};

// DescribeStream, decoded. kNotFound when the stream does not exist.
Result<proto::StreamInfo> DescribeStream(Client& c, const std::string& stream);
// ListStreams and GroupList, decoded.
Result<std::vector<proto::StreamInfo>> ListStreams(Client& c);
Result<std::vector<proto::GroupInfo>> ListGroups(Client& c, const std::string& stream);
// Whether another member of `group` holds shards without having heartbeated since
// `since_ms`: maybe a killed process whose session has not expired yet (live members
// heartbeat every second). A draining member waits for such shards to come free.
Result<bool> GroupHasSilentMembers(Client& c, const std::string& stream, const std::string& group,
                                   const std::string& me, int64_t since_ms);
// GroupHeartbeat: joins or refreshes `member` (or leaves); returns its shards with
// their checkpoints (UINT64_MAX: none yet).
Result<std::map<uint32_t, uint64_t>> GroupHeartbeat(Client& c, const std::string& stream, const std::string& group,
                                                    const std::string& member, bool leaving);

}  // namespace streamkit::client

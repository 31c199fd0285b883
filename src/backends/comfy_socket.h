// A small blocking WebSocket client (Boost.Beast) for a ComfyUI server's /ws: text and binary frames.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace df::backends {

// One read from the socket.
struct SocketFrame {
  enum class Kind { kText, kBinary, kTimeout, kClosed };
  Kind kind = Kind::kClosed;
  std::string data;  // the message (text or binary); why it ended for kClosed
};

class ComfySocket {
 public:
  // Connects to `url` (http://host[:port]) and upgrades `target` ("/ws?clientId=..."), sending
  // `auth_header` (name, value) with the handshake when given. Throws Error(kInvalidArgument) for
  // a malformed url and Error(kUnavailable) naming the url when the connection or the handshake
  // fails or takes longer than `timeout_ms`.
  ComfySocket(const std::string& url, const std::string& target,
              const std::optional<std::pair<std::string, std::string>>& auth_header, int timeout_ms);
  ~ComfySocket();  // closes
  ComfySocket(const ComfySocket&) = delete;
  ComfySocket& operator=(const ComfySocket&) = delete;

  // The next message, waiting at most `timeout_ms` (kTimeout when none came: the read stays
  // pending and the next call goes on waiting for it); kClosed once the connection ended.
  SocketFrame read(int timeout_ms);
  // Closes with a close handshake (bounded by the connect timeout); idempotent.
  void close();
  bool is_open() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace df::backends

// ComfySocket: one io_context driven by the caller's thread; a read left pending across timeouts.
#include "backends/comfy_socket.h"

#include <chrono>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/url/parse.hpp>

#include "core/error.h"

namespace df::backends {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

// ComfyUI sends whole images in binary frames (SaveImageWebsocket): allow large messages.
constexpr std::size_t kMaxMessageBytes = 512u * 1024u * 1024u;

}  // namespace

struct ComfySocket::Impl {
  asio::io_context io;
  websocket::stream<beast::tcp_stream> ws{io};
  beast::flat_buffer buffer;
  std::string url;
  int timeout_ms = 0;
  bool open = false;
  bool reading = false;                           // a read is pending
  std::optional<beast::error_code> read_result;  // set when the pending read completed

  // Runs the io_context until `done` or `timeout_ms` passed; true when done.
  template <class Done>
  bool run_until(Done done, int wait_ms) {
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (!done() && io.run_one_until(deadline) > 0) {
    }
    return done();
  }

  // Starts an operation and waits for it; an operation that takes too long closes the socket.
  template <class Start>
  beast::error_code run(Start start) {
    std::optional<beast::error_code> result;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    if (!run_until([&] { return result.has_value(); }, timeout_ms)) {
      beast::get_lowest_layer(ws).close();
      io.restart();
      while (!result) io.run_one();
      return asio::error::timed_out;
    }
    return *result;
  }

  void start_read() {
    buffer.consume(buffer.size());
    read_result.reset();
    reading = true;
    ws.async_read(buffer, [this](beast::error_code ec, std::size_t) { read_result = ec; });
  }
};

ComfySocket::ComfySocket(const std::string& url, const std::string& target,
                         const std::optional<std::pair<std::string, std::string>>& auth_header,
                         int timeout_ms)
    : impl_(std::make_unique<Impl>()) {
  std::string base = url;
  if (base.ends_with('/')) base.pop_back();
  auto parsed = boost::urls::parse_absolute_uri(base);
  if (!parsed || parsed->scheme() != "http" || !parsed->has_authority() || parsed->host().empty() ||
      parsed->has_userinfo() || !parsed->path().empty() || parsed->has_query()) {
    throw Error(ErrorCode::kInvalidArgument, "server URL '" + url + "' is not of the form http://host[:port]");
  }
  const std::string host = parsed->host_address();
  const std::string port = parsed->has_port() ? std::string(parsed->port()) : "80";
  impl_->url = base;
  impl_->timeout_ms = timeout_ms;

  asio::ip::tcp::resolver resolver(impl_->io);
  asio::ip::tcp::resolver::results_type endpoints;
  beast::error_code ec = impl_->run([&](auto done) {
    resolver.async_resolve(host, port, [&endpoints, done](beast::error_code e, auto results) mutable {
      endpoints = results;
      done(e);
    });
  });
  if (!ec) {
    ec = impl_->run([&](auto done) { beast::get_lowest_layer(impl_->ws).async_connect(endpoints, done); });
  }
  if (!ec) {
    beast::get_lowest_layer(impl_->ws).socket().set_option(asio::ip::tcp::no_delay(true));
    impl_->ws.read_message_max(kMaxMessageBytes);
    impl_->ws.set_option(websocket::stream_base::decorator([auth_header](websocket::request_type& request) {
      request.set(beast::http::field::user_agent, "dreamforge");
      if (auth_header) request.set(auth_header->first, auth_header->second);
    }));
    const std::string host_header = parsed->has_port() ? host + ":" + port : host;
    websocket::response_type response;
    ec = impl_->run([&](auto done) { impl_->ws.async_handshake(response, host_header, target, done); });
    if (ec && response.result_int() != 0 && response.result_int() != 101) {
      throw Error(ErrorCode::kUnavailable, "the WebSocket " + base + target + " answered HTTP " +
                                               std::to_string(response.result_int()) + " instead of an upgrade",
                  {{"url", base}, {"status", response.result_int()}});
    }
  }
  if (ec) {
    throw Error(ErrorCode::kUnavailable, "cannot open the WebSocket " + base + target + ": " + ec.message(),
                {{"url", base}});
  }
  impl_->open = true;
}

ComfySocket::~ComfySocket() { close(); }

SocketFrame ComfySocket::read(int timeout_ms) {
  if (!impl_->open) return {SocketFrame::Kind::kClosed, "the connection is closed"};
  if (!impl_->reading) impl_->start_read();
  if (!impl_->run_until([&] { return impl_->read_result.has_value(); }, timeout_ms)) {
    return {SocketFrame::Kind::kTimeout, ""};
  }
  impl_->reading = false;
  const beast::error_code ec = *impl_->read_result;
  if (ec) {
    impl_->open = false;
    beast::error_code ignored;
    beast::get_lowest_layer(impl_->ws).socket().close(ignored);
    return {SocketFrame::Kind::kClosed, ec == websocket::error::closed ? "closed by the server" : ec.message()};
  }
  return {impl_->ws.got_binary() ? SocketFrame::Kind::kBinary : SocketFrame::Kind::kText,
          beast::buffers_to_string(impl_->buffer.data())};
}

void ComfySocket::close() {
  if (!impl_->open) return;
  impl_->open = false;
  // The close handshake completes a pending read too (with "closed"); wait for both.
  std::optional<beast::error_code> closed;
  impl_->ws.async_close(websocket::close_code::normal, [&closed](beast::error_code ec) { closed = ec; });
  const bool done = impl_->run_until(
      [&] { return closed.has_value() && (!impl_->reading || impl_->read_result.has_value()); },
      impl_->timeout_ms);
  if (!done) {
    beast::get_lowest_layer(impl_->ws).close();
    impl_->io.restart();
    while (!closed.has_value() || (impl_->reading && !impl_->read_result.has_value())) impl_->io.run_one();
  }
  impl_->reading = false;
}

bool ComfySocket::is_open() const { return impl_->open; }

}  // namespace df::backends

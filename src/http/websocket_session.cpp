// The server side of a WebSocket: the handshake, a read loop feeding the handler, and a bounded
// queue of outgoing messages that any thread fills and the session writes one at a time.
#include "http/websocket_session.h"

#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

namespace df::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using Clock = std::chrono::steady_clock;

// How long a stopping server waits for a client to answer its close frame before cutting it off.
constexpr std::chrono::milliseconds kCloseAnswerLimit{1000};

// A message waiting to be written; a kClose entry ends the queue with a close handshake.
struct Outgoing {
  enum class Kind { kText, kBinary, kClose };
  Kind kind;
  std::string bytes;
};

class WebSocketSession;

// The handler's side of a connection: a bounded queue of outgoing messages that any thread fills
// and the session empties on its strand. It holds the session weakly, so a handler keeping the
// connection keeps no session alive, and it lets go of the session's executor when shut, so a
// handler may keep it after the server is gone.
class Outbox : public WebSocketConnection {
 public:
  Outbox(std::weak_ptr<WebSocketSession> session, asio::any_io_executor executor,
         const ServerLimits& limits)
      : session_(std::move(session)),
        max_messages_(limits.websocket_max_queued_messages),
        max_bytes_(limits.websocket_max_queued_bytes),
        executor_(std::move(executor)) {}

  void send_text(std::string message) override {
    enqueue({Outgoing::Kind::kText, std::move(message)});
  }
  void send_binary(std::string bytes) override {
    enqueue({Outgoing::Kind::kBinary, std::move(bytes)});
  }
  void close() override { enqueue({Outgoing::Kind::kClose, {}}); }
  bool is_open() const override {
    std::lock_guard lock(mutex_);
    return open_;
  }

  // On the session's strand: the next entry to write, or nullopt (the writer stops) when none.
  std::optional<Outgoing> take();
  // Accepts nothing more, drops what waits and lets go of the executor: the connection is closing
  // or closed.
  void shut();

 private:
  void enqueue(Outgoing message);
  bool over_limits(const Outgoing& message) const;
  // Runs `step` on the session (when it still exists) on its strand. Call with mutex_ held.
  void post_to_session(void (WebSocketSession::*step)());

  const std::weak_ptr<WebSocketSession> session_;
  const std::size_t max_messages_;
  const std::size_t max_bytes_;

  mutable std::mutex mutex_;  // guards what follows
  asio::any_io_executor executor_;  // the session's strand while open
  bool open_ = true;
  bool writing_ = false;  // the session has been asked to write, and has not run dry since
  std::deque<Outgoing> queue_;
  std::size_t queued_bytes_ = 0;
};

// One upgraded connection. Everything but close() runs on the stream's strand, so the members
// need no locks.
class WebSocketSession : public ServerConnection,
                         public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(beast::tcp_stream stream, WebSocketUpgrade upgrade,
                   std::shared_ptr<ServerContext> context)
      : ws_(std::move(stream)),
        upgrade_(std::move(upgrade)),
        context_(std::move(context)),
        close_timer_(ws_.get_executor()) {}

  ~WebSocketSession() override { context_->remove(this); }

  void start() {
    if (!context_->add(this, weak_from_this())) {
      upgrade_.record.status = 503;
      upgrade_.record.error = "the server is stopping";
      cut_off();
      return report();
    }
    configure();
    ws_.async_accept(upgrade_.request, [self = shared_from_this()](beast::error_code ec) {
      self->on_accepted(ec);
    });
  }

  // The server is stopping: a close handshake with "going away", cut off if not answered soon.
  void close() override {
    asio::post(ws_.get_executor(), [self = shared_from_this()] { self->on_server_stop(); });
  }

  // Writes the next queued message (posted by the outbox when it fills an idle queue).
  void write_next() {
    if (ended_ || close_started_) return;
    std::optional<Outgoing> next = outbox_->take();
    if (!next) return;
    if (next->kind == Outgoing::Kind::kClose) return begin_close(websocket::close_code::normal);
    outgoing_ = std::move(next->bytes);
    ws_.text(next->kind == Outgoing::Kind::kText);
    ws_.async_write(asio::buffer(outgoing_),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      if (ec) return self->cut_off();
                      self->write_next();
                    });
  }

  // The client let more messages pile up than the limits allow: it is disconnected.
  void drop_slow_reader() {
    if (ended_) return;
    const ServerLimits& limits = context_->limits();
    upgrade_.record.error = "the client did not keep up with its messages (more than " +
                            std::to_string(limits.websocket_max_queued_messages) +
                            " messages or " + std::to_string(limits.websocket_max_queued_bytes) +
                            " bytes waited)";
    cut_off();
  }

 private:
  void configure() {
    const ServerLimits& limits = context_->limits();
    beast::get_lowest_layer(ws_).expires_never();  // the WebSocket's own timeouts take over
    beast::error_code ignored;  // no Nagle delay: small messages (progress events) leave at once
    beast::get_lowest_layer(ws_).socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    auto timeout = websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeout.idle_timeout = std::chrono::milliseconds(limits.websocket_idle_timeout_ms);
    ws_.set_option(timeout);
    ws_.read_message_max(limits.websocket_max_message_bytes);
    // One frame per message, as ComfyUI's aiohttp sends them: websocket-client (ComfyUI's script
    // examples) joins continuation frames in quadratic time, minutes for a 20 MB image.
    ws_.auto_fragment(false);
    ws_.set_option(websocket::stream_base::decorator(
        [id = upgrade_.record.correlation_id](websocket::response_type& response) {
          response.set("X-Request-ID", id);
        }));
  }

  void on_accepted(beast::error_code ec) {
    if (ec) {
      // Beast answered a malformed handshake itself (426 for an unsupported version, else 400).
      upgrade_.record.status = ec == websocket::error::bad_sec_version ? 426 : 400;
      return finish();
    }
    opened_ = true;
    upgrade_.record.status = 101;
    outbox_ = std::make_shared<Outbox>(weak_from_this(), ws_.get_executor(), context_->limits());
    run_handler([&] { upgrade_.handler->on_open(outbox_); });
    read_next();
  }

  void read_next() {
    ws_.async_read(incoming_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec) return finish();  // closed by either side, too big, timed out, or cut off
    if (ws_.got_text() && !close_started_) {
      std::string message = beast::buffers_to_string(incoming_.data());
      incoming_.consume(incoming_.size());
      run_handler([&] { upgrade_.handler->on_text(message); });
    } else {
      incoming_.consume(incoming_.size());  // binary messages are not for the handler
    }
    read_next();  // also while closing: the client's close frame ends the loop
  }

  // Runs a handler callback; one that throws closes the connection with "internal error".
  template <class Callback>
  void run_handler(Callback callback) {
    try {
      callback();
      return;
    } catch (const std::exception& error) {
      upgrade_.record.error = error.what();
    } catch (...) {
      upgrade_.record.error = "an exception that is not a std::exception";
    }
    begin_close(websocket::close_code::internal_error);
  }

  void on_server_stop() {
    if (ended_) return;
    if (!opened_) return cut_off();  // still in the handshake
    begin_close(websocket::close_code::going_away);
    close_timer_.expires_after(kCloseAnswerLimit);
    close_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->cut_off();
    });
  }

  // Sends a close frame (after a write in flight, dropping what still waits); the read loop
  // ends when the client answers.
  void begin_close(websocket::close_code code) {
    if (close_started_ || ended_) return;
    close_started_ = true;
    outbox_->shut();
    ws_.async_close(code, [self = shared_from_this()](beast::error_code ec) {
      if (ec) self->cut_off();
    });
  }

  // Closes the TCP connection at once; pending operations fail, which ends the read loop.
  void cut_off() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).close();
  }

  // The connection is over: tell the handler once and report the request.
  void finish() {
    if (ended_) return;
    ended_ = true;
    close_timer_.cancel();
    if (outbox_) outbox_->shut();
    cut_off();
    if (opened_) {
      try {
        upgrade_.handler->on_close();
      } catch (const std::exception& error) {
        upgrade_.record.error = error.what();
      } catch (...) {
        upgrade_.record.error = "an exception that is not a std::exception";
      }
    }
    upgrade_.handler.reset();
    report();
  }

  void report() {
    upgrade_.record.seconds =
        std::chrono::duration<double>(Clock::now() - upgrade_.started).count();
    context_->report(upgrade_.record);
  }

  websocket::stream<beast::tcp_stream> ws_;
  WebSocketUpgrade upgrade_;
  std::shared_ptr<ServerContext> context_;
  asio::steady_timer close_timer_;
  std::shared_ptr<Outbox> outbox_;  // set once open
  beast::flat_buffer incoming_;
  std::string outgoing_;  // the message being written
  bool opened_ = false;
  bool close_started_ = false;
  bool ended_ = false;
};

std::optional<Outgoing> Outbox::take() {
  std::lock_guard lock(mutex_);
  if (queue_.empty()) {
    writing_ = false;
    return std::nullopt;
  }
  Outgoing next = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= next.bytes.size();
  return next;
}

void Outbox::shut() {
  std::lock_guard lock(mutex_);
  open_ = false;
  queue_.clear();
  queued_bytes_ = 0;
  executor_ = {};
}

void Outbox::enqueue(Outgoing message) {
  std::lock_guard lock(mutex_);
  if (!open_) return;
  if (message.kind != Outgoing::Kind::kClose && over_limits(message)) {
    open_ = false;
    queue_.clear();
    queued_bytes_ = 0;
    return post_to_session(&WebSocketSession::drop_slow_reader);
  }
  if (message.kind == Outgoing::Kind::kClose) open_ = false;
  queued_bytes_ += message.bytes.size();
  queue_.push_back(std::move(message));
  if (writing_) return;
  writing_ = true;
  post_to_session(&WebSocketSession::write_next);
}

bool Outbox::over_limits(const Outgoing& message) const {
  return queue_.size() >= max_messages_ || queued_bytes_ + message.bytes.size() > max_bytes_;
}

void Outbox::post_to_session(void (WebSocketSession::*step)()) {
  asio::post(executor_, [session = session_, step] {
    if (auto self = session.lock()) ((*self).*step)();
  });
}

}  // namespace

void start_websocket_session(beast::tcp_stream stream, WebSocketUpgrade upgrade,
                             std::shared_ptr<ServerContext> context) {
  std::make_shared<WebSocketSession>(std::move(stream), std::move(upgrade), std::move(context))
      ->start();
}

}  // namespace df::http

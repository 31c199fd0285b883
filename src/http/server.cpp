// The HTTP/1.1 server: Beast sessions on Asio threads with limits, correlation ids, error
// envelopes, polled response streams (Server-Sent Events) and hand-over to WebSockets.
#include "http/server.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <fcntl.h>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "http/correlation_id.h"
#include "http/request_target.h"
#include "http/server_context.h"
#include "http/websocket_session.h"

namespace df::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Milliseconds = std::chrono::milliseconds;

// How long a connection that must close keeps reading (and dropping) what the client still sends,
// so that closing with unread input does not reset the connection before the client read our
// answer.
constexpr Milliseconds kLingerOnClose{1000};
// Child processes (runners) must not inherit the server's sockets.
void close_on_exec(int fd) { ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC); }

// How long the acceptor pauses after a failed accept (out of file descriptors) before trying again.
constexpr Milliseconds kAcceptRetryDelay{100};

// Lets a StreamSource wake its session from any thread, also after the stream ended.
class StreamWaker {
 public:
  StreamWaker(asio::any_io_executor executor, std::function<void()> on_wake)
      : executor_(std::move(executor)), on_wake_(std::move(on_wake)) {}

  void wake() {
    std::lock_guard lock(mutex_);
    if (active_) asio::post(executor_, on_wake_);
  }
  // After this, wake() does nothing, and the source may keep the waker after the server is gone.
  // Called when the stream ends, before the io_context can go.
  void disable() {
    std::lock_guard lock(mutex_);
    active_ = false;
    executor_ = {};
  }

 private:
  std::mutex mutex_;
  bool active_ = true;
  asio::any_io_executor executor_;
  std::function<void()> on_wake_;
};

// What is known about the exchange in progress, for the correlation id and the request record.
struct Exchange {
  std::string method;
  std::string route;
  std::string correlation_id;
  int status = 0;
  std::string error;  // what() of an unexpected exception
  Clock::time_point started;

  RequestRecord to_record() const {
    RequestRecord record;
    record.method = method;
    record.route = route;
    record.status = status;
    record.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    record.correlation_id = correlation_id;
    record.error = error;
    return record;
  }
};

// One client connection: reads requests, runs handlers, writes responses or streams. Every
// handler of a session runs on its strand, so its members need no locks.
class Session : public ServerConnection, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<ServerContext> context)
      : stream_(std::move(socket)),
        context_(std::move(context)),
        request_timer_(stream_.get_executor()),
        poll_timer_(stream_.get_executor()) {}

  ~Session() override {
    if (waker_) waker_->disable();
    context_->remove(this);
  }

  void start() {
    if (!context_->add(this, weak_from_this())) return;
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->wait_for_request(); });
  }

  // Closes the connection (ending a stream in progress); callable from any thread.
  void close() override {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->source_) {
        self->end_stream();
      } else {
        self->shutdown();
      }
    });
  }

 private:
  const ServerLimits& limits() const { return context_->limits(); }

  // --- Reading a request -------------------------------------------------------------------

  // Waits up to the idle timeout for the first bytes of the next request.
  void wait_for_request() {
    if (closed_) return;
    if (buffer_.size() > 0) return read_header();
    stream_.expires_after(Milliseconds(limits().idle_timeout_ms));
    auto on_first_bytes = [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
      self->buffer_.commit(bytes);
      if (ec) return self->shutdown();  // idle too long, or the client went away
      self->read_header();
    };
    stream_.async_read_some(buffer_.prepare(4096), std::move(on_first_bytes));
  }

  // The request has begun: it must now arrive completely within the request timeout.
  void read_header() {
    exchange_ = Exchange{};
    exchange_.started = Clock::now();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(
        limits().max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser_->body_limit(limits().max_body_bytes);
    stream_.expires_never();
    reading_ = true;
    request_timed_out_ = false;
    ++request_number_;
    request_timer_.expires_after(Milliseconds(limits().request_timeout_ms));
    request_timer_.async_wait(
        [self = shared_from_this(), number = request_number_](beast::error_code ec) {
          // A wait that expired just as its request completed must not cut the next request short.
          if (ec || !self->reading_ || number != self->request_number_) return;
          self->request_timed_out_ = true;
          self->stream_.cancel();
        });
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_failed(ec);
    if (!boost::algorithm::iequals(parser_->get()[bhttp::field::expect], "100-continue")) {
      return read_body();
    }
    interim_.emplace(bhttp::status::continue_, 11);
    bhttp::async_write(stream_, *interim_,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (ec) return self->on_read_failed(ec);
                         self->read_body();
                       });
  }

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) return self->on_read_failed(ec);
                        self->stop_request_timer();
                        self->handle_request();
                      });
  }

  void stop_request_timer() {
    reading_ = false;
    request_timer_.cancel();
  }

  // Answers a request that could not be read with an envelope (when there is anyone to answer).
  void on_read_failed(beast::error_code ec) {
    stop_request_timer();
    if (closed_) return;
    const auto& message = parser_->get();
    exchange_.method = std::string(message.method_string());
    exchange_.route = std::string(message.target());
    exchange_.correlation_id = correlation_id_for(message["X-Request-ID"]);
    if (request_timed_out_) {
      return reject(408, Error(ErrorCode::kRequestTimeout,
                               "the request did not arrive completely within " +
                                   std::to_string(limits().request_timeout_ms) + " ms"));
    }
    if (ec == bhttp::error::body_limit) {
      return reject(413, Error(ErrorCode::kPayloadTooLarge,
                               "the request body is larger than the limit of " +
                                   std::to_string(limits().max_body_bytes) + " bytes"));
    }
    if (ec == bhttp::error::header_limit) {
      return reject(431, Error(ErrorCode::kPayloadTooLarge,
                               "the request headers are larger than the limit of " +
                                   std::to_string(limits().max_header_bytes) + " bytes"));
    }
    bool client_left = ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message;
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
        !client_left) {
      return reject(400, Error(ErrorCode::kBadRequest, "malformed HTTP request: " + ec.message()));
    }
    shutdown();  // the client closed or reset the connection: nobody to answer
  }

  void reject(int status, const Error& error) {
    Response response;
    try {
      response = error_response(error, exchange_.correlation_id);
      response.status = status;
    } catch (const std::exception& failure) {
      exchange_.error = failure.what();
      response = internal_error_response();
    }
    send(std::move(response), /*keep_alive=*/false, /*head=*/false);
  }

  // --- Handling -----------------------------------------------------------------------------

  Request to_request(bhttp::request<bhttp::string_body>& message) {
    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(message.body());
    request.correlation_id = correlation_id_for(message["X-Request-ID"]);
    return request;
  }

  // Runs the route's handler; every failure becomes an error envelope.
  Response respond(Request& request) {
    try {
      context_->guard().check(request);
      RequestTarget target = parse_request_target(request.target);
      request.path = std::move(target.path);
      request.query = std::move(target.query);
      exchange_.route = request.path;
      const Route& route = context_->router().match(request);
      exchange_.route = route.pattern;
      context_->router().check_access(request, route);
      return route.handler(request);
    } catch (const Error& error) {
      if (http_status_for(error.code()) >= 500) exchange_.error = error.what();
      return error_response(error, request.correlation_id);
    } catch (const std::exception& error) {
      exchange_.error = error.what();
    } catch (...) {
      exchange_.error = "an exception that is not a std::exception";
    }
    return internal_error_response();
  }

  // The envelope of an unexpected failure; made without anything from the request, so making it
  // cannot fail again.
  Response internal_error_response() const {
    Response response;
    response.status = 500;
    response.body = R"({"code":"internal","message":"internal server error","details":{},)"
                    R"("correlation_id":")" + exchange_.correlation_id + R"("})";
    return response;
  }

  void handle_request() {
    auto& message = parser_->get();
    Request request;
    Response response;
    try {
      request = to_request(message);
      exchange_.method = request.method;
      exchange_.route = request.target.substr(0, request.target.find('?'));  // no ?token= in logs
      exchange_.correlation_id = request.correlation_id;
      response = respond(request);
    } catch (const std::exception& error) {  // out of memory, or an envelope that cannot be made
      exchange_.error = error.what();
      response = internal_error_response();
    }
    if (response.websocket) {
      if (boost::beast::websocket::is_upgrade(message)) return upgrade(std::move(response));
      response = upgrade_required();
    }
    bool keep_alive = message.keep_alive() && !context_->stopping();
    bool head = request.method == "HEAD";
    if (response.stream && !head) return start_stream(std::move(response));
    send(std::move(response), keep_alive, head);
  }

  // --- WebSocket upgrades --------------------------------------------------------------------

  // The WebSocket takes the connection over; this session ends without touching it again.
  void upgrade(Response response) {
    closed_ = true;
    stream_.expires_never();
    WebSocketUpgrade upgrade{parser_->release(), std::move(response.websocket),
                             exchange_.to_record(), exchange_.started};
    start_websocket_session(std::move(stream_), std::move(upgrade), context_);
  }

  // The answer of a WebSocket route to a request that did not ask for the upgrade.
  Response upgrade_required() const {
    Response response = error_response(
        Error(ErrorCode::kBadRequest,
              "this address speaks WebSocket only: connect with a WebSocket client (a GET request "
              "with \"Upgrade: websocket\")"),
        exchange_.correlation_id);
    response.status = 426;
    response.headers.emplace_back("Upgrade", "websocket");
    response.headers.emplace_back("Connection", "Upgrade");
    return response;
  }

  // --- Writing a response -------------------------------------------------------------------

  template <class Message>
  void set_common_headers(Message& message, const Response& response) const {
    if (!response.content_type.empty()) {
      message.set(bhttp::field::content_type, response.content_type);
    }
    for (const auto& [name, value] : response.headers) message.insert(name, value);
    message.set("X-Request-ID", exchange_.correlation_id);
  }

  // A client that takes none of our bytes for the idle timeout is gone.
  void expire_writes_after_idle_timeout() {
    stream_.expires_after(Milliseconds(limits().idle_timeout_ms));
  }

  void send(Response response, bool keep_alive, bool head) {
    exchange_.status = response.status;
    response_.emplace(static_cast<bhttp::status>(response.status), 11);
    set_common_headers(*response_, response);
    response_->keep_alive(keep_alive);
    response_->body() = std::move(response.body);
    response_->prepare_payload();
    if (head) response_->body().clear();  // Content-Length stays what GET would send
    expire_writes_after_idle_timeout();
    bhttp::async_write(stream_, *response_,
                       [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                         self->response_.reset();
                         self->record();
                         if (ec) return self->shutdown();
                         if (!keep_alive) return self->close_gracefully();
                         self->wait_for_request();
                       });
  }

  void record() { context_->report(exchange_.to_record()); }

  // --- Streaming ----------------------------------------------------------------------------

  void start_stream(Response response) {
    exchange_.status = response.status;
    source_ = std::move(response.stream);
    std::weak_ptr<Session> weak = weak_from_this();
    waker_ = std::make_shared<StreamWaker>(stream_.get_executor(), [weak] {
      if (auto self = weak.lock()) self->on_wakeup();
    });
    try {
      source_->set_wakeup([waker = waker_] { waker->wake(); });
    } catch (const std::exception& error) {
      exchange_.error = error.what();
      source_.reset();
      return send(error_response(Error(ErrorCode::kInternal, "internal server error"),
                                 exchange_.correlation_id),
                  false, false);
    }
    chunked_ = parser_->get().version() >= 11;
    stream_header_.emplace(static_cast<bhttp::status>(response.status), 11);
    set_common_headers(*stream_header_, response);
    stream_header_->keep_alive(false);
    stream_header_->chunked(chunked_);
    stream_serializer_.emplace(*stream_header_);
    expire_writes_after_idle_timeout();
    bhttp::async_write_header(stream_, *stream_serializer_,
                              [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                if (ec) return self->end_stream();
                                self->watch_for_disconnect();
                                self->poll_stream();
                              });
  }

  // Reads (and drops) whatever the client sends while streaming, to notice when it leaves.
  void watch_for_disconnect() {
    stream_.socket().async_read_some(
        asio::buffer(discard_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (!self->source_) return;
          if (ec) return self->end_stream();
          self->watch_for_disconnect();
        });
  }

  void poll_stream() {
    if (!source_) return;
    bool finished = false;
    std::string chunk;
    try {
      chunk = source_->next_chunk(finished);
    } catch (const std::exception& error) {
      exchange_.error = error.what();
      return end_stream();
    }
    if (!chunk.empty()) return write_chunk(std::move(chunk), finished);
    if (finished) return write_last_chunk();
    wait_for_wakeup();
  }

  void write_chunk(std::string chunk, bool finished) {
    chunk_ = std::move(chunk);
    auto on_written = [self = shared_from_this(), finished](beast::error_code ec, std::size_t) {
      if (ec) return self->end_stream();
      if (finished) return self->write_last_chunk();
      self->poll_stream();
    };
    expire_writes_after_idle_timeout();
    if (chunked_) {
      asio::async_write(stream_, bhttp::make_chunk(asio::buffer(chunk_)), std::move(on_written));
    } else {
      asio::async_write(stream_, asio::buffer(chunk_), std::move(on_written));
    }
  }

  void write_last_chunk() {
    if (!chunked_) return end_stream();
    expire_writes_after_idle_timeout();
    asio::async_write(
        stream_, bhttp::make_chunk_last(),
        [self = shared_from_this()](beast::error_code, std::size_t) { self->end_stream(); });
  }

  void wait_for_wakeup() {
    if (wake_pending_) {
      wake_pending_ = false;
      asio::post(stream_.get_executor(), [self = shared_from_this()] { self->poll_stream(); });
      return;
    }
    polling_timer_armed_ = true;
    poll_timer_.expires_after(Milliseconds(limits().stream_poll_ms));
    poll_timer_.async_wait([self = shared_from_this()](beast::error_code) {
      self->polling_timer_armed_ = false;
      self->wake_pending_ = false;
      self->poll_stream();
    });
  }

  void on_wakeup() {
    if (!source_) return;
    if (polling_timer_armed_) {
      poll_timer_.cancel();
    } else {
      wake_pending_ = true;  // busy reading or writing: poll again right after
    }
  }

  // Drops the source and closes the connection; the request is recorded once.
  void end_stream() {
    if (!source_) return;
    waker_->disable();
    source_.reset();
    poll_timer_.cancel();
    beast::error_code ignored;
    stream_.socket().cancel(ignored);  // the disconnect watcher: close_gracefully() reads next
    record();
    close_gracefully();
  }

  // --- Closing ------------------------------------------------------------------------------

  // Stops sending, then drops what the client still sends for a moment before closing.
  void close_gracefully() {
    if (closed_) return;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerOnClose);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->shutdown();
                              self->drain();
                            });
  }

  void shutdown() {
    if (closed_) return;
    closed_ = true;
    request_timer_.cancel();
    poll_timer_.cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<ServerContext> context_;
  beast::flat_buffer buffer_;
  bool closed_ = false;

  // The request being read.
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  asio::steady_timer request_timer_;
  bool reading_ = false;
  std::uint64_t request_number_ = 0;
  bool request_timed_out_ = false;
  std::optional<bhttp::response<bhttp::empty_body>> interim_;  // "100 Continue"
  Exchange exchange_;

  // The response being written.
  std::optional<bhttp::response<bhttp::string_body>> response_;

  // The stream being sent.
  std::shared_ptr<StreamSource> source_;
  std::shared_ptr<StreamWaker> waker_;
  std::optional<bhttp::response<bhttp::empty_body>> stream_header_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> stream_serializer_;
  bool chunked_ = true;
  std::string chunk_;
  asio::steady_timer poll_timer_;
  bool polling_timer_armed_ = false;
  bool wake_pending_ = false;
  std::array<char, 1024> discard_{};
};

}  // namespace

struct Server::Impl {
  Impl(const Router& router, ServerLimits limits,
       std::function<void(const RequestRecord&)> on_request)
      : context(std::make_shared<ServerContext>(router, limits, std::move(on_request))),
        io(std::max(1, limits.threads)),
        acceptor(asio::make_strand(io)),
        accept_retry_timer(acceptor.get_executor()) {}

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (!acceptor.is_open()) return;
      if (ec) {
        // Out of file descriptors or a connection reset before accept: try again shortly.
        accept_retry_timer.expires_after(kAcceptRetryDelay);
        accept_retry_timer.async_wait([this](beast::error_code ec) {
          if (!ec) accept();
        });
        return;
      }
      close_on_exec(socket.native_handle());
      std::make_shared<Session>(std::move(socket), context)->start();
      accept();
    });
  }

  std::shared_ptr<ServerContext> context;
  asio::io_context io;
  tcp::acceptor acceptor;
  asio::steady_timer accept_retry_timer;
  std::vector<std::thread> threads;
  uint16_t port = 0;
};

Server::Server(const Router& router, ServerLimits limits,
               std::function<void(const RequestRecord&)> on_request)
    : impl_(std::make_unique<Impl>(router, limits, std::move(on_request))) {}

Server::~Server() { stop(); }

void Server::start(const std::string& host, uint16_t port) {
  if (!impl_->threads.empty() || impl_->context->stopping()) {
    throw Error(ErrorCode::kInternal, "the HTTP server can be started only once");
  }
  std::string where = host + ":" + std::to_string(port);
  beast::error_code ec;
  tcp::resolver resolver(impl_->io);
  auto endpoints = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) {
    throw Error(ErrorCode::kUnavailable, "cannot listen on " + where + ": " +
                                             (ec ? ec.message() : "the host has no address"));
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  tcp::acceptor& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) close_on_exec(acceptor.native_handle());
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    acceptor.close(ignored);
    throw Error(ErrorCode::kUnavailable, "cannot listen on " + where + ": " + ec.message());
  }
  impl_->port = acceptor.local_endpoint().port();
  impl_->context->set_guard(RequestGuard(impl_->context->limits().allowed_hosts,
                                         endpoint.address().is_loopback()));
  impl_->accept();
  int threads = std::max(1, impl_->context->limits().threads);
  for (int i = 0; i < threads; ++i) {
    impl_->threads.emplace_back([this] { impl_->io.run(); });
  }
}

uint16_t Server::port() const { return impl_->port; }

void Server::stop() {
  std::vector<std::weak_ptr<ServerConnection>> connections = impl_->context->begin_stop();
  asio::post(impl_->acceptor.get_executor(), [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->accept_retry_timer.cancel();
  });
  for (const auto& weak : connections) {
    if (auto connection = weak.lock()) connection->close();
  }
  // Every connection is closing, so the io threads run out of work and return.
  for (std::thread& thread : impl_->threads) thread.join();
  impl_->threads.clear();
}

}  // namespace df::http

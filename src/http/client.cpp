// A small blocking HTTP/1.1 client (plain http://): one request per connection, SSE streams.
#include "http/client.h"

#include <array>
#include <chrono>
#include <optional>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>

#include "core/error.h"
#include "http/event_stream_parser.h"
#include "http/json_text.h"

namespace df::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Milliseconds = std::chrono::milliseconds;

// One connection to the server. Every step runs asynchronously on a private io_context so the
// stream's timer can bound it, and the caller waits for it to finish.
class Connection {
 public:
  Connection(const std::string& host, const std::string& port, int timeout_ms)
      : host_(host), port_(port), timeout_(timeout_ms), stream_(io_) {
    tcp::resolver resolver(io_);
    tcp::resolver::results_type endpoints;
    beast::error_code ec;
    resolver.async_resolve(host, port, [&](beast::error_code result, auto found) {
      ec = result;
      endpoints = std::move(found);
    });
    io_.run_for(timeout_);
    if (!io_.stopped()) {  // still resolving
      resolver.cancel();
      finish();
      ec = asio::error::timed_out;
    }
    check(ec);
    stream_.expires_after(timeout_);
    stream_.async_connect(endpoints, [&](beast::error_code result, auto) { ec = result; });
    finish();
    check(ec);
    connected_ = true;
  }

  void write(bhttp::request<bhttp::string_body>& request) {
    beast::error_code ec;
    stream_.expires_after(timeout_);
    bhttp::async_write(stream_, request,
                       [&](beast::error_code result, std::size_t) { ec = result; });
    finish();
    check(ec);
  }

  // Reads until `parser` has the header, or the whole message when `whole` is set.
  template <class Parser>
  void read(Parser& parser, bool whole) {
    beast::error_code ec;
    stream_.expires_after(timeout_);
    auto done = [&](beast::error_code result, std::size_t) { ec = result; };
    if (whole) {
      bhttp::async_read(stream_, buffer_, parser, done);
    } else {
      bhttp::async_read_header(stream_, buffer_, parser, done);
    }
    finish();
    check(ec);
  }

  // Reads what the server sent next into the parser's body buffer (at least one byte of progress).
  template <class Parser>
  void read_some(Parser& parser) {
    beast::error_code ec;
    stream_.expires_after(timeout_);
    bhttp::async_read_some(stream_, buffer_, parser,
                           [&](beast::error_code result, std::size_t) { ec = result; });
    finish();
    if (ec == bhttp::error::need_buffer) return;  // the body buffer is full: not an error
    check(ec);
  }

 private:
  void finish() {
    io_.restart();
    io_.run();
  }

  void check(beast::error_code ec) const {
    if (!ec) return;
    std::string reason = ec == beast::error::timeout || ec == asio::error::timed_out
                             ? "no answer within " + std::to_string(timeout_.count()) + " ms"
                             : ec.message();
    std::string server = "http://" + host_ + ":" + port_;
    throw Error(ErrorCode::kUnavailable,
                connected_ ? "the connection to " + server + " broke off: " + reason
                           : "cannot reach " + server + ": " + reason);
  }

  std::string host_;
  std::string port_;
  Milliseconds timeout_;
  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bool connected_ = false;
};

std::string host_header(const std::string& host, const std::string& port) {
  bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + port;
}

template <class Fields>
std::vector<std::pair<std::string, std::string>> header_list(const Fields& fields) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& field : fields) {
    headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return headers;
}

}  // namespace

std::string ClientResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (boost::algorithm::iequals(key, name)) return value;
  }
  return "";
}

nlohmann::json ClientResponse::json() const { return parse_json_text(body, "the response body"); }

Client::Client(std::string base_url, int timeout_ms) : timeout_ms_(timeout_ms) {
  if (base_url.ends_with('/')) base_url.pop_back();
  auto url = boost::urls::parse_absolute_uri(base_url);
  if (!url || url->scheme() != "http" || !url->has_authority() || url->host().empty() ||
      url->has_userinfo() || !url->path().empty() || url->has_query()) {
    throw Error(ErrorCode::kInvalidArgument,
                "server URL '" + base_url + "' is not of the form http://host[:port]");
  }
  host_ = url->host_address();
  port_ = url->has_port() ? std::string(url->port()) : "80";
}

ClientResponse Client::request(const std::string& method, const std::string& target,
                               const std::string& body,
                               const std::vector<std::pair<std::string, std::string>>& headers) {
  if (!target.starts_with('/')) {
    throw Error(ErrorCode::kInvalidArgument, "request target '" + target + "' must start with '/'");
  }
  Connection connection(host_, port_, timeout_ms_);
  bhttp::request<bhttp::string_body> message;
  message.method_string(method);
  message.target(target);
  message.version(11);
  message.set(bhttp::field::host, host_header(host_, port_));
  message.set(bhttp::field::user_agent, "dreamforge");
  message.set(bhttp::field::connection, "close");
  if (!api_key_.empty()) message.set(bhttp::field::authorization, "Bearer " + api_key_);
  for (const auto& [name, value] : headers) message.set(name, value);
  message.body() = body;
  message.prepare_payload();
  connection.write(message);

  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(boost::none);
  parser.skip(method == "HEAD");
  connection.read(parser, /*whole=*/true);
  ClientResponse response;
  response.status = static_cast<int>(parser.get().result_int());
  response.headers = header_list(parser.get());
  response.body = std::move(parser.get().body());
  return response;
}

ClientResponse Client::post_json(const std::string& target, const nlohmann::json& body,
                                 const std::vector<std::pair<std::string, std::string>>& headers) {
  std::vector<std::pair<std::string, std::string>> all_headers = {
      {"Content-Type", "application/json"}};
  all_headers.insert(all_headers.end(), headers.begin(), headers.end());
  return request("POST", target, body.dump(), all_headers);
}

int Client::stream_events(const std::string& target,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          const std::function<bool(const ServerSentEvent&)>& on_event,
                          std::string* error_body) {
  if (!target.starts_with('/')) {
    throw Error(ErrorCode::kInvalidArgument, "request target '" + target + "' must start with '/'");
  }
  Connection connection(host_, port_, timeout_ms_);
  bhttp::request<bhttp::string_body> message(bhttp::verb::get, target, 11);
  message.set(bhttp::field::host, host_header(host_, port_));
  message.set(bhttp::field::user_agent, "dreamforge");
  message.set(bhttp::field::accept, "text/event-stream");
  message.set(bhttp::field::connection, "close");
  if (!api_key_.empty()) message.set(bhttp::field::authorization, "Bearer " + api_key_);
  for (const auto& [name, value] : headers) message.set(name, value);
  connection.write(message);

  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(boost::none);
  connection.read(parser, /*whole=*/false);
  int status = static_cast<int>(parser.get().result_int());
  EventStreamParser events;
  std::string body;
  std::array<char, 8192> piece;
  while (!parser.is_done()) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    connection.read_some(parser);
    std::string_view bytes(piece.data(), piece.size() - parser.get().body().size);
    if (status != 200) {
      body.append(bytes);
    } else if (!events.feed(bytes, on_event)) {
      break;
    }
  }
  if (status != 200 && error_body) *error_body = std::move(body);
  return status;
}

}  // namespace df::http

// Redis connections over hiredis: one connection (timeouts, AUTH, SELECT), a pool that drops
// broken ones, and helpers that read replies.
#pragma once

#include <hiredis/hiredis.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace df::queue {

// Where Redis listens and how to log in.
struct RedisEndpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string username;  // "" for the default user
  std::string password;  // "" when Redis asks for none
};

struct RedisReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;

// True for an error reply whose text starts with `code` ("NOGROUP", "BUSYGROUP", ...).
bool is_error_reply(const redisReply& reply, std::string_view code);
// The text of a string, status or error reply ("" for other kinds).
std::string reply_text(const redisReply& reply);
// The integer of an integer reply; throws Error(kInternal) for anything else.
long long reply_integer(const redisReply& reply, std::string_view what);

// One connection to Redis. Every failure to talk to the server throws Error(kUnavailable) and
// leaves the connection broken; error replies come back as replies.
class RedisConnection {
 public:
  // Connects (2 s timeout), logs in and selects the database; throws Error(kUnavailable).
  explicit RedisConnection(const RedisEndpoint& endpoint);
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;
  ~RedisConnection();

  RedisReply command(const std::vector<std::string>& args);
  // command(), throwing an Error for an error reply; `what` names the operation in the message.
  RedisReply call(const std::vector<std::string>& args, std::string_view what);
  // The reply, or for an error reply an Error: kUnavailable when the server cannot serve now
  // (loading, busy, read-only, login), kInternal when it refused the command.
  RedisReply checked(RedisReply reply, std::string_view what) const;
  // Sends all commands before reading any reply (one round trip); replies in command order.
  std::vector<RedisReply> pipeline(const std::vector<std::vector<std::string>>& commands);

  // True once talking to the server failed: the connection must not be used again.
  bool broken() const { return broken_; }
  // True when the server closed the connection while it was idle (a restart, an idle timeout).
  bool closed_by_server() const;

 private:
  [[noreturn]] void fail(std::string_view doing);
  RedisReply read_reply();

  RedisEndpoint endpoint_;
  redisContext* context_ = nullptr;
  bool broken_ = false;
};

// Connections shared by threads: borrow one per operation; it goes back to the pool when the
// borrow ends unless it broke.
class RedisPool {
 public:
  class Borrowed {
   public:
    Borrowed(RedisPool& pool, std::unique_ptr<RedisConnection> connection)
        : pool_(&pool), connection_(std::move(connection)) {}
    Borrowed(Borrowed&& other) noexcept = default;
    Borrowed& operator=(Borrowed&&) = delete;
    ~Borrowed();
    RedisConnection& operator*() const { return *connection_; }
    RedisConnection* operator->() const { return connection_.get(); }

   private:
    RedisPool* pool_;
    std::unique_ptr<RedisConnection> connection_;
  };

  explicit RedisPool(RedisEndpoint endpoint, std::size_t max_idle = 16);

  // An idle connection the server has not closed, or a new one; throws Error(kUnavailable).
  Borrowed borrow();

 private:
  void give_back(std::unique_ptr<RedisConnection> connection);

  RedisEndpoint endpoint_;
  std::size_t max_idle_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<RedisConnection>> idle_;
};

}  // namespace df::queue

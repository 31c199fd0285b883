// Redis connections over hiredis: connect, log in, run commands and pipelines, pool them.
#include "queue/redis_connection.h"

#include <poll.h>
#include <sys/time.h>

#include <array>
#include <utility>

#include "core/error.h"

namespace df::queue {
namespace {

constexpr timeval kConnectTimeout{2, 0};
// Above the longest BLOCK a claim asks for, so that a wait is never mistaken for a dead server.
constexpr timeval kCommandTimeout{5, 0};

// Error replies that say the server cannot serve now (starting, busy, read-only replica, login),
// as opposed to a command the queue got wrong.
constexpr std::array<std::string_view, 11> kUnavailableReplies = {
    "LOADING",     "BUSY",     "MASTERDOWN", "READONLY", "NOAUTH",    "WRONGPASS",
    "CLUSTERDOWN", "TRYAGAIN", "MISCONF",    "OOM",      "NOREPLICAS"};

std::string describe(const RedisEndpoint& endpoint) {
  return "redis at " + endpoint.host + ":" + std::to_string(endpoint.port);
}

Error reply_error(const RedisEndpoint& endpoint, const redisReply& reply, std::string_view what) {
  const std::string text = reply_text(reply);
  for (std::string_view code : kUnavailableReplies) {
    if (is_error_reply(reply, code)) {
      return Error(ErrorCode::kUnavailable,
                   describe(endpoint) + " cannot serve " + std::string(what) + ": " + text);
    }
  }
  return Error(ErrorCode::kInternal,
               describe(endpoint) + " refused " + std::string(what) + ": " + text);
}

}  // namespace

bool is_error_reply(const redisReply& reply, std::string_view code) {
  if (reply.type != REDIS_REPLY_ERROR) return false;
  const std::string_view text(reply.str, reply.len);
  return text.substr(0, code.size()) == code &&
         (text.size() == code.size() || text[code.size()] == ' ');
}

std::string reply_text(const redisReply& reply) {
  switch (reply.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return std::string(reply.str, reply.len);
    default:
      return "";
  }
}

long long reply_integer(const redisReply& reply, std::string_view what) {
  if (reply.type != REDIS_REPLY_INTEGER) {
    throw Error(ErrorCode::kInternal,
                "redis answered " + std::string(what) + " with something other than a number");
  }
  return reply.integer;
}

RedisConnection::RedisConnection(const RedisEndpoint& endpoint) : endpoint_(endpoint) {
  context_ = redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, kConnectTimeout);
  if (context_ == nullptr) {
    throw Error(ErrorCode::kUnavailable, describe(endpoint) + " unreachable: out of memory");
  }
  if (context_->err != 0) {
    const std::string reason = context_->errstr;
    redisFree(context_);
    context_ = nullptr;
    throw Error(ErrorCode::kUnavailable, describe(endpoint) + " unreachable: " + reason);
  }
  redisSetTimeout(context_, kCommandTimeout);
  redisEnableKeepAlive(context_);
  try {
    if (!endpoint.password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!endpoint.username.empty()) auth.push_back(endpoint.username);
      auth.push_back(endpoint.password);
      call(auth, "the login");
    }
    if (endpoint.db != 0) call({"SELECT", std::to_string(endpoint.db)}, "selecting the database");
  } catch (...) {
    redisFree(context_);
    context_ = nullptr;
    throw;
  }
}

RedisConnection::~RedisConnection() {
  if (context_ != nullptr) redisFree(context_);
}

void RedisConnection::fail(std::string_view doing) {
  broken_ = true;
  const std::string reason = context_->err != 0 ? context_->errstr : "connection lost";
  throw Error(ErrorCode::kUnavailable,
              describe(endpoint_) + " unreachable while " + std::string(doing) + ": " + reason);
}

RedisReply RedisConnection::read_reply() {
  void* reply = nullptr;
  if (redisGetReply(context_, &reply) != REDIS_OK || reply == nullptr) fail("reading a reply");
  return RedisReply(static_cast<redisReply*>(reply));
}

RedisReply RedisConnection::command(const std::vector<std::string>& args) {
  return std::move(pipeline({args}).front());
}

RedisReply RedisConnection::call(const std::vector<std::string>& args, std::string_view what) {
  return checked(command(args), what);
}

RedisReply RedisConnection::checked(RedisReply reply, std::string_view what) const {
  if (reply->type == REDIS_REPLY_ERROR) throw reply_error(endpoint_, *reply, what);
  return reply;
}

std::vector<RedisReply> RedisConnection::pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  if (broken_) fail("sending a command");
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& args : commands) {
    argv.clear();
    lengths.clear();
    for (const auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      fail("sending a command");
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) replies.push_back(read_reply());
  return replies;
}

bool RedisConnection::closed_by_server() const {
  pollfd descriptor{context_->fd, POLLIN | POLLRDHUP, 0};
  return ::poll(&descriptor, 1, 0) != 0;
}

RedisPool::Borrowed::~Borrowed() {
  if (connection_) pool_->give_back(std::move(connection_));
}

RedisPool::RedisPool(RedisEndpoint endpoint, std::size_t max_idle)
    : endpoint_(std::move(endpoint)), max_idle_(max_idle) {}

RedisPool::Borrowed RedisPool::borrow() {
  {
    std::lock_guard lock(mutex_);
    while (!idle_.empty()) {
      std::unique_ptr<RedisConnection> connection = std::move(idle_.back());
      idle_.pop_back();
      if (!connection->closed_by_server()) return Borrowed(*this, std::move(connection));
    }
  }
  return Borrowed(*this, std::make_unique<RedisConnection>(endpoint_));
}

void RedisPool::give_back(std::unique_ptr<RedisConnection> connection) {
  std::lock_guard lock(mutex_);
  if (connection->broken()) {
    // The server went away or stalled: the idle connections are most likely dead as well.
    idle_.clear();
    return;
  }
  if (idle_.size() < max_idle_) idle_.push_back(std::move(connection));
}

}  // namespace df::queue

// Unit tests for the terminal client's server links: ZeroMQ on loopback, and the /v1 translation.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include <zmq.hpp>

#include "api/job_views.h"
#include "core/error.h"
#include "http/router.h"
#include "http/server.h"
#include "pixels/msgpack_codec.h"
#include "loopback_port.h"
#include "tui/server_link.h"
#include "tui/v1_translation.h"

namespace df::tui {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string loopback_address() {
  return "tcp://127.0.0.1:" + std::to_string(test::free_loopback_port());
}

// A DGX-Pixels server on loopback: a ROUTER socket (what a REP socket is underneath) answers each
// request it can parse (generate: job_accepted with 12.5 s; anything else: pong) unless told to
// stay silent, and a PUB socket sends what the test gives it.
class StandInServer {
 public:
  StandInServer() : StandInServer(loopback_address(), loopback_address()) {}
  StandInServer(std::string req_address, std::string pub_address)
      : req_address_(std::move(req_address)),
        pub_address_(std::move(pub_address)),
        router_(context_, zmq::socket_type::router),
        pub_(context_, zmq::socket_type::pub) {
    router_.set(zmq::sockopt::linger, 0);
    pub_.set(zmq::sockopt::linger, 0);
    router_.bind(req_address_);
    pub_.bind(pub_address_);
    thread_ = std::thread([this] { serve(); });
  }

  ~StandInServer() {
    stop_ = true;
    thread_.join();
  }

  void set_silent(bool silent) { silent_ = silent; }
  void publish(const std::string& bytes) { pub_.send(zmq::buffer(bytes), zmq::send_flags::none); }
  const std::string& req_address() const { return req_address_; }
  const std::string& pub_address() const { return pub_address_; }

 private:
  void serve() {
    while (!stop_) {
      zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) == 0) continue;
      zmq::message_t identity, empty, body;
      (void)router_.recv(identity);
      (void)router_.recv(empty);
      (void)router_.recv(body);
      if (silent_) continue;
      const std::string reply = pixels::encode_msgpack(answer(body.to_string_view()));
      router_.send(identity, zmq::send_flags::sndmore);
      router_.send(zmq::message_t(), zmq::send_flags::sndmore);
      router_.send(zmq::buffer(reply), zmq::send_flags::none);
    }
  }

  static nlohmann::ordered_json answer(std::string_view bytes) {
    const pixels::Request request = pixels::parse_request(pixels::decode_msgpack(bytes));
    if (const auto* generate = std::get_if<pixels::GenerateRequest>(&request)) {
      return pixels::job_accepted(generate->id, 12.5);
    }
    return pixels::pong();
  }

  std::string req_address_;
  std::string pub_address_;
  zmq::context_t context_;
  zmq::socket_t router_;  // used by the server's thread only
  zmq::socket_t pub_;     // used by the test's thread only
  std::atomic<bool> silent_ = false;
  std::atomic<bool> stop_ = false;
  std::thread thread_;
};

// Publishes `update` until the link has received it (a subscription takes a moment to reach the
// publisher, and what is sent before is dropped), giving up after ten seconds; returns the
// updates of its type that arrived.
std::vector<json> first_updates(StandInServer& server, ServerLink& link,
                                const nlohmann::ordered_json& update) {
  const std::string bytes = pixels::encode_msgpack(update);
  const std::string type = update["type"].get<std::string>();
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  std::vector<json> arrived;
  while (arrived.empty() && Clock::now() < give_up) {
    server.publish(bytes);
    for (auto& received : link.poll_updates(50)) {
      if (pixels::message_type(received) == type) arrived.push_back(std::move(received));
    }
  }
  return arrived;
}

TEST(ServerLinks, ZmqRequestRoundTrip) {
  StandInServer server;
  const auto link = open_zmq_link(server.req_address(), server.pub_address());
  EXPECT_EQ(link->describe(), "zmq " + server.req_address());
  EXPECT_EQ(pixels::message_type(link->request(pixels::PingRequest{})), "pong");
  pixels::GenerateRequest generate;
  generate.id = "client-job-7";
  generate.prompt = "a lighthouse";
  generate.model = "sdxl";
  generate.width = generate.height = 64;
  generate.steps = 4;
  generate.cfg_scale = 7.5;
  const json accepted = link->request(generate);
  EXPECT_EQ(pixels::message_type(accepted), "job_accepted");
  EXPECT_EQ(pixels::string_field(accepted, "job_id"), "client-job-7");
  EXPECT_DOUBLE_EQ(pixels::number_field(accepted, "estimated_time_s"), 12.5);
}

TEST(ServerLinks, ZmqUpdatesArriveInOrderAndUndecodableFramesAreCounted) {
  StandInServer server;
  const auto link = open_zmq_link(server.req_address(), server.pub_address());
  const auto first = first_updates(server, *link, pixels::job_started("j1", 1));
  ASSERT_FALSE(first.empty()) << "no update arrived";
  EXPECT_EQ(pixels::message_type(first.front()), "job_started");
  EXPECT_EQ(link->undecodable_updates(), 0);

  // The subscription is in place now: nothing sent from here on is dropped.
  server.publish("\xc1 is a reserved byte");
  server.publish(pixels::encode_msgpack(nlohmann::ordered_json::array({"no", "map"})));
  server.publish(pixels::encode_msgpack(pixels::job_finished("j1", true, 2.5)));
  server.publish(pixels::encode_msgpack(pixels::job_error("j1", "out of memory")));
  std::vector<json> updates;
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  while (updates.size() < 2 && Clock::now() < give_up) {
    for (auto& update : link->poll_updates(100)) {
      if (pixels::message_type(update) != "job_started") updates.push_back(std::move(update));
    }
  }
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(pixels::message_type(updates[0]), "job_finished");
  EXPECT_TRUE(pixels::bool_field(updates[0], "success"));
  EXPECT_DOUBLE_EQ(pixels::number_field(updates[0], "duration_s"), 2.5);
  EXPECT_EQ(pixels::message_type(updates[1]), "job_error");
  EXPECT_EQ(pixels::string_field(updates[1], "error"), "out of memory");
  EXPECT_EQ(link->undecodable_updates(), 2);
}

TEST(ServerLinks, ZmqSilentServerIsUnavailableAndTheNextRequestWorksWhenItAnswers) {
  StandInServer server;
  server.set_silent(true);
  const auto link = open_zmq_link(server.req_address(), server.pub_address(), 300);
  for (int attempt = 0; attempt < 2; ++attempt) {  // the replaced socket times out alike
    try {
      link->request(pixels::PingRequest{});
      FAIL() << "a silent server answered";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
      EXPECT_EQ(std::string(error.what()),
                "no answer from " + server.req_address() + " within 0.3 s");
    }
  }
  server.set_silent(false);
  EXPECT_EQ(pixels::message_type(link->request(pixels::PingRequest{})), "pong");
}

TEST(ServerLinks, ZmqLinkFindsARestartedServerAgain) {
  auto server = std::make_unique<StandInServer>();
  const std::string req = server->req_address();
  const std::string pub = server->pub_address();
  const auto link = open_zmq_link(req, pub);
  ASSERT_FALSE(first_updates(*server, *link, pixels::pong()).empty());
  server.reset();
  server = std::make_unique<StandInServer>(req, pub);
  EXPECT_EQ(pixels::message_type(link->request(pixels::PingRequest{})), "pong");
  const auto updates = first_updates(*server, *link, pixels::job_started("j2", 2));
  ASSERT_FALSE(updates.empty()) << "no update from the restarted server";
  EXPECT_EQ(pixels::string_field(updates.back(), "job_id"), "j2");
}

TEST(ServerLinks, ZmqWithNoServerIsUnavailable) {
  const auto link = open_zmq_link(loopback_address(), loopback_address(), 200);
  try {
    link->request(pixels::StatusRequest{});
    FAIL() << "nothing listens, yet it answered";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  }
  EXPECT_TRUE(link->poll_updates(0).empty());
}

pixels::GenerateRequest plain_generate() {
  pixels::GenerateRequest request;
  request.id = "abc";
  request.prompt = "a red fox";
  request.model = "sd_xl_base_1.0";
  request.width = 832;
  request.height = 1216;
  request.steps = 30;
  request.cfg_scale = 6.5;
  request.batch_size = 3;
  return request;
}

TEST(ServerLinks, GenerateBecomesAV1JobBody) {
  EXPECT_EQ(v1_job_body(plain_generate()), json::parse(R"({
    "type": "generate", "prompt": "a red fox", "model_id": "sd_xl_base_1.0", "width": 832,
    "height": 1216, "steps": 30, "guidance": 6.5, "count": 3})"));
  pixels::GenerateRequest full = plain_generate();
  full.seed = 42;
  full.negative_prompt = "blurry";
  full.lora = "pixel_art.safetensors";
  const json body = v1_job_body(full);
  EXPECT_EQ(body["seed"], 42);
  EXPECT_EQ(body["negative_prompt"], "blurry");
  ASSERT_EQ(body["loras"].size(), 1u);
  EXPECT_EQ(body["loras"][0]["name"], "pixel_art.safetensors");
  EXPECT_DOUBLE_EQ(body["loras"][0]["strength_model"].get<double>(), 1.0);
}

TEST(ServerLinks, AnimationsAndTilesetsNeedTheZmqEndpoint) {
  pixels::GenerateRequest animation = plain_generate();
  animation.animation_frames = 8;
  pixels::GenerateRequest tileset = plain_generate();
  tileset.tileset_grid = std::pair{4, 4};
  for (const auto& request : {animation, tileset}) {
    try {
      v1_job_body(request);
      FAIL() << "expected an error";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kUnsupported);
    }
  }
}

TEST(ServerLinks, V1EventJsonBecomesTheEventItWasMadeFrom) {
  Event event;
  event.id = 17;
  event.job_id = "job-1";
  event.type = "progress";
  event.item_index = 2;
  event.message = "step 3/8";
  event.plain = "Drawing image 3";
  event.data = {{"step", 3}, {"total_steps", 8}, {"progress", 0.375}};
  event.created_ms = 1795000000123;
  const Event read = event_from_v1_json(api::event_json(event));
  EXPECT_EQ(read.id, 17);
  EXPECT_EQ(read.job_id, "job-1");
  EXPECT_EQ(read.type, "progress");
  EXPECT_EQ(read.item_index, 2);
  EXPECT_EQ(read.message, "step 3/8");
  EXPECT_EQ(read.plain, "Drawing image 3");
  EXPECT_EQ(read.data, event.data);
  EXPECT_EQ(read.created_ms, 1795000000123);

  Event finished;
  finished.id = 18;
  finished.type = "job_finished";
  finished.code = "oom";
  finished.data = {{"status", "failed"}};
  const Event read_finished = event_from_v1_json(api::event_json(finished));
  EXPECT_EQ(read_finished.code, "oom");
  EXPECT_FALSE(read_finished.item_index.has_value());
  EXPECT_EQ(read_finished.data["status"], "failed");
  EXPECT_EQ(read_finished.created_ms, 0);
}

TEST(ServerLinks, MalformedV1EventsAreProtocolErrors) {
  for (const char* text : {R"([1, 2])", R"({"type": "progress"})", R"({"id": 3})",
                           R"({"id": 3, "type": "log", "time": "yesterday"})"}) {
    try {
      event_from_v1_json(json::parse(text));
      FAIL() << text;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kProtocol) << text;
    }
  }
}

TEST(ServerLinks, Iso8601TimesAreReadInUtc) {
  EXPECT_EQ(epoch_ms_from_iso8601("1970-01-01T00:00:00.000Z"), 0);
  EXPECT_EQ(epoch_ms_from_iso8601("2026-11-22T13:05:09.123Z"), 1795352709123);
  EXPECT_THROW(epoch_ms_from_iso8601("2026-11-22T13:05:09Z"), Error);
  EXPECT_THROW(epoch_ms_from_iso8601("2026-11-22T13:05:09.123Zjunk"), Error);
}

TEST(ServerLinks, V1ModelsBecomeModelEntries) {
  const auto entries = model_entries(json::parse(R"({"models": [
    {"id": "sdxl-base@1.0", "kind": "checkpoints",
     "files": [{"path": "unet.safetensors", "size": 5000000000}, {"path": "vae.safetensors",
                "size": 335000000}]},
    {"id": "pixel-art", "kind": "loras", "local_path": "/models/loras/pixel-art.safetensors"},
    {"id": "tiny", "kind": "checkpoints", "files": []}]})"));
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].name, "sdxl-base@1.0");
  EXPECT_EQ(entries[0].path, "");
  EXPECT_EQ(entries[0].model_type, "checkpoint");
  EXPECT_EQ(entries[0].size_mb, 5088);  // 5 335 000 000 bytes
  EXPECT_EQ(entries[1].model_type, "lora");
  EXPECT_EQ(entries[1].path, "/models/loras/pixel-art.safetensors");
  EXPECT_EQ(entries[1].size_mb, 0);
  EXPECT_EQ(entries[2].size_mb, 0);
  EXPECT_THROW(model_entries(json::parse(R"({"items": []})")), Error);
}

TEST(ServerLinks, EstimatesAndErrorMessagesOfV1Answers) {
  EXPECT_DOUBLE_EQ(estimated_seconds(json::parse(R"({"estimate": {"seconds": 41.5}})")), 41.5);
  EXPECT_DOUBLE_EQ(estimated_seconds(json::parse(R"({"id": "j"})")), 0);
  EXPECT_EQ(error_message(422, R"({"code": "validation", "message": "steps must be 1..150"})"),
            "steps must be 1..150");
  EXPECT_EQ(error_message(502, "<html>bad gateway</html>"), "the server answered HTTP 502");
}

// A job's whole event stream, sent at once.
class FixedEventStream : public http::StreamSource {
 public:
  explicit FixedEventStream(std::string frames) : frames_(std::move(frames)) {}
  std::string next_chunk(bool& finished) override {
    finished = true;
    return std::exchange(frames_, "");
  }
  void set_wakeup(std::function<void()>) override {}

 private:
  std::string frames_;
};

Event job_event(int64_t id, const std::string& type, nlohmann::json data,
                std::optional<int> item_index = std::nullopt) {
  Event event;
  event.id = id;
  event.job_id = "job-1";
  event.type = type;
  event.item_index = item_index;
  event.data = std::move(data);
  event.created_ms = 1795000000000 + id * 1000;
  return event;
}

// A /v1 server on loopback with one job, job-1, that makes one image; it keeps what it was sent.
class StandInV1Server {
 public:
  StandInV1Server() : server_(router_, http::ServerLimits{}) {
    router_.add("POST", "/v1/jobs", [this](http::Request& request) {
      std::lock_guard lock(mutex_);
      idempotency_key_ = request.header("Idempotency-Key");
      job_body_ = json::parse(request.body);
      if (job_body_.value("prompt", "").empty()) {
        return http::error_response(Error(ErrorCode::kInvalidArgument, "prompt must not be empty"),
                                    "");
      }
      return http::Response::json(201, {{"id", "job-1"}, {"count", 1},
                                        {"estimate", {{"seconds", 3.5}}}});
    });
    router_.add("POST", "/v1/jobs/{id}/cancel", [](http::Request& request) {
      const std::string& id = request.path_params.at("id");
      if (id == "job-1") return http::Response::json(202, {{"cancel", "requested"}});
      if (id == "done") return http::Response::json(200, {{"cancel", "already_finished"}});
      return http::error_response(Error(ErrorCode::kNotFound, "no job with id '" + id + "'"), "");
    });
    // The first connection breaks off after three events; a reconnect resumes after its
    // Last-Event-ID.
    router_.add("GET", "/v1/jobs/{id}/events", [this](http::Request& request) {
      const std::string last_event_id = request.header("Last-Event-ID");
      {
        std::lock_guard lock(mutex_);
        last_event_ids_.push_back(last_event_id);
      }
      const int64_t after = last_event_id.empty() ? 0 : std::stoll(last_event_id);
      std::string frames;
      for (const Event& event :
           {job_event(1, "job_started", json::object()),
            job_event(2, "item_started", {{"seed", 7}}, 0),
            job_event(3, "progress", {{"step", 1}, {"total_steps", 2}, {"progress", 0.5}}, 0),
            job_event(4, "artifact", {{"kind", "output"}, {"key", "job-1/0.png"}}, 0),
            job_event(5, "item_finished", json::object(), 0),
            job_event(6, "job_finished", {{"status", "succeeded"}})}) {
        if (event.id > after && (after > 0 || event.id <= 3)) frames += api::sse_frame(event);
      }
      return http::Response::event_stream(std::make_shared<FixedEventStream>(frames));
    });
    router_.add("GET", "/v1/jobs/{id}/artifacts", [](http::Request&) {
      return http::Response::json(
          200, {{"artifacts", {{{"key", "job-1/0.png"}, {"url", "/v1/files/job-1/0.png?sig=x"}}}}});
    });
    router_.add("GET", "/v1/models", [](http::Request&) {
      return http::Response::json(200, {{"models", {{{"id", "tiny"}, {"kind", "checkpoints"}}}}});
    });
    router_.add("GET", "/v1/jobs", [](http::Request& request) {
      const json jobs = request.query.at("status") == "queued"
                            ? json::array({{{"id", "q1"}}, {{"id", "q2"}}})
                            : json::array({{{"id", "job-1"}}});
      return http::Response::json(200, {{"jobs", jobs}, {"next_cursor", nullptr}});
    });
    router_.add("GET", "/healthz", [](http::Request&) {
      return http::Response::json(200, {{"status", "ok"}});
    });
    router_.set_access_check([this](http::Request& request, const http::Route& route) {
      std::lock_guard lock(mutex_);
      authorizations_[route.pattern].insert(request.header("Authorization"));
    });
    server_.start("127.0.0.1", 0);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
  // The Authorization headers sent to each route ("" for none).
  std::map<std::string, std::set<std::string>> authorizations() {
    std::lock_guard lock(mutex_);
    return authorizations_;
  }
  std::pair<std::string, json> last_job_request() {
    std::lock_guard lock(mutex_);
    return {idempotency_key_, job_body_};
  }
  std::vector<std::string> last_event_ids() {
    std::lock_guard lock(mutex_);
    return last_event_ids_;
  }

 private:
  http::Router router_;
  http::Server server_;
  std::mutex mutex_;
  std::string idempotency_key_;
  json job_body_;
  std::vector<std::string> last_event_ids_;  // of each events request, "" for none
  std::map<std::string, std::set<std::string>> authorizations_;  // by route: headers sent
};

TEST(ServerLinks, HttpGenerateIsAV1JobWhoseEventsBecomeUpdatesAcrossABrokenStream) {
  StandInV1Server server;
  const auto link = open_http_link(server.url() + "/");
  EXPECT_EQ(link->describe(), server.url());
  const json accepted = link->request(plain_generate());
  EXPECT_EQ(pixels::message_type(accepted), "job_accepted");
  EXPECT_EQ(pixels::string_field(accepted, "job_id"), "job-1");
  EXPECT_DOUBLE_EQ(pixels::number_field(accepted, "estimated_time_s"), 3.5);
  const auto [key, body] = server.last_job_request();
  EXPECT_EQ(key, "abc");
  EXPECT_EQ(body, v1_job_body(plain_generate()));

  std::vector<json> updates;
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  while ((updates.empty() || pixels::message_type(updates.back()) != "job_complete") &&
         Clock::now() < give_up) {
    for (auto& update : link->poll_updates(100)) updates.push_back(std::move(update));
  }
  EXPECT_EQ(server.last_event_ids(), (std::vector<std::string>{"", "3"}));
  ASSERT_GE(updates.size(), 3u);
  EXPECT_EQ(std::count_if(updates.begin(), updates.end(),
                          [](const json& update) {
                            return pixels::message_type(update) == "job_started";
                          }),
            1);
  EXPECT_EQ(pixels::message_type(updates.front()), "job_started");
  EXPECT_EQ(pixels::integer_field(updates.front(), "timestamp"), 1795000001);
  EXPECT_EQ(pixels::message_type(updates[updates.size() - 2]), "job_finished");
  EXPECT_TRUE(pixels::bool_field(updates[updates.size() - 2], "success"));
  EXPECT_EQ(pixels::message_type(updates.back()), "job_complete");
  EXPECT_EQ(pixels::string_field(updates.back(), "image_path"),
            server.url() + "/v1/files/job-1/0.png?sig=x");
  const bool sampled = std::any_of(updates.begin(), updates.end(), [](const json& update) {
    return pixels::message_type(update) == "progress" &&
           pixels::string_field(update, "stage") == "sampling" &&
           pixels::integer_field(update, "step") == 1;
  });
  EXPECT_TRUE(sampled);
}

TEST(ServerLinks, HttpLinkSendsItsApiKeyOnEveryRequestAndStream) {
  StandInV1Server server;
  const auto link = open_http_link(server.url(), 5000, "dfk_0123_secret");
  EXPECT_EQ(pixels::message_type(link->request(plain_generate())), "job_accepted");
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  bool complete = false;
  while (!complete && Clock::now() < give_up) {
    for (const auto& update : link->poll_updates(100)) {
      complete = complete || pixels::message_type(update) == "job_complete";
    }
  }
  ASSERT_TRUE(complete);
  const auto sent = server.authorizations();
  for (const char* route : {"/v1/jobs", "/v1/jobs/{id}/events", "/v1/jobs/{id}/artifacts"}) {
    ASSERT_TRUE(sent.contains(route)) << route;
    EXPECT_EQ(sent.at(route), (std::set<std::string>{"Bearer dfk_0123_secret"})) << route;
  }
}

TEST(ServerLinks, HttpRefusedGenerateIsAJobErrorForTheRequestId) {
  StandInV1Server server;
  const auto link = open_http_link(server.url());
  pixels::GenerateRequest request = plain_generate();
  request.prompt = "";
  const json refused = link->request(request);
  EXPECT_EQ(pixels::message_type(refused), "job_error");
  EXPECT_EQ(pixels::string_field(refused, "job_id"), "abc");
  EXPECT_EQ(pixels::string_field(refused, "error"), "prompt must not be empty");
  EXPECT_TRUE(link->poll_updates(0).empty());
}

TEST(ServerLinks, HttpCancelListModelsStatusAndPing) {
  StandInV1Server server;
  const auto link = open_http_link(server.url());
  const json cancelled = link->request(pixels::CancelRequest{"job-1"});
  EXPECT_EQ(pixels::message_type(cancelled), "job_cancelled");
  EXPECT_EQ(pixels::string_field(cancelled, "job_id"), "job-1");
  const json finished = link->request(pixels::CancelRequest{"done"});
  EXPECT_EQ(pixels::message_type(finished), "job_error");
  EXPECT_EQ(pixels::string_field(finished, "error"), "job done has already finished");
  const json unknown = link->request(pixels::CancelRequest{"nope"});
  EXPECT_EQ(pixels::message_type(unknown), "job_error");
  EXPECT_EQ(pixels::string_field(unknown, "error"), "no job with id 'nope'");

  const json models = link->request(pixels::ListModelsRequest{});
  EXPECT_EQ(pixels::message_type(models), "model_list");
  ASSERT_EQ(models["models"].size(), 1u);
  EXPECT_EQ(models["models"][0]["name"], "tiny");
  EXPECT_EQ(models["models"][0]["model_type"], "checkpoint");

  const json status = link->request(pixels::StatusRequest{});
  EXPECT_EQ(pixels::message_type(status), "status_info");
  EXPECT_EQ(pixels::integer_field(status, "queue_size"), 2);
  EXPECT_EQ(pixels::integer_field(status, "active_jobs"), 1);
  EXPECT_EQ(pixels::integer_field(status, "uptime_s"), 0);

  EXPECT_EQ(pixels::message_type(link->request(pixels::PingRequest{})), "pong");
}

TEST(ServerLinks, HttpWithNoServerIsUnavailable) {
  const auto link = open_http_link("http://127.0.0.1:" + std::to_string(test::free_loopback_port()),
                                   1000);
  try {
    link->request(pixels::PingRequest{});
    FAIL() << "nothing listens, yet it answered";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  }
}

}  // namespace
}  // namespace df::tui

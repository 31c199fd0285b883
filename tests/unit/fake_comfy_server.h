// A fake ComfyUI server on loopback for the backend client and catalog tests: the HTTP routes
// Dream Forge drives, answering from state the test sets and recording every request it gets.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/multipart.h"
#include "http/router.h"
#include "http/server.h"

namespace df::test {

class FakeComfyServer {
 public:
  // What the server got.
  struct Received {
    std::string method;
    std::string target;
    std::string path;
    std::map<std::string, std::string> query;
    std::string content_type;
    std::string authorization;  // the Authorization header ("" when absent)
    std::string body;
    std::vector<api::MultipartPart> parts;  // a multipart body's parts
  };

  // What it answers (set by the test; guarded by the server's lock through with()).
  struct State {
    nlohmann::json object_info = {{"KSampler", {{"input", nlohmann::json::object()}}},
                                  {"SaveImage", {{"input", nlohmann::json::object()}}}};
    bool has_models_route = true;
    std::map<std::string, std::vector<std::string>> models = {
        {"checkpoints", {"sd15.safetensors"}}, {"loras", {}}};
    int running = 0;
    int pending = 0;
    std::map<std::string, nlohmann::json> history;  // prompt id -> entry
    std::map<std::string, std::string> files;       // "type/subfolder/filename" -> bytes
    bool object_info_as_html = false;               // answers /object_info with a web page
    bool queue_fails = false;                       // answers /queue with a 500
  };

  FakeComfyServer() {
    add_routes();
    start(0);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Stops answering: the port refuses connections until restart().
  void stop() { server_.reset(); }
  // Answers again on the same port.
  void restart() { start(port_); }

  // Runs `change` on the state under the server's lock.
  template <class Change>
  void with(Change change) {
    std::lock_guard lock(mutex_);
    change(state_);
  }

  std::vector<Received> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }
  // The last request to `path` (fails the test when there is none).
  Received last(const std::string& path) const {
    std::lock_guard lock(mutex_);
    for (auto it = received_.rbegin(); it != received_.rend(); ++it) {
      if (it->path == path) return *it;
    }
    ADD_FAILURE() << "no request to " << path;
    return {};
  }
  int count(const std::string& path) const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& request : received_) n += request.path == path;
    return n;
  }

 private:
  using Response = http::Response;

  void start(uint16_t port) {
    server_ = std::make_unique<http::Server>(router_, http::ServerLimits{});
    server_->start("127.0.0.1", port);
    port_ = server_->port();
  }

  // Records the request, then answers it from the state under the lock.
  void route(const std::string& method, const std::string& pattern,
             std::function<Response(http::Request&, State&)> answer) {
    router_.add(method, pattern, [this, answer](http::Request& request) {
      std::lock_guard lock(mutex_);
      Received got{request.method, request.target,  request.path, request.query,
                   request.header("Content-Type"), request.header("Authorization"),
                   request.body, {}};
      if (got.content_type.starts_with("multipart/form-data")) {
        got.parts = api::parse_multipart(request.body, api::multipart_boundary(got.content_type));
      }
      received_.push_back(std::move(got));
      return answer(request, state_);
    });
  }

  static Response empty_ok() { return Response::text(200, ""); }

  void add_routes() {
    route("POST", "/prompt", [this](http::Request& request, State& state) {
      const auto body = request.json_body();
      for (const auto& [id, node] : body.at("prompt").items()) {
        const std::string type = node.value("class_type", "");
        if (!state.object_info.contains(type)) {
          return Response::json(
              400, {{"error",
                     {{"type", "invalid_prompt"},
                      {"message", "Cannot execute because node " + type + " does not exist."},
                      {"details", "Node ID '#" + id + "'"},
                      {"extra_info", nlohmann::json::object()}}},
                    {"node_errors", nlohmann::json::object()}});
        }
      }
      ++numbered_;
      const std::string id = body.value("prompt_id", "prompt-" + std::to_string(numbered_));
      return Response::json(
          200, {{"prompt_id", id}, {"number", numbered_}, {"node_errors", nlohmann::json::object()}});
    });
    route("GET", "/history/{id}", [](http::Request& request, State& state) {
      const std::string id = request.path_params.at("id");
      auto entry = state.history.find(id);
      if (entry == state.history.end()) return Response::json(200, nlohmann::json::object());
      return Response::json(200, {{id, entry->second}});
    });
    route("GET", "/view", [](http::Request& request, State& state) {
      const std::string key = request.query["type"] + "/" + request.query["subfolder"] + "/" +
                              request.query["filename"];
      auto file = state.files.find(key);
      if (file == state.files.end()) return Response::text(404, "");
      return Response::text(200, file->second, "image/png");
    });
    route("POST", "/upload/image", [](http::Request& request, State&) {
      const auto parts = api::parse_multipart(
          request.body, api::multipart_boundary(request.header("Content-Type")));
      const auto* image = api::find_part(parts, "image");
      const auto* subfolder = api::find_part(parts, "subfolder");
      return Response::json(200, {{"name", "stored_" + image->filename.value_or("")},
                                  {"subfolder", subfolder ? subfolder->body : ""},
                                  {"type", "input"}});
    });
    route("POST", "/interrupt", [](http::Request&, State&) { return empty_ok(); });
    route("POST", "/queue", [](http::Request&, State&) { return empty_ok(); });
    route("POST", "/free", [](http::Request&, State&) { return empty_ok(); });
    route("GET", "/queue", [](http::Request&, State& state) {
      if (state.queue_fails) return Response::text(500, "queue exploded");
      auto list = [](int n) {
        nlohmann::json items = nlohmann::json::array();
        for (int i = 0; i < n; ++i) items.push_back({i, "prompt-" + std::to_string(i)});
        return items;
      };
      return Response::json(200,
                            {{"queue_running", list(state.running)}, {"queue_pending", list(state.pending)}});
    });
    route("GET", "/object_info", [](http::Request&, State& state) {
      if (state.object_info_as_html) {
        return Response::text(200, "<html>login</html>", "text/html");
      }
      return Response::json(200, state.object_info);
    });
    route("GET", "/models", [](http::Request&, State& state) {
      if (!state.has_models_route) return Response::text(404, "404: Not Found");
      nlohmann::json folders = nlohmann::json::array();
      for (const auto& [folder, files] : state.models) folders.push_back(folder);
      return Response::json(200, folders);
    });
    route("GET", "/models/{folder}", [](http::Request& request, State& state) {
      auto folder = state.models.find(request.path_params.at("folder"));
      if (!state.has_models_route || folder == state.models.end()) {
        return Response::text(404, "404: Not Found");
      }
      return Response::json(200, folder->second);
    });
    route("GET", "/system_stats", [](http::Request&, State&) {
      return Response::json(200, {{"system", {{"comfyui_version", "0.3.0"}}}, {"devices", nlohmann::json::array()}});
    });
  }

  mutable std::mutex mutex_;
  State state_;
  std::vector<Received> received_;
  int64_t numbered_ = 0;
  http::Router router_;
  std::unique_ptr<http::Server> server_;
  uint16_t port_ = 0;
};

}  // namespace df::test

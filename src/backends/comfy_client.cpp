// A client of one ComfyUI server's HTTP API over http::Client, with errors that name the server.
#include "backends/comfy_client.h"

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "core/error.h"
#include "core/ids.h"
#include "http/json_text.h"

namespace df::backends {
namespace {

std::string encoded(const std::string& text) {
  return boost::urls::encode(text, boost::urls::unreserved_chars);
}

// A multipart/form-data body: each field's part, then the closing boundary.
class MultipartBody {
 public:
  explicit MultipartBody(const std::string& largest_part) {
    do {
      boundary_ = "----dreamforge" + random_hex(16);
    } while (largest_part.find(boundary_) != std::string::npos);
  }

  void field(const std::string& name, const std::string& value) {
    body_ += "--" + boundary_ + "\r\nContent-Disposition: form-data; name=\"" + name +
             "\"\r\n\r\n" + value + "\r\n";
  }

  void file(const std::string& name, const std::string& filename, const std::string& bytes) {
    body_ += "--" + boundary_ + "\r\nContent-Disposition: form-data; name=\"" + name +
             "\"; filename=\"" + quoted(filename) +
             "\"\r\nContent-Type: application/octet-stream\r\n\r\n";
    body_ += bytes;
    body_ += "\r\n";
  }

  std::string content_type() const { return "multipart/form-data; boundary=" + boundary_; }

  // `text` inside a header's quoted string: quotes and backslashes escaped; line breaks refused.
  static std::string quoted(const std::string& text) {
    if (text.find_first_of("\r\n") != std::string::npos) {
      throw Error(ErrorCode::kInvalidArgument, "a file name must not contain a line break");
    }
    std::string escaped;
    for (char c : text) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += c;
    }
    return escaped;
  }

  std::string finish() { return body_ + "--" + boundary_ + "--\r\n"; }

 private:
  std::string boundary_;
  std::string body_;
};

std::vector<std::string> string_list(const nlohmann::json& value, const std::string& where) {
  if (!value.is_array()) {
    throw Error(ErrorCode::kBadRequest, where + " answered " + value.dump() + ", not a list");
  }
  std::vector<std::string> names;
  for (const auto& item : value) {
    if (!item.is_string()) {
      throw Error(ErrorCode::kBadRequest, where + " listed " + item.dump() + ", not a name");
    }
    names.push_back(item.get<std::string>());
  }
  return names;
}

}  // namespace

ComfyClient::ComfyClient(ComfyEndpoint endpoint) : endpoint_(std::move(endpoint)) {
  if (!endpoint_.auth_header.empty() && !auth_header()) {
    throw Error(ErrorCode::kInvalidArgument,
                "auth header '" + endpoint_.auth_header + "' is not of the form 'Name: value'");
  }
}

std::optional<std::pair<std::string, std::string>> ComfyClient::auth_header() const {
  const std::string& line = endpoint_.auth_header;
  auto colon = line.find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  std::string name = line.substr(0, colon);
  if (name.find_first_of(" \t") != std::string::npos) return std::nullopt;
  auto start = line.find_first_not_of(" \t", colon + 1);
  std::string value = start == std::string::npos ? "" : line.substr(start);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  return std::make_pair(name, value);
}

http::ClientResponse ComfyClient::call(const std::string& method, const std::string& target,
                                       const std::string& body, const std::string& content_type) {
  const std::string route = method + " " + endpoint_.url + target;
  std::vector<std::pair<std::string, std::string>> headers;
  if (!content_type.empty()) headers.emplace_back("Content-Type", content_type);
  if (auto auth = auth_header()) headers.push_back(*auth);
  http::ClientResponse response;
  try {
    http::Client client(endpoint_.url, endpoint_.timeout_ms);
    response = client.request(method, target, body, headers);
  } catch (const Error& error) {
    if (error.code() != ErrorCode::kUnavailable) throw;
    throw Error(ErrorCode::kUnavailable, "ComfyUI server " + route + ": " + error.what(),
                {{"url", endpoint_.url}, {"route", target}});
  }
  if (response.status >= 500) {
    throw Error(ErrorCode::kUnavailable,
                "ComfyUI server " + route + " answered " + std::to_string(response.status) +
                    ": " + response.body.substr(0, 500),
                {{"url", endpoint_.url}, {"route", target}, {"status", response.status}});
  }
  return response;
}

namespace {

// Throws for anything but a 2xx answer: Error(kNotFound) for a 404, Error(kBadRequest) otherwise.
void expect_success(const http::ClientResponse& response, const std::string& route) {
  if (response.status >= 200 && response.status < 300) return;
  throw Error(response.status == 404 ? ErrorCode::kNotFound : ErrorCode::kBadRequest,
              "ComfyUI server " + route + " answered " + std::to_string(response.status) + ": " +
                  response.body.substr(0, 500));
}

// A successful answer's JSON; Error(kBadRequest) when the body is not JSON.
nlohmann::json json_answer(const http::ClientResponse& response, const std::string& route) {
  expect_success(response, route);
  return http::parse_json_text(response.body, "the answer of " + route);
}

// `body` as a JSON object; Error(kBadRequest) for anything else.
nlohmann::json parsed_object(const std::string& body, const std::string& route) {
  auto answer = http::parse_json_text(body, "the answer of " + route);
  if (!answer.is_object()) {
    throw Error(ErrorCode::kBadRequest,
                route + " answered " + answer.dump().substr(0, 500) + ", not an object");
  }
  return answer;
}

// A successful answer's JSON object; Error(kBadRequest) for anything else.
nlohmann::json object_answer(const http::ClientResponse& response, const std::string& route) {
  expect_success(response, route);
  return parsed_object(response.body, route);
}

}  // namespace

PromptSubmission ComfyClient::submit(const nlohmann::json& graph, const std::string& client_id,
                                     const nlohmann::json& extra_data,
                                     const std::string& prompt_id) {
  nlohmann::json body = {{"prompt", graph}, {"client_id", client_id}};
  if (!extra_data.is_null()) body["extra_data"] = extra_data;
  if (!prompt_id.empty()) body["prompt_id"] = prompt_id;
  const std::string route = "POST " + endpoint_.url + "/prompt";
  auto response = call("POST", "/prompt", body.dump(), "application/json");
  PromptSubmission submission;
  if (response.status == 400) {  // ComfyUI refused the graph: its error and node_errors
    auto refusal = parsed_object(response.body, route);
    submission.error = refusal.value("error", nlohmann::json::object());
    submission.node_errors = refusal.value("node_errors", nlohmann::json::object());
    return submission;
  }
  auto answer = object_answer(response, route);
  if (!answer.contains("prompt_id") || !answer["prompt_id"].is_string()) {
    throw Error(ErrorCode::kBadRequest,
                route + " answered " + answer.dump().substr(0, 500) + " without a prompt_id");
  }
  submission.accepted = true;
  submission.prompt_id = answer["prompt_id"].get<std::string>();
  if (answer.contains("number") && answer["number"].is_number_integer()) {
    submission.number = answer["number"].get<int64_t>();
  }
  submission.node_errors = answer.value("node_errors", nlohmann::json::object());
  return submission;
}

std::optional<nlohmann::json> ComfyClient::history(const std::string& prompt_id) {
  const std::string target = "/history/" + encoded(prompt_id);
  auto answer = object_answer(call("GET", target, "", ""), "GET " + endpoint_.url + target);
  auto entry = answer.find(prompt_id);
  if (entry == answer.end()) return std::nullopt;
  return *entry;
}

std::string ComfyClient::view(const ComfyFile& file) {
  const std::string target = "/view?filename=" + encoded(file.filename) +
                             "&subfolder=" + encoded(file.subfolder) + "&type=" + encoded(file.type);
  auto response = call("GET", target, "", "");
  expect_success(response, "GET " + endpoint_.url + target);
  return std::move(response.body);
}

ComfyFile ComfyClient::upload_image(const std::string& filename, const std::string& bytes,
                                    const std::string& subfolder) {
  MultipartBody form(bytes);
  form.file("image", filename, bytes);
  form.field("subfolder", subfolder);
  form.field("type", "input");
  form.field("overwrite", "true");
  const std::string content_type = form.content_type();
  const std::string route = "POST " + endpoint_.url + "/upload/image";
  auto answer = object_answer(call("POST", "/upload/image", form.finish(), content_type), route);
  if (!answer.contains("name") || !answer["name"].is_string()) {
    throw Error(ErrorCode::kBadRequest,
                route + " answered " + answer.dump().substr(0, 500) + " without a name");
  }
  ComfyFile stored;
  stored.filename = answer["name"].get<std::string>();
  stored.subfolder = answer.value("subfolder", subfolder);
  stored.type = answer.value("type", "input");
  return stored;
}

void ComfyClient::interrupt(const std::string& prompt_id) {
  nlohmann::json body = {{"prompt_id", prompt_id}};
  expect_success(call("POST", "/interrupt", body.dump(), "application/json"),
                 "POST " + endpoint_.url + "/interrupt");
}

void ComfyClient::delete_queued(const std::string& prompt_id) {
  nlohmann::json body = {{"delete", {prompt_id}}};
  expect_success(call("POST", "/queue", body.dump(), "application/json"),
                 "POST " + endpoint_.url + "/queue");
}

nlohmann::json ComfyClient::queue() {
  return object_answer(call("GET", "/queue", "", ""), "GET " + endpoint_.url + "/queue");
}

int ComfyClient::queue_remaining() {
  auto answer = queue();
  auto count = [&](const char* key) -> int {
    auto list = answer.find(key);
    if (list == answer.end()) return 0;
    if (!list->is_array()) {
      throw Error(ErrorCode::kBadRequest,
                  "GET " + endpoint_.url + "/queue answered a " + key + " that is not a list");
    }
    return static_cast<int>(list->size());
  };
  return count("queue_running") + count("queue_pending");
}

void ComfyClient::free_memory() {
  nlohmann::json body = {{"unload_models", true}, {"free_memory", true}};
  expect_success(call("POST", "/free", body.dump(), "application/json"),
                 "POST " + endpoint_.url + "/free");
}

nlohmann::json ComfyClient::object_info() {
  return object_answer(call("GET", "/object_info", "", ""),
                       "GET " + endpoint_.url + "/object_info");
}

std::vector<std::string> ComfyClient::model_folders() {
  const std::string route = "GET " + endpoint_.url + "/models";
  return string_list(json_answer(call("GET", "/models", "", ""), route), route);
}

std::vector<std::string> ComfyClient::model_files(const std::string& folder) {
  const std::string target = "/models/" + encoded(folder);
  const std::string route = "GET " + endpoint_.url + target;
  return string_list(json_answer(call("GET", target, "", ""), route), route);
}

nlohmann::json ComfyClient::system_stats() {
  return object_answer(call("GET", "/system_stats", "", ""),
                       "GET " + endpoint_.url + "/system_stats");
}

std::string ComfyClient::websocket_target(const std::string& client_id) const {
  return "/ws?clientId=" + encoded(client_id);
}

}  // namespace df::backends

// The DGX-Pixels protocol's messages: requests the endpoint reads, replies and updates it writes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::pixels {

inline constexpr const char* kDefaultReqAddress = "tcp://127.0.0.1:5555";  // REQ-REP
inline constexpr const char* kDefaultPubAddress = "tcp://127.0.0.1:5556";  // PUB-SUB

// Requests (client -> REP socket). Fields are the wire's names.
struct GenerateRequest {
  std::string id;  // the client's id for the job: the job's id, and its idempotency key
  std::string prompt;
  std::string model;  // a model id, a checkpoint file name (with or without extension), or a family
  int width = 0;      // size [w, h]
  int height = 0;
  int steps = 0;
  double cfg_scale = 0;
  std::optional<std::string> lora;  // a LoRA file under models/loras
  int batch_size = 1;
  std::optional<int> animation_frames;
  std::optional<std::pair<int, int>> tileset_grid;  // [cols, rows]
  // Dream Forge's own optional keys (the original server ignores unknown keys):
  std::optional<uint64_t> seed;
  std::string negative_prompt;
};
struct CancelRequest {
  std::string job_id;
};
struct ListModelsRequest {};
struct StatusRequest {};
struct PingRequest {};
using Request =
    std::variant<GenerateRequest, CancelRequest, ListModelsRequest, StatusRequest, PingRequest>;

// Reads a decoded message: `type` may sit anywhere in the map, unknown keys are ignored, a float
// field takes any number, an integer field an integer-valued float too, a pair takes a two-element
// array, and an optional field given as nil counts as absent. Throws Error(kInvalidArgument) with a
// message naming the request type and field for a value that is not a map, a missing or unknown
// type, or a missing, mistyped or out-of-range field.
Request parse_request(const nlohmann::json& message);
// The request as a client sends it: "type" first, then the fields in the wire's order (optional
// ones only when set; batch_size always, negative_prompt when not empty).
nlohmann::ordered_json request_message(const Request& request);

struct ModelEntry {
  std::string name;
  std::string path;
  std::string model_type;  // checkpoint | lora | vae
  int64_t size_mb = 0;
};
struct StatusInfo {
  std::string version;
  int64_t queue_size = 0;
  int64_t active_jobs = 0;
  int64_t uptime_s = 0;
};
struct ProgressUpdate {
  std::string job_id;
  std::string stage;  // initializing | loading_models | encoding | sampling | decoding | post_processing
  int step = 0;
  int total_steps = 0;
  double percent = 0;  // 0..100
  double eta_s = 0;
};

// Replies (REP socket), each with "type" first and the fields in the wire's order.
nlohmann::ordered_json job_accepted(const std::string& job_id, double estimated_time_s);
nlohmann::ordered_json job_cancelled(const std::string& job_id);
nlohmann::ordered_json job_error(const std::string& job_id, const std::string& error);  // also an update
nlohmann::ordered_json model_list(const std::vector<ModelEntry>& models);
nlohmann::ordered_json status_info(const StatusInfo& status);
nlohmann::ordered_json pong();
nlohmann::ordered_json error_reply(const std::string& message);

// Updates (PUB socket).
nlohmann::ordered_json job_started(const std::string& job_id, int64_t timestamp_s);
nlohmann::ordered_json progress(const ProgressUpdate& update);
nlohmann::ordered_json preview(const std::string& job_id, const std::string& image_path, int step);
nlohmann::ordered_json job_finished(const std::string& job_id, bool success, double duration_s);
// `image_paths` (Dream Forge's addition) lists every image of a batch; `image_path` is the first.
nlohmann::ordered_json job_complete(const std::string& job_id, const std::string& image_path,
                                    double duration_s, const std::vector<std::string>& image_paths);

// Readers for replies and updates a client receives, as loose as the protocol allows (any number
// type for a number, an integer-valued float for an integer). Throw Error(kInvalidArgument)
// naming the field when it is missing or of another kind.
std::string message_type(const nlohmann::json& message);  // "" when there is none
std::string string_field(const nlohmann::json& message, const char* key);
double number_field(const nlohmann::json& message, const char* key);
int64_t integer_field(const nlohmann::json& message, const char* key);
bool bool_field(const nlohmann::json& message, const char* key);

}  // namespace df::pixels

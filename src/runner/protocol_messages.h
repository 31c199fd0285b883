// The runner protocol's messages as types: what the worker sends and every kind of runner answers.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace df::runner {

// ---- Requests (worker -> runner) ---------------------------------------------------------------

struct HelloRequest {
  int protocol = 0;  // the worker's kProtocolVersion; a runner refuses another version
};

// One batch item: its index in the job and the seed its sampler nodes get (none: the graph's own).
struct RunItem {
  int index = 0;
  std::optional<uint64_t> seed;
};

struct RunRequest {
  std::string id;                      // "<job id>/<attempt>"
  nlohmann::json graph;                // an API-format graph (object)
  std::vector<RunItem> items;          // 1..100; empty on the wire means one item, graph's seeds
  std::string output_dir;              // where output images are written
  std::string temp_dir;                // where preview images are written ("" = <output_dir>/temp)
  std::string format = "png";          // png | jpeg | webp
  int quality = 95;                    // 1..100 for lossy formats
  nlohmann::json extra_pnginfo;        // null or an object: PNG text chunks
  bool previews = false;               // send latent previews while sampling
};

struct CancelRequest {
  std::string id;  // the run to cancel
};

struct FreeRequest {};      // drop loaded models and caches, answer "freed"
struct ShutdownRequest {};  // finish the current request, answer "bye", exit

using Request = std::variant<HelloRequest, RunRequest, CancelRequest, FreeRequest, ShutdownRequest>;

// ---- Events (runner -> worker) -----------------------------------------------------------------

// What a runner can run, advertised in its hello: the API validates graphs against it and serves
// the union of every runner's offer as /object_info.
struct RunnerCapabilities {
  std::string kind = "native";         // "native" (dreamforge-runner) | "comfy" (a ComfyUI server)
  std::vector<std::string> nodes;      // node class types it runs
  // {class_type: definition} exactly as /object_info shows them, combos filled with the files the
  // runner can load; null when the runner does not send them.
  nlohmann::json object_info;
  // ComfyUI model folder ("checkpoints", "loras", ...) -> files it can load, relative, '/'.
  std::map<std::string, std::vector<std::string>> model_files;
  std::vector<std::string> samplers;
  std::vector<std::string> schedulers;
  std::vector<std::string> formats;    // output formats it writes
  std::vector<std::string> devices;    // devices it can see ("cpu", "cuda")
  std::string device;                  // the device it runs on ("cpu", "cuda", "cuda:0", ...)
  std::string dtype;
  int64_t host_budget_bytes = 0;       // its model cache's budgets (0: none / unknown)
  int64_t device_budget_bytes = 0;
  std::string backend_url;             // kind "comfy": the server it drives
};

struct HelloEvent {
  int protocol = 0;
  std::string runner;   // "dreamforge-runner", "dreamforge-comfy-runner", ...
  std::string version;
  RunnerCapabilities capabilities;
};

struct RunStartedEvent {
  std::string id;
  int items = 0;
  nlohmann::json memory;  // the runner's memory report (docs/runner-protocol.md, "Memory"); may be null
};

struct ItemStartedEvent {
  std::string id;
  int item_index = 0;
  uint64_t seed = 0;
};

struct ExecutingEvent {
  std::string id;
  int item_index = 0;
  std::string node;
  std::string class_type;
};

struct ProgressEvent {
  std::string id;
  int item_index = 0;
  std::string node;
  int64_t step = 0;
  int64_t total = 0;
  double progress = 0;  // of the whole item, 0..1
};

struct StageEvent {
  std::string id;
  int item_index = 0;
  std::string node;
  std::string class_type;
  std::string stage;  // "loading", "encoding", "sampling", ...
};

struct CachedEvent {
  std::string id;
  int item_index = 0;
  std::vector<std::string> nodes;
};

struct PreviewEvent {
  std::string id;
  int item_index = 0;
  std::string node;
  std::string format = "jpeg";
  std::string data;  // base64
};

struct StreamedImageEvent {
  std::string id;
  int item_index = 0;
  std::string node;
  int index = 0;
  int count = 1;
  int width = 0;
  int height = 0;
  std::string format = "png";
  std::string data;  // base64
};

// An image the run wrote: a file at `path` (the runner's own disk, shared with the worker), or
// bytes in `data` (base64, for a runner whose disk the worker cannot read), or a `url` the worker
// can fetch. Exactly one of the three is set.
struct ArtifactEvent {
  std::string id;
  int item_index = 0;
  std::string node;
  std::string path;
  std::string data;
  std::string url;
  std::string filename;
  std::string subfolder;
  std::string kind = "output";  // "output" (kept as an artifact) | "temp" (a preview image)
  std::string format;           // file extension without the dot: png, jpeg, webp
  std::string content_type;
  int width = 0;
  int height = 0;
  uint64_t seed = 0;
  int64_t bytes = 0;
  std::string sha256;
};

struct ItemFinishedEvent {
  std::string id;
  int item_index = 0;
  uint64_t seed = 0;
  int64_t duration_ms = 0;
};

struct ErrorEvent {
  std::string id;  // "" when the error is not about a run
  std::optional<int> item_index;
  std::string code;  // Dream Forge's error code name ("oom", "validation", "unavailable", ...)
  std::string message;
  nlohmann::json details = nlohmann::json::object();
};

struct RunFinishedEvent {
  std::string id;
  std::string status;  // succeeded | failed | canceled
  int items_completed = 0;
  int64_t duration_ms = 0;
  nlohmann::json memory;
};

struct FreedEvent {
  nlohmann::json memory;
};

struct LogEvent {
  std::string level = "info";
  std::string message;
};

struct ByeEvent {};

using Event = std::variant<HelloEvent, RunStartedEvent, ItemStartedEvent, ExecutingEvent,
                           ProgressEvent, StageEvent, CachedEvent, PreviewEvent, StreamedImageEvent,
                           ArtifactEvent, ItemFinishedEvent, ErrorEvent, RunFinishedEvent,
                           FreedEvent, LogEvent, ByeEvent>;

// ---- Encoding ----------------------------------------------------------------------------------

// The wire form of a message: a JSON object whose "type" names it ("hello", "run", "cancel",
// "free", "shutdown"; "hello", "run_started", "item_started", "executing", "progress", "stage",
// "cached", "preview", "streamed_image", "artifact", "item_finished", "error", "run_finished",
// "freed", "log", "bye").
nlohmann::json to_json(const Request& request);
nlohmann::json to_json(const Event& event);

// Parses a wire message; throws Error(kProtocol) naming the field for an unknown type, a missing
// required field or a field of the wrong type (fields not listed above are ignored).
Request parse_request(const nlohmann::json& message);
Event parse_event(const nlohmann::json& message);

// The "type" string of a message.
std::string message_type(const Request& request);
std::string message_type(const Event& event);

// A runner's check of the worker's hello: throws Error(kProtocol) naming both versions (details
// worker_protocol, runner_protocol) when the worker speaks another protocol version.
void check_hello_request(const HelloRequest& hello);

// Why a runner that says `hello` cannot be used by this worker ("" when it can): another protocol
// version, or a runner name that is empty.
std::string hello_refusal(const HelloEvent& hello);

}  // namespace df::runner

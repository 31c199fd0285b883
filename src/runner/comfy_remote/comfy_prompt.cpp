// PromptFollower: /ws messages (or /history when the socket is gone) -> runner events and files.
#include "runner/comfy_remote/comfy_prompt.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "core/base64.h"
#include "core/files.h"
#include "core/sha256.h"
#include "image/image.h"

namespace df::runner {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// How long one wait on the socket lasts, and how often /history is polled without one: the
// bound on how late a cancel is noticed.
constexpr int kPollMs = 250;
// A socket silent this long gets the prompt's /history checked: a server that vanished without
// closing the connection, or an end the socket missed, is noticed.
constexpr auto kSilenceCheck = std::chrono::seconds(5);

// Node types that report sampler steps as progress; an item's progress counts them.
int count_samplers(const json& graph) {
  int samplers = 0;
  for (const auto& [id, node] : graph.items()) {
    const std::string type = node.is_object() ? node.value("class_type", "") : "";
    if (type == "KSampler" || type == "KSamplerAdvanced" || type == "SamplerCustom" ||
        type == "SamplerCustomAdvanced") {
      ++samplers;
    }
  }
  return std::max(samplers, 1);
}

uint32_t big_endian_u32(const std::string& bytes, size_t at) {
  return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
         (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
}

std::string text(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// The artifact's format fields from the file name: ("png", "image/png"), ("jpg", "image/jpeg"),
// ("webp", "image/webp"); other files keep their extension and a generic content type.
std::pair<std::string, std::string> format_of(const std::string& filename) {
  std::string extension = fs::path(filename).extension().string();
  if (!extension.empty()) extension.erase(0, 1);
  std::transform(extension.begin(), extension.end(), extension.begin(), [](unsigned char c) { return std::tolower(c); });
  if (extension == "png" || extension == "jpg" || extension == "jpeg" || extension == "webp") {
    const ImageFormat format = image_format_from_name(extension);
    return {file_extension(format), content_type(format)};
  }
  return {extension, "application/octet-stream"};
}

}  // namespace

PromptFollower::PromptFollower(backends::ComfyClient& client, BackendCalls& calls, EventWriter& events,
                               std::function<bool()> canceled)
    : client_(client), calls_(calls), events_(events), canceled_(std::move(canceled)) {}

void PromptFollower::follow(const PromptItem& item, std::unique_ptr<backends::ComfySocket>& socket) {
  item_ = &item;
  reported_.clear();
  current_node_.clear();
  progress_node_.clear();
  finished_samplers_ = 0;
  samplers_ = count_samplers(item.graph);
  bool cancel_sent = false;
  auto last_heard = std::chrono::steady_clock::now();
  while (true) {
    if (!cancel_sent && canceled_()) {
      cancel_sent = true;
      if (cancel_on_server()) throw Error(ErrorCode::kCanceled, "canceled before it started on the backend");
    }
    if (socket && socket->is_open()) {
      const backends::SocketFrame frame = socket->read(kPollMs);
      if (frame.kind != backends::SocketFrame::Kind::kTimeout) {
        last_heard = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - last_heard >= kSilenceCheck) {
        last_heard = std::chrono::steady_clock::now();
        if (finished_in_history()) return;
      }
      if (frame.kind == backends::SocketFrame::Kind::kText) {
        json message = json::parse(frame.data, nullptr, false);
        if (message.is_object() && on_message(message)) return;
      } else if (frame.kind == backends::SocketFrame::Kind::kBinary) {
        on_binary(frame.data);
      } else if (frame.kind == backends::SocketFrame::Kind::kClosed) {
        socket.reset();  // from here on the prompt is followed through /history
      }
      continue;
    }
    if (finished_in_history()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
}

bool PromptFollower::on_message(const json& message) {
  const std::string type = text(message, "type");
  const json data = message.value("data", json::object());
  if (!data.is_object()) return false;
  // Messages about other prompts (or none: status) are not this item's.
  if (text(data, "prompt_id") != item_->prompt_id) return false;
  const PromptItem& item = *item_;
  if (type == "execution_cached") {
    std::vector<std::string> nodes;
    for (const auto& node : data.value("nodes", json::array())) {
      if (node.is_string()) nodes.push_back(node.get<std::string>());
    }
    if (!nodes.empty()) events_.emit(to_json(CachedEvent{item.run_id, item.item_index, nodes}));
  } else if (type == "executing") {
    if (!data.contains("node") || data["node"].is_null()) return true;
    current_node_ = text(data, "node");
    const json node = item.graph.value(current_node_, json::object());
    events_.emit(to_json(ExecutingEvent{item.run_id, item.item_index, current_node_,
                                        node.is_object() ? node.value("class_type", "") : ""}));
  } else if (type == "progress") {
    const std::string node = text(data, "node");
    if (!progress_node_.empty() && node != progress_node_) ++finished_samplers_;
    progress_node_ = node;
    const int64_t value = data.value("value", int64_t{0});
    const int64_t max = data.value("max", int64_t{0});
    const double fraction = (finished_samplers_ + (max > 0 ? double(value) / double(max) : 0.0)) / samplers_;
    events_.emit(to_json(ProgressEvent{item.run_id, item.item_index, node, value, max, std::min(fraction, 1.0)}));
  } else if (type == "executed") {
    take_outputs(text(data, "node"), data.value("output", json::object()));
  } else if (type == "execution_error") {
    throw backends::execution_error(data);
  } else if (type == "execution_interrupted") {
    throw backends::execution_interrupted(data);
  } else if (type == "execution_success") {
    return true;
  }
  return false;
}

void PromptFollower::on_binary(const std::string& frame) {
  if (!item_->previews || frame.size() < 8) return;
  const uint32_t event = big_endian_u32(frame, 0);
  std::string node = current_node_;
  std::string format;
  size_t image_at = 8;
  if (event == 1) {  // PREVIEW_IMAGE: [1][format: 1 JPEG, 2 PNG][image]
    format = big_endian_u32(frame, 4) == 2 ? "png" : "jpeg";
  } else if (event == 4) {  // PREVIEW_IMAGE_WITH_METADATA: [4][length][metadata JSON][image]
    const size_t length = big_endian_u32(frame, 4);
    if (frame.size() < 8 + length) return;
    const json metadata = json::parse(frame.substr(8, length), nullptr, false);
    if (!metadata.is_object() || text(metadata, "prompt_id") != item_->prompt_id) return;
    if (!text(metadata, "node_id").empty()) node = text(metadata, "node_id");
    format = text(metadata, "image_type") == "image/png" ? "png" : "jpeg";
    image_at = 8 + length;
  } else {
    return;
  }
  const std::vector<uint8_t> image(frame.begin() + static_cast<std::ptrdiff_t>(image_at), frame.end());
  events_.emit(to_json(PreviewEvent{item_->run_id, item_->item_index, node, format, encode_base64(image)}));
}

void PromptFollower::take_outputs(const std::string& node, const json& output) {
  if (!output.is_object() || !output.contains("images") || !output["images"].is_array()) return;
  const PromptItem& item = *item_;
  for (const auto& image : output["images"]) {
    if (!image.is_object()) continue;
    const backends::ComfyFile file{text(image, "filename"), text(image, "subfolder"),
                                   image.value("type", std::string("output"))};
    if (file.filename.empty() || (file.type != "output" && file.type != "temp")) continue;
    if (!reported_.insert(file.type + "/" + file.subfolder + "/" + file.filename).second) continue;
    const std::string bytes = calls_([&] { return client_.view(file); });
    const std::string folder = file.type == "temp" ? item.temp_dir : item.output_dir;
    const std::string relative = file.subfolder.empty() ? file.filename : file.subfolder + "/" + file.filename;
    const std::string path = join_inside(folder, relative, "the output file name");
    fs::create_directories(fs::path(path).parent_path());
    const std::vector<uint8_t> data(bytes.begin(), bytes.end());
    write_file_atomically(path, data);

    ArtifactEvent artifact;
    artifact.id = item.run_id;
    artifact.item_index = item.item_index;
    artifact.node = node;
    artifact.path = path;
    artifact.filename = file.filename;
    artifact.subfolder = file.subfolder;
    artifact.kind = file.type;
    std::tie(artifact.format, artifact.content_type) = format_of(file.filename);
    if (artifact.content_type != "application/octet-stream") {
      const Image8 decoded = decode_image(data);
      artifact.width = decoded.width;
      artifact.height = decoded.height;
    }
    artifact.seed = item.seed;
    artifact.bytes = static_cast<int64_t>(data.size());
    artifact.sha256 = sha256_hex(data.data(), data.size());
    events_.emit(to_json(artifact));
  }
}

bool PromptFollower::cancel_on_server() {
  const json queue = calls_([&] { return client_.queue(); });
  for (const auto& entry : queue.value("queue_pending", json::array())) {
    if (entry.is_array() && entry.size() > 1 && entry[1] == item_->prompt_id) {
      calls_([&] { client_.delete_queued(item_->prompt_id); return 0; });
      return true;
    }
  }
  calls_([&] { client_.interrupt(item_->prompt_id); return 0; });
  return false;
}

bool PromptFollower::finished_in_history() {
  const std::optional<json> entry = calls_([&] { return client_.history(item_->prompt_id); });
  if (!entry) return false;
  if (auto error = backends::history_error(*entry)) throw *error;
  const json status = entry->value("status", json::object());
  if (status.is_object() && status.value("status_str", "") == "error") {
    throw Error(ErrorCode::kInternal, "the prompt failed on the backend " + calls_.backend() + " without an error message",
                {{"status", status}});
  }
  const json outputs = entry->value("outputs", json::object());
  for (const auto& [node, output] : outputs.items()) take_outputs(node, output);
  return true;
}

}  // namespace df::runner

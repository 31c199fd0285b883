// What a job runs: its graph and its items.
#include "core/job_spec.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/error.h"
#include "core/generation_request.h"

namespace df {
namespace {

using nlohmann::json;

GenerationRequest generation_request_from_spec(const json& spec) {
  GenerationRequest request;
  request.prompt = spec.at("prompt").get<std::string>();
  request.negative_prompt = spec.value("negative_prompt", "");
  // Jobs record the checkpoint the model's files load as; older jobs only their model id.
  request.checkpoint = spec.value("checkpoint", spec.at("model_id").get<std::string>());
  request.width = spec.at("width").get<int>();
  request.height = spec.at("height").get<int>();
  request.steps = spec.at("steps").get<int>();
  request.cfg = spec.at("guidance").get<double>();
  request.sampler = spec.at("sampler").get<std::string>();
  request.scheduler = spec.at("scheduler").get<std::string>();
  request.seed = spec.value("seed", uint64_t{0});
  if (spec.contains("init_image_name")) {
    request.init_image = spec.at("init_image_name").get<std::string>();
    request.resize_init_image = true;
    request.denoise = spec.value("denoise", 1.0);
  }
  for (const json& lora : spec.value("loras", json::array())) {
    request.loras.push_back(lora_choice_from_json(lora));
  }
  if (spec.contains("chain") && spec["chain"].contains("upscale")) {
    request.upscale = upscale_step_from_json(spec["chain"]["upscale"]);
  }
  request.filename_prefix = "dreamforge";
  return request;
}

// Node ids in ComfyUI's order: numeric ids by value ("3" before "10"), then the others by text.
std::vector<std::string> ordered_node_ids(const json& graph) {
  std::vector<std::string> ids;
  for (const auto& [id, node] : graph.items()) ids.push_back(id);
  auto numeric = [](const std::string& id) {
    return !id.empty() && id.size() < 19 && std::all_of(id.begin(), id.end(), ::isdigit);
  };
  std::stable_sort(ids.begin(), ids.end(), [&](const std::string& a, const std::string& b) {
    if (numeric(a) != numeric(b)) return numeric(a);
    if (numeric(a)) return std::stoll(a) < std::stoll(b);
    return a < b;
  });
  return ids;
}

// The literal seed of the first sampler node (in node id order), if any.
std::optional<uint64_t> graph_seed(const json& graph) {
  for (const auto& id : ordered_node_ids(graph)) {
    const auto& node = graph.at(id);
    const auto& inputs = node.value("inputs", json::object());
    for (const char* name : {"seed", "noise_seed"}) {
      if (inputs.contains(name) && inputs[name].is_number_unsigned()) {
        return inputs[name].get<uint64_t>();
      }
      if (inputs.contains(name) && inputs[name].is_number_integer() && inputs[name].get<int64_t>() >= 0) {
        return static_cast<uint64_t>(inputs[name].get<int64_t>());
      }
    }
  }
  return std::nullopt;
}

}  // namespace

json job_graph(const Job& job) {
  if (job.type == "workflow") return job.spec.at("workflow");
  if (job.type == "generate") return generation_workflow(generation_request_from_spec(job.spec));
  throw Error(ErrorCode::kInvalidArgument, "unknown job type '" + job.type + "'");
}

std::vector<JobItem> plan_items(const Job& job, const std::function<uint64_t()>& draw_seed) {
  std::optional<uint64_t> base;
  if (job.spec.contains("seed") && !job.spec["seed"].is_null()) base = job.spec["seed"].get<uint64_t>();
  if (!base && job.type == "workflow") base = graph_seed(job.spec.at("workflow"));
  if (!base) base = draw_seed();
  const int count = job.spec.value("count", 1);
  std::vector<JobItem> items;
  for (int i = 0; i < count; ++i) {
    JobItem item;
    item.index = i;
    item.seed = *base + static_cast<uint64_t>(i);
    items.push_back(item);
  }
  return items;
}

std::string job_output_format(const Job& job) { return job.spec.value("format", "png"); }

bool job_wants_previews(const Job& job) {
  if (job.spec.value("previews", false)) return true;  // asked for by its client (DGX-Pixels)
  if (!job.spec.contains("comfy")) return false;
  const json extra = job.spec["comfy"].value("extra_data", json::object());
  return extra.value("preview_method", "auto") != "none";
}

std::string job_client_id(const Job& job) {
  return job.spec.value("comfy", json::object()).value("client_id", "");
}

json job_extra_pnginfo(const Job& job) {
  const json comfy = job.spec.value("comfy", json::object());
  const json extra = comfy.value("extra_data", json::object());
  const json pnginfo = extra.value("extra_pnginfo", json());
  return pnginfo.is_object() ? pnginfo : json();
}

std::optional<double> estimated_seconds_left(const Job& job) {
  const json& estimate = job.spec.contains("estimate") ? job.spec["estimate"] : json();
  if (!estimate.is_object() || !estimate.contains("seconds") || is_terminal(job.status)) {
    return std::nullopt;
  }
  const double left = estimate["seconds"].get<double>() * (1.0 - job.progress);
  return std::round(std::max(0.0, left) * 10.0) / 10.0;
}

}  // namespace df

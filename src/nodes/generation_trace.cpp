// trace_generation: a walk upstream through links of an API-format graph.
#include "nodes/generation_trace.h"

#include <set>

namespace df::nodes {
namespace {

using nlohmann::json;

const json* node_at(const json& graph, const json& link) {
  if (!link.is_array() || link.size() != 2 || !link[0].is_string()) return nullptr;
  auto it = graph.find(link[0].get<std::string>());
  return it == graph.end() ? nullptr : &*it;
}

// The node's class_type; empty for a node that is not a well-formed object.
std::string class_type_of(const json& node) {
  auto it = node.find("class_type");
  return it != node.end() && it->is_string() ? it->get<std::string>() : "";
}

const json* input_of(const json& node, const char* name) {
  auto inputs = node.find("inputs");
  if (inputs == node.end() || !inputs->is_object()) return nullptr;
  auto it = inputs->find(name);
  return it == inputs->end() ? nullptr : &*it;
}

// Follows `input` upstream until a node of one of `classes` is found (bounded by the graph size).
const json* find_upstream(const json& graph, const json& start, const char* input,
                          const std::set<std::string>& classes) {
  const json* node = &start;
  for (size_t hops = 0; hops <= graph.size(); ++hops) {
    const json* link = input_of(*node, input);
    if (!link) return nullptr;
    node = node_at(graph, *link);
    if (!node) return nullptr;
    if (classes.count(class_type_of(*node))) return node;
  }
  return nullptr;
}

std::string text_of(const json& graph, const json& sampler, const char* input) {
  const json* link = input_of(sampler, input);
  const json* encoder = link ? node_at(graph, *link) : nullptr;
  const json* text = encoder ? input_of(*encoder, "text") : nullptr;
  return text && text->is_string() ? text->get<std::string>() : "";
}

}  // namespace

GenerationParameters trace_generation(const json& graph, const std::string& save_node_id) {
  GenerationParameters params;
  auto save = graph.find(save_node_id);
  if (save == graph.end()) return params;
  const json* decode = find_upstream(graph, *save, "images", {"VAEDecode"});
  if (!decode) return params;
  const json* sampler = find_upstream(graph, *decode, "samples", {"KSampler", "KSamplerAdvanced"});
  if (!sampler) return params;
  auto inputs = sampler->find("inputs");
  if (inputs == sampler->end() || !inputs->is_object()) return params;
  const bool advanced = class_type_of(*sampler) == "KSamplerAdvanced";
  const json& in = *inputs;
  params.prompt = text_of(graph, *sampler, "positive");
  params.negative_prompt = text_of(graph, *sampler, "negative");
  const json seed = in.value(advanced ? "noise_seed" : "seed", json(0));
  if (seed.is_number_unsigned()) params.seed = seed.get<uint64_t>();
  else if (seed.is_number_integer()) params.seed = static_cast<uint64_t>(seed.get<int64_t>());
  if (in.value("steps", json()).is_number()) params.steps = in["steps"].get<int>();
  if (in.value("cfg", json()).is_number()) params.cfg = in["cfg"].get<double>();
  params.sampler = in.value("sampler_name", json("")).is_string() ? in["sampler_name"].get<std::string>() : "";
  params.scheduler = in.value("scheduler", json("")).is_string() ? in["scheduler"].get<std::string>() : "";
  if (!advanced && in.value("denoise", json()).is_number() && in["denoise"].get<double>() < 1.0) {
    params.denoise = in["denoise"].get<double>();
  }
  if (const json* loader = find_upstream(graph, *sampler, "model", {"CheckpointLoaderSimple"})) {
    const json* name = input_of(*loader, "ckpt_name");
    if (name && name->is_string()) params.model_name = name->get<std::string>();
  }
  return params;
}

}  // namespace df::nodes

// Probe commands for the SD3 MMDiT: a forward pass from a single file or a diffusers folder, the
// tensor layout of a diffusers config in either naming (shapes only, nothing allocated), and
// random weights written in both namings.
#include <string>

#include "engine/family/sd3/sd3_diffusers_writer.h"
#include "engine/family/sd3/sd3_keys.h"
#include "engine/family/sd3/sd3_transformer.h"
#include "engine/family/sd3/sd3_weights.h"
#include "engine/tiny_model.h"
#include "probe.h"

namespace df::probe {
namespace {

using engine::TensorMap;
using nlohmann::json;
namespace sd3 = engine::sd3;

at::Tensor shape_tensor(const std::vector<int64_t>& shape) {
  return at::tensor(at::ArrayRef<int64_t>(shape), at::kLong);
}

// args["path"] (a single file or a diffusers folder); x, timestep, context, pooled -> "out".
// The loaded config comes back as "depth", "heads", "head_dim", "qk_norm", "dual_layers".
TensorMap sd3_forward(const json& args, const TensorMap& in) {
  sd3::Sd3Checkpoint checkpoint =
      sd3::load_sd3_transformer(args.at("path").get<std::string>(), at::kFloat);
  const sd3::Sd3Transformer model(checkpoint.config, checkpoint.weights);
  engine::NetworkInputs inputs;
  inputs.context = in.at("context");
  if (in.count("pooled")) inputs.pooled = in.at("pooled");
  const sd3::Sd3Config& c = model.config();
  return {{"out", model.forward(in.at("x"), in.at("timestep"), inputs)},
          {"depth", shape_tensor({c.depth})},
          {"heads", shape_tensor({c.num_heads})},
          {"head_dim", shape_tensor({c.head_dim})},
          {"qk_norm", shape_tensor({c.qk_norm == sd3::QkNorm::kRms ? 1 : 0})},
          {"dual_layers", shape_tensor({static_cast<int64_t>(c.dual_attention_layers.size())})}};
}

// args["config"] (diffusers config.json) and args["naming"] ("original" or "diffusers") -> one
// int64 tensor per model tensor holding its shape.
TensorMap sd3_layout(const json& args, const TensorMap&) {
  const sd3::Sd3Config config = sd3::Sd3Config::from_diffusers_json(args.at("config"));
  TensorMap shapes;
  const bool diffusers = args.at("naming").get<std::string>() == "diffusers";
  std::unordered_map<std::string, std::vector<int64_t>> original;
  for (const engine::TensorShape& t : sd3::sd3_transformer_layout(config)) {
    original[t.name] = t.shape;
  }
  if (!diffusers) {
    for (const auto& [name, shape] : original) shapes[name] = shape_tensor(shape);
    return shapes;
  }
  for (const sd3::KeyRule& rule : sd3::sd3_key_rules(config)) {
    std::vector<int64_t> part = original.at(rule.original);
    part[0] /= static_cast<int64_t>(rule.diffusers.size());
    for (const std::string& name : rule.diffusers) shapes[name] = shape_tensor(part);
  }
  return shapes;
}

// Random weights for args["config"] (diffusers config.json) drawn from args["seed"] with
// args["stddev"]: args["dir"]/original.safetensors in Stability's names and the same weights as a
// diffusers folder args["dir"]/transformer.
TensorMap sd3_write_tiny(const json& args, const TensorMap&) {
  const sd3::Sd3Config config = sd3::Sd3Config::from_diffusers_json(args.at("config"));
  const std::string dir = args.at("dir").get<std::string>();
  const std::vector<engine::RawTensor> original = engine::tiny_random_tensors(
      sd3::sd3_transformer_layout(config), args.at("seed").get<uint64_t>(),
      args.at("stddev").get<double>());
  engine::write_safetensors(dir + "/original.safetensors", original);
  sd3::write_sd3_diffusers_transformer(dir + "/transformer", config, original);
  return {};
}

}  // namespace

DF_PROBE_COMMAND("sd3_forward", sd3_forward);
DF_PROBE_COMMAND("sd3_layout", sd3_layout);
DF_PROBE_COMMAND("sd3_write_tiny", sd3_write_tiny);

}  // namespace df::probe

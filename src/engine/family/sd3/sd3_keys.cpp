// SD3 MMDiT tensor names: Stability original <-> diffusers SD3Transformer2DModel.
#include "engine/family/sd3/sd3_keys.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"

namespace df::engine::sd3 {
namespace {

// Adds the rules of a module's weight and bias.
void add_linear(std::vector<KeyRule>& rules, const std::string& original,
                const std::vector<std::string>& diffusers, bool swap_halves = false) {
  for (const char* kind : {".weight", ".bias"}) {
    KeyRule rule{original + kind, {}, swap_halves};
    for (const std::string& part : diffusers) rule.diffusers.push_back(part + kind);
    rules.push_back(std::move(rule));
  }
}

void add_attention(std::vector<KeyRule>& rules, const Sd3Config& config,
                   const std::string& original, const std::string& diffusers, bool added,
                   bool with_projection) {
  const auto part = [&](const char* plain, const char* context) {
    return diffusers + (added ? context : plain);
  };
  add_linear(rules, original + ".qkv",
             {part("to_q", "add_q_proj"), part("to_k", "add_k_proj"), part("to_v", "add_v_proj")});
  if (config.qk_norm == QkNorm::kRms) {
    rules.push_back({original + ".ln_q.weight", {part("norm_q", "norm_added_q") + ".weight"}});
    rules.push_back({original + ".ln_k.weight", {part("norm_k", "norm_added_k") + ".weight"}});
  }
  if (with_projection) add_linear(rules, original + ".proj", {part("to_out.0", "to_add_out")});
}

void add_block(std::vector<KeyRule>& rules, const Sd3Config& config, int64_t index) {
  const std::string from = "joint_blocks." + std::to_string(index) + ".";
  const std::string to = "transformer_blocks." + std::to_string(index) + ".";
  const bool pre_only = config.context_pre_only(index);
  add_linear(rules, from + "x_block.adaLN_modulation.1", {to + "norm1.linear"});
  add_attention(rules, config, from + "x_block.attn", to + "attn.", false, true);
  if (config.has_dual_attention(index)) {
    add_attention(rules, config, from + "x_block.attn2", to + "attn2.", false, true);
  }
  add_linear(rules, from + "x_block.mlp.fc1", {to + "ff.net.0.proj"});
  add_linear(rules, from + "x_block.mlp.fc2", {to + "ff.net.2"});
  add_linear(rules, from + "context_block.adaLN_modulation.1", {to + "norm1_context.linear"},
             pre_only);
  add_attention(rules, config, from + "context_block.attn", to + "attn.", true, !pre_only);
  if (pre_only) return;
  add_linear(rules, from + "context_block.mlp.fc1", {to + "ff_context.net.0.proj"});
  add_linear(rules, from + "context_block.mlp.fc2", {to + "ff_context.net.2"});
}

std::vector<uint8_t> swapped_halves(const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> out(bytes.begin() + bytes.size() / 2, bytes.end());
  out.insert(out.end(), bytes.begin(), bytes.begin() + bytes.size() / 2);
  return out;
}

// The tensors by name; every one must be claimed by a rule.
class TensorPool {
 public:
  explicit TensorPool(const std::vector<RawTensor>& tensors) {
    for (const RawTensor& t : tensors) by_name_[t.name] = &t;
  }
  const RawTensor& take(const std::string& name) {
    const auto it = by_name_.find(name);
    if (it == by_name_.end()) {
      throw Error(ErrorCode::kCorruptFile, "SD3 MMDiT weights lack tensor '" + name + "'");
    }
    taken_.insert(name);
    return *it->second;
  }
  void require_all_taken() const {
    for (const auto& [name, tensor] : by_name_) {
      if (!taken_.contains(name)) {
        throw Error(ErrorCode::kCorruptFile,
                    "unexpected tensor '" + name + "' for this SD3 MMDiT config");
      }
    }
  }

 private:
  std::unordered_map<std::string, const RawTensor*> by_name_;
  std::unordered_set<std::string> taken_;
};

std::vector<RawTensor> split_rule(const KeyRule& rule, const RawTensor& whole) {
  const auto parts = static_cast<int64_t>(rule.diffusers.size());
  if (whole.shape.empty() || whole.shape[0] % (rule.swap_halves ? 2 * parts : parts) != 0) {
    throw Error(ErrorCode::kCorruptFile, "SD3 MMDiT tensor '" + rule.original +
                                             "' cannot be split into " + std::to_string(parts) +
                                             " parts");
  }
  const std::vector<uint8_t> bytes = rule.swap_halves ? swapped_halves(whole.bytes) : whole.bytes;
  const size_t part_bytes = bytes.size() / parts;
  std::vector<RawTensor> out;
  for (int64_t i = 0; i < parts; ++i) {
    RawTensor part{rule.diffusers[i], whole.dtype, whole.shape, {}};
    part.shape[0] /= parts;
    part.bytes.assign(bytes.begin() + i * part_bytes, bytes.begin() + (i + 1) * part_bytes);
    out.push_back(std::move(part));
  }
  return out;
}

RawTensor join_rule(const KeyRule& rule, const std::vector<const RawTensor*>& parts) {
  RawTensor whole{rule.original, parts[0]->dtype, parts[0]->shape, {}};
  whole.shape[0] = 0;
  for (const RawTensor* part : parts) {
    const bool same_rows = part->shape.size() == whole.shape.size() &&
                           std::equal(part->shape.begin() + 1, part->shape.end(),
                                      whole.shape.begin() + 1);
    if (part->dtype != whole.dtype || part->shape.empty() || !same_rows) {
      throw Error(ErrorCode::kCorruptFile, "SD3 MMDiT tensor '" + part->name +
                                               "' does not match the other parts of '" +
                                               rule.original + "'");
    }
    whole.shape[0] += part->shape[0];
    whole.bytes.insert(whole.bytes.end(), part->bytes.begin(), part->bytes.end());
  }
  if (rule.swap_halves) whole.bytes = swapped_halves(whole.bytes);
  return whole;
}

}  // namespace

std::vector<KeyRule> sd3_key_rules(const Sd3Config& config) {
  std::vector<KeyRule> rules;
  add_linear(rules, "x_embedder.proj", {"pos_embed.proj"});
  rules.push_back({"pos_embed", {"pos_embed.pos_embed"}});
  add_linear(rules, "t_embedder.mlp.0", {"time_text_embed.timestep_embedder.linear_1"});
  add_linear(rules, "t_embedder.mlp.2", {"time_text_embed.timestep_embedder.linear_2"});
  add_linear(rules, "y_embedder.mlp.0", {"time_text_embed.text_embedder.linear_1"});
  add_linear(rules, "y_embedder.mlp.2", {"time_text_embed.text_embedder.linear_2"});
  add_linear(rules, "context_embedder", {"context_embedder"});
  for (int64_t block = 0; block < config.depth; ++block) add_block(rules, config, block);
  add_linear(rules, "final_layer.adaLN_modulation.1", {"norm_out.linear"}, /*swap_halves=*/true);
  add_linear(rules, "final_layer.linear", {"proj_out"});
  return rules;
}

std::optional<std::string> strip_single_file_prefix(const std::string& name, bool prefixed) {
  if (!prefixed) return name;
  if (!name.starts_with(kSingleFilePrefix)) return std::nullopt;
  return name.substr(std::string(kSingleFilePrefix).size());
}

bool has_single_file_prefix(const std::vector<std::string>& names) {
  return std::any_of(names.begin(), names.end(),
                     [](const std::string& name) { return name.starts_with(kSingleFilePrefix); });
}

std::vector<RawTensor> sd3_original_to_diffusers(const Sd3Config& config,
                                                 const std::vector<RawTensor>& original) {
  TensorPool pool(original);
  std::vector<RawTensor> out;
  for (const KeyRule& rule : sd3_key_rules(config)) {
    for (RawTensor& part : split_rule(rule, pool.take(rule.original))) {
      out.push_back(std::move(part));
    }
  }
  pool.require_all_taken();
  return out;
}

std::vector<RawTensor> sd3_diffusers_to_original(const Sd3Config& config,
                                                 const std::vector<RawTensor>& diffusers) {
  TensorPool pool(diffusers);
  std::vector<RawTensor> out;
  for (const KeyRule& rule : sd3_key_rules(config)) {
    std::vector<const RawTensor*> parts;
    for (const std::string& name : rule.diffusers) parts.push_back(&pool.take(name));
    out.push_back(join_rule(rule, parts));
  }
  pool.require_all_taken();
  return out;
}

}  // namespace df::engine::sd3

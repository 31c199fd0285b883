// DiT LoRA key map: engine (original) names, diffusers names and their row pieces in fused weights.
#include "engine/adapters/dit_lora_names.h"

#include <unordered_map>

#include "engine/adapters/lora_names.h"
#include "engine/family/flux/flux_layout.h"
#include "engine/family/sd3/sd3_keys.h"
#include "engine/family/zimage/zimage_layout.h"

namespace df::engine {
namespace {

const std::string kWeightSuffix = ".weight";

std::string without_weight_suffix(const std::string& key) {
  return key.substr(0, key.size() - kWeightSuffix.size());
}

std::unordered_map<std::string, int64_t> leading_rows(const std::vector<TensorShape>& layout) {
  std::unordered_map<std::string, int64_t> rows;
  for (const TensorShape& tensor : layout) {
    rows[tensor.name] = tensor.shape.empty() ? 0 : tensor.shape[0];
  }
  return rows;
}

// The links of one SD3 rule: equal row blocks per diffusers tensor, or two swapped halves.
void add_sd3_rule_links(const sd3::KeyRule& rule, int64_t rows, std::vector<DiffusersLink>& links) {
  if (rule.swap_halves && rule.diffusers.size() == 1) {
    const int64_t half = rows / 2;
    links.push_back({rule.original, rule.diffusers[0], {0, half, half}});
    links.push_back({rule.original, rule.diffusers[0], {half, 0, half}});
    return;
  }
  const int64_t block = rows / static_cast<int64_t>(rule.diffusers.size());
  for (size_t i = 0; i < rule.diffusers.size(); ++i) {
    links.push_back({rule.original, rule.diffusers[i], {static_cast<int64_t>(i) * block, 0, block}});
  }
}

// The diffusers-side LoRA module prefixes of a family; true where dots become underscores.
std::vector<std::pair<std::string, bool>> diffusers_prefixes(Family family) {
  switch (family) {
    case Family::kFlux:
      return {{"transformer.", false}, {"lycoris_", true}, {"lora_transformer_", true}};
    case Family::kSD3:
      return {{"transformer.", false},
              {"base_model.model.", false},
              {"lora_transformer_", true},
              {"lycoris_", true}};
    case Family::kZImage:
      return {{"diffusion_model.", false}, {"transformer.", false}, {"lycoris_", true}};
    default:
      return {};
  }
}

void add_engine_names(const std::vector<std::string>& engine_keys, DitLoraNames& names) {
  for (const std::string& key : engine_keys) {
    if (!key.ends_with(kWeightSuffix)) {
      names["diffusion_model." + key] = {key, {}, 0};
      continue;
    }
    const std::string module = without_weight_suffix(key);
    names[kohya_lora_name("lora_unet_", module)] = {key, {}, 0};
    names["diffusion_model." + module] = {key, {}, 0};
  }
}

// The target of one diffusers weight from its links: whole when it is its engine tensor's only
// link and maps row for row.
DitLoraTarget diffusers_target(const std::vector<const DiffusersLink*>& own,
                               const std::unordered_map<std::string, int>& links_per_engine) {
  DitLoraTarget target{own.front()->engine, {}, 0};
  for (const DiffusersLink* link : own) {
    target.pieces.push_back(link->piece);
    target.source_rows += link->piece.rows;
  }
  const RowPiece& first = own.front()->piece;
  if (own.size() == 1 && links_per_engine.at(target.key) == 1 && first.target_row == 0 &&
      first.source_row == 0) {
    target.pieces.clear();
  }
  return target;
}

}  // namespace

std::vector<DiffusersLink> flux_diffusers_links(const flux::FluxConfig& config) {
  std::vector<DiffusersLink> links;
  for (const flux::TensorAssembly& assembly : flux::flux_bfl_from_diffusers(config)) {
    int64_t target_row = 0;
    for (const flux::RowSlice& part : assembly.parts) {
      links.push_back({assembly.target, part.source, {target_row, part.first_row, part.rows}});
      target_row += part.rows;
    }
  }
  return links;
}

std::vector<DiffusersLink> sd3_diffusers_links(const sd3::Sd3Config& config) {
  const auto rows = leading_rows(sd3::sd3_transformer_layout(config));
  std::vector<DiffusersLink> links;
  for (const sd3::KeyRule& rule : sd3::sd3_key_rules(config)) {
    auto it = rows.find(rule.original);
    if (it != rows.end() && !rule.diffusers.empty()) add_sd3_rule_links(rule, it->second, links);
  }
  return links;
}

std::vector<DiffusersLink> zimage_diffusers_links(const zimage::ZImageConfig& config) {
  std::vector<DiffusersLink> links;
  for (const TensorShape& tensor : zimage::zimage_transformer_layout(config)) {
    int64_t target_row = 0;
    for (const zimage::DiffusersPart& part : zimage::diffusers_parts_of(tensor, config)) {
      links.push_back({tensor.name, part.name, {target_row, 0, part.rows}});
      target_row += part.rows;
    }
  }
  return links;
}

DitLoraNames dit_lora_names(Family family, const std::vector<std::string>& engine_keys,
                            const std::vector<DiffusersLink>& links) {
  DitLoraNames names;
  add_engine_names(engine_keys, names);
  std::map<std::string, std::vector<const DiffusersLink*>> by_diffusers;
  std::unordered_map<std::string, int> links_per_engine;
  for (const DiffusersLink& link : links) {
    ++links_per_engine[link.engine];
    if (link.diffusers.ends_with(kWeightSuffix)) by_diffusers[link.diffusers].push_back(&link);
  }
  const auto prefixes = diffusers_prefixes(family);
  for (const auto& [diffusers, own] : by_diffusers) {
    const DitLoraTarget target = diffusers_target(own, links_per_engine);
    const std::string module = without_weight_suffix(diffusers);
    for (const auto& [prefix, underscores] : prefixes) {
      names[underscores ? kohya_lora_name(prefix, module) : prefix + module] = target;
    }
  }
  return names;
}

}  // namespace df::engine

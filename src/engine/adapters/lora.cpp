// LoRA files to weight patches: ComfyUI's key map and adapter choice per module of the file.
#include "engine/adapters/lora.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "engine/adapters/lycoris_adapters.h"
#include "engine/adapters/row_pieces_adapter.h"
#include "engine/checkpoint.h"
#include "engine/checkpoint_bundle.h"
#include "engine/family/flux/flux_transformer.h"
#include "engine/family/sd3/sd3_transformer.h"
#include "engine/family/zimage/zimage_transformer.h"
#include "engine/safetensors.h"

namespace df::engine {
namespace {

constexpr int kUNetModule = -1;

// What one LoRA module name patches: the UNet or DiT network (module -1) or text encoder `module`,
// weight `key` (whole, or the row pieces of a diffusers weight of source_rows rows fused into it);
// inert names are taken without effect.
struct LoraTarget {
  int module = kUNetModule;
  std::string key;
  bool inert = false;
  std::vector<RowPiece> pieces = {};
  int64_t source_rows = 0;
};

using LoraNameMap = std::unordered_map<std::string, LoraTarget>;

// Every tensor suffix a LoRA module may have, longest-first where one ends another.
const std::vector<std::string>& lora_suffixes() {
  static const std::vector<std::string> suffixes = {
      ".lora_up.weight", ".lora_down.weight", ".lora_mid.weight", "_lora.up.weight",
      "_lora.down.weight", ".lora_B.weight", ".lora_A.weight", ".lora.up.weight",
      ".lora.down.weight", ".lora_linear_layer.up.weight", ".lora_linear_layer.down.weight",
      ".hada_w1_a", ".hada_w1_b", ".hada_w2_a", ".hada_w2_b", ".hada_t1", ".hada_t2", ".lokr_w1",
      ".lokr_w2", ".lokr_w1_a", ".lokr_w1_b", ".lokr_w2_a", ".lokr_w2_b", ".lokr_t2", ".alpha",
      ".dora_scale", ".diff_b", ".diff", ".w_norm", ".b_norm"};
  return suffixes;
}

// LoRA up/down tensor names, in ComfyUI's order of preference; only kohya's has a mid kernel.
struct UpDownNames {
  const char* up;
  const char* down;
  const char* mid;
};

const std::vector<UpDownNames>& lora_up_down_names() {
  static const std::vector<UpDownNames> names = {
      {".lora_up.weight", ".lora_down.weight", ".lora_mid.weight"},
      {"_lora.up.weight", "_lora.down.weight", nullptr},
      {".lora_B.weight", ".lora_A.weight", nullptr},
      {".lora.up.weight", ".lora.down.weight", nullptr},
      {".lora_linear_layer.up.weight", ".lora_linear_layer.down.weight", nullptr}};
  return names;
}

void add_names(LoraNameMap& map, const std::vector<std::string>& names, const LoraTarget& target) {
  for (const auto& name : names) map.emplace(name, target);
}

bool has_prefix(const WeightShapes& shapes, const std::string& prefix) {
  auto it = shapes.lower_bound(prefix);
  return it != shapes.end() && it->first.starts_with(prefix);
}

// The encoder's weights in the layers it lacks, named after its first layer's.
std::vector<std::string> uncomputed_layer_keys(const LoraTextEncoderTarget& encoder) {
  const std::string nested = "text_model.encoder.layers.";
  const std::string layers = has_prefix(encoder.weights, nested) ? nested : "encoder.layers.";
  int computed = 0;
  while (has_prefix(encoder.weights, layers + std::to_string(computed) + ".")) ++computed;
  std::vector<std::string> keys;
  const std::string first = layers + "0.";
  for (int layer = computed; layer < computed + encoder.uncomputed_layers; ++layer) {
    for (auto it = encoder.weights.lower_bound(first);
         it != encoder.weights.end() && it->first.starts_with(first); ++it) {
      keys.push_back(layers + std::to_string(layer) + "." + it->first.substr(first.size()));
    }
  }
  return keys;
}

void add_dit_names(LoraNameMap& map, const DitLoraNames& names) {
  for (const auto& [name, target] : names) {
    map.emplace(name, LoraTarget{kUNetModule, target.key, false, target.pieces, target.source_rows});
  }
}

// The UNet's names, or a DiT network's.
void add_diffusion_model_names(LoraNameMap& map, const LoraTargets& targets) {
  if (!targets.dit_names.empty()) {
    add_dit_names(map, targets.dit_names);
    return;
  }
  for (const auto& [key, shape] : targets.unet) {
    add_names(map, unet_lora_names(key, targets.unet_config), {kUNetModule, key, false});
  }
}

LoraNameMap lora_name_map(const LoraTargets& targets) {
  LoraNameMap map;
  add_diffusion_model_names(map, targets);
  for (size_t i = 0; i < targets.text_encoders.size(); ++i) {
    const auto& encoder = targets.text_encoders[i];
    const int module = static_cast<int>(i);
    for (const auto& [key, shape] : encoder.weights) {
      add_names(map, text_encoder_lora_names(key, encoder.kind), {module, key, false});
    }
    for (const auto& key : uncomputed_layer_keys(encoder)) {
      add_names(map, text_encoder_lora_names(key, encoder.kind), {module, key, true});
    }
  }
  return map;
}

// The tensors of one LoRA module name, by suffix, and which of them a patch used.
class ModuleTensors {
 public:
  void add(const std::string& suffix, const std::string& file_key, at::Tensor tensor) {
    tensors_[suffix] = {file_key, std::move(tensor)};
  }
  bool has(const std::string& suffix) const { return tensors_.count(suffix) > 0; }
  // The tensor (undefined when absent), marked used.
  at::Tensor take(const std::string& suffix) {
    auto it = tensors_.find(suffix);
    if (it == tensors_.end()) return {};
    used_.insert(suffix);
    return it->second.tensor;
  }
  // Marks every tensor used (names taken without effect).
  void take_all() {
    for (const auto& [suffix, entry] : tensors_) used_.insert(suffix);
  }
  std::vector<std::string> unused_file_keys() const {
    std::vector<std::string> keys;
    for (const auto& [suffix, entry] : tensors_) {
      if (!used_.count(suffix)) keys.push_back(entry.file_key);
    }
    return keys;
  }

 private:
  struct Entry {
    std::string file_key;
    at::Tensor tensor;
  };
  std::map<std::string, Entry> tensors_;
  std::set<std::string> used_;
};

// The file's tensors grouped under the LoRA module names the targets know; the rest go to
// `unmatched`.
std::map<std::string, ModuleTensors> group_by_module(const TensorMap& lora,
                                                     const LoraNameMap& names,
                                                     std::vector<std::string>& unmatched) {
  std::map<std::string, ModuleTensors> modules;
  for (const auto& [file_key, tensor] : lora) {
    bool matched = false;
    for (const auto& suffix : lora_suffixes()) {
      if (!file_key.ends_with(suffix)) continue;
      const std::string name = file_key.substr(0, file_key.size() - suffix.size());
      if (!names.count(name)) continue;
      modules[name].add(suffix, file_key, tensor);
      matched = true;
      break;
    }
    if (!matched) unmatched.push_back(file_key);
  }
  return modules;
}

std::optional<double> alpha_of(ModuleTensors& tensors, const std::string& name) {
  const at::Tensor alpha = tensors.take(".alpha");
  if (!alpha.defined()) return std::nullopt;
  if (alpha.numel() != 1) {
    throw Error(ErrorCode::kCorruptFile,
                "LoRA tensor '" + name + ".alpha' is not a single number");
  }
  return alpha.to(at::kDouble).item<double>();
}

std::shared_ptr<const FactorizedAdapter> lora_adapter(ModuleTensors& tensors,
                                                      const std::optional<double>& alpha,
                                                      const at::Tensor& dora_scale) {
  for (const auto& names : lora_up_down_names()) {
    if (!tensors.has(names.up)) continue;
    LoraFactors factors{tensors.take(names.up), tensors.take(names.down),
                        names.mid ? tensors.take(names.mid) : at::Tensor()};
    return std::make_shared<LoraAdapter>(std::move(factors), alpha, dora_scale);
  }
  return nullptr;
}

std::shared_ptr<const FactorizedAdapter> loha_adapter(ModuleTensors& tensors,
                                                      const std::optional<double>& alpha,
                                                      const at::Tensor& dora_scale) {
  if (!tensors.has(".hada_w1_a")) return nullptr;
  LohaFactors factors{tensors.take(".hada_w1_a"), tensors.take(".hada_w1_b"),
                      tensors.take(".hada_w2_a"), tensors.take(".hada_w2_b"), {}, {}};
  if (tensors.has(".hada_t1")) {
    factors.t1 = tensors.take(".hada_t1");
    factors.t2 = tensors.take(".hada_t2");
  }
  return std::make_shared<LohaAdapter>(std::move(factors), alpha, dora_scale);
}

std::shared_ptr<const FactorizedAdapter> lokr_adapter(ModuleTensors& tensors,
                                                      const std::optional<double>& alpha,
                                                      const at::Tensor& dora_scale) {
  LokrFactors factors{tensors.take(".lokr_w1"),   tensors.take(".lokr_w1_a"),
                      tensors.take(".lokr_w1_b"), tensors.take(".lokr_w2"),
                      tensors.take(".lokr_w2_a"), tensors.take(".lokr_w2_b"),
                      tensors.take(".lokr_t2")};
  if (!factors.w1.defined() && !factors.w2.defined() && !factors.w1_a.defined() &&
      !factors.w2_a.defined()) {
    return nullptr;
  }
  return std::make_shared<LokrAdapter>(std::move(factors), alpha, dora_scale);
}

// The patches one LoRA module name gives: its weight's, and a bias difference.
struct ModulePatches {
  std::shared_ptr<const WeightAdapter> weight;
  std::shared_ptr<const WeightAdapter> bias;
};

// The factorised adapter of one module (LoRA over LoKr over LoHa, as ComfyUI picks), or null with
// `problem` set when its factors do not fit together or its difference not the weight.
std::shared_ptr<const WeightAdapter> fitting_factorized(ModuleTensors& tensors,
                                                        const std::optional<double>& alpha,
                                                        const at::Tensor& dora_scale,
                                                        int64_t weight_numel,
                                                        std::string& problem) {
  try {
    auto adapter = lora_adapter(tensors, alpha, dora_scale);
    if (!adapter) adapter = lokr_adapter(tensors, alpha, dora_scale);
    if (!adapter) adapter = loha_adapter(tensors, alpha, dora_scale);
    if (adapter && adapter->diff_numel() != weight_numel) {
      problem = "its difference has " + std::to_string(adapter->diff_numel()) +
                " values, the weight " + std::to_string(weight_numel);
      return nullptr;
    }
    return adapter;
  } catch (const Error& e) {
    problem = e.what();
    return nullptr;
  }
}

// The patches of one module; a plain difference wins over factors, as in ComfyUI. Throws
// Error(kCorruptFile) for an alpha that is not one number.
ModulePatches module_patches(ModuleTensors& tensors, const std::string& name,
                             int64_t weight_numel, std::string& problem) {
  const std::optional<double> alpha = alpha_of(tensors, name);
  const at::Tensor dora_scale = tensors.take(".dora_scale");
  ModulePatches patches;
  patches.weight = fitting_factorized(tensors, alpha, dora_scale, weight_numel, problem);
  for (const char* suffix : {".w_norm", ".diff"}) {
    if (tensors.has(suffix)) patches.weight = std::make_shared<DiffAdapter>(tensors.take(suffix));
  }
  for (const char* suffix : {".b_norm", ".diff_b"}) {
    if (tensors.has(suffix)) patches.bias = std::make_shared<DiffAdapter>(tensors.take(suffix));
  }
  return patches;
}

// The adapters each weight gets: one for a whole weight (a later name replaces it), one per
// module name for row pieces of a fused weight.
using PlacedPatches = std::map<std::string, std::vector<std::shared_ptr<const WeightAdapter>>>;

const WeightShapes& target_shapes(const LoraTargets& targets, int module) {
  return module == kUNetModule ? targets.unet : targets.text_encoders.at(module).weights;
}

// The shape of what a module's difference patches: the weight, or the diffusers weight whose row
// pieces are fused into it.
std::vector<int64_t> patched_shape(std::vector<int64_t> weight_shape, const LoraTarget& target) {
  if (!target.pieces.empty() && !weight_shape.empty()) weight_shape[0] = target.source_rows;
  return weight_shape;
}

// Adds `adapter` as a patch of `key` when the target has that weight with the shape a
// difference needs; otherwise records why not.
void place_patch(const std::shared_ptr<const WeightAdapter>& adapter, const std::string& key,
                 const LoraTarget& target, const WeightShapes& shapes, PlacedPatches& placed,
                 std::vector<std::string>& rejected) {
  auto it = shapes.find(key);
  if (it == shapes.end()) {
    rejected.push_back("lora patch for '" + key + "' not applied: the model has no such weight");
    return;
  }
  const std::vector<int64_t> shape = patched_shape(it->second, target);
  const auto* diff = dynamic_cast<const DiffAdapter*>(adapter.get());
  if (diff && diff->diff().sizes() != at::IntArrayRef(shape)) {
    rejected.push_back("lora patch for '" + key + "' not applied: its difference has shape " +
                       c10::str(diff->diff().sizes()) + ", the weight " + c10::str(shape));
    return;
  }
  if (target.pieces.empty()) {
    placed[key] = {adapter};
    return;
  }
  placed[key].push_back(
      std::make_shared<RowPiecesAdapter>(adapter, target.pieces, target.source_rows));
}

std::string bias_key(const std::string& weight_key) {
  const std::string suffix = ".weight";
  if (!weight_key.ends_with(suffix)) return weight_key + ".bias";
  return weight_key.substr(0, weight_key.size() - suffix.size()) + ".bias";
}

int64_t shape_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

WeightShapes shapes_of(const Weights& weights) {
  WeightShapes shapes;
  for (const auto& key : weights.keys()) shapes.emplace(key, weights.get(key).sizes().vec());
  return shapes;
}

std::string view_prefix(const Weights& weights) {
  return weights.prefix().empty() ? "" : weights.prefix() + ".";
}

// A DiT network's tensors (those under its Weights' prefix), by full name.
WeightShapes network_shapes(const Weights& weights) {
  const std::string prefix = view_prefix(weights);
  WeightShapes shapes;
  for (const auto& key : weights.keys()) {
    if (!key.starts_with(prefix)) continue;
    shapes.emplace(key, weights.get(key.substr(prefix.size())).sizes().vec());
  }
  return shapes;
}

// The network's LoRA names, its tensors named without and targets with the view's prefix.
DitLoraNames network_lora_names(Family family, const WeightShapes& shapes, const Weights& weights,
                                const std::vector<DiffusersLink>& links) {
  const std::string prefix = view_prefix(weights);
  std::vector<std::string> relative;
  for (const auto& [key, shape] : shapes) relative.push_back(key.substr(prefix.size()));
  DitLoraNames names = dit_lora_names(family, relative, links);
  for (auto& [name, target] : names) target.key = prefix + target.key;
  std::erase_if(names, [&](const auto& entry) { return !shapes.count(entry.second.key); });
  return names;
}

// How the network's diffusers-named tensors lie in its own (none for an unknown network).
std::vector<DiffusersLink> diffusers_links(const DiffusionNetwork& network) {
  if (const auto* flux = dynamic_cast<const flux::FluxTransformer*>(&network)) {
    return flux_diffusers_links(flux->config());
  }
  if (const auto* sd3 = dynamic_cast<const sd3::Sd3Transformer*>(&network)) {
    return sd3_diffusers_links(sd3->config());
  }
  if (const auto* zimage = dynamic_cast<const zimage::ZImageTransformer*>(&network)) {
    return zimage_diffusers_links(zimage->config());
  }
  return {};
}

// Builds the patches of one module name and places them with its target module's (`placed`:
// the UNet's, then each text encoder's); inert names only take their tensors.
void place_module(const std::string& name, ModuleTensors& tensors, const LoraTarget& target,
                  const LoraTargets& targets, std::vector<PlacedPatches>& placed,
                  std::vector<std::string>& rejected) {
  if (target.inert) {
    tensors.take_all();
    return;
  }
  const WeightShapes& shapes = target_shapes(targets, target.module);
  PlacedPatches& module_placed = placed.at(static_cast<size_t>(target.module + 1));
  std::string problem;
  const ModulePatches patches =
      module_patches(tensors, name, shape_numel(patched_shape(shapes.at(target.key), target)),
                     problem);
  if (!problem.empty()) {
    rejected.push_back("lora patch for '" + target.key + "' (" + name + ") not applied: " +
                       problem);
  }
  if (patches.weight) {
    place_patch(patches.weight, target.key, target, shapes, module_placed, rejected);
  }
  if (patches.bias) {
    place_patch(patches.bias, bias_key(target.key), target, shapes, module_placed, rejected);
  }
}

WeightPatches with_strength(const PlacedPatches& placed, double strength) {
  WeightPatches patches;
  for (const auto& [key, adapters] : placed) {
    for (const auto& adapter : adapters) patches[key].push_back(WeightPatch{adapter, strength, 1.0});
  }
  return patches;
}

}  // namespace

LoraTargets lora_targets(const DiffusionModel* model, const TextConditioner* clip) {
  LoraTargets targets;
  if (model && model->network) {
    const Weights& weights = model->network->weights();
    targets.unet = network_shapes(weights);
    targets.dit_names = network_lora_names(model->family, targets.unet, weights,
                                           diffusers_links(*model->network));
  } else if (model) {
    const UNet& unet = model->require_unet("LoRA");
    targets.unet_config = unet.config();
    targets.unet = shapes_of(unet.weights());
  }
  if (!clip) return targets;
  const auto kinds = text_encoder_kinds(clip->family());
  for (size_t i = 0; i < clip->encoders().size() && i < kinds.size(); ++i) {
    LoraTextEncoderTarget encoder;
    encoder.kind = kinds[i];
    encoder.weights = shapes_of(clip->encoders()[i].model.weights());
    encoder.uncomputed_layers = clip->family() == Family::kSD2 ? 1 : 0;
    targets.text_encoders.push_back(std::move(encoder));
  }
  return targets;
}

LoraPatches lora_patches(const TensorMap& lora, const LoraTargets& targets, double strength_model,
                         double strength_clip) {
  LoraPatches out;
  const LoraNameMap names = lora_name_map(targets);
  auto modules = group_by_module(lora, names, out.unmatched);
  std::vector<PlacedPatches> placed(targets.text_encoders.size() + 1);  // UNet, then encoders
  for (auto& [name, tensors] : modules) {
    place_module(name, tensors, names.at(name), targets, placed, out.rejected);
  }
  for (const auto& [name, tensors] : modules) {
    for (auto& key : tensors.unused_file_keys()) out.unmatched.push_back(std::move(key));
  }
  std::sort(out.unmatched.begin(), out.unmatched.end());
  out.unet = with_strength(placed[0], strength_model);
  for (size_t i = 1; i < placed.size(); ++i) {
    out.text_encoders.push_back(with_strength(placed[i], strength_clip));
  }
  return out;
}

LoraPatches load_lora(const std::string& path, const LoraTargets& targets, double strength_model,
                      double strength_clip) {
  namespace fs = std::filesystem;
  if (!fs::is_regular_file(path)) {
    throw Error(ErrorCode::kModelNotFound, "no LoRA file at '" + path + "'", {{"path", path}});
  }
  check_weights_path(path, "a LoRA (.safetensors, .ckpt, .pt, .pth, .bin)");
  return lora_patches(load_tensors(path), targets, strength_model, strength_clip);
}

}  // namespace df::engine

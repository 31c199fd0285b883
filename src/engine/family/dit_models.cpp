// The DiT families' diffusion model loading, one entry per family.
#include "engine/family/dit_models.h"

#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/family/families.h"
#include "engine/family/flux/flux_transformer.h"
#include "engine/family/flux/flux_weights.h"
#include "engine/family/sd3/sd3_transformer.h"
#include "engine/family/sd3/sd3_weights.h"
#include "engine/family/zimage/zimage_transformer.h"
#include "engine/tensor_file.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

// A network and whether it takes FLUX.1 dev's distilled guidance.
struct LoadedNetwork {
  std::shared_ptr<const DiffusionNetwork> network;
  bool distilled_guidance = false;
};

struct DitFamily {
  Family family;
  const char* diffusers_class;       // config.json's _class_name of its diffusers folders
  std::vector<const char*> markers;  // a tensor name part only its files have
  std::function<LoadedNetwork(const std::string& path, const RuntimePlacement& placement)> load;
};

Weights placed(TensorMap tensors, const RuntimePlacement& placement) {
  Weights weights(std::move(tensors));
  weights.to(placement.dtype, placement.device);
  return weights;
}

LoadedNetwork load_flux(const std::string& path, const RuntimePlacement& placement) {
  flux::FluxTransformerWeights loaded = flux::load_flux_transformer(path, placement.dtype);
  const bool guidance = loaded.config.guidance_embed;
  return {std::make_shared<const flux::FluxTransformer>(
              loaded.config, placed(std::move(loaded.tensors), placement)),
          guidance};
}

LoadedNetwork load_sd3(const std::string& path, const RuntimePlacement& placement) {
  sd3::Sd3Checkpoint loaded = sd3::load_sd3_transformer(path, placement.dtype);
  loaded.weights.to(placement.dtype, placement.device);
  return {std::make_shared<const sd3::Sd3Transformer>(loaded.config, loaded.weights), false};
}

LoadedNetwork load_zimage(const std::string& path, const RuntimePlacement& placement) {
  return {zimage::load_zimage_transformer(path, placement.device, placement.dtype), false};
}

const std::vector<DitFamily>& dit_families() {
  static const std::vector<DitFamily> families = {
      {Family::kFlux, "FluxTransformer2DModel",
       {"double_blocks.0.img_attn.", "single_transformer_blocks.0.attn."}, load_flux},
      {Family::kSD3, "SD3Transformer2DModel",
       {"joint_blocks.0.x_block.", "transformer_blocks.0.attn.add_q_proj"}, load_sd3},
      {Family::kZImage, "ZImageTransformer2DModel", {"noise_refiner.0."}, load_zimage},
  };
  return families;
}

const DitFamily* family_entry(Family family) {
  for (const DitFamily& entry : dit_families()) {
    if (entry.family == family) return &entry;
  }
  return nullptr;
}

// The diffusers class a transformer folder (or a pipeline folder's transformer/) names.
std::string folder_class(const fs::path& dir) {
  for (const fs::path& config : {dir / "config.json", dir / "transformer" / "config.json"}) {
    std::ifstream in(config);
    if (!in) continue;
    const auto json = nlohmann::json::parse(in, nullptr, false);
    if (json.is_object() && json.contains("_class_name") && json["_class_name"].is_string()) {
      return json["_class_name"].get<std::string>();
    }
  }
  return "";
}

bool has_marker(const TensorFile& file, const DitFamily& entry) {
  for (const TensorInfo& tensor : file.tensors()) {
    for (const char* marker : entry.markers) {
      if (tensor.name.find(marker) != std::string::npos) return true;
    }
  }
  return false;
}

}  // namespace

std::optional<Family> detect_dit_family(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const std::string name = folder_class(path);
    for (const DitFamily& entry : dit_families()) {
      if (name == entry.diffusers_class) return entry.family;
    }
    return std::nullopt;
  }
  const TensorFile file = TensorFile::open(path);
  // SD3's diffusers marker is shared with FLUX's double blocks: FLUX is asked first.
  for (const DitFamily& entry : dit_families()) {
    if (has_marker(file, entry)) return entry.family;
  }
  return std::nullopt;
}

std::shared_ptr<const DiffusionModel> load_dit_model(const std::string& path, Family family,
                                                     const RuntimePlacement& placement) {
  const DitFamily* entry = family_entry(family);
  if (entry == nullptr) {
    throw Error(ErrorCode::kInvalidArgument, family_name(family) + " is not a DiT family");
  }
  LoadedNetwork loaded = entry->load(path, placement);
  return std::make_shared<const DiffusionModel>(DiffusionModel{
      family, std::nullopt, std::move(loaded.network),
      default_flow_sampling(family, loaded.distilled_guidance), latent_format_of(family), false,
      placement});
}

}  // namespace df::engine

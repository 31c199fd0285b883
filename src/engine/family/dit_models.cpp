// The DiT families' diffusion model loading, one entry per family.
#include "engine/family/dit_models.h"

#include <filesystem>
#include <functional>

#include "core/error.h"
#include "engine/family/families.h"
#include "engine/family/family_detection.h"
#include "engine/family/flux/flux_transformer.h"
#include "engine/family/flux/flux_weights.h"
#include "engine/family/sd3/sd3_transformer.h"
#include "engine/family/sd3/sd3_weights.h"
#include "engine/family/zimage/zimage_transformer.h"
#include "engine/family/zimage/zimage_weights.h"
#include "engine/fp8_weights.h"
#include "engine/tensor_file.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

// Where a network's weights go, and in which dtype its matrices are stored.
struct DitPlacement {
  RuntimePlacement runtime;
  std::optional<at::ScalarType> fp8_storage;  // none: the compute dtype
};

// A network and whether it takes FLUX.1 dev's distilled guidance.
struct LoadedNetwork {
  std::shared_ptr<const DiffusionNetwork> network;
  bool distilled_guidance = false;
};

struct DitFamily {
  Family family;
  std::function<LoadedNetwork(const std::string& path, const DitPlacement& placement)> load;
};

// The weights on the placement's device: matrices in its fp8 storage dtype when it has one (made
// on the CPU, before moving), everything else in its compute dtype.
Weights placed(TensorMap tensors, const DitPlacement& placement) {
  if (placement.fp8_storage) store_matrix_weights_in_fp8(tensors, *placement.fp8_storage);
  Weights weights(std::move(tensors));
  weights.to(placement.runtime.dtype, placement.runtime.device);
  return weights;
}

LoadedNetwork load_flux(const std::string& path, const DitPlacement& placement) {
  flux::FluxTransformerWeights loaded = flux::load_flux_transformer(path, placement.runtime.dtype);
  const bool guidance = loaded.config.guidance_embed;
  return {std::make_shared<const flux::FluxTransformer>(
              loaded.config, placed(std::move(loaded.tensors), placement)),
          guidance};
}

LoadedNetwork load_sd3(const std::string& path, const DitPlacement& placement) {
  sd3::Sd3Checkpoint loaded = sd3::load_sd3_transformer(path, placement.runtime.dtype);
  return {std::make_shared<const sd3::Sd3Transformer>(
              loaded.config, placed(tensors_of(loaded.weights), placement)),
          false};
}

LoadedNetwork load_zimage(const std::string& path, const DitPlacement& placement) {
  TensorMap tensors = zimage::load_zimage_weights(path, placement.runtime.dtype);
  zimage::ZImageConfig config = zimage::zimage_config_for(path, tensors);
  return {std::make_shared<const zimage::ZImageTransformer>(std::move(config),
                                                            placed(std::move(tensors), placement)),
          false};
}

const std::vector<DitFamily>& dit_families() {
  static const std::vector<DitFamily> families = {
      {Family::kFlux, load_flux},
      {Family::kSD3, load_sd3},
      {Family::kZImage, load_zimage},
  };
  return families;
}

const DitFamily* family_entry(Family family) {
  for (const DitFamily& entry : dit_families()) {
    if (entry.family == family) return &entry;
  }
  return nullptr;
}

}  // namespace

std::optional<Family> detect_dit_family(const std::string& path) {
  std::error_code ec;
  const std::optional<DetectedFamily> detected =
      fs::is_directory(path, ec) ? detect_folder_family(path)
                                 : detect_file_family(TensorFile::open(path));
  if (!detected || family_entry(detected->family) == nullptr) return std::nullopt;
  return detected->family;
}

std::shared_ptr<const DiffusionModel> load_dit_model(const std::string& path, Family family,
                                                     const RuntimePlacement& placement,
                                                     std::optional<at::ScalarType> fp8_storage) {
  const DitFamily* entry = family_entry(family);
  if (entry == nullptr) {
    throw Error(ErrorCode::kInvalidArgument, family_name(family) + " is not a DiT family");
  }
  LoadedNetwork loaded = entry->load(path, DitPlacement{placement, fp8_storage});
  return std::make_shared<const DiffusionModel>(DiffusionModel{
      family, std::nullopt, std::move(loaded.network),
      default_flow_sampling(family, loaded.distilled_guidance), latent_format_of(family), false,
      placement});
}

}  // namespace df::engine

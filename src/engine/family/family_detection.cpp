// Family detection from tensor names and diffusers configs.
#include "engine/family/family_detection.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <fstream>

#include <nlohmann/json.hpp>

namespace df::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return json();
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

bool contains(const std::string& name, const char* part) {
  return name.find(part) != std::string::npos;
}

// The DiT families' transformer blocks, in either naming. FLUX's diffusers blocks share SD3's
// joint-attention names, so single_transformer_blocks (FLUX only) decides between them.
std::optional<DetectedFamily> dit_family_of(const TensorFile& file) {
  bool flux = false, flux_guidance = false, joint = false, sd3 = false, zimage = false;
  for (const TensorInfo& tensor : file.tensors()) {
    const std::string& name = tensor.name;
    if (contains(name, "double_blocks.0.img_attn.") ||
        contains(name, "single_transformer_blocks.0.")) {
      flux = true;
    }
    if (contains(name, "guidance_in.") || contains(name, "guidance_embedder.")) flux_guidance = true;
    if (contains(name, "joint_blocks.0.x_block.")) sd3 = true;
    if (contains(name, "transformer_blocks.0.attn.add_q_proj")) joint = true;
    if (contains(name, "noise_refiner.0.")) zimage = true;
  }
  if (flux) return DetectedFamily{Family::kFlux, flux_guidance};
  if (sd3 || joint) return DetectedFamily{Family::kSD3};
  if (zimage) return DetectedFamily{Family::kZImage};
  return std::nullopt;
}

// The SD families from a single file's text embedders and UNet.
std::optional<DetectedFamily> sd_family_of(const TensorFile& file) {
  bool second_embedder = false, open_clip = false, refiner = false;
  for (const TensorInfo& tensor : file.tensors()) {
    if (tensor.name.rfind("conditioner.embedders.1.", 0) == 0) second_embedder = true;
    if (tensor.name.rfind("conditioner.embedders.0.model.", 0) == 0) refiner = true;
    if (tensor.name.rfind("cond_stage_model.model.", 0) == 0) open_clip = true;
  }
  if (second_embedder) return DetectedFamily{Family::kSDXL};
  if (refiner) return DetectedFamily{Family::kSDXLRefiner};
  if (open_clip) return DetectedFamily{Family::kSD2};
  if (file.find("model.diffusion_model.input_blocks.0.0.weight") != nullptr) {
    return DetectedFamily{Family::kSD1};
  }
  return std::nullopt;
}

// An SD pipeline's family from its UNet config.
DetectedFamily sd_family_of(const json& unet) {
  const int cross = unet.value("cross_attention_dim", 768);
  if (unet.value("addition_embed_type", "") == "text_time") {
    return {cross == 1280 ? Family::kSDXLRefiner : Family::kSDXL};
  }
  return {cross == 1024 ? Family::kSD2 : Family::kSD1};
}

// A diffusers transformer config's family from its class name.
std::optional<DetectedFamily> dit_family_of(const json& transformer) {
  if (!transformer.is_object()) return std::nullopt;
  const std::string name = transformer.value("_class_name", "");
  if (name == "FluxTransformer2DModel") {
    return DetectedFamily{Family::kFlux, transformer.value("guidance_embeds", false)};
  }
  if (name == "SD3Transformer2DModel") return DetectedFamily{Family::kSD3};
  if (name == "ZImageTransformer2DModel") return DetectedFamily{Family::kZImage};
  return std::nullopt;
}

}  // namespace

std::string DetectedFamily::registry_name() const {
  if (family == Family::kFlux && !distilled_guidance) return "flux_schnell";
  return family_name(family);
}

std::optional<DetectedFamily> detect_file_family(const TensorFile& file) {
  if (auto dit = dit_family_of(file)) return dit;
  return sd_family_of(file);
}

std::string stored_weight_dtype(const TensorFile& file) {
  std::map<std::string, uint64_t> bytes;
  for (const TensorInfo& tensor : file.tensors()) {
    if (tensor.dtype.rfind("F8_", 0) == 0 && tensor.shape.size() >= 2) return "fp8";
    bytes[tensor.dtype] += tensor.span;
  }
  const auto most = std::max_element(bytes.begin(), bytes.end(), [](const auto& a, const auto& b) {
    return a.second < b.second;
  });
  if (most == bytes.end()) return "";
  if (most->first == "BF16") return "bf16";
  if (most->first == "F16") return "fp16";
  if (most->first == "F32") return "fp32";
  return "";
}

std::optional<DetectedFamily> detect_folder_family(const std::string& dir) {
  const fs::path root(dir);
  const json unet = read_json_file(root / "unet" / "config.json");
  if (fs::exists(root / "model_index.json") && unet.is_object()) return sd_family_of(unet);
  if (auto dit = dit_family_of(read_json_file(root / "transformer" / "config.json"))) return dit;
  return dit_family_of(read_json_file(root / "config.json"));
}

}  // namespace df::engine

// Tiny DiT pipeline folders: the tiny split files rewritten in diffusers / transformers layout.
#include "engine/family/dit_pipeline_writer.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/family/flow_vae.h"
#include "engine/family/flux/flux_config.h"
#include "engine/family/flux/flux_diffusers_writer.h"
#include "engine/family/flux/flux_tiny.h"
#include "engine/family/sd3/sd3_diffusers_writer.h"
#include "engine/family/sd3/sd3_tiny.h"
#include "engine/family/zimage/zimage_layout.h"
#include "engine/family/zimage/zimage_tiny.h"
#include "engine/safetensors_file.h"
#include "engine/text/qwen3_config.h"
#include "engine/text/t5_config.h"
#include "engine/tiny_addons.h"
#include "engine/tiny_model.h"
#include "engine/weight_layout.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kTestModelKey = "dreamforge_test_model";
// Where the tiny split CLIP files keep their transformers config.
constexpr const char* kTextEncoderConfigKey = "dreamforge.text_encoder_config";

void write_json(const fs::path& path, const json& value) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::trunc);
  out << value.dump(2) << "\n";
  if (!out) throw Error(ErrorCode::kIo, "cannot write '" + path.string() + "'");
}

void write_weights(const fs::path& path, const std::vector<RawTensor>& tensors,
                   std::map<std::string, std::string> metadata = {}) {
  fs::create_directories(path.parent_path());
  metadata.emplace("format", "pt");
  metadata.emplace(kTestModelKey, "random weights");
  write_safetensors(path.string(), tensors, metadata);
}

struct RawFile {
  std::vector<RawTensor> tensors;
  std::map<std::string, std::string> metadata;
};

RawFile read_raw_file(const fs::path& path) {
  const SafetensorsFile file = SafetensorsFile::open(path.string());
  RawFile raw{{}, file.metadata()};
  for (const SafetensorsTensorInfo& info : file.tensors()) {
    const uint8_t* data = file.data(info);
    raw.tensors.push_back(RawTensor{info.name, info.dtype, info.shape,
                                    std::vector<uint8_t>(data, data + (info.end - info.begin))});
  }
  return raw;
}

void copy_folder(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

fs::path tokenizer_of(const fs::path& weights) {
  return weights.parent_path() / (weights.stem().string() + ".tokenizer");
}

// FlowMatchEulerDiscreteScheduler as the family's diffusers folders configure it (FLUX.1 dev
// shifts by resolution).
json scheduler_config(const std::string& family) {
  json config = {{"_class_name", "FlowMatchEulerDiscreteScheduler"},
                 {"num_train_timesteps", 1000},
                 {"shift", family == "flux-schnell" ? 1.0 : 3.0},
                 {"use_dynamic_shifting", family == "flux"}};
  if (family == "flux") {
    config.update({{"base_image_seq_len", 256}, {"base_shift", 0.5},
                   {"max_image_seq_len", 4096}, {"max_shift", 1.15}});
  }
  return config;
}

json model_index(const std::string& family) {
  const json clip = {"transformers", "CLIPTextModel"};
  const json clip_projected = {"transformers", "CLIPTextModelWithProjection"};
  const json clip_tokenizer = {"transformers", "CLIPTokenizer"};
  const json t5 = {"transformers", "T5EncoderModel"};
  const json t5_tokenizer = {"transformers", "T5TokenizerFast"};
  json index = {{"scheduler", {"diffusers", "FlowMatchEulerDiscreteScheduler"}},
                {"vae", {"diffusers", "AutoencoderKL"}},
                {kTestModelKey, true}};
  if (family == "zimage") {
    index.update({{"_class_name", "ZImagePipeline"},
                  {"transformer", {"diffusers", "ZImageTransformer2DModel"}},
                  {"text_encoder", {"transformers", "Qwen3Model"}},
                  {"tokenizer", {"transformers", "Qwen2Tokenizer"}}});
  } else if (family == "sd3") {
    index.update({{"_class_name", "StableDiffusion3Pipeline"},
                  {"transformer", {"diffusers", "SD3Transformer2DModel"}},
                  {"text_encoder", clip_projected}, {"tokenizer", clip_tokenizer},
                  {"text_encoder_2", clip_projected}, {"tokenizer_2", clip_tokenizer},
                  {"text_encoder_3", t5}, {"tokenizer_3", t5_tokenizer},
                  {"image_encoder", {nullptr, nullptr}}, {"feature_extractor", {nullptr, nullptr}}});
  } else {
    index.update({{"_class_name", "FluxPipeline"},
                  {"transformer", {"diffusers", "FluxTransformer2DModel"}},
                  {"text_encoder", clip}, {"tokenizer", clip_tokenizer},
                  {"text_encoder_2", t5}, {"tokenizer_2", t5_tokenizer},
                  {"image_encoder", {nullptr, nullptr}}, {"feature_extractor", {nullptr, nullptr}}});
  }
  return index;
}

// An F32 identity matrix named `name`, `size` x `size`.
RawTensor identity_matrix(const std::string& name, int64_t size) {
  RawTensor tensor{name, "F32", {size, size}, std::vector<uint8_t>(size * size * sizeof(float))};
  const float one = 1.0f;
  for (int64_t i = 0; i < size; ++i) {
    std::memcpy(tensor.bytes.data() + (i * size + i) * sizeof(float), &one, sizeof(float));
  }
  return tensor;
}

// A split CLIP file (transformers names, its config in the metadata) as a transformers folder;
// with `identity_projection` a CLIP without projection gains an identity text_projection
// (CLIPTextModelWithProjection) while the metadata keeps the config the engine reads it with.
void write_clip(const fs::path& weights, const fs::path& encoder_dir, const fs::path& tokenizer_dir,
                bool identity_projection) {
  RawFile raw = read_raw_file(weights);
  ClipTextConfig config =
      ClipTextConfig::from_json(json::parse(raw.metadata.at(kTextEncoderConfigKey)));
  if (identity_projection && !config.with_projection) {
    config.with_projection = true;
    config.projection_dim = config.hidden_size;
    raw.tensors.push_back(identity_matrix("text_projection.weight", config.hidden_size));
  }
  write_json(encoder_dir / "config.json", config.to_json());
  write_weights(encoder_dir / "model.safetensors", raw.tensors,
                {{kTextEncoderConfigKey, raw.metadata.at(kTextEncoderConfigKey)}});
  copy_folder(tokenizer_of(weights), tokenizer_dir);
}

void write_t5(const fs::path& weights, const fs::path& encoder_dir, const fs::path& tokenizer_dir) {
  const RawFile raw = read_raw_file(weights);
  std::vector<TensorShape> shapes;
  for (const RawTensor& tensor : raw.tensors) shapes.push_back({tensor.name, tensor.shape});
  write_json(encoder_dir / "config.json", T5Config::infer_from_keys(shapes).to_json());
  write_weights(encoder_dir / "model.safetensors", raw.tensors);
  copy_folder(tokenizer_of(weights), tokenizer_dir);
}

void write_qwen3(const fs::path& weights, const fs::path& encoder_dir,
                 const fs::path& tokenizer_dir) {
  const RawFile raw = read_raw_file(weights);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const RawTensor& tensor : raw.tensors) shapes.emplace(tensor.name, tensor.shape);
  json config = Qwen3Config::infer_from_keys(shapes).to_json();
  config["architectures"] = {"Qwen3Model"};
  write_json(encoder_dir / "config.json", config);
  write_weights(encoder_dir / "model.safetensors", raw.tensors);
  copy_folder(tokenizer_of(weights), tokenizer_dir);
}

// The split VAE file (LDM names, 1x1 convolution attention) in diffusers names and shapes.
void write_vae(const fs::path& weights, const VaeConfig& config, const fs::path& dir) {
  RawFile raw = read_raw_file(weights);
  std::map<std::string, RawTensor*> by_name;
  for (RawTensor& tensor : raw.tensors) by_name[tensor.name] = &tensor;
  std::vector<RawTensor> renamed;
  for (const TensorShape& wanted : vae_tensor_layout(config)) {
    const std::string ldm = diffusers_vae_key_to_ldm(wanted.name, config.block_out_channels.size());
    const auto found = by_name.find(ldm);
    if (found == by_name.end()) {
      throw Error(ErrorCode::kCorruptFile, "'" + weights.string() + "' lacks '" + ldm + "'");
    }
    renamed.push_back(RawTensor{wanted.name, found->second->dtype, wanted.shape,
                                std::move(found->second->bytes)});
  }
  write_json(dir / "config.json", config.to_json());
  write_weights(dir / "diffusion_pytorch_model.safetensors", renamed);
}

void write_zimage_transformer(const fs::path& weights, const fs::path& dir) {
  const zimage::ZImageConfig config = zimage::tiny_zimage_split_config();
  write_json(dir / "config.json", config.to_diffusers_json());
  write_weights(dir / "diffusion_pytorch_model.safetensors",
                zimage::raw_tensors_to_diffusers(read_raw_file(weights).tensors, config));
}

void write_flux_folder(const fs::path& split, const fs::path& dir, bool dev) {
  const fs::path models = split / "diffusion_models";
  flux::write_flux_diffusers_transformer(
      (dir / "transformer").string(), flux::tiny_flux_config(dev),
      read_raw_file(models / (dev ? flux::kDevModelFile : flux::kSchnellModelFile)).tensors);
  const fs::path text = split / "text_encoders";
  write_clip(text / flux::kClipLFile, dir / "text_encoder", dir / "tokenizer", false);
  write_t5(text / flux::kT5File, dir / "text_encoder_2", dir / "tokenizer_2");
  write_vae(split / "vae" / flux::kVaeFile, tiny_flow_vae_config(Family::kFlux), dir / "vae");
}

void write_sd3_folder(const fs::path& split, const fs::path& dir) {
  sd3::write_sd3_diffusers_transformer(
      (dir / "transformer").string(), sd3::tiny_sd3_split_config(),
      read_raw_file(split / "diffusion_models" / sd3::kDiffusionModelFile).tensors);
  const fs::path text = split / "text_encoders";
  write_clip(text / sd3::kClipLFile, dir / "text_encoder", dir / "tokenizer", true);
  write_clip(text / sd3::kClipGFile, dir / "text_encoder_2", dir / "tokenizer_2", true);
  write_t5(text / sd3::kT5File, dir / "text_encoder_3", dir / "tokenizer_3");
  write_vae(split / "vae" / sd3::kVaeFile, tiny_flow_vae_config(Family::kSD3), dir / "vae");
}

void write_zimage_folder(const fs::path& split, const fs::path& dir) {
  write_zimage_transformer(split / "diffusion_models" / zimage::kDiffusionModelFile,
                           dir / "transformer");
  write_qwen3(split / "text_encoders" / zimage::kTextEncoderFile, dir / "text_encoder",
              dir / "tokenizer");
  write_vae(split / "vae" / zimage::kVaeFile, tiny_flow_vae_config(Family::kZImage), dir / "vae");
}

// Writes the family's split files under `split`.
void write_split_files(const std::string& family, const fs::path& split, uint64_t seed) {
  if (family == "zimage") {
    zimage::write_tiny_zimage_files(split.string(), seed);
  } else if (family == "sd3") {
    sd3::write_tiny_sd3_files(split.string(), seed);
  } else {
    flux::write_tiny_flux_files(split.string(), family == "flux", seed);
  }
}

void write_components(const std::string& family, const fs::path& split, const fs::path& dir) {
  if (family == "zimage") {
    write_zimage_folder(split, dir);
  } else if (family == "sd3") {
    write_sd3_folder(split, dir);
  } else {
    write_flux_folder(split, dir, family == "flux");
  }
}

// Empties `dir` of an earlier test model (refusing anything else) and creates it.
void prepare_folder(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir) && !fs::is_directory(dir)) {
    throw Error(ErrorCode::kInvalidArgument, "'" + dir.string() + "' exists and is not a directory");
  }
  if (fs::exists(dir) && !fs::is_empty(dir)) {
    if (!is_tiny_model(dir.string())) {
      throw Error(ErrorCode::kInvalidArgument,
                  "'" + dir.string() + "' is not empty and does not hold a Dream Forge test "
                  "model; refusing to overwrite it (choose a new or empty directory)");
    }
    fs::remove_all(dir, ec);
  }
  fs::create_directories(dir);
}

// A scratch folder beside `dir` for the split files, removed when done.
class ScratchFolder {
 public:
  explicit ScratchFolder(const fs::path& dir)
      : path_(dir.parent_path() / ("." + dir.filename().string() + ".split")) {
    fs::remove_all(path_);
  }
  ~ScratchFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

std::string write_tiny_dit_pipeline(const std::string& dir, const std::string& family,
                                    uint64_t seed) {
  if (family != "flux" && family != "flux-schnell" && family != "sd3" && family != "zimage") {
    throw Error(ErrorCode::kUnsupported,
                "no tiny diffusers pipeline folder for family '" + family +
                    "' (flux, flux-schnell, sd3 and zimage have one)");
  }
  const fs::path target = fs::absolute(dir);
  prepare_folder(target);
  const ScratchFolder split(target);
  write_split_files(family, split.path(), seed);
  write_components(family, split.path(), target);
  write_json(target / "scheduler" / "scheduler_config.json", scheduler_config(family));
  write_json(target / "model_index.json", model_index(family));
  return dir;
}

}  // namespace df::engine

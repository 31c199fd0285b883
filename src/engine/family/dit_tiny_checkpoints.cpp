// Tiny FLUX.1 / SD3.5 all-in-one checkpoints assembled from the families' tiny split files.
#include "engine/family/dit_tiny_checkpoints.h"

#include <filesystem>
#include <map>
#include <vector>

#include "core/error.h"
#include "engine/family/flux/flux_tiny.h"
#include "engine/family/sd3/sd3_tiny.h"
#include "engine/safetensors_file.h"
#include "engine/tiny_addons.h"
#include "engine/tiny_model.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTextEncoderConfigKey = "dreamforge.text_encoder_config";

// A split file (relative to the models root) and the prefix its tensors get in the single file;
// `text_encoder` names a text encoder part ("clip_l", ...), empty for the others.
struct SplitPart {
  std::string file;
  std::string prefix;
  std::string text_encoder;
};

SplitPart text_encoder_part(const std::string& file, const std::string& name) {
  return {"text_encoders/" + file, "text_encoders." + name + ".transformer.", name};
}

// The split files of `family` (written into `models_dir`) and where each goes.
std::vector<SplitPart> write_split_parts(const std::string& family, const fs::path& models_dir,
                                         uint64_t seed) {
  if (family == "flux" || family == "flux-schnell") {
    const bool dev = family == "flux";
    flux::write_tiny_flux_files(models_dir.string(), dev, seed);
    const std::string model = dev ? flux::kDevModelFile : flux::kSchnellModelFile;
    return {{"diffusion_models/" + model, "model.diffusion_model.", ""},
            {std::string("vae/") + flux::kVaeFile, "vae.", ""},
            text_encoder_part(flux::kClipLFile, "clip_l"),
            text_encoder_part(flux::kT5File, "t5xxl")};
  }
  if (family == "sd3") {
    sd3::write_tiny_sd3_files(models_dir.string(), seed);
    return {{std::string("diffusion_models/") + sd3::kDiffusionModelFile,
             "model.diffusion_model.", ""},
            {std::string("vae/") + sd3::kVaeFile, "first_stage_model.", ""},
            text_encoder_part(sd3::kClipLFile, "clip_l"),
            text_encoder_part(sd3::kClipGFile, "clip_g"),
            text_encoder_part(sd3::kT5File, "t5xxl")};
  }
  throw Error(ErrorCode::kUnsupported,
              "a tiny all-in-one checkpoint is written for flux, flux-schnell and sd3, not " +
                  family);
}

// Appends the part's tensors (renamed under its prefix) and its text encoder config.
void add_part(const fs::path& models_dir, const SplitPart& part, std::vector<RawTensor>& tensors,
              std::map<std::string, std::string>& metadata) {
  const SafetensorsFile file = SafetensorsFile::open((models_dir / part.file).string());
  for (const SafetensorsTensorInfo& info : file.tensors()) {
    const uint8_t* bytes = file.data(info);
    tensors.push_back({part.prefix + info.name, info.dtype, info.shape,
                       std::vector<uint8_t>(bytes, bytes + (info.end - info.begin))});
  }
  const auto config = file.metadata().find(kTextEncoderConfigKey);
  if (!part.text_encoder.empty() && config != file.metadata().end()) {
    metadata["dreamforge." + part.text_encoder + "_config"] = config->second;
  }
}

// A scratch folder removed when it goes out of scope.
struct ScratchDir {
  fs::path path;
  explicit ScratchDir(const fs::path& beside)
      : path(beside.parent_path() / (beside.filename().string() + ".parts")) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

}  // namespace

std::string write_tiny_dit_checkpoint(const std::string& path, const std::string& family,
                                      uint64_t seed) {
  try {
    const fs::path target(path);
    if (target.has_parent_path()) fs::create_directories(target.parent_path());
    const ScratchDir scratch(target);
    std::vector<RawTensor> tensors;
    std::map<std::string, std::string> metadata;
    fs::path t5_tokenizer;
    for (const SplitPart& part : write_split_parts(family, scratch.path, seed)) {
      add_part(scratch.path, part, tensors, metadata);
      if (part.text_encoder == "t5xxl") {
        t5_tokenizer = fs::path(scratch.path / part.file).replace_extension(".tokenizer");
      }
    }
    write_test_file(path, "checkpoint", std::move(tensors), std::move(metadata));
    const fs::path beside = fs::path(target).replace_extension(".tokenizer");
    fs::remove_all(beside);
    fs::copy(t5_tokenizer, beside, fs::copy_options::recursive);
  } catch (const fs::filesystem_error& e) {
    throw Error(ErrorCode::kIo, "cannot write the test checkpoint '" + path + "': " + e.what());
  }
  return path;
}

}  // namespace df::engine

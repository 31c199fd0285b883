// SD3 MMDiT weights written as a diffusers transformer folder.
#include "engine/family/sd3/sd3_diffusers_writer.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/family/sd3/sd3_keys.h"

namespace df::engine::sd3 {

void write_sd3_diffusers_transformer(const std::string& dir, const Sd3Config& config,
                                     const std::vector<RawTensor>& original) {
  const std::filesystem::path root(dir);
  std::error_code error;
  std::filesystem::create_directories(root, error);
  if (error) throw Error(ErrorCode::kIo, "cannot create '" + dir + "': " + error.message());
  write_safetensors((root / "diffusion_pytorch_model.safetensors").string(),
                    sd3_original_to_diffusers(config, original));
  std::ofstream out(root / "config.json", std::ios::trunc);
  out << config.to_diffusers_json().dump(2) << "\n";
  if (!out) throw Error(ErrorCode::kIo, "cannot write '" + (root / "config.json").string() + "'");
}

}  // namespace df::engine::sd3

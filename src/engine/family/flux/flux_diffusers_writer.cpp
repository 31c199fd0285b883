// Writing FLUX.1 transformer weights as a diffusers FluxTransformer2DModel folder (torch-free).
#include "engine/family/flux/flux_diffusers_writer.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/family/flux/flux_layout.h"

namespace df::engine::flux {

void write_flux_diffusers_transformer(const std::string& dir, const FluxConfig& config,
                                      const std::vector<RawTensor>& bfl) {
  const std::filesystem::path root(dir);
  std::error_code error;
  std::filesystem::create_directories(root, error);
  if (error) throw Error(ErrorCode::kIo, "cannot create '" + dir + "': " + error.message());
  write_safetensors((root / "diffusion_pytorch_model.safetensors").string(),
                    assemble_raw(bfl, flux_diffusers_from_bfl(config)));
  std::ofstream out(root / "config.json", std::ios::trunc);
  out << config.to_diffusers_json().dump(2) << "\n";
  if (!out) throw Error(ErrorCode::kIo, "cannot write '" + (root / "config.json").string() + "'");
}

}  // namespace df::engine::flux

// A loaded checkpoint as CheckpointLoaderSimple yields it: diffusion MODEL, CLIP conditioner and VAE.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <ATen/ATen.h>

#include "engine/denoise/diffusion_network.h"
#include "engine/latent_format.h"
#include "engine/model_config.h"
#include "engine/noise_schedule.h"
#include "engine/taesd.h"
#include "engine/text/prompt_encoder.h"
#include "engine/text_conditioning.h"
#include "engine/unet.h"
#include "engine/vae.h"

namespace df::engine {

// Where and in which precision the modules run.
struct RuntimePlacement {
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;      // UNet and text encoders
  at::ScalarType vae_dtype = at::kFloat;  // SDXL's VAE overflows in float16: never half for it
};

// Picks the device ("auto", "cpu", "cuda", "cuda:N") and dtype ("auto", "float32", "float16",
// "bfloat16"); auto means CUDA in float16 when libtorch sees a GPU, else CPU float32.
RuntimePlacement resolve_placement(const std::string& device, const std::string& dtype,
                                   Family family);

// What a CFG hook sees for one model call (denoised estimates, in the sampler's latent space).
struct CfgArgs {
  at::Tensor cond_denoised;
  at::Tensor uncond_denoised;
  double cfg = 1.0;
  at::Tensor x;  // the noisy input
  double sigma = 0.0;
  // The conditional estimate for x at sigma computed again with more UNet patches (ComfyUI's
  // calc_cond_batch of the positive side under changed model options); empty where the guider
  // cannot recompute it.
  std::function<at::Tensor(const UNetPatches& extra)> cond_with_patches = {};
};
// Replaces uncond + (cond - uncond) * cfg (ComfyUI's sampler_cfg_function, e.g. RescaleCFG).
using CfgFunction = std::function<at::Tensor(const CfgArgs& args)>;
// Runs after guidance on its result (ComfyUI's post_cfg_function); `denoised` is the guided x0.
using PostCfgFunction = std::function<at::Tensor(const CfgArgs& args, const at::Tensor& denoised)>;

// ComfyUI's denoise_mask_function (DifferentialDiffusion): the inpainting mask a step at `sigma`
// uses, from the latent's mask and the run's sigmas.
using DenoiseMaskFunction = std::function<at::Tensor(
    const NoiseSchedule& schedule, double sigma, const at::Tensor& mask, const at::Tensor& sigmas)>;

struct GuidanceOptions {
  CfgFunction cfg_function;  // empty: the plain CFG formula
  std::vector<PostCfgFunction> post_cfg_functions;
  DenoiseMaskFunction denoise_mask_function;  // empty: the latent's mask as it is
};

// The denoising model with its model sampling (ComfyUI's MODEL): an SD UNet, or the network of a
// DiT family (FLUX, SD3, Z-Image).
struct DiffusionModel {
  Family family;
  std::optional<UNet> unet;                          // the SD families' UNet
  std::shared_ptr<const DiffusionNetwork> network;   // the DiT families' network
  NoiseSchedule schedule;
  LatentFormat latent_format;
  bool requires_aesthetics_score;
  RuntimePlacement placement;
  GuidanceOptions guidance = {};  // set by model patches (engine/model_patcher.h)

  // The UNet of an SD model; Error(kUnsupported) naming `what` (the feature that needs it) for a
  // DiT family's model.
  const UNet& require_unet(const std::string& what) const;
};

// The model's latent format applied to a VAE latent and back (latent_format.h).
at::Tensor latent_to_sampler(const DiffusionModel& model, const at::Tensor& latent);
at::Tensor latent_from_sampler(const DiffusionModel& model, const at::Tensor& latent);

// The VAE with its latent scale (ComfyUI's VAE): the full autoencoder or a Tiny AutoEncoder.
// Images are [B,H,W,3] float32 in [0,1] on the CPU.
class VaeCodec {
 public:
  VaeCodec(Vae vae, RuntimePlacement placement)
      : autoencoder_(std::move(vae)), placement_(placement) {}
  VaeCodec(TinyAutoencoder taesd, RuntimePlacement placement)
      : autoencoder_(std::move(taesd)), placement_(placement) {}
  at::Tensor decode(const at::Tensor& latents) const;  // unscaled latents -> images
  at::Tensor encode(const at::Tensor& images) const;   // images -> unscaled latent mean
  int downscale() const;

 private:
  std::variant<Vae, TinyAutoencoder> autoencoder_;
  RuntimePlacement placement_;
};

struct CheckpointBundle {
  std::string name;
  std::string identity_file;  // the file whose sha256 identifies the checkpoint
  Family family;
  std::shared_ptr<const DiffusionModel> model;
  std::shared_ptr<const TextConditioner> clip;  // the SD families' text encoders
  std::shared_ptr<const PromptEncoder> prompt_encoder;  // a DiT family's text side instead
  std::shared_ptr<const VaeCodec> vae;
};

struct CheckpointLoadRequest {
  std::string path;
  std::string device = "auto";
  std::string dtype = "auto";
  std::string clip_vocab_dir;  // tokenizer files for single-file checkpoints
};

CheckpointBundle load_checkpoint_bundle(const CheckpointLoadRequest& request);

// VAELoader: a VAE file of its own (see load_standalone_vae), run in float32 on `device` ("auto",
// "cpu", "cuda", "cuda:N"): VAEs overflow in float16.
std::shared_ptr<const VaeCodec> load_vae_codec(const std::string& path, const std::string& device);

// VAELoader's "taesd"/"taesdxl": TAESD's encoder and decoder files (.safetensors or .pth) with the latent
// scale of the VAE they imitate, run in float32 on `device` as load_vae_codec does.
std::shared_ptr<const VaeCodec> load_tiny_vae_codec(const std::string& encoder_path,
                                                    const std::string& decoder_path,
                                                    double latent_scale, const std::string& device);

}  // namespace df::engine

// Writes tiny random LoRA / LyCORIS files whose names match the tiny test pipelines' modules.
#include "engine/adapters/lora_tiny.h"

#include <bit>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include "core/error.h"
#include "engine/adapters/dit_lora_names.h"
#include "engine/adapters/lora_names.h"
#include "engine/family/flux/flux_layout.h"
#include "engine/family/sd3/sd3_tiny.h"
#include "engine/family/zimage/zimage_layout.h"
#include "engine/family/zimage/zimage_tiny.h"
#include "engine/safetensors_file.h"
#include "engine/tiny_model.h"
#include "engine/weight_layout.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTestLoraKey = "dreamforge_test_model";
constexpr int64_t kRank = 4;
constexpr float kAlpha = 2.0f;
// Factors are uniform in [-0.4, 0.4]: large enough that even LoHa's products of products change
// the 0.02-wide tiny weights visibly.
constexpr double kAmplitude = 0.4;

// Uniform samples from mt19937_64, whose output the standard fixes: the same on every platform.
class UniformSampler {
 public:
  explicit UniformSampler(uint64_t seed) : engine_(seed) {}
  float next() {
    const double unit = static_cast<double>(engine_() >> 11) * 0x1.0p-53;  // [0, 1)
    return static_cast<float>((2.0 * unit - 1.0) * kAmplitude);
  }

 private:
  std::mt19937_64 engine_;
};

void append_f32(std::vector<uint8_t>& bytes, float value) {
  const auto bits = std::bit_cast<uint32_t>(value);
  for (int shift = 0; shift < 32; shift += 8) bytes.push_back(static_cast<uint8_t>(bits >> shift));
}

// One weight a LoRA patches: its name in the file (without tensor suffix) and its shape.
struct LoraModule {
  std::string name;
  std::vector<int64_t> shape;  // [out, in] or [out, in, kh, kw]
};

// Writes the tensors of each module in one format.
class TinyLoraBuilder {
 public:
  TinyLoraBuilder(TinyLoraFormat format, uint64_t seed) : format_(format), sampler_(seed) {}

  void add(const LoraModule& module) {
    switch (format_) {
      case TinyLoraFormat::kKohya:
        add_up_down(module, ".lora_up.weight", ".lora_down.weight");
        add_alpha(module);
        break;
      case TinyLoraFormat::kPeft:
        add_up_down(module, ".lora_B.weight", ".lora_A.weight");
        break;
      case TinyLoraFormat::kLoha:
        add_loha(module);
        add_alpha(module);
        break;
      case TinyLoraFormat::kLokr:
        add_lokr(module);
        add_alpha(module);
        break;
    }
  }
  std::vector<RawTensor> take() { return std::move(tensors_); }

 private:
  void add_random(const std::string& name, const std::vector<int64_t>& shape) {
    RawTensor tensor{name, "F32", shape, {}};
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    tensor.bytes.reserve(static_cast<size_t>(count) * 4);
    for (int64_t i = 0; i < count; ++i) append_f32(tensor.bytes, sampler_.next());
    tensors_.push_back(std::move(tensor));
  }
  void add_alpha(const LoraModule& module) {
    RawTensor alpha{module.name + ".alpha", "F32", {}, {}};
    append_f32(alpha.bytes, kAlpha);
    tensors_.push_back(std::move(alpha));
  }
  // down [rank, in(, kh, kw)], up [out, rank(, 1, 1)].
  void add_up_down(const LoraModule& module, const char* up, const char* down) {
    std::vector<int64_t> down_shape = module.shape;
    down_shape[0] = kRank;
    std::vector<int64_t> up_shape(module.shape.size(), 1);
    up_shape[0] = module.shape[0];
    up_shape[1] = kRank;
    add_random(module.name + down, down_shape);
    add_random(module.name + up, up_shape);
  }
  // (w1_a @ w1_b) * (w2_a @ w2_b) over the weight flattened to [out, in * kh * kw].
  void add_loha(const LoraModule& module) {
    const int64_t inputs = flat_inputs(module.shape);
    for (const char* side : {"1", "2"}) {
      add_random(module.name + ".hada_w" + side + "_a", {module.shape[0], kRank});
      add_random(module.name + ".hada_w" + side + "_b", {kRank, inputs});
    }
  }
  // kron(w1, w2): w1 [a, b] whole; w2 [out/a, in/b] as a rank-4 product, or whole as a kernel.
  void add_lokr(const LoraModule& module) {
    const int64_t a = largest_divisor_up_to_root(module.shape[0]);
    const int64_t b = largest_divisor_up_to_root(module.shape[1]);
    add_random(module.name + ".lokr_w1", {a, b});
    std::vector<int64_t> w2_shape = module.shape;
    w2_shape[0] /= a;
    w2_shape[1] /= b;
    if (w2_shape.size() == 4) {
      add_random(module.name + ".lokr_w2", w2_shape);
      return;
    }
    add_random(module.name + ".lokr_w2_a", {w2_shape[0], kRank});
    add_random(module.name + ".lokr_w2_b", {kRank, w2_shape[1]});
  }

  static int64_t flat_inputs(const std::vector<int64_t>& shape) {
    int64_t inputs = 1;
    for (size_t i = 1; i < shape.size(); ++i) inputs *= shape[i];
    return inputs;
  }
  static int64_t largest_divisor_up_to_root(int64_t n) {
    int64_t best = 1;
    for (int64_t d = 1; d * d <= n; ++d) {
      if (n % d == 0) best = d;
    }
    return best;
  }

  TinyLoraFormat format_;
  UniformSampler sampler_;
  std::vector<RawTensor> tensors_;
};

bool is_patched_unet_module(const std::string& key) {
  static const std::vector<std::string> attention_modules = {
      ".proj_in.weight", ".proj_out.weight", ".to_q.weight",         ".to_k.weight",
      ".to_v.weight",    ".to_out.0.weight", ".ff.net.0.proj.weight", ".ff.net.2.weight"};
  if (key.find(".resnets.") != std::string::npos) {
    return key.ends_with(".conv1.weight") || key.ends_with(".conv2.weight");
  }
  if (key.find(".attentions.") == std::string::npos) return false;
  for (const auto& module : attention_modules) {
    if (key.ends_with(module)) return true;
  }
  return false;
}

bool is_patched_text_module(const std::string& key) {
  for (const char* module : {".self_attn.q_proj.weight", ".self_attn.k_proj.weight",
                             ".self_attn.v_proj.weight", ".self_attn.out_proj.weight",
                             ".mlp.fc1.weight", ".mlp.fc2.weight"}) {
    if (key.ends_with(module)) return true;
  }
  return false;
}

std::string module_of(const std::string& weight_key) {
  return weight_key.substr(0, weight_key.size() - std::string(".weight").size());
}

// The name of a UNet module in the file: kohya names SDXL's after its LDM UNet, SD1/SD2's after
// diffusers'; PEFT files use the diffusers names under "unet.".
std::string unet_module_name(const std::string& key, const PipelineConfig& config,
                             TinyLoraFormat format) {
  if (format == TinyLoraFormat::kPeft) return "unet." + module_of(key);
  if (config.family == Family::kSDXL) {
    return kohya_lora_name("lora_unet_", module_of(*diffusers_unet_key_to_ldm(key, config.unet)));
  }
  return kohya_lora_name("lora_unet_", module_of(key));
}

std::string text_module_name(const std::string& key, size_t encoder, const PipelineConfig& config,
                             TinyLoraFormat format) {
  if (format == TinyLoraFormat::kPeft) {
    return (encoder == 0 ? "text_encoder." : "text_encoder_2.") + module_of(key);
  }
  const bool pair = config.text_encoders.size() > 1;
  const std::string prefix = !pair ? "lora_te_" : encoder == 0 ? "lora_te1_" : "lora_te2_";
  return kohya_lora_name(prefix, module_of(key));
}

std::vector<LoraModule> tiny_lora_modules(const PipelineConfig& config, TinyLoraFormat format) {
  std::vector<LoraModule> modules;
  for (const auto& entry : unet_tensor_layout(config.unet)) {
    if (is_patched_unet_module(entry.name)) {
      modules.push_back({unet_module_name(entry.name, config, format), entry.shape});
    }
  }
  for (size_t i = 0; i < config.text_encoders.size(); ++i) {
    for (const auto& entry : clip_text_tensor_layout(config.text_encoders[i])) {
      if (is_patched_text_module(entry.name)) {
        modules.push_back({text_module_name(entry.name, i, config, format), entry.shape});
      }
    }
  }
  return modules;
}

// The transformer tensors of a DiT family's tiny split files and their diffusers links.
struct DitLayout {
  std::vector<TensorShape> tensors;
  std::vector<DiffusersLink> links;
};

DitLayout tiny_dit_layout(Family family) {
  if (family == Family::kFlux) {
    const flux::FluxConfig config = flux::tiny_flux_config(/*guidance=*/true);
    return {flux::flux_transformer_layout(config), flux_diffusers_links(config)};
  }
  if (family == Family::kSD3) {
    const sd3::Sd3Config config = sd3::tiny_sd3_split_config();
    return {sd3::sd3_transformer_layout(config), sd3_diffusers_links(config)};
  }
  const zimage::ZImageConfig config = zimage::tiny_zimage_split_config();
  return {zimage::zimage_transformer_layout(config), zimage_diffusers_links(config)};
}

bool is_linear_weight(const TensorShape& tensor) {
  return tensor.name.ends_with(".weight") && tensor.shape.size() == 2;
}

// PEFT files name the diffusers modules ("transformer.<module>"), each as wide as its rows of the
// original weights.
std::vector<LoraModule> dit_diffusers_modules(const DitLayout& dit) {
  std::map<std::string, std::vector<int64_t>> linear;
  for (const TensorShape& tensor : dit.tensors) {
    if (is_linear_weight(tensor)) linear.emplace(tensor.name, tensor.shape);
  }
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const DiffusersLink& link : dit.links) {
    auto it = linear.find(link.engine);
    if (it == linear.end() || !link.diffusers.ends_with(".weight")) continue;
    auto& shape = shapes.try_emplace("transformer." + module_of(link.diffusers),
                                     std::vector<int64_t>{0, it->second[1]}).first->second;
    shape[0] += link.piece.rows;
  }
  std::vector<LoraModule> modules;
  for (const auto& [name, shape] : shapes) modules.push_back({name, shape});
  return modules;
}

// Every linear weight of a DiT family's tiny transformer: kohya names of the original modules, or
// the diffusers modules for PEFT.
std::vector<LoraModule> tiny_dit_lora_modules(Family family, TinyLoraFormat format) {
  const DitLayout dit = tiny_dit_layout(family);
  if (format == TinyLoraFormat::kPeft) return dit_diffusers_modules(dit);
  std::vector<LoraModule> modules;
  for (const TensorShape& tensor : dit.tensors) {
    if (is_linear_weight(tensor)) {
      modules.push_back({kohya_lora_name("lora_unet_", module_of(tensor.name)), tensor.shape});
    }
  }
  return modules;
}

bool is_dit_family(Family family) {
  return family == Family::kFlux || family == Family::kSD3 || family == Family::kZImage;
}

void prepare_target(const fs::path& path) {
  if (fs::exists(path) && !is_tiny_lora(path.string())) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + path.string() +
                    "' exists and is not a Dream Forge test LoRA; refusing to overwrite it");
  }
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
}

}  // namespace

const std::vector<std::string>& tiny_lora_format_names() {
  static const std::vector<std::string> names = {"kohya", "peft", "loha", "lokr"};
  return names;
}

TinyLoraFormat tiny_lora_format_from_name(const std::string& name) {
  static const std::map<std::string, TinyLoraFormat> formats = {{"kohya", TinyLoraFormat::kKohya},
                                                                {"peft", TinyLoraFormat::kPeft},
                                                                {"loha", TinyLoraFormat::kLoha},
                                                                {"lokr", TinyLoraFormat::kLokr}};
  auto it = formats.find(name);
  if (it == formats.end()) {
    throw Error(ErrorCode::kInvalidArgument,
                "unknown LoRA format '" + name + "' (use kohya, peft, loha or lokr)");
  }
  return it->second;
}

void write_tiny_lora(const std::string& path, Family family, TinyLoraFormat format,
                     uint64_t seed) {
  TinyLoraBuilder builder(format, seed);
  const std::vector<LoraModule> modules =
      is_dit_family(family) ? tiny_dit_lora_modules(family, format)
                            : tiny_lora_modules(tiny_pipeline_config(family), format);
  for (const auto& module : modules) builder.add(module);
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {kTestLoraKey, "random weights"}, {"dreamforge_family", family_name(family)}};
  try {
    prepare_target(path);
    write_safetensors(path, builder.take(), metadata);
  } catch (const fs::filesystem_error& e) {
    throw Error(ErrorCode::kIo, "cannot write the test LoRA to '" + path + "': " + e.what());
  }
}

bool is_tiny_lora(const std::string& path) {
  try {
    const SafetensorsFile file = SafetensorsFile::open(path);
    return file.metadata().count(kTestLoraKey) > 0;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace df::engine

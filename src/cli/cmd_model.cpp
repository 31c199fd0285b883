// `dreamforge model ...`: subcommands that manage model files.
#include "cli/cmd_model.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/audit_trail.h"
#include "cli/service_options.h"
#include "core/error.h"
#include "download/configured_sources.h"
#include "download/download_progress.h"
#include "download/model_installer.h"
#include "download/model_layout.h"
#include "download/model_ref.h"
#include "engine/adapters/lora_tiny.h"
#include "engine/family/dit_pipeline_writer.h"
#include "engine/family/dit_tiny_checkpoints.h"
#include "engine/family/flux/flux_tiny.h"
#include "engine/family/sd3/sd3_tiny.h"
#include "engine/family/zimage/zimage_tiny.h"
#include "engine/model_config.h"
#include "engine/tiny_addons.h"
#include "engine/tiny_controlnet.h"
#include "engine/tiny_t2i_adapter.h"
#include "engine/tiny_clip_vision.h"
#include "engine/tiny_model.h"
#include "engine/upscale/tiny_upscaler.h"
#include "registry/model_registry.h"
#include "store/store.h"

namespace df::cli {
namespace {

struct CreateTinyOptions {
  std::string dir;
  std::string data_dir;
  std::string models_dir;  // the service's models root when not <data dir>/models
  std::string name;
  std::string family;
  std::string kind = "checkpoint";
  std::string lora_format = "kohya";
  uint64_t seed = 0;
};

// DIR when given, else <models root>/<folder>/<name><extension> (the root: --models-dir, else
// <data dir>/models), where the service finds installed models.
std::string tiny_model_target(const CreateTinyOptions& options, const std::string& folder,
                              const std::string& extension) {
  if (!options.dir.empty()) {
    if (!options.name.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "give either DIR or --data-dir with --name, not both");
    }
    return options.dir;
  }
  if ((options.data_dir.empty() && options.models_dir.empty()) || options.name.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "give DIR, or --data-dir (or --models-dir) and --name");
  }
  if (options.name.find('/') != std::string::npos || options.name == "." || options.name == "..") {
    throw Error(ErrorCode::kInvalidArgument, "--name must be a plain folder name");
  }
  const std::filesystem::path root = options.models_dir.empty()
                                         ? std::filesystem::path(options.data_dir) / "models"
                                         : std::filesystem::path(options.models_dir);
  return (root / folder / options.name).string() + extension;
}

// A create-tiny kind writing a test checkpoint folder whose UNet reads `unet_in_channels`
// channels (4 plain, 9 inpainting, 8 InstructPix2Pix); returns the folder.
std::function<std::string(const CreateTinyOptions&)> tiny_checkpoint_kind(int unet_in_channels) {
  return [unet_in_channels](const CreateTinyOptions& options) {
    const std::string target = tiny_model_target(options, "checkpoints", "");
    engine::write_tiny_model(target, engine::family_from_name(options.family), options.seed,
                             unet_in_channels);
    return target;
  };
}

// Writes a test SD2.1-unCLIP-style checkpoint folder (with its image encoder); returns the folder.
std::string create_tiny_unclip(const CreateTinyOptions& options) {
  const std::string target = tiny_model_target(options, "checkpoints", "");
  engine::write_tiny_unclip_model(target, engine::family_from_name(options.family), options.seed);
  return target;
}

// The file a single-file kind writes: DIR when it names a .safetensors file, `default_file` in
// the folder DIR otherwise, or <data dir>/models/<folder>/<name>.safetensors.
std::string tiny_file_target(const CreateTinyOptions& options, const std::string& folder,
                             const std::string& default_file) {
  std::string target = tiny_model_target(options, folder, ".safetensors");
  if (!target.ends_with(".safetensors")) {
    target = (std::filesystem::path(target) / default_file).string();
  }
  return target;
}

// Writes a DiT family's test model as a diffusers pipeline folder (flux, flux-schnell, sd3,
// zimage) in DIR or models/checkpoints/<name>; returns the folder.
std::string create_tiny_pipeline(const CreateTinyOptions& options) {
  return engine::write_tiny_dit_pipeline(tiny_model_target(options, "checkpoints", ""),
                                         options.family, options.seed);
}

// The DiT families whose checkpoint kind write_tiny_dit_checkpoint writes.
bool is_tiny_dit_family(const std::string& family) {
  return family == "flux" || family == "flux-schnell" || family == "sd3";
}

// The checkpoint kind: a DiT family's all-in-one single file (flux, flux-schnell, sd3), Z-Image's
// diffusers pipeline folder, else an SD test checkpoint folder; returns what it wrote.
std::string create_tiny_checkpoint(const CreateTinyOptions& options) {
  if (options.family == "zimage") return create_tiny_pipeline(options);
  if (is_tiny_dit_family(options.family)) {
    const std::string target =
        tiny_file_target(options, "checkpoints", "tiny-" + options.family + ".safetensors");
    return engine::write_tiny_dit_checkpoint(target, options.family, options.seed);
  }
  return tiny_checkpoint_kind(4)(options);
}

// Writes a test LoRA file in --lora-format for the family's tiny model (FLUX.1 schnell takes dev's,
// whose guidance modules it lacks); returns the file.
std::string create_tiny_lora(const CreateTinyOptions& options) {
  const std::string target = tiny_file_target(options, "loras", "tiny-lora.safetensors");
  const std::string family = options.family == "flux-schnell" ? "flux" : options.family;
  engine::write_tiny_lora(target, engine::family_from_name(family),
                          engine::tiny_lora_format_from_name(options.lora_format), options.seed);
  return target;
}

// A create-tiny kind written by `write` into models/<folder> (or as <folder's kind>.safetensors
// in DIR).
using TinyFileWriter = void (*)(const std::string& path, engine::Family family, uint64_t seed);
std::function<std::string(const CreateTinyOptions&)> tiny_file_kind(std::string folder,
                                                                    std::string default_file,
                                                                    TinyFileWriter write) {
  return [=](const CreateTinyOptions& options) {
    const std::string target = tiny_file_target(options, folder, default_file);
    write(target, engine::family_from_name(options.family), options.seed);
    return target;
  };
}

// Writes a DiT family's test model as ComfyUI's split files (diffusion_models, text_encoders,
// vae) into the models root DIR, or <data dir>/models; returns the models root.
std::string create_tiny_split(const CreateTinyOptions& options) {
  const std::string models_dir =
      options.dir.empty() ? (std::filesystem::path(options.data_dir) / "models").string()
                          : options.dir;
  if (models_dir.empty()) throw Error(ErrorCode::kInvalidArgument, "give DIR or --data-dir");
  if (options.family == "zimage") return engine::zimage::write_tiny_zimage_files(models_dir, options.seed);
  if (options.family == "sd3") return engine::sd3::write_tiny_sd3_files(models_dir, options.seed);
  if (options.family == "flux" || options.family == "flux-schnell") {
    return engine::flux::write_tiny_flux_files(models_dir, options.family == "flux", options.seed);
  }
  throw Error(ErrorCode::kUnsupported,
              "--kind split writes the DiT families' split files (zimage, flux, flux-schnell, "
              "sd3), not " +
                  options.family);
}

// The kinds of test model create-tiny writes; each returns the path it wrote.
const std::map<std::string, std::function<std::string(const CreateTinyOptions&)>>& tiny_kinds() {
  static const std::map<std::string, std::function<std::string(const CreateTinyOptions&)>> kinds =
      {{"checkpoint", create_tiny_checkpoint},
       {"inpaint", tiny_checkpoint_kind(9)},
       {"ip2p", tiny_checkpoint_kind(8)},
       {"lora", create_tiny_lora},
       {"controlnet", tiny_file_kind("controlnet", "tiny-controlnet.safetensors",
                                     engine::write_tiny_controlnet)},
       {"t2i_adapter", tiny_file_kind("t2i_adapter", "tiny-t2i-adapter.safetensors",
                                      engine::write_tiny_t2i_adapter)},
       {"vae", tiny_file_kind("vae", "tiny-vae.safetensors", engine::write_tiny_vae)},
       {"upscaler", tiny_file_kind("upscale_models", "tiny-upscaler.safetensors",
                                   engine::write_tiny_upscaler)},
       {"embedding",
        tiny_file_kind("embeddings", "tiny-embedding.safetensors", engine::write_tiny_embedding)},
       {"hypernetwork", tiny_file_kind("hypernetworks", "tiny-hypernetwork.safetensors",
                                       engine::write_tiny_hypernetwork)},
       {"clip_vision", tiny_file_kind("clip_vision", "tiny-clip-vision.safetensors",
                                      engine::write_tiny_clip_vision)},
       {"unclip", create_tiny_unclip},
       {"split", create_tiny_split},
       {"pipeline", create_tiny_pipeline}};
  return kinds;
}

std::vector<std::string> tiny_kind_names() {
  std::vector<std::string> names;
  for (const auto& [name, create] : tiny_kinds()) names.push_back(name);
  return names;
}

void add_create_tiny_command(CLI::App& model) {
  auto options = std::make_shared<CreateTinyOptions>();
  CLI::App* command = model.add_subcommand(
      "create-tiny", "Write a tiny random-weight test model (no download): a checkpoint in "
                     "diffusers layout, or a LoRA, VAE, embedding or hypernetwork for one");
  command->add_option("DIR", options->dir,
                      "Directory to write (new, empty or an earlier test model); for the other "
                      "kinds the .safetensors file or a folder to write it in");
  command->add_option("--data-dir", options->data_dir, "Install into this service data directory")
      ->envname("DREAMFORGE_DATA_DIR");
  command->add_option("--models-dir", options->models_dir,
                      "The service's models root when not <data dir>/models")
      ->envname("DREAMFORGE_MODELS_DIR");
  command->add_option("--name", options->name, "Model id when installing into --data-dir");
  command->add_option("--family", options->family, "Model family")
      ->required()
      ->check(CLI::IsMember({"sd1", "sd2", "sdxl", "zimage", "flux", "flux-schnell", "sd3"}));
  command->add_option("--kind", options->kind, "What to write")
      ->capture_default_str()
      ->check(CLI::IsMember(tiny_kind_names()));
  command->add_option("--lora-format", options->lora_format, "Tensor layout of --kind lora")
      ->capture_default_str()
      ->check(CLI::IsMember(engine::tiny_lora_format_names()));
  command->add_option("--seed", options->seed, "Seed of the random weights")->capture_default_str();
  command->callback([options] {
    const std::string target = tiny_kinds().at(options->kind)(*options);
    std::cout << std::filesystem::absolute(target).lexically_normal().string() << "\n";
  });
}

// The service's data directory, models root and database, flagged and defaulted as the service
// does (`dreamforge serve` finds what these commands install).
void add_model_store_options(CLI::App& command, ServiceOptions& options) {
  command.add_option("--data-dir", options.data_dir, "Where the database and models live")
      ->envname("DREAMFORGE_DATA_DIR")
      ->capture_default_str();
  command
      .add_option("--models-dir", options.models_dir, "Models root (default: <data dir>/models)")
      ->envname("DREAMFORGE_MODELS_DIR");
  command
      .add_option("--database-url", options.database_url,
                  "sqlite:///path or postgres://user@host:port/db (default: SQLite in the data dir)")
      ->envname("DREAMFORGE_DATABASE_URL");
}

// The registry and the models root of the options' data directory.
class ModelStore {
 public:
  explicit ModelStore(ServiceOptions options) : options_(std::move(options)) {
    options_.resolve_paths();
    std::filesystem::create_directories(options_.checkpoints_dir());
    store_ = store::open_store(options_.database_url);
    registry_ = std::make_unique<registry::ModelRegistry>(
        *store_, options_.checkpoints_dir(), registry::registry_scope_for(options_.database_url));
  }
  registry::ModelRegistry& registry() { return *registry_; }
  store::Store& store() { return *store_; }
  download::ModelLayout layout() const { return download::ModelLayout(options_.models_dir); }

 private:
  ServiceOptions options_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<registry::ModelRegistry> registry_;
};

// Runs `action`, keeping the access tokens out of the error it throws.
std::function<void()> without_tokens(std::function<void()> action) {
  return [action = std::move(action)] {
    try {
      action();
    } catch (const Error& e) {
      throw download::without_tokens(e);
    }
  };
}

struct DownloadOptions {
  ServiceOptions store;
  std::string ref;
  int jobs = 4;
};

void add_download_command(CLI::App& model) {
  auto options = std::make_shared<DownloadOptions>();
  CLI::App* command = model.add_subcommand("download",
                                           "Fetch a model (hf:org/repo[@rev][#file] or "
                                           "civitai:model[@version]), verify it and install it");
  command->add_option("REF", options->ref, "What to fetch")->required();
  command->add_option("--jobs", options->jobs, "Files transferred at once")
      ->envname("DREAMFORGE_DOWNLOAD_JOBS")
      ->capture_default_str()
      ->check(CLI::Range(1, 32));
  add_model_store_options(*command, options->store);
  command->callback(without_tokens([options] {
    const auto ref = download::parse_model_ref(options->ref);
    ModelStore store(options->store);
    download::DownloadProgress progress(stderr, isatty(STDERR_FILENO) != 0);
    download::ModelInstaller installer(store.layout(), store.registry(), progress, options->jobs);
    const auto result = installer.install(*download::configured_source(ref), ref);
    record_admin_action(store.store(), "model.download", result.model.id,
                        {{"ref", options->ref}, {"already_installed", result.already_installed}});
    std::cout << (result.already_installed ? "already installed: " : "installed: ")
              << result.model.id << " (" << result.model.local_path << ")\n";
  }));
}

// The registry entries `what` names: the model of that id, or those downloaded from a reference.
std::vector<Model> models_named(registry::ModelRegistry& registry, const std::string& what) {
  if (!download::looks_like_model_ref(what)) {
    auto model = registry.find(what);
    if (!model)
      throw Error(ErrorCode::kNotFound, "no model '" + what + "' (see dreamforge model list)");
    return {*model};
  }
  const auto asked = download::parse_model_ref(what);
  std::vector<Model> found;
  for (auto& model : registry.all()) {
    if (!download::looks_like_model_ref(model.source_uri)) continue;
    if (download::model_ref_matches(asked, download::parse_model_ref(model.source_uri),
                                    model.revision)) {
      found.push_back(std::move(model));
    }
  }
  if (found.empty()) throw Error(ErrorCode::kNotFound, "no installed model came from " + what);
  return found;
}

struct ModelNameOptions {
  ServiceOptions store;
  std::string what;
};

void add_verify_command(CLI::App& model) {
  auto options = std::make_shared<ModelNameOptions>();
  CLI::App* command = model.add_subcommand(
      "verify",
      "Re-hash a downloaded model's files against the hashes recorded when it was installed");
  command->add_option("ID|REF", options->what, "Model id or the reference it was downloaded from")
      ->required();
  add_model_store_options(*command, options->store);
  command->callback(without_tokens([options] {
    ModelStore store(options->store);
    int failed = 0;
    for (const auto& entry : models_named(store.registry(), options->what)) {
      const std::string dir = store.layout().model_dir(entry.kind, entry.id);
      const auto recorded = download::read_descriptor(dir);
      if (!recorded) {
        throw Error(ErrorCode::kUnsupported,
                    "model '" + entry.id +
                        "' was not downloaded: it has no recorded hashes to verify against");
      }
      const auto problems = download::check_model_files(dir, *recorded, /*rehash=*/true);
      for (const auto& problem : problems) std::cerr << entry.id << ": " << problem << "\n";
      if (problems.empty()) {
        std::cout << "ok: " << entry.id << " (" << recorded->files.size() << " files match)\n";
      }
      failed += problems.empty() ? 0 : 1;
    }
    if (failed > 0) {
      throw Error(
          ErrorCode::kCorruptFile,
          std::to_string(failed) + " model(s) have files that do not match their recorded hashes");
    }
  }));
}

std::string model_status(const Model& model) {
  if (!model.installed) return "missing";
  return model.enabled ? "ready" : "disabled";
}

void add_list_command(CLI::App& model) {
  auto options = std::make_shared<ServiceOptions>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* command = model.add_subcommand("list", "List the registered models");
  command->add_flag("--json", *as_json, "One JSON object with the models' registry entries");
  add_model_store_options(*command, *options);
  command->callback(without_tokens([options, as_json] {
    ModelStore store(*options);
    for (const auto& warning : store.registry().sync()) std::cerr << "warning: " << warning << "\n";
    const auto models = store.registry().all();
    if (*as_json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& m : models) list.push_back(model_to_json(m));
      std::cout << nlohmann::json{{"models", list}}.dump(2) << "\n";
      return;
    }
    std::printf("%-40s %-12s %-8s %-9s %s\n", "ID", "KIND", "FAMILY", "STATUS", "SOURCE");
    for (const auto& m : models) {
      std::printf("%-40s %-12s %-8s %-9s %s\n", m.id.c_str(), m.kind.c_str(),
                  m.family.empty() ? "-" : m.family.c_str(), model_status(m).c_str(),
                  m.source_uri.empty() ? "local" : m.source_uri.c_str());
    }
  }));
}

bool is_plain_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

void add_remove_command(CLI::App& model) {
  auto options = std::make_shared<ModelNameOptions>();
  CLI::App* command =
      model.add_subcommand("remove", "Delete a model's files and its registry entry");
  command->add_option("ID", options->what, "Model id (see dreamforge model list)")->required();
  add_model_store_options(*command, options->store);
  command->callback(without_tokens([options] {
    namespace fs = std::filesystem;
    ModelStore store(options->store);
    const std::string& id = options->what;
    const auto entry = store.registry().find(id);
    const std::string kind = entry ? entry->kind : "checkpoints";
    if (!is_plain_name(id) || !is_plain_name(kind)) {
      throw Error(ErrorCode::kInvalidArgument, "'" + id + "' is not a model id");
    }
    const auto layout = store.layout();
    const std::string dir = layout.model_dir(kind, id);
    if (!entry && !fs::exists(dir)) {
      throw Error(ErrorCode::kNotFound, "no model '" + id + "' (see dreamforge model list)");
    }
    fs::remove_all(dir);
    fs::remove_all(layout.staging_dir(kind, id));
    store.registry().remove(id);
    record_admin_action(store.store(), "model.remove", id, {{"kind", kind}});
    std::cout << "removed: " << id << "\n";
  }));
}

// `model enable ID` / `model disable ID`: whether jobs and routing may use the model (its files
// stay in place).
void add_enable_command(CLI::App& model, const std::string& name, bool enabled) {
  auto options = std::make_shared<ModelNameOptions>();
  CLI::App* command = model.add_subcommand(
      name, enabled ? "Offer a disabled model for jobs again"
                    : "Stop offering a model for jobs and routing (its files stay)");
  command->add_option("ID", options->what, "Model id (see dreamforge model list)")->required();
  add_model_store_options(*command, options->store);
  command->callback([options, name, enabled] {
    ModelStore store(options->store);
    store.registry().set_enabled(options->what, enabled);
    record_admin_action(store.store(), "model." + name, options->what);
    std::cout << name << "d: " << options->what << "\n";
  });
}

}  // namespace

void register_model_commands(CLI::App& app) {
  CLI::App* model = app.add_subcommand("model", "Manage model files");
  model->require_subcommand(1);
  add_create_tiny_command(*model);
  add_download_command(*model);
  add_verify_command(*model);
  add_list_command(*model);
  add_remove_command(*model);
  add_enable_command(*model, "enable", true);
  add_enable_command(*model, "disable", false);
}

}  // namespace df::cli

// `dreamforge generate`: one-shot generation in a runner subprocess, with a terminal progress bar,
// or as a job of a running service with --server.
#include "cli/cmd_generate.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <unistd.h>

#include "cli/job_watch.h"
#include "cli/progress_bar.h"
#include "cli/remote_generate.h"
#include "cli/runner_location.h"
#include "core/error.h"
#include "core/generation_request.h"
#include "nodes/model_folders.h"
#include "runner/protocol.h"
#include "runner/runner_process.h"

namespace df::cli {
namespace {

namespace fs = std::filesystem;

volatile std::sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

struct GenerateOptions {
  GenerationRequest request;
  std::string model;
  std::string models_dir;
  std::string init_image;
  std::vector<std::string> loras;  // NAME[:STRENGTH]
  std::optional<uint64_t> seed;
  int count = 1;
  std::string out_dir = "outputs";
  std::string format = "png";
  std::string device = "auto";
  std::string dtype = "auto";
  std::string server;  // "" for local generation
  std::string api_key;  // for a --server that requires one
};

// A model given as a path runs from its parent folder; an id is looked up in the models folder.
std::pair<std::string, std::string> locate_model(const std::string& model, const std::string& models_dir) {
  fs::path path(model);
  if (fs::exists(path)) {
    path = fs::absolute(path).lexically_normal();
    if (path.filename().empty()) path = path.parent_path();
    return {path.parent_path().string(), path.filename().string()};
  }
  fs::path in_root = fs::path(models_dir) / model;
  if (fs::exists(in_root)) return {fs::absolute(models_dir).string(), model};
  throw Error(ErrorCode::kModelNotFound,
              "model '" + model + "' is neither a path nor installed in " + models_dir +
                  " (make a test model with: dreamforge model create-tiny DIR)");
}

// Every LoRA must be a file of the loras folder beside the checkpoints folder, where the runner
// looks for it.
void check_loras_exist(const std::vector<LoraChoice>& loras, const std::string& models_dir) {
  const std::string models_root = fs::path(models_dir).parent_path().string();
  const std::vector<std::string> available = nodes::model_combo_names(models_root, "loras");
  for (const LoraChoice& lora : loras) {
    if (std::find(available.begin(), available.end(), lora.name) != available.end()) continue;
    throw Error(ErrorCode::kModelNotFound,
                "--lora " + missing_lora_message(lora.name, available) + " " +
                    (fs::path(models_root) / "loras").string());
  }
}

uint64_t random_seed() {
  std::random_device device;
  std::uniform_int_distribution<uint64_t> dist(0, (uint64_t{1} << 48) - 1);
  return dist(device);
}

nlohmann::json make_run_request(const GenerateOptions& o, const nlohmann::json& graph) {
  nlohmann::json items = nlohmann::json::array();
  for (int i = 0; i < o.count; ++i) {
    items.push_back({{"index", i}, {"seed", o.request.seed + static_cast<uint64_t>(i)}});
  }
  return {{"type", "run"},
          {"id", "generate"},
          {"graph", graph},
          {"items", items},
          {"output_dir", fs::absolute(o.out_dir).string()},
          {"format", o.format}};
}

// Drives one run to its end; returns the process exit code.
int follow_run(runner::RunnerProcess& runner, const GenerateOptions& o) {
  ProgressBar bar(isatty(STDERR_FILENO) != 0, o.count);
  bool cancel_sent = false;
  std::string failure;
  while (true) {
    if (g_interrupted && !cancel_sent) {
      runner.send({{"type", "cancel"}, {"id", "generate"}});
      cancel_sent = true;
    }
    auto event = runner.next_event(200);
    if (!event) {
      if (!runner.output_closed()) continue;  // only the poll timed out
      bar.finish();
      std::cerr << "error[runner_crashed]: the runner " << runner::describe_exit_status(runner.stop(2000))
                << " before finishing\n";
      return 3;
    }
    const std::string type = event->value("type", "");
    if (type == "item_started") {
      bar.start_item(event->value("item_index", 0), event->value("seed", uint64_t{0}));
    } else if (type == "progress") {
      bar.update(event->value("step", 0), event->value("total", 0));
    } else if (type == "artifact" && event->value("kind", "") == "output") {
      bar.clear();
      std::cout << event->value("path", "") << "  (seed " << event->value("seed", uint64_t{0})
                << ", " << event->value("width", 0) << "x" << event->value("height", 0) << ")"
                << std::endl;
    } else if (type == "log" && event->value("level", "") == "warning") {
      bar.clear();
      std::cerr << "warning: " << event->value("message", "") << '\n';
    } else if (type == "error") {
      failure = "error[" + event->value("code", std::string("internal")) + "]: " +
                event->value("message", std::string());
      if (event->contains("details") && event->at("details").contains("node_errors")) {
        failure += "\n" + event->at("details").dump(2);
      }
    } else if (type == "run_finished") {
      bar.finish();
      const std::string status = event->value("status", "");
      if (status == "succeeded") return 0;
      std::cerr << (failure.empty() ? "generation " + status : failure) << '\n';
      return status == "canceled" ? 130 : 1;
    }
  }
}

int run_generate(GenerateOptions o) {
  if (o.count < 1 || o.count > 100) {
    throw Error(ErrorCode::kInvalidArgument, "count must be between 1 and 100");
  }
  auto [models_dir, ckpt_name] = locate_model(o.model, o.models_dir);
  o.request.checkpoint = ckpt_name;
  check_loras_exist(o.request.loras, models_dir);
  o.request.seed = o.seed.value_or(random_seed());
  std::string input_dir = fs::current_path().string();
  if (!o.init_image.empty()) {
    fs::path image = fs::absolute(o.init_image);
    if (!fs::is_regular_file(image)) {
      throw Error(ErrorCode::kInvalidArgument, "init image '" + o.init_image + "' is not a file");
    }
    input_dir = image.parent_path().string();
    o.request.init_image = image.filename().string();
  }
  nlohmann::json graph = generation_workflow(o.request);

  std::vector<std::string> argv = {runner_executable(), "--models-dir", models_dir,
                                   "--input-dir", input_dir, "--device", o.device,
                                   "--dtype", o.dtype};
  runner::RunnerProcess runner(argv);
  std::signal(SIGINT, on_interrupt);
  runner.send({{"type", "hello"}, {"protocol", runner::kProtocolVersion}});
  runner.send(make_run_request(o, graph));
  int code = follow_run(runner, o);
  runner.send({{"type", "shutdown"}});
  runner.stop(5000);
  return code;
}

// The POST /v1/jobs body of a remote generation. Options left at their defaults are not sent, so
// the model's own defaults (e.g. its native size) apply.
nlohmann::json remote_job(const GenerateOptions& o, const CLI::App& command) {
  const GenerationRequest& r = o.request;
  nlohmann::json job = {{"type", "generate"}, {"model_id", o.model}, {"prompt", r.prompt},
                        {"count", o.count}};
  auto given = [&](const std::string& option) { return command.count(option) > 0; };
  if (given("--negative")) job["negative_prompt"] = r.negative_prompt;
  if (given("--width")) job["width"] = r.width;
  if (given("--height")) job["height"] = r.height;
  if (given("--steps")) job["steps"] = r.steps;
  if (given("--cfg")) job["guidance"] = r.cfg;
  if (given("--sampler")) job["sampler"] = r.sampler;
  if (given("--scheduler")) job["scheduler"] = r.scheduler;
  if (given("--denoise")) job["denoise"] = r.denoise;
  if (given("--format")) job["format"] = o.format;
  if (o.seed) job["seed"] = *o.seed;
  for (const LoraChoice& lora : r.loras) job["loras"].push_back(lora_choice_to_json(lora));
  return job;
}

}  // namespace

void register_generate_command(CLI::App& app) {
  auto options = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate images from a prompt");
  auto& r = options->request;
  cmd->add_option("prompt", r.prompt, "What to draw")->required();
  cmd->add_option("--model", options->model, "Model folder, single-file checkpoint, or installed id")
      ->required();
  cmd->add_option("--models-dir", options->models_dir, "Where installed models live")
      ->envname("DREAMFORGE_MODELS_DIR")
      ->default_val("models");
  cmd->add_option("--negative", r.negative_prompt, "What to avoid");
  auto* width = cmd->add_option("--width", r.width, "Image width (multiple of 8)")->default_val(512);
  auto* height = cmd->add_option("--height", r.height, "Image height (multiple of 8)")->default_val(512);
  cmd->add_option("--steps", r.steps, "Sampler steps")->default_val(20);
  cmd->add_option("--cfg", r.cfg, "Classifier-free guidance scale")->default_val(7.0);
  cmd->add_option("--sampler", r.sampler, "Sampler (ComfyUI name)")->default_val("euler");
  cmd->add_option("--scheduler", r.scheduler, "Scheduler (ComfyUI name)")->default_val("normal");
  cmd->add_option("--seed", options->seed, "Seed of the first image (random when omitted)");
  cmd->add_option("--count", options->count, "Number of images (seeds seed, seed+1, ...)")
      ->default_val(1);
  cmd->add_option("--init-image", options->init_image, "Start from this image (image-to-image)");
  cmd->add_option("--denoise", r.denoise, "How much of the init image to redraw (0-1]")
      ->default_val(1.0);
  cmd->add_option("--lora", options->loras,
                  "Apply a LoRA of the models' loras folder, NAME or NAME:STRENGTH (default 1); "
                  "repeat for several, applied in order");
  cmd->add_option("--out", options->out_dir, "Output folder")->default_val("outputs");
  cmd->add_option("--format", options->format, "png, jpeg or webp")->default_val("png");
  cmd->add_option("--device", options->device, "auto, cpu or cuda")->default_val("auto");
  cmd->add_option("--dtype", options->dtype, "auto, float32, float16 or bfloat16")->default_val("auto");
  cmd->add_option("--server", options->server,
                  "Run as a job of the Dream Forge service at this URL (--model is then an "
                  "installed model id; --models-dir, --device and --dtype are the service's)");
  add_api_key_option(*cmd, options->api_key);
  cmd->callback([options, cmd, width, height] {
    for (const std::string& lora : options->loras) {
      options->request.loras.push_back(lora_choice_from_text(lora));
    }
    if (!options->server.empty()) {
      const int code = run_remote_generate(
          {options->server, options->api_key, remote_job(*options, *cmd), options->init_image,
           options->out_dir});
      if (code != 0) throw CLI::RuntimeError(code);
      return;
    }
    options->request.resize_init_image =
        !options->init_image.empty() && (width->count() > 0 || height->count() > 0);
    int code = run_generate(*options);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace df::cli

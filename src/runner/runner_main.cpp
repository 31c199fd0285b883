// dreamforge-runner: executes workflow graphs over the NDJSON runner protocol on stdin/stdout.
#include <cstdlib>
#include <iostream>

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>

#include "engine/clip_vocab_location.h"
#include "runner/runner_io.h"
#include "runner/runner_session.h"

int main(int argc, char** argv) {
  CLI::App app{"dreamforge-runner: runs workflow graphs (protocol in docs/runner-protocol.md)"};
  df::runner::RunnerOptions options;
  app.add_option("--models-dir", options.models_dir, "Checkpoints folder")
      ->envname("DREAMFORGE_MODELS_DIR")
      ->default_val("models");
  app.add_option("--input-dir", options.input_dir, "Folder LoadImage reads from")->default_val("input");
  app.add_option("--device", options.device, "auto, cpu, cuda or cuda:N")->default_val("auto");
  app.add_option("--dtype", options.dtype, "auto, float32, float16 or bfloat16")->default_val("auto");
  app.add_option("--clip-vocab-dir", options.clip_vocab_dir,
                 "vocab.json + merges.txt for single-file checkpoints (default: the standard "
                 "CLIP vocabulary in ../share/dreamforge/clip beside this executable)")
      ->envname("DREAMFORGE_CLIP_VOCAB_DIR");
  app.add_option("--ram-budget-mb", options.ram_budget_mb,
                 "Host memory the loaded models may hold, in MiB; beyond it the least recently "
                 "used are evicted (default: half the machine's memory)")
      ->envname("DREAMFORGE_MODEL_RAM_BUDGET_MB")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--vram-budget-mb", options.vram_budget_mb,
                 "Device memory the loaded models may hold, in MiB (default: the device's memory "
                 "less a quarter of it, at least 2 GiB, for the work of a run)")
      ->envname("DREAMFORGE_MODEL_VRAM_BUDGET_MB")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  if (options.clip_vocab_dir.empty()) options.clip_vocab_dir = df::engine::installed_clip_vocab_dir();

  // Events own stdout; anything else a library prints must not corrupt the protocol stream.
  std::ios::sync_with_stdio(true);
  df::runner::EventWriter events(std::cout);
  df::runner::RequestReader requests(std::cin, events);
  df::runner::RunnerSession session(options, events, requests);
  session.serve();
  // The request reader may still block on stdin (the worker closes it after "bye"). Ending with
  // exit() would destroy the reader and std::cin under it and run libtorch's static destructors
  // beside it (a crash at exit, seen after /free); nothing is left to clean up, so end at once.
  std::cout.flush();
  std::_Exit(0);
}

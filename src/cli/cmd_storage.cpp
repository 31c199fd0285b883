// `dreamforge storage init`: a deployment's one-time preparation of its artifact storage, run once
// before the services start (the Compose stack's `init` service, a Kubernetes Job), so that no
// service has to hold rights to create buckets.
#include "cli/cmd_storage.h"

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "blob/blob_store.h"
#include "cli/service_options.h"
#include "core/error.h"

namespace df::cli {
namespace {

// Creates the storage when missing and checks it can be written; while it does not answer
// (kUnavailable: a server still starting), tries again every second until `wait_s` have passed.
bool prepare_storage(blob::BlobStore& store, double wait_s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(wait_s * 1000));
  while (true) {
    try {
      const bool created = store.create_if_missing();
      store.check_writable();
      return created;
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kUnavailable || std::chrono::steady_clock::now() >= deadline) throw;
      std::cerr << "storage not ready yet (" << e.what() << "); trying again\n";
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
}

}  // namespace

void register_storage_commands(CLI::App& app) {
  CLI::App* storage = app.add_subcommand("storage", "Prepare the artifact storage");
  storage->require_subcommand(1);
  auto options = std::make_shared<ServiceOptions>();
  CLI::App* init = storage->add_subcommand(
      "init", "Create the S3 bucket (or the folder) when it is missing, then check it can be written");
  init->add_option("--data-dir", options->data_dir, "Where the default artifact folder lives")
      ->envname("DREAMFORGE_DATA_DIR")
      ->capture_default_str();
  init->add_option("--storage-url", options->storage_url,
                   "file:///path or s3://bucket?endpoint=URL&region=R (default: in the data dir)")
      ->envname("DREAMFORGE_STORAGE_URL");
  auto wait_s = std::make_shared<double>(0);
  init->add_option("--wait", *wait_s,
                   "Seconds to keep trying while the storage does not answer (a server starting)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  init->callback([options, wait_s] {
    options->resolve_paths();
    std::filesystem::create_directories(options->data_dir);  // the signing secret's home
    const auto store = blob::open_blob_store(options->storage_url, options->signing_secret());
    const bool created = prepare_storage(*store, *wait_s);
    std::cout << "storage " << options->storage_url << (created ? ": created" : ": already there")
              << ", writable\n";
  });
}

}  // namespace df::cli

// `dreamforge storage init`: a deployment's one-time preparation of its artifact storage, run once
// before the services start (the Compose stack's `init` service, a Kubernetes Job), so that no
// service has to hold rights to create buckets.
#include "cli/cmd_storage.h"

#include <filesystem>
#include <iostream>
#include <memory>

#include "blob/blob_store.h"
#include "cli/service_options.h"

namespace df::cli {

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
  init->callback([options] {
    options->resolve_paths();
    std::filesystem::create_directories(options->data_dir);  // the signing secret's home
    const auto store = blob::open_blob_store(options->storage_url, options->signing_secret());
    const bool created = store->create_if_missing();
    store->check_writable();
    std::cout << "storage " << options->storage_url << (created ? ": created" : ": already there")
              << ", writable\n";
  });
}

}  // namespace df::cli

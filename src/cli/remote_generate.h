// `dreamforge generate --server URL`: a generation run as a job of a running service.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace df::cli {

struct RemoteGeneration {
  std::string server;
  std::string api_key;     // "" when the service needs none
  nlohmann::json job;      // the POST /v1/jobs body, without the init image
  std::string init_image;  // a local image file sent inline ("" for none)
  std::string out_dir;
};

// Submits the job, follows it like `jobs watch` (Ctrl-C cancels it), then saves its images in
// out_dir and prints their paths like local generation does. Returns the exit code: 0 succeeded,
// 1 failed, 130 canceled.
int run_remote_generate(const RemoteGeneration& generation);

}  // namespace df::cli

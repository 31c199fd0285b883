// `dreamforge generate --server URL`: a generation run as a job of a running service.
#include "cli/remote_generate.h"

#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include <openssl/evp.h>

#include "cli/job_watch.h"
#include "core/error.h"
#include "core/files.h"
#include "download/http_client.h"

namespace df::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string base64_of_file(const std::string& path) {
  if (!fs::is_regular_file(path)) {
    throw Error(ErrorCode::kInvalidArgument, "init image '" + path + "' is not a file");
  }
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  std::string text(4 * ((bytes.size() + 2) / 3), '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()), bytes.data(),
                                      static_cast<int>(bytes.size()));
  text.resize(static_cast<size_t>(written));
  return text;
}

// While it lives, the first Ctrl-C asks the service to cancel the job (its event stream then ends
// with "canceled"); a second one quits at once. Ctrl-C is taken by a thread of its own, so the
// cancel request is an ordinary call rather than work inside a signal handler.
class CancelOnInterrupt {
 public:
  CancelOnInterrupt(std::string server, std::string api_key, std::string job_id) {
    sigemptyset(&interrupt_);
    sigaddset(&interrupt_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &interrupt_, &previous_mask_);
    thread_ = std::thread([this, server = std::move(server), api_key = std::move(api_key),
                           job_id = std::move(job_id)] {
      take_interrupts(server, api_key, job_id);
    });
  }

  ~CancelOnInterrupt() {
    done_ = true;
    pthread_kill(thread_.native_handle(), SIGINT);
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
  }

  CancelOnInterrupt(const CancelOnInterrupt&) = delete;
  CancelOnInterrupt& operator=(const CancelOnInterrupt&) = delete;

 private:
  void take_interrupts(const std::string& server, const std::string& api_key,
                       const std::string& job_id) {
    for (int interrupts = 1;; ++interrupts) {
      int signal = 0;
      sigwait(&interrupt_, &signal);
      if (done_) return;
      if (interrupts > 1) std::_Exit(130);
      std::cerr << "\ncanceling job " << job_id << " (Ctrl-C again to stop waiting)\n";
      try {
        JobService(server, api_key).post(job_target(job_id, "/cancel"), json::object());
      } catch (const Error& e) {
        std::cerr << "could not cancel: error[" << e.code_name() << "]: " << e.what() << '\n';
      }
    }
  }

  sigset_t interrupt_;
  sigset_t previous_mask_;
  std::atomic<bool> done_ = false;
  std::thread thread_;
};

// `name` inside `out_dir`, as name-2, name-3, ... when a file of that name is already there.
std::string unused_path(const std::string& out_dir, const std::string& name) {
  const fs::path first = join_inside(out_dir, name, "image file name");
  fs::path path = first;
  for (int n = 2; fs::exists(path); ++n) {
    path = first.parent_path() /
           (first.stem().string() + "-" + std::to_string(n) + first.extension().string());
  }
  return path.string();
}

// The bytes behind an artifact's URL: a path on the service (local storage), or a presigned URL
// of the object store (S3), fetched as it is.
std::vector<uint8_t> fetch_image(JobService& service, const std::string& url) {
  if (url.starts_with('/')) return service.download(url);
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    throw Error(ErrorCode::kProtocol, "the service listed an image without a usable URL");
  }
  const download::HttpClient storage("", [](long status, const std::string& subject) {
    return Error(status == 403 ? ErrorCode::kForbidden : ErrorCode::kUnavailable,
                 "the storage refused the " + subject + " (HTTP " + std::to_string(status) + ")");
  });
  const std::string body = storage.get(url, "image");
  return std::vector<uint8_t>(body.begin(), body.end());
}

// Saves every image of the job in `out_dir` under its storage file name; prints the paths.
void download_images(JobService& service, const std::string& job_id, const std::string& out_dir) {
  const json listing = service.get(job_target(job_id, "/artifacts"));
  for (const auto& artifact : listing.at("artifacts")) {
    const std::string name = fs::path(artifact.value("key", "")).filename().string();
    fs::create_directories(out_dir);
    const std::string path = unused_path(out_dir, name);
    write_file_atomically(path, fetch_image(service, artifact.value("url", "")));
    std::cout << fs::absolute(path).lexically_normal().string() << "  (seed "
              << artifact.value("seed", uint64_t{0}) << ", " << artifact.value("width", 0) << "x"
              << artifact.value("height", 0) << ")" << std::endl;
  }
}

}  // namespace

int run_remote_generate(const RemoteGeneration& generation) {
  json body = generation.job;
  if (!generation.init_image.empty()) body["init_image"] = base64_of_file(generation.init_image);
  JobService service(generation.server, generation.api_key);
  const json job = service.post("/v1/jobs", body);
  const std::string job_id = job.at("id").get<std::string>();
  JobEnd end;
  {
    CancelOnInterrupt cancel_on_interrupt(generation.server, generation.api_key, job_id);
    std::cerr << "job " << job_id << " on " << generation.server << " (Ctrl-C cancels it)\n";
    end = watch_job(service, job_id);
  }
  download_images(service, job_id, generation.out_dir);
  return report_job_end(end);
}

}  // namespace df::cli

// The CLI's side of a running job service: checked /v1 calls and following a job to its end.
#include "cli/job_watch.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <thread>
#include <unistd.h>

#include <boost/url/encode.hpp>
#include <boost/url/rfc/pchars.hpp>

#include "cli/progress_bar.h"
#include "core/error.h"
#include "http/json_text.h"

namespace df::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kGiveUpAfter = std::chrono::seconds(60);  // of failed reconnects in a row
constexpr auto kLongestPause = std::chrono::milliseconds(5000);

// An answer other than 2xx as the error it reports: the /v1 envelope when there is one.
Error answer_error(int status, const std::string& body, const std::string& server) {
  try {
    json envelope = json::parse(body);
    if (envelope.is_object() && envelope.contains("code") && envelope["code"].is_string() &&
        envelope.contains("message") && envelope["message"].is_string()) {
      return Error(error_code_from_name(envelope["code"].get<std::string>()),
                   envelope["message"].get<std::string>(),
                   envelope.value("details", json::object()));
    }
  } catch (const json::parse_error&) {
  }
  return Error(status >= 500 ? ErrorCode::kUnavailable : ErrorCode::kInternal,
               server + " answered HTTP " + std::to_string(status) +
                   " without a Dream Forge error (is it a Dream Forge server?)");
}

// Unreachable is worth a hint about which server was meant.
Error with_server_hint(const Error& e) {
  return Error(e.code(),
               std::string(e.what()) +
                   " (is the Dream Forge service running? choose it with --server or "
                   "DREAMFORGE_SERVER)",
               e.details());
}

// What one job's events look like on the user's terminal.
class JobProgressView {
 public:
  JobProgressView(int items, const WatchOptions& options)
      : bar_(isatty(STDERR_FILENO) != 0, items), options_(options) {}

  // Shows one event; returns how the job ended once it has.
  std::optional<JobEnd> show(const json& event) {
    const std::string type = event.value("type", "");
    const json data = event.value("data", json::object());
    if (type == "item_started") {
      const json& index = event.value("item_index", json());
      bar_.start_item(index.is_number_integer() ? index.get<int>() : 0,
                      data.value("seed", uint64_t{0}));
    } else if (type == "progress") {
      bar_.update(data.value("step", 0), data.value("total_steps", 0));
    } else if (type == "item_finished") {
      bar_.finish();  // each image's bar stays on a line of its own
    } else if (type == "artifact" && options_.list_artifacts) {
      bar_.finish();
      std::cout << data.value("key", "") << "  (seed " << data.value("seed", uint64_t{0}) << ", "
                << data.value("width", 0) << "x" << data.value("height", 0) << ")" << std::endl;
    } else if (type == "retry_scheduled") {
      bar_.finish();
      std::cerr << "retrying: " << event.value("message", "") << '\n';
    } else if (type == "log" && data.value("level", "") == "warning") {
      bar_.clear();
      std::cerr << "warning: " << event.value("message", "") << '\n';
    } else if (type == "job_finished") {
      bar_.finish();
      return JobEnd{data.value("status", "failed"), data.value("error", json())};
    }
    return std::nullopt;
  }

  void end_line() { bar_.finish(); }  // before a message of the watch itself

 private:
  ProgressBar bar_;
  WatchOptions options_;
};

int64_t event_id(const http::ServerSentEvent& event, int64_t previous) {
  try {
    return event.id.empty() ? previous : std::stoll(event.id);
  } catch (const std::exception&) {
    return previous;
  }
}

}  // namespace

CLI::Option* add_server_option(CLI::App& command, std::string& server) {
  return command.add_option("--server", server, "URL of the Dream Forge service")
      ->envname("DREAMFORGE_SERVER")
      ->default_val("http://127.0.0.1:8188");
}

CLI::Option* add_api_key_option(CLI::App& command, std::string& api_key) {
  return command.add_option("--api-key", api_key, "API key of a service that requires one")
      ->envname("DREAMFORGE_API_KEY");
}

JobService::JobService(const std::string& server_url, const std::string& api_key)
    : url_(server_url), api_key_(api_key), client_(server_url) {
  client_.set_api_key(api_key);
}

http::ClientResponse JobService::checked(const std::function<http::ClientResponse()>& call) {
  http::ClientResponse response;
  try {
    response = call();
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnavailable) throw with_server_hint(e);
    throw;
  }
  if (response.status < 200 || response.status > 299) {
    throw answer_error(response.status, response.body, url_);
  }
  return response;
}

json JobService::get(const std::string& target) {
  return checked([&] { return client_.get(target); }).json();
}

json JobService::post(const std::string& target, const json& body) {
  return checked([&] { return client_.post_json(target, body); }).json();
}

std::vector<uint8_t> JobService::download(const std::string& target) {
  const std::string body = checked([&] { return client_.get(target); }).body;
  return {body.begin(), body.end()};
}

void JobService::stream_events(const std::string& target, int64_t last_event_id,
                               const std::function<bool(const http::ServerSentEvent&)>& on_event) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (last_event_id > 0) headers.emplace_back("Last-Event-ID", std::to_string(last_event_id));
  std::string error_body;
  const int status = client_.stream_events(target, headers, on_event, &error_body);
  if (status != 200) throw answer_error(status, error_body, url_);
}

std::string job_target(const std::string& job_id, const std::string& suffix) {
  return "/v1/jobs/" + boost::urls::encode(job_id, boost::urls::pchars) + suffix;
}

JobEnd watch_job(JobService& service, const std::string& job_id, const WatchOptions& options) {
  const json job = service.get(job_target(job_id));
  JobProgressView view(job.value("count", 1), options);
  const std::string events = job_target(job_id, "/events");
  int64_t last_id = 0;
  std::optional<JobEnd> end;
  std::optional<Clock::time_point> outage_since;
  auto pause = std::chrono::milliseconds(250);
  while (true) {
    std::string failure = "the server ended the job's event stream before the job ended";
    try {
      service.stream_events(events, last_id, [&](const http::ServerSentEvent& event) {
        last_id = event_id(event, last_id);
        outage_since.reset();
        pause = std::chrono::milliseconds(250);
        end = view.show(http::parse_json_text(event.data, "an event of the job's stream"));
        return !end;
      });
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kUnavailable) throw;
      failure = e.what();
    }
    if (end) return *end;
    if (!outage_since) {
      view.end_line();
      std::cerr << "lost the connection to the server; reconnecting...\n";
      outage_since = Clock::now();
    } else if (Clock::now() - *outage_since > kGiveUpAfter) {
      throw with_server_hint(Error(ErrorCode::kUnavailable, failure + "; gave up reconnecting"));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, kLongestPause);
  }
}

int report_job_end(const JobEnd& end) {
  if (end.status == "succeeded") return 0;
  if (end.status == "canceled") {
    std::cerr << "the job was canceled\n";
    return 130;
  }
  const json error = end.error.is_object() ? end.error : json::object();
  std::cerr << "error[" << error.value("code", "internal")
            << "]: " << error.value("message", "the job " + end.status) << '\n';
  return 1;
}

}  // namespace df::cli

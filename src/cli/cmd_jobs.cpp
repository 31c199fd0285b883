// `dreamforge jobs list|show|watch|cancel`: the jobs of a running service, from the command line.
#include "cli/cmd_jobs.h"

#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <boost/url/url.hpp>

#include "cli/job_watch.h"

namespace df::cli {
namespace {

using nlohmann::json;

struct JobsOptions {
  std::string server;
  std::string api_key;
  std::string job_id;
  std::optional<std::string> status;
  std::optional<int> limit;
  bool as_json = false;
};

std::string percent(const json& job) {
  return std::to_string(static_cast<int>(std::lround(job.value("progress", 0.0) * 100))) + "%";
}

std::string text_or_dash(const json& value) {
  return value.is_string() && !value.get<std::string>().empty() ? value.get<std::string>() : "-";
}

// At most `limit` bytes of `text`, cut on a UTF-8 character boundary, with "..." when cut.
std::string shortened(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  size_t end = limit - 3;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end) + "...";
}

// What a job makes: the prompt of a generate job, the kind of job otherwise.
std::string job_subject(const json& job) {
  const json spec = job.value("spec", json::object());
  if (spec.contains("prompt") && spec["prompt"].is_string()) return spec["prompt"];
  return "(" + job.value("type", std::string("job")) + ")";
}

std::string error_text(const json& error) {
  return "error[" + error.value("code", std::string("internal")) +
         "]: " + error.value("message", std::string());
}

void print_json(const json& value) { std::cout << value.dump(2) << '\n'; }

void list_jobs(const JobsOptions& o) {
  boost::urls::url target("/v1/jobs");
  if (o.status) target.params().append({"status", *o.status});
  if (o.limit) target.params().append({"limit", std::to_string(*o.limit)});
  JobService service(o.server, o.api_key);
  const json page = service.get(std::string(target.buffer()));
  if (o.as_json) return print_json(page);
  const json& jobs = page.at("jobs");
  if (jobs.empty()) {
    std::cerr << "no jobs\n";
    return;
  }
  std::cout << std::left << std::setw(38) << "ID" << std::setw(11) << "STATUS" << std::setw(10)
            << "PROGRESS" << std::setw(26) << "CREATED" << "PROMPT\n";
  for (const auto& job : jobs) {
    std::cout << std::setw(38) << job.value("id", "") << std::setw(11) << job.value("status", "")
              << std::setw(10) << percent(job) << std::setw(26) << text_or_dash(job["created_at"])
              << shortened(job_subject(job), 60) << '\n';
  }
  if (!page["next_cursor"].is_null()) {
    std::cerr << "(more jobs than shown; raise --limit to see up to 200)\n";
  }
}

void show_job(const JobsOptions& o) {
  JobService service(o.server, o.api_key);
  const json job = service.get(job_target(o.job_id));
  if (o.as_json) return print_json(job);
  const json spec = job.value("spec", json::object());
  auto row = [](const std::string& name, const std::string& value) {
    std::cout << std::left << std::setw(10) << name << value << '\n';
  };
  row("job", job.value("id", ""));
  row("type", job.value("type", ""));
  row("status", job.value("status", "") +
                    (job.value("cancel_requested", false) && job.value("status", "") == "running"
                         ? " (cancel requested)"
                         : ""));
  row("progress", percent(job));
  if (spec.contains("model_id")) row("model", text_or_dash(spec["model_id"]));
  if (spec.contains("prompt")) row("prompt", text_or_dash(spec["prompt"]));
  row("attempts", std::to_string(job.value("attempts", 0)) + " of " +
                      std::to_string(job.value("max_attempts", 0)));
  row("created", text_or_dash(job["created_at"]));
  row("started", text_or_dash(job["started_at"]));
  row("finished", text_or_dash(job["finished_at"]));
  if (job["error"].is_object()) row("error", error_text(job["error"]));
  const json& items = job["items"];
  if (!items.is_array() || items.empty()) return;
  std::cout << "items\n";
  for (const auto& item : items) {
    std::cout << "  " << std::setw(8)
              << std::to_string(item.value("index", 0) + 1) + "/" + std::to_string(items.size())
              << "seed " << std::setw(22) << item.value("seed", uint64_t{0}) << std::setw(11)
              << item.value("status", "") << item.value("step", 0) << "/"
              << item.value("total_steps", 0) << " steps\n";
  }
}

int watch(const JobsOptions& o) {
  JobService service(o.server, o.api_key);
  const JobEnd end = watch_job(service, o.job_id, {.list_artifacts = true});
  if (end.status == "succeeded") std::cerr << "job " << o.job_id << " succeeded\n";
  return report_job_end(end);
}

void cancel(const JobsOptions& o) {
  JobService service(o.server, o.api_key);
  const json job = service.post(job_target(o.job_id, "/cancel"), json::object());
  const std::string outcome = job.value("cancel", "");
  if (outcome == "canceled") {
    std::cout << "canceled job " << o.job_id << '\n';
  } else if (outcome == "requested") {
    std::cout << "cancel requested: job " << o.job_id
              << " stops after its current sampler step\n";
  } else {
    std::cout << "job " << o.job_id << " had already finished (" << job.value("status", "")
              << ")\n";
  }
}

CLI::App* add_jobs_subcommand(CLI::App& jobs, const std::string& name, const std::string& help,
                              JobsOptions& options) {
  CLI::App* command = jobs.add_subcommand(name, help);
  add_server_option(*command, options.server);
  add_api_key_option(*command, options.api_key);
  return command;
}

void add_job_id(CLI::App& command, JobsOptions& options) {
  command.add_option("ID", options.job_id, "The job's id")->required();
}

}  // namespace

void register_jobs_commands(CLI::App& app) {
  auto options = std::make_shared<JobsOptions>();
  CLI::App* jobs = app.add_subcommand("jobs", "Jobs of a running Dream Forge service");
  jobs->require_subcommand(1);

  CLI::App* list = add_jobs_subcommand(*jobs, "list", "List jobs, newest first", *options);
  list->add_option("--status", options->status,
                   "Only jobs with this status (queued, running, succeeded, failed, canceled)");
  list->add_option("--limit", options->limit, "How many jobs to show (1-200, default 50)");
  list->add_flag("--json", options->as_json, "Print the server's JSON answer");
  list->callback([options] { list_jobs(*options); });

  CLI::App* show = add_jobs_subcommand(*jobs, "show", "Show one job with its images", *options);
  add_job_id(*show, *options);
  show->add_flag("--json", options->as_json, "Print the server's JSON answer");
  show->callback([options] { show_job(*options); });

  CLI::App* watch_command = add_jobs_subcommand(
      *jobs, "watch",
      "Follow a job's progress until it ends (exit 0 succeeded, 1 failed, 130 canceled)", *options);
  add_job_id(*watch_command, *options);
  watch_command->callback([options] {
    const int code = watch(*options);
    if (code != 0) throw CLI::RuntimeError(code);
  });

  CLI::App* cancel_command =
      add_jobs_subcommand(*jobs, "cancel", "Cancel a queued or running job", *options);
  add_job_id(*cancel_command, *options);
  cancel_command->callback([options] { cancel(*options); });
}

}  // namespace df::cli

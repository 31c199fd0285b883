// dreamforge-dispatch-bench: how fast a queue dispatches jobs to workers whose runner does no work.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "dispatch_redis_list_queue.h"
#include "dispatch_run.h"
#include "queue/queue.h"
#include "store/store.h"

namespace {

struct Options {
  std::string database_url;
  std::string queue_url = "db";
  df::bench::DispatchPlan plan;
  double rate = 0;  // 0: a backlog
};

std::unique_ptr<df::queue::Queue> open_bench_queue(const std::string& url,
                                                   df::store::Store& store) {
  if (df::bench::is_redis_list_url(url)) {
    return std::make_unique<df::bench::RedisListQueue>(df::bench::parse_redis_list_url(url), store);
  }
  return df::queue::open_queue(url, store);
}

// The value below which `fraction` of the sorted values lie, interpolated between neighbours.
double percentile(const std::vector<double>& sorted, double fraction) {
  const double rank = fraction * static_cast<double>(sorted.size() - 1);
  const size_t low = static_cast<size_t>(rank);
  const size_t high = std::min(low + 1, sorted.size() - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - static_cast<double>(low));
}

nlohmann::json report(const Options& options, const std::string& queue_kind,
                      const df::bench::DispatchTimings& timings) {
  std::vector<double> delays = timings.claim_delay_ms;
  std::sort(delays.begin(), delays.end());
  return {{"queue", queue_kind},
          {"workers", options.plan.workers},
          {"jobs", options.plan.jobs},
          {"rate", options.plan.jobs_per_s ? nlohmann::json(*options.plan.jobs_per_s) : nullptr},
          {"seconds", timings.seconds},
          {"producer_seconds", timings.producer_seconds},
          {"jobs_per_s", options.plan.jobs / timings.seconds},
          {"claim_latency_ms",
           {{"p50", percentile(delays, 0.50)},
            {"p95", percentile(delays, 0.95)},
            {"p99", percentile(delays, 0.99)},
            {"max", delays.back()}}},
          {"claimed_before_enqueue", timings.claimed_before_enqueue}};
}

void run(const Options& options) {
  const std::unique_ptr<df::store::Store> store = df::store::open_store(options.database_url);
  const std::unique_ptr<df::queue::Queue> queue = open_bench_queue(options.queue_url, *store);
  const df::bench::DispatchTimings timings = df::bench::run_dispatch(*store, *queue, options.plan);
  df::bench::check_each_job_succeeded_once(*store, timings);
  std::cout << report(options, queue->kind(), timings).dump() << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Dispatch benchmark: N workers claim, finish and settle M jobs that need no work; prints "
      "jobs/s and claim latency as JSON and fails unless every job succeeded exactly once"};
  Options options;
  app.add_option("--database-url", options.database_url,
                 "sqlite:///path or postgres://user@host:port/db (a fresh database)")
      ->required();
  app.add_option("--queue-url", options.queue_url,
                 "db, redis://host:port/db?prefix=..., or redis-list://host:port/db?prefix=... "
                 "(a fresh prefix)")
      ->capture_default_str();
  app.add_option("--workers", options.plan.workers, "worker threads")->capture_default_str();
  app.add_option("--jobs", options.plan.jobs, "jobs to run")->capture_default_str();
  app.add_option("--rate", options.rate,
                 "jobs created per second (latency mode); without it all at once (a backlog)");
  try {
    app.parse(argc, argv);
    if (app.count("--rate") > 0) options.plan.jobs_per_s = options.rate;
    run(options);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const df::Error& e) {
    std::cerr << "error[" << e.code_name() << "]: " << e.what() << '\n';
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error[internal]: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

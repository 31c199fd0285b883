// Unit tests for the Prometheus metrics registry and its text exposition.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "telemetry/metrics.h"
#include "test_support.h"

namespace df::telemetry {
namespace {

using test::error_code_of;

TEST(Metrics, CounterWithLabelsRendersSortedSeries) {
  Metrics metrics;
  metrics.declare_counter("dreamforge_http_requests_total", "HTTP requests");
  metrics.increment("dreamforge_http_requests_total", {{"method", "POST"}, {"status", "201"}});
  metrics.increment("dreamforge_http_requests_total", {{"method", "GET"}, {"status", "200"}}, 2);
  metrics.increment("dreamforge_http_requests_total", {{"method", "POST"}, {"status", "201"}}, 0.5);
  EXPECT_EQ(metrics.render(),
            "# HELP dreamforge_http_requests_total HTTP requests\n"
            "# TYPE dreamforge_http_requests_total counter\n"
            "dreamforge_http_requests_total{method=\"GET\",status=\"200\"} 2\n"
            "dreamforge_http_requests_total{method=\"POST\",status=\"201\"} 1.5\n");
}

TEST(Metrics, FamiliesAreSortedByNameAndUnusedOnesShowOnlyTheirHeader) {
  Metrics metrics;
  metrics.declare_gauge("b_gauge", "B");
  metrics.declare_counter("a_total", "A");
  metrics.set_gauge("b_gauge", {}, 0.1);
  EXPECT_EQ(metrics.render(),
            "# HELP a_total A\n"
            "# TYPE a_total counter\n"
            "# HELP b_gauge B\n"
            "# TYPE b_gauge gauge\n"
            "b_gauge 0.1\n");
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  Metrics metrics;
  metrics.declare_counter("errors_total", "Errors \\ by\ncode");
  metrics.increment("errors_total", {{"message", "a\\b \"quoted\"\nnext"}});
  EXPECT_EQ(metrics.render(),
            "# HELP errors_total Errors \\\\ by\\ncode\n"
            "# TYPE errors_total counter\n"
            "errors_total{message=\"a\\\\b \\\"quoted\\\"\\nnext\"} 1\n");
}

TEST(Metrics, GaugeSeriesReplacementDropsVanishedSeries) {
  Metrics metrics;
  metrics.declare_gauge("jobs", "Jobs by status");
  metrics.set_gauge_series("jobs", {{{{"status", "queued"}}, 2}, {{{"status", "running"}}, 1}});
  metrics.set_gauge_series("jobs", {{{{"status", "succeeded"}}, 3}, {{{"status", "queued"}}, 0}});
  metrics.set_gauge("jobs", {{"status", "failed"}}, -1);
  EXPECT_EQ(metrics.render(),
            "# HELP jobs Jobs by status\n"
            "# TYPE jobs gauge\n"
            "jobs{status=\"failed\"} -1\n"
            "jobs{status=\"queued\"} 0\n"
            "jobs{status=\"succeeded\"} 3\n");
}

TEST(Metrics, HistogramBucketsAreCumulativeWithSumAndCount) {
  Metrics metrics;
  metrics.declare_histogram("latency_seconds", "Latency", {0.5, 1, 2});
  for (double seconds : {0.25, 1.0, 1.5, 5.0}) {
    metrics.observe("latency_seconds", {{"route", "/v1/jobs"}}, seconds);
  }
  metrics.observe("latency_seconds", {}, 0.75);
  EXPECT_EQ(metrics.render(),
            "# HELP latency_seconds Latency\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{le=\"0.5\"} 0\n"
            "latency_seconds_bucket{le=\"1\"} 1\n"
            "latency_seconds_bucket{le=\"2\"} 1\n"
            "latency_seconds_bucket{le=\"+Inf\"} 1\n"
            "latency_seconds_sum 0.75\n"
            "latency_seconds_count 1\n"
            "latency_seconds_bucket{route=\"/v1/jobs\",le=\"0.5\"} 1\n"
            "latency_seconds_bucket{route=\"/v1/jobs\",le=\"1\"} 2\n"
            "latency_seconds_bucket{route=\"/v1/jobs\",le=\"2\"} 3\n"
            "latency_seconds_bucket{route=\"/v1/jobs\",le=\"+Inf\"} 4\n"
            "latency_seconds_sum{route=\"/v1/jobs\"} 7.75\n"
            "latency_seconds_count{route=\"/v1/jobs\"} 4\n");
}

TEST(Metrics, UndeclaredNamesAndKindMismatchesAreInternalErrors) {
  Metrics metrics;
  metrics.declare_counter("requests_total", "Requests");
  metrics.declare_gauge("depth", "Depth");
  EXPECT_EQ(error_code_of([&] { metrics.increment("nothing_total"); }), ErrorCode::kInternal);
  EXPECT_EQ(error_code_of([&] { metrics.set_gauge("requests_total", {}, 1); }),
            ErrorCode::kInternal);
  EXPECT_EQ(error_code_of([&] { metrics.increment("depth"); }), ErrorCode::kInternal);
  EXPECT_EQ(error_code_of([&] { metrics.observe("depth", {}, 1); }), ErrorCode::kInternal);
  try {
    metrics.increment("depth");
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "metric depth is a gauge, not a counter");
  }
}

TEST(Metrics, InvalidDeclarationsAndUsesAreInternalErrors) {
  Metrics metrics;
  metrics.declare_counter("ok_total", "Fine");
  metrics.declare_histogram("h", "H", {1, 2});
  EXPECT_EQ(error_code_of([&] { metrics.declare_gauge("ok_total", "Again"); }),
            ErrorCode::kInternal);
  EXPECT_EQ(error_code_of([&] { metrics.declare_counter("9lives", "Bad name"); }),
            ErrorCode::kInternal);
  EXPECT_EQ(error_code_of([&] { metrics.declare_histogram("h2", "Unsorted", {2, 1}); }),
            ErrorCode::kInternal);
  EXPECT_EQ(error_code_of([&] { metrics.increment("ok_total", {}, -1); }), ErrorCode::kInternal);
  EXPECT_EQ(error_code_of([&] { metrics.increment("ok_total", {{"bad-name", "x"}}); }),
            ErrorCode::kInternal);
  EXPECT_EQ(error_code_of([&] { metrics.increment("ok_total", {{"a", "1"}, {"a", "2"}}); }),
            ErrorCode::kInternal);
  EXPECT_EQ(error_code_of([&] { metrics.observe("h", {{"le", "1"}}, 1); }), ErrorCode::kInternal);
  EXPECT_EQ(metrics.render(),
            "# HELP h H\n# TYPE h histogram\n# HELP ok_total Fine\n# TYPE ok_total counter\n");
}

TEST(Metrics, ConcurrentIncrementsFromEightThreadsAllCount) {
  Metrics metrics;
  metrics.declare_counter("events_total", "Events");
  metrics.declare_histogram("sizes", "Sizes", {10});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < 10000; ++i) {
        metrics.increment("events_total", {{"parity", t % 2 == 0 ? "even" : "odd"}});
        metrics.observe("sizes", {}, 1);
        if (i % 1000 == 0) metrics.render();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(metrics.render(),
            "# HELP events_total Events\n"
            "# TYPE events_total counter\n"
            "events_total{parity=\"even\"} 40000\n"
            "events_total{parity=\"odd\"} 40000\n"
            "# HELP sizes Sizes\n"
            "# TYPE sizes histogram\n"
            "sizes_bucket{le=\"10\"} 80000\n"
            "sizes_bucket{le=\"+Inf\"} 80000\n"
            "sizes_sum 80000\n"
            "sizes_count 80000\n");
}

}  // namespace
}  // namespace df::telemetry

// Unit tests for the backends in /healthz, /readyz and /metrics.
#include <gtest/gtest.h>

#include "api/backend_report.h"
#include "telemetry/service_metrics.h"

namespace df::api {
namespace {

backends::BackendStatus status(const std::string& name, bool up, const std::string& error = "") {
  backends::BackendStatus s;
  s.spec.name = name;
  s.spec.url = "http://10.0.0.1:8188";
  s.up = up;
  s.error = error;
  s.queue_remaining = up ? 3 : 0;
  s.checked_ms = up ? 1700000000000 : 0;
  s.offer.node_types = {"KSampler", "PackNode"};
  return s;
}

gpu::RunnerState backend_runner(const std::string& worker_id, const std::string& backend) {
  gpu::RunnerState runner;
  runner.worker_id = worker_id;
  runner.runner_id = "backend:" + backend;
  runner.device = "backend";
  runner.state = "busy";
  return runner;
}

TEST(BackendReport, HealthListsEachBackendWithTheRunnersThatDriveIt) {
  gpu::RunnerState native;
  native.worker_id = "w0";
  const auto health = health_backends({status("a", true), status("b", false, "connection refused")},
                                      {native, backend_runner("b0", "a"), backend_runner("b1", "a")});
  ASSERT_EQ(health.size(), 2u);
  EXPECT_EQ(health[0]["name"], "a");
  EXPECT_EQ(health[0]["url"], "http://10.0.0.1:8188");
  EXPECT_EQ(health[0]["up"], true);
  EXPECT_TRUE(health[0]["error"].is_null());
  EXPECT_EQ(health[0]["queue_remaining"], 3);
  EXPECT_EQ(health[0]["node_types"], 2);
  EXPECT_EQ(health[0]["checked_at"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(health[1]["error"], "connection refused");
  EXPECT_TRUE(health[1]["checked_at"].is_null());
  ASSERT_EQ(health[0]["runners"].size(), 2u) << "the native runner is not a backend's";
  EXPECT_EQ(health[0]["runners"][0]["worker_id"], "b0");
  EXPECT_EQ(health[0]["runners"][0]["runner_id"], "backend:a");
  EXPECT_EQ(health[0]["runners"][1]["state"], "busy");
  EXPECT_TRUE(health[1]["runners"].empty());
  for (const auto& entry : health) {
    for (const auto& field : health_backend_schema()["required"]) {
      EXPECT_TRUE(entry.contains(field.get<std::string>())) << field;
    }
  }
}

TEST(BackendReport, UnreadyOnlyWhenBackendsAreConfiguredAndNoneIsUp) {
  EXPECT_EQ(backends_unready({}), std::nullopt);
  EXPECT_EQ(backends_unready({status("a", false, "refused"), status("b", true)}), std::nullopt);
  EXPECT_EQ(backends_unready({status("a", false, "refused"), status("b", false)}),
            "no backend is up: a (refused), b (not checked yet)");
}

TEST(BackendReport, GaugesPerBackend) {
  telemetry::Metrics metrics;
  telemetry::declare_service_metrics(metrics);
  record_backends(metrics, {status("a", true), status("b", false)});
  const std::string text = metrics.render();
  EXPECT_NE(text.find("dreamforge_backend_up{backend=\"a\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("dreamforge_backend_up{backend=\"b\"} 0"), std::string::npos);
  EXPECT_NE(text.find("dreamforge_backend_queue_remaining{backend=\"a\"} 3"), std::string::npos);
  record_backends(metrics, {status("b", false)});
  EXPECT_EQ(metrics.render().find("backend=\"a\""), std::string::npos);
}

}  // namespace
}  // namespace df::api

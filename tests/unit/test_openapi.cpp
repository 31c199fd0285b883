// Tests of the OpenAPI document against the router and the handlers: every registered route is
// documented with its method and path parameters, nothing undocumented is served, the document is
// OpenAPI 3.1, and what the handlers answer is what the document lists.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>
#include <string>
#include <utility>

#include "api/api_service.h"
#include "api/job_views.h"
#include "core/ids.h"
#include "core/json_schema.h"
#include "blob/local_blob_store.h"
#include "http/router.h"
#include "queue/db_queue.h"
#include "registry/model_registry.h"
#include "registry/routing_table.h"
#include "store/sqlite_store.h"
#include "telemetry/metrics.h"
#include "telemetry/service_metrics.h"
#include "test_support.h"

namespace df::api {
namespace {

using nlohmann::json;

// A router's "{key...}" (rest of the path) is a plain "{key}" in OpenAPI.
std::string openapi_path(const std::string& pattern) {
  return std::regex_replace(pattern, std::regex(R"(\{([a-z_]+)\.\.\.\})"), "{$1}");
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::set<std::string> path_parameter_names(const std::string& path) {
  std::set<std::string> names;
  const std::regex name(R"(\{([a-z_]+)\})");
  for (auto it = std::sregex_iterator(path.begin(), path.end(), name); it != std::sregex_iterator();
       ++it) {
    names.insert((*it)[1].str());
  }
  return names;
}

Job queued_job(const std::string& id) {
  Job job;
  job.id = id;
  job.type = "generate";
  job.spec = {{"prompt", "a lighthouse"}};
  job.created_ms = now_ms();
  return job;
}

const std::set<std::string> kHttpMethods = {"get",     "put",  "post",  "delete",
                                            "options", "head", "patch", "trace"};

class OpenApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    telemetry::declare_service_metrics(metrics_);
    service_.register_routes(router_);
    document_ = openapi_document(ApiService::route_docs(ApiSettings{}.jobs));
  }

  // What the service answers `request` (a handler's error as its envelope's status), after
  // checking that the document lists that status for the operation the router picked.
  http::Response answer(http::Request request) {
    const http::Route& route = router_.match(request);
    const json& listed =
        document_["paths"][openapi_path(route.pattern)][lower(request.method)]["responses"];
    http::Response response;
    try {
      response = route.handler(request);
    } catch (const Error& error) {
      response = http::error_response(error, "test");
    }
    EXPECT_TRUE(listed.contains(std::to_string(response.status)))
        << request.method << " " << request.path << " answered " << response.status
        << ", not in the document: " << response.body;
    return response;
  }
  http::Response answer(const std::string& method, const std::string& path,
                        std::map<std::string, std::string> query = {},
                        std::vector<std::pair<std::string, std::string>> headers = {},
                        std::string body = "") {
    http::Request request;
    request.method = method;
    request.path = path;
    request.query = std::move(query);
    request.headers = std::move(headers);
    request.body = std::move(body);
    return answer(std::move(request));
  }

  test::TestDir dir_{"df_openapi_"};
  store::SqliteStore store_{(dir_.path() / "jobs.sqlite3").string()};
  blob::LocalBlobStore blobs_{(dir_.path() / "blobs").string(),
                              blob::UrlSigner("openapi-test-secret-key")};
  registry::ModelRegistry models_{store_, (dir_.path() / "checkpoints").string(),
                                  registry::RegistryScope::kThisMachine};
  queue::DbQueue queue_{store_};
  EventHub hub_;
  telemetry::Metrics metrics_;
  WorkflowRouter workflows_{models_, (dir_.path() / "input").string()};
  JobIntake intake_{store_, queue_, metrics_, workflows_};
  ApiService service_{store_, blobs_, models_, queue_, hub_, metrics_, intake_, ApiSettings{}};
  http::Router router_;
  json document_;
};

TEST_F(OpenApiTest, DocumentIsOpenApi31WithTheErrorEnvelope) {
  EXPECT_EQ(document_["openapi"], "3.1.0");
  EXPECT_FALSE(document_["info"]["title"].get<std::string>().empty());
  EXPECT_TRUE(document_["info"].contains("version"));
  const json& error = document_["components"]["schemas"]["Error"];
  EXPECT_EQ(error["required"], json::array({"code", "message", "details", "correlation_id"}));
}

TEST_F(OpenApiTest, EveryRegisteredRouteIsDocumentedWithItsMethod) {
  ASSERT_FALSE(router_.routes().empty());
  for (const auto& route : router_.routes()) {
    const std::string path = openapi_path(route.pattern);
    ASSERT_TRUE(document_["paths"].contains(path)) << path;
    EXPECT_TRUE(document_["paths"][path].contains(lower(route.method)))
        << route.method << " " << path;
  }
}

TEST_F(OpenApiTest, EveryDocumentedOperationIsRegistered) {
  std::set<std::pair<std::string, std::string>> served;
  for (const auto& route : router_.routes())
    served.insert({lower(route.method), openapi_path(route.pattern)});
  std::set<std::pair<std::string, std::string>> documented;
  for (const auto& [path, item] : document_["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      EXPECT_TRUE(kHttpMethods.count(method)) << method << " " << path;
      documented.insert({method, path});
    }
  }
  EXPECT_EQ(documented, served);
  EXPECT_EQ(documented.size(), router_.routes().size()) << "one route per method and path";
}

TEST_F(OpenApiTest, PathParametersAreDeclaredAndRequired) {
  for (const auto& [path, item] : document_["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      std::set<std::string> declared;
      for (const auto& parameter : operation["parameters"]) {
        if (parameter["in"] != "path") continue;
        declared.insert(parameter["name"].get<std::string>());
        EXPECT_EQ(parameter["required"], true) << method << " " << path;
        EXPECT_TRUE(parameter.contains("schema")) << method << " " << path;
      }
      EXPECT_EQ(declared, path_parameter_names(path)) << method << " " << path;
    }
  }
}

TEST_F(OpenApiTest, OperationsHaveUniqueIdsAndDocumentedResponses) {
  std::set<std::string> ids;
  for (const auto& [path, item] : document_["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      const std::string id = operation["operationId"];
      EXPECT_TRUE(ids.insert(id).second) << "operationId " << id << " used twice";
      ASSERT_FALSE(operation["responses"].empty()) << id;
      for (const auto& [status, response] : operation["responses"].items()) {
        EXPECT_TRUE(response.contains("description")) << id << " " << status;
        if (status[0] == '4' || status[0] == '5') {
          EXPECT_EQ(response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error")
              << id << " " << status;
        }
      }
    }
  }
}

TEST_F(OpenApiTest, JobCreationDocumentsItsBodyAndHeaders) {
  const json& create = document_["paths"]["/v1/jobs"]["post"];
  EXPECT_TRUE(create["requestBody"]["content"]["application/json"]["schema"].contains("oneOf"));
  EXPECT_TRUE(create["responses"].contains("202"));
  EXPECT_TRUE(create["responses"].contains("409"));
  EXPECT_TRUE(create["responses"].contains("422"));
  std::set<std::string> headers;
  for (const auto& parameter : create["parameters"]) {
    if (parameter["in"] == "header") headers.insert(parameter["name"].get<std::string>());
  }
  EXPECT_TRUE(headers.count("Idempotency-Key"));
  const json& events = document_["paths"]["/v1/jobs/{id}/events"]["get"];
  EXPECT_TRUE(events["responses"]["200"]["content"].contains("text/event-stream"));
}

TEST_F(OpenApiTest, EveryOperationListsTheErrorsOfTheHttpLayer) {
  for (const auto& [path, item] : document_["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      for (const char* status : {"400", "403", "408", "413", "431", "500"}) {
        EXPECT_TRUE(operation["responses"].contains(status))
            << method << " " << path << " " << status;
      }
    }
  }
}

TEST_F(OpenApiTest, ReplayedJobsAndCancelsOfFinishedJobsAreDocumented) {
  const json& create = document_["paths"]["/v1/jobs"]["post"]["responses"];
  for (const char* status : {"200", "202"}) {
    EXPECT_EQ(create[status]["content"]["application/json"]["schema"]["$ref"],
              "#/components/schemas/Job");
    EXPECT_TRUE(create[status]["headers"].contains("Location")) << status;
  }
  EXPECT_TRUE(create["200"]["headers"].contains("Idempotent-Replayed"));
  for (const char* status : {"400", "409", "415", "422", "503"}) {
    EXPECT_TRUE(create.contains(status)) << status;
  }
  const json& cancel = document_["paths"]["/v1/jobs/{id}/cancel"]["post"]["responses"];
  EXPECT_TRUE(cancel.contains("200") && cancel.contains("202") && cancel.contains("404"));
}

TEST_F(OpenApiTest, HandlersAnswerOnlyDocumentedStatuses) {
  store_.create_job(queued_job("job-1"));
  EXPECT_EQ(answer("POST", "/v1/jobs/job-1/cancel").status, 202);
  const http::Response finished = answer("POST", "/v1/jobs/job-1/cancel");
  EXPECT_EQ(finished.status, 200);
  EXPECT_EQ(json::parse(finished.body)["cancel"], "already_finished");
  EXPECT_EQ(answer("POST", "/v1/jobs/nope/cancel").status, 404);

  EXPECT_EQ(answer("GET", "/v1/jobs/job-1/events", {}, {{"Last-Event-ID", "abc"}}).status, 422);
  EXPECT_EQ(answer("GET", "/v1/jobs/job-1/events", {{"after", "-1"}}).status, 422);
  EXPECT_EQ(answer("GET", "/v1/jobs/job-1/events", {{"after", "2"}}).status, 200);
  EXPECT_EQ(answer("GET", "/v1/jobs/nope/events").status, 404);

  EXPECT_EQ(answer("GET", "/v1/files/a/b.png", {{"expires", "soon"}, {"sig", "x"}}).status, 422);
  EXPECT_EQ(answer("GET", "/v1/files/a/b.png", {{"expires", "1"}, {"sig", "x"}}).status, 403);
  EXPECT_EQ(answer("GET", "/v1/files/a/b.png").status, 403);

  const std::pair<std::string, std::string> json_type = {"Content-Type", "application/json"};
  EXPECT_EQ(answer("POST", "/v1/jobs", {}, {json_type}, "{").status, 400);
  EXPECT_EQ(answer("POST", "/v1/jobs", {}, {json_type}, R"({"prompt": "x", "preset": "0"})").status,
            422);
  answer("POST", "/v1/jobs", {}, {}, R"({"prompt": "x"})");
  EXPECT_EQ(answer("GET", "/v1/jobs", {{"limit", "0"}}).status, 422);
  EXPECT_EQ(answer("GET", "/v1/jobs", {{"status", "done"}}).status, 422);
  for (const char* path : {"/v1/jobs", "/v1/jobs/job-1", "/v1/jobs/job-1/artifacts",
                           "/v1/jobs/job-1/logs", "/v1/jobs/job-1/progress", "/v1/models",
                           "/v1/openapi.json", "/healthz", "/readyz", "/metrics"}) {
    EXPECT_EQ(answer("GET", path).status, 200) << path;
  }
  EXPECT_EQ(answer("GET", "/v1/models/nope").status, 404);
}

TEST_F(OpenApiTest, JobSchemaDescribesTheJobsTheServiceShows) {
  Job job = queued_job("job-2");
  EXPECT_EQ(validate_against_schema(job_schema(), job_json(job)).size(), 0u);
  job.status = JobStatus::kFailed;
  job.error = {{"code", "oom"}, {"message", "out of memory"}, {"details", json::object()}};
  job.started_ms = job.finished_ms = now_ms();
  job.spec["estimate"] = {{"seconds", 3}};
  const std::vector<Step> steps(1);
  const auto violations = validate_against_schema(job_schema(), job_json(job, &steps));
  EXPECT_TRUE(violations.empty()) << violations.front().field << " " << violations.front().message;
}

TEST_F(OpenApiTest, JobRequestSchemaShowsTheServicesPresets) {
  ApiSettings settings;
  settings.jobs.routing = &registry::default_routing_table();
  const json document = openapi_document(ApiService::route_docs(settings.jobs));
  const json& generate =
      document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
              ["schema"]["oneOf"][0];
  EXPECT_EQ(generate["properties"]["preset"]["enum"],
            json(registry::default_routing_table().presets.names()));
  EXPECT_EQ(generate["properties"]["init_image"]["contentEncoding"], "base64");
}

}  // namespace
}  // namespace df::api

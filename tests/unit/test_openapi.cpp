// Tests of the OpenAPI document against the router: every registered route is documented with its
// method and path parameters, nothing undocumented is served, and the document is OpenAPI 3.1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>
#include <string>
#include <utility>

#include "api/api_service.h"
#include "blob/local_blob_store.h"
#include "http/router.h"
#include "queue/db_queue.h"
#include "registry/model_registry.h"
#include "store/sqlite_store.h"
#include "telemetry/metrics.h"
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

const std::set<std::string> kHttpMethods = {"get",     "put",  "post",  "delete",
                                            "options", "head", "patch", "trace"};

class OpenApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_.register_routes(router_);
    document_ = openapi_document(ApiService::route_docs());
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
  ApiService service_{store_, blobs_, models_, queue_, hub_, metrics_, ApiSettings{}};
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
  EXPECT_TRUE(create["responses"].contains("201"));
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

}  // namespace
}  // namespace df::api

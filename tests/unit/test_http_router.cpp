// Unit tests for the HTTP router, request targets, messages, error envelopes and correlation ids.
#include <gtest/gtest.h>

#include "http/correlation_id.h"
#include "http/request_target.h"
#include "http/router.h"

namespace df::http {
namespace {

Handler answer(std::string name) {
  return [name](Request&) { return Response::text(200, name); };
}

Request request_for(std::string method, std::string path) {
  Request request;
  request.method = std::move(method);
  request.path = std::move(path);
  return request;
}

ErrorCode code_of_match(const Router& router, Request request) {
  try {
    router.match(request);
  } catch (const Error& error) {
    return error.code();
  }
  ADD_FAILURE() << "expected no match";
  return ErrorCode::kInternal;
}

TEST(HttpRouter, MatchesLiteralAndParameterSegments) {
  Router router;
  router.add("GET", "/v1/jobs", answer("list"));
  router.add("GET", "/v1/jobs/{id}", answer("one"));
  router.add("GET", "/v1/jobs/{id}/events", answer("events"));
  Request request = request_for("GET", "/v1/jobs/abc");
  EXPECT_EQ(router.match(request).pattern, "/v1/jobs/{id}");
  EXPECT_EQ(request.path_params.at("id"), "abc");
  request = request_for("GET", "/v1/jobs/x y/events");
  EXPECT_EQ(router.match(request).pattern, "/v1/jobs/{id}/events");
  EXPECT_EQ(request.path_params.at("id"), "x y");
  request = request_for("GET", "/v1/jobs");
  EXPECT_EQ(router.match(request).pattern, "/v1/jobs");
  EXPECT_TRUE(request.path_params.empty());
}

TEST(HttpRouter, ParameterSegmentsNeedText) {
  Router router;
  router.add("GET", "/v1/jobs/{id}", answer("one"));
  EXPECT_EQ(code_of_match(router, request_for("GET", "/v1/jobs/")), ErrorCode::kNotFound);
  EXPECT_EQ(code_of_match(router, request_for("GET", "/v1/jobs/a/b")), ErrorCode::kNotFound);
}

TEST(HttpRouter, RestCaptureTakesSlashes) {
  Router router;
  router.add("GET", "/files/{path...}", answer("files"));
  Request request = request_for("GET", "/files/a/b/c.png");
  router.match(request);
  EXPECT_EQ(request.path_params.at("path"), "a/b/c.png");
  request = request_for("GET", "/files/");
  router.match(request);
  EXPECT_EQ(request.path_params.at("path"), "");
  EXPECT_EQ(code_of_match(router, request_for("GET", "/files")), ErrorCode::kNotFound);
}

TEST(HttpRouter, MoreSpecificPatternWinsWhateverTheOrder) {
  Router router;
  router.add("GET", "/{rest...}", answer("static"));
  router.add("GET", "/v1/jobs/{id}", answer("one"));
  router.add("GET", "/v1/jobs/stats", answer("stats"));
  Request request = request_for("GET", "/v1/jobs/stats");
  EXPECT_EQ(router.match(request).pattern, "/v1/jobs/stats");
  request = request_for("GET", "/v1/jobs/42");
  EXPECT_EQ(router.match(request).pattern, "/v1/jobs/{id}");
  request = request_for("GET", "/index.html");
  EXPECT_EQ(router.match(request).pattern, "/{rest...}");
  EXPECT_EQ(request.path_params.at("rest"), "index.html");
}

TEST(HttpRouter, OtherMethodIsNotAllowedWithTheAllowedOnesInDetails) {
  Router router;
  router.add("GET", "/v1/jobs", answer("list"));
  router.add("POST", "/v1/jobs", answer("create"));
  router.add("DELETE", "/v1/jobs/{id}", answer("delete"));
  Request request = request_for("PUT", "/v1/jobs");
  try {
    router.match(request);
    FAIL() << "expected 405";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kMethodNotAllowed);
    EXPECT_EQ(error.details()["allow"], nlohmann::json({"GET", "HEAD", "POST"}));
  }
  EXPECT_EQ(code_of_match(router, request_for("GET", "/v2")), ErrorCode::kNotFound);
}

// The methods a 405 for `request` names in its Allow header.
nlohmann::json allowed_methods(const Router& router, Request request) {
  try {
    router.match(request);
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kMethodNotAllowed);
    return error.details()["allow"];
  }
  ADD_FAILURE() << "expected 405 for " << request.method << " " << request.path;
  return nullptr;
}

TEST(HttpRouter, APathBelongsToItsMostSpecificPatternNotToACatchAll) {
  Router router;
  router.add("GET", "/{path...}", answer("static"));
  router.add("POST", "/v1/jobs/{id}/cancel", answer("cancel"));
  router.add("GET", "/v1/jobs/{id}", answer("one"));
  router.add("DELETE", "/v1/jobs/{id}", answer("delete"));
  const nlohmann::json post = nlohmann::json::array({"POST"});
  EXPECT_EQ(allowed_methods(router, request_for("OPTIONS", "/v1/jobs/7/cancel")), post);
  EXPECT_EQ(allowed_methods(router, request_for("GET", "/v1/jobs/7/cancel")), post);
  EXPECT_EQ(allowed_methods(router, request_for("HEAD", "/v1/jobs/7/cancel")), post);
  EXPECT_EQ(allowed_methods(router, request_for("OPTIONS", "/v1/jobs/7")),
            nlohmann::json({"DELETE", "GET", "HEAD"}));
  Request request = request_for("POST", "/v1/jobs/7/cancel");
  EXPECT_EQ(router.match(request).pattern, "/v1/jobs/{id}/cancel");
  request = request_for("GET", "/v1/jobs/7/cancel/more");
  EXPECT_EQ(router.match(request).pattern, "/{path...}") << "no more specific pattern matches";
  EXPECT_EQ(allowed_methods(router, request_for("OPTIONS", "/index.html")),
            nlohmann::json({"GET", "HEAD"}));
}

TEST(HttpRouter, HeadIsServedByGetUnlessItHasItsOwnRoute) {
  Router router;
  router.add("GET", "/a", answer("get a"));
  router.add("GET", "/b", answer("get b"));
  router.add("HEAD", "/b", answer("head b"));
  Request request = request_for("HEAD", "/a");
  EXPECT_EQ(router.match(request).method, "GET");
  request = request_for("HEAD", "/b");
  EXPECT_EQ(router.match(request).method, "HEAD");
}

TEST(HttpRouter, RejectsMalformedPatterns) {
  Router router;
  EXPECT_THROW(router.add("GET", "v1/jobs", answer("x")), Error);
  EXPECT_THROW(router.add("GET", "/v1/{}", answer("x")), Error);
  EXPECT_THROW(router.add("GET", "/v1/{rest...}/more", answer("x")), Error);
  EXPECT_TRUE(router.routes().empty());
}

TEST(HttpRequestTarget, DecodesPathAndQuery) {
  RequestTarget target = parse_request_target("/v1/a%20b/c%2Fd?q=x+y%26z&flag&n=1&n=2");
  EXPECT_EQ(target.path, "/v1/a b/c/d");
  EXPECT_EQ(target.query.at("q"), "x y&z");
  EXPECT_EQ(target.query.at("flag"), "");
  EXPECT_EQ(target.query.at("n"), "2");
  EXPECT_THROW(parse_request_target("http://example.com/x"), Error);
  EXPECT_THROW(parse_request_target("/bad%zz"), Error);
}

TEST(HttpMessage, StatusForEveryErrorCode) {
  EXPECT_EQ(http_status_for(ErrorCode::kInvalidArgument), 422);
  EXPECT_EQ(http_status_for(ErrorCode::kUnsupported), 422);
  EXPECT_EQ(http_status_for(ErrorCode::kUnsafeFormat), 422);
  EXPECT_EQ(http_status_for(ErrorCode::kCorruptFile), 422);
  EXPECT_EQ(http_status_for(ErrorCode::kNotFound), 404);
  EXPECT_EQ(http_status_for(ErrorCode::kModelNotFound), 404);
  EXPECT_EQ(http_status_for(ErrorCode::kConflict), 409);
  EXPECT_EQ(http_status_for(ErrorCode::kCanceled), 409);
  EXPECT_EQ(http_status_for(ErrorCode::kPayloadTooLarge), 413);
  EXPECT_EQ(http_status_for(ErrorCode::kForbidden), 403);
  EXPECT_EQ(http_status_for(ErrorCode::kUnavailable), 503);
  EXPECT_EQ(http_status_for(ErrorCode::kBadRequest), 400);
  EXPECT_EQ(http_status_for(ErrorCode::kMethodNotAllowed), 405);
  EXPECT_EQ(http_status_for(ErrorCode::kRequestTimeout), 408);
  EXPECT_EQ(http_status_for(ErrorCode::kInternal), 500);
  EXPECT_EQ(http_status_for(ErrorCode::kOutOfMemory), 500);
  EXPECT_EQ(http_status_for(ErrorCode::kIo), 500);
}

TEST(HttpMessage, ErrorResponseIsTheEnvelope) {
  Response response =
      error_response(Error(ErrorCode::kConflict, "key reused", {{"key", "k1"}}), "req-1");
  EXPECT_EQ(response.status, 409);
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(nlohmann::json::parse(response.body), nlohmann::json({{"code", "conflict"},
                                                                  {"message", "key reused"},
                                                                  {"details", {{"key", "k1"}}},
                                                                  {"correlation_id", "req-1"}}));
  EXPECT_TRUE(response.headers.empty());
}

TEST(HttpMessage, MethodNotAllowedEnvelopeCarriesAllowHeader) {
  Response response =
      error_response(Error(ErrorCode::kMethodNotAllowed, "no", {{"allow", {"GET", "POST"}}}), "id");
  EXPECT_EQ(response.status, 405);
  ASSERT_EQ(response.headers.size(), 1u);
  EXPECT_EQ(response.headers[0], std::make_pair(std::string("Allow"), std::string("GET, POST")));
}

TEST(HttpMessage, RequestHeaderLookupAndJsonBody) {
  Request request;
  request.headers = {{"Content-Type", "application/json"}, {"X-Thing", "1"}, {"x-thing", "2"}};
  EXPECT_EQ(request.header("content-type"), "application/json");
  EXPECT_EQ(request.header("X-THING"), "1");
  EXPECT_EQ(request.header("Missing"), "");
  request.body = R"({"a": [1, 2]})";
  EXPECT_EQ(request.json_body()["a"][1], 2);
  request.body = "{\"a\": tru}";
  try {
    request.json_body();
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kBadRequest);
    EXPECT_TRUE(std::string(error.what()).starts_with("request body is not valid JSON: "))
        << error.what();
    EXPECT_NE(std::string(error.what()).find("column"), std::string::npos) << error.what();
    EXPECT_EQ(std::string(error.what()).find("json.exception"), std::string::npos);
  }
}

TEST(HttpMessage, EventStreamResponseHeaders) {
  Response response = Response::event_stream(nullptr);
  EXPECT_EQ(response.content_type, "text/event-stream");
  EXPECT_NE(std::find(response.headers.begin(), response.headers.end(),
                      std::make_pair(std::string("Cache-Control"), std::string("no-cache"))),
            response.headers.end());
  EXPECT_NE(std::find(response.headers.begin(), response.headers.end(),
                      std::make_pair(std::string("X-Accel-Buffering"), std::string("no"))),
            response.headers.end());
}

TEST(HttpCorrelationId, KeepsSaneClientIdsAndReplacesOthers) {
  EXPECT_EQ(correlation_id_for("abc-123_x.y:z"), "abc-123_x.y:z");
  EXPECT_EQ(correlation_id_for(std::string(128, 'a')), std::string(128, 'a'));
  for (std::string bad : {std::string(), std::string(129, 'a'), std::string("has space"),
                          std::string("semi;colon"), std::string("new\nline")}) {
    std::string fresh = correlation_id_for(bad);
    EXPECT_EQ(fresh.size(), 32u) << bad;
    EXPECT_EQ(fresh.find_first_not_of("0123456789abcdef"), std::string::npos) << fresh;
  }
  EXPECT_NE(correlation_id_for(""), correlation_id_for(""));
}

}  // namespace
}  // namespace df::http

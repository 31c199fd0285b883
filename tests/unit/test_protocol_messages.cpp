// Unit tests for the runner protocol's typed messages: wire round trips, malformed messages, hello refusal.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "runner/protocol.h"
#include "runner/protocol_messages.h"

namespace df::runner {
namespace {

using nlohmann::json;

// The Error a parse throws; fails the test when none (or another code) is thrown.
template <typename Parse>
std::string protocol_error(Parse&& parse, const json& message) {
  try {
    parse(message);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kProtocol) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for " << message.dump();
  return "";
}

std::string request_error(const json& message) {
  return protocol_error([](const json& m) { parse_request(m); }, message);
}
std::string event_error(const json& message) {
  return protocol_error([](const json& m) { parse_event(m); }, message);
}

// A message survives to_json -> parse -> to_json unchanged and keeps its type name.
void expect_request_round_trip(const Request& request, const std::string& type) {
  const json wire = to_json(request);
  EXPECT_EQ(wire["type"], type);
  const Request parsed = parse_request(wire);
  EXPECT_EQ(parsed.index(), request.index());
  EXPECT_EQ(message_type(parsed), type);
  EXPECT_EQ(to_json(parsed), wire);
}

void expect_event_round_trip(const Event& event, const std::string& type) {
  const json wire = to_json(event);
  EXPECT_EQ(wire["type"], type);
  const Event parsed = parse_event(wire);
  EXPECT_EQ(parsed.index(), event.index());
  EXPECT_EQ(message_type(parsed), type);
  EXPECT_EQ(to_json(parsed), wire);
}

RunRequest sample_run() {
  RunRequest run;
  run.id = "job-1/1";
  run.graph = {{"3", {{"class_type", "KSampler"}, {"inputs", {{"seed", 5}}}}}};
  run.items = {RunItem{0, 17}, RunItem{1, std::nullopt}};
  run.output_dir = "/out";
  run.temp_dir = "/tmp/previews";
  run.format = "webp";
  run.quality = 80;
  run.extra_pnginfo = {{"workflow", {{"nodes", json::array()}}}};
  run.previews = true;
  return run;
}

TEST(ProtocolMessages, EveryRequestRoundTrips) {
  expect_request_round_trip(HelloRequest{kProtocolVersion}, "hello");
  expect_request_round_trip(sample_run(), "run");
  expect_request_round_trip(CancelRequest{"job-1/1"}, "cancel");
  expect_request_round_trip(FreeRequest{}, "free");
  expect_request_round_trip(ShutdownRequest{}, "shutdown");
}

TEST(ProtocolMessages, RunRequestFieldsSurviveTheWire) {
  const RunRequest run = std::get<RunRequest>(parse_request(to_json(Request{sample_run()})));
  EXPECT_EQ(run.id, "job-1/1");
  EXPECT_EQ(run.graph["3"]["class_type"], "KSampler");
  ASSERT_EQ(run.items.size(), 2u);
  EXPECT_EQ(run.items[0].index, 0);
  EXPECT_EQ(run.items[0].seed, std::optional<uint64_t>(17));
  EXPECT_EQ(run.items[1].index, 1);
  EXPECT_FALSE(run.items[1].seed.has_value());
  EXPECT_EQ(run.output_dir, "/out");
  EXPECT_EQ(run.temp_dir, "/tmp/previews");
  EXPECT_EQ(run.format, "webp");
  EXPECT_EQ(run.quality, 80);
  EXPECT_TRUE(run.previews);
  EXPECT_EQ(run.extra_pnginfo["workflow"]["nodes"], json::array());
}

TEST(ProtocolMessages, RunRequestDefaultsForOptionalFields) {
  const json wire = {{"type", "run"}, {"id", "r"}, {"graph", json::object()}, {"output_dir", "/o"}};
  const RunRequest run = std::get<RunRequest>(parse_request(wire));
  EXPECT_TRUE(run.items.empty());
  EXPECT_EQ(run.temp_dir, "");
  EXPECT_EQ(run.format, "png");
  EXPECT_EQ(run.quality, 95);
  EXPECT_TRUE(run.extra_pnginfo.is_null());
  EXPECT_FALSE(run.previews);
  // Left out on the wire when not set.
  const json back = to_json(Request{run});
  EXPECT_FALSE(back.contains("temp_dir"));
  EXPECT_FALSE(back.contains("extra_pnginfo"));
}

TEST(ProtocolMessages, UnsignedSeedsAboveInt64RoundTrip) {
  RunRequest run = sample_run();
  run.items = {RunItem{0, UINT64_MAX}};
  const RunRequest parsed = std::get<RunRequest>(parse_request(to_json(Request{run})));
  EXPECT_EQ(parsed.items[0].seed, std::optional<uint64_t>(UINT64_MAX));
}

HelloEvent sample_hello() {
  HelloEvent hello;
  hello.protocol = kProtocolVersion;
  hello.runner = "dreamforge-runner";
  hello.version = "0.1.0";
  RunnerCapabilities& caps = hello.capabilities;
  caps.kind = "comfy";
  caps.nodes = {"KSampler", "SaveImage"};
  caps.object_info = {{"KSampler", {{"name", "KSampler"}, {"output_node", false}}}};
  caps.model_files = {{"checkpoints", {"sd15.safetensors", "xl/base.safetensors"}}, {"loras", {}}};
  caps.samplers = {"euler"};
  caps.schedulers = {"karras"};
  caps.formats = {"png", "webp"};
  caps.devices = {"cpu", "cuda"};
  caps.device = "cuda:0";
  caps.dtype = "float16";
  caps.host_budget_bytes = int64_t{1} << 33;
  caps.device_budget_bytes = int64_t{1} << 34;
  caps.backend_url = "http://127.0.0.1:8188";
  return hello;
}

TEST(ProtocolMessages, EveryEventRoundTrips) {
  expect_event_round_trip(sample_hello(), "hello");
  expect_event_round_trip(RunStartedEvent{"r", 3, {{"device", "cpu"}}}, "run_started");
  expect_event_round_trip(ItemStartedEvent{"r", 1, 42}, "item_started");
  expect_event_round_trip(ExecutingEvent{"r", 1, "3", "KSampler"}, "executing");
  expect_event_round_trip(ProgressEvent{"r", 1, "3", 4, 20, 0.25}, "progress");
  expect_event_round_trip(StageEvent{"r", 1, "4", "CheckpointLoaderSimple", "load_model"}, "stage");
  expect_event_round_trip(CachedEvent{"r", 1, {"4", "6"}}, "cached");
  expect_event_round_trip(PreviewEvent{"r", 1, "3", "jpeg", "/9j/"}, "preview");
  expect_event_round_trip(StreamedImageEvent{"r", 1, "9", 0, 2, 64, 32, "png", "iVBO"},
                          "streamed_image");
  ArtifactEvent artifact;
  artifact.id = "r";
  artifact.item_index = 1;
  artifact.node = "9";
  artifact.path = "/out/x_00001_.png";
  artifact.filename = "x_00001_.png";
  artifact.format = "png";
  artifact.content_type = "image/png";
  artifact.width = 64;
  artifact.height = 64;
  artifact.seed = 42;
  artifact.bytes = 1234;
  artifact.sha256 = std::string(64, 'a');
  expect_event_round_trip(artifact, "artifact");
  expect_event_round_trip(ItemFinishedEvent{"r", 1, 42, 1500}, "item_finished");
  expect_event_round_trip(ErrorEvent{"r", 1, "oom", "out of memory", {{"reason", "x"}}}, "error");
  expect_event_round_trip(ErrorEvent{"", std::nullopt, "protocol", "bad", json::object()}, "error");
  expect_event_round_trip(RunFinishedEvent{"r", "succeeded", 3, 4500, {{"device", "cpu"}}},
                          "run_finished");
  expect_event_round_trip(FreedEvent{{{"models", json::object()}}}, "freed");
  expect_event_round_trip(LogEvent{"warning", "careful"}, "log");
  expect_event_round_trip(ByeEvent{}, "bye");
}

TEST(ProtocolMessages, HelloCapabilitiesSurviveTheWire) {
  const json wire = to_json(Event{sample_hello()});
  EXPECT_EQ(wire["capabilities"]["host_budget_bytes"], int64_t{1} << 33);
  EXPECT_EQ(wire["capabilities"]["model_files"]["checkpoints"][1], "xl/base.safetensors");
  const auto hello = std::get<HelloEvent>(parse_event(wire));
  EXPECT_EQ(hello.runner, "dreamforge-runner");
  EXPECT_EQ(hello.capabilities.kind, "comfy");
  EXPECT_EQ(hello.capabilities.model_files.at("checkpoints").size(), 2u);
  EXPECT_TRUE(hello.capabilities.model_files.at("loras").empty());
  EXPECT_EQ(hello.capabilities.object_info["KSampler"]["name"], "KSampler");
  EXPECT_EQ(hello.capabilities.device_budget_bytes, int64_t{1} << 34);
  EXPECT_EQ(hello.capabilities.backend_url, "http://127.0.0.1:8188");
}

TEST(ProtocolMessages, ArtifactsCarryOneOfPathDataOrUrl) {
  for (const char* source : {"path", "data", "url"}) {
    const json wire = {{"type", "artifact"}, {"id", "r"}, {"filename", "a.png"}, {source, "x"}};
    const auto artifact = std::get<ArtifactEvent>(parse_event(wire));
    EXPECT_EQ(artifact.path.empty() + artifact.data.empty() + artifact.url.empty(), 2) << source;
    const json back = to_json(Event{artifact});
    EXPECT_EQ(back.value(source, ""), "x");
    EXPECT_EQ(back.contains("path") + back.contains("data") + back.contains("url"), 1) << back;
  }
  EXPECT_NE(event_error({{"type", "artifact"}, {"id", "r"}}).find("'path', 'data' or 'url'"),
            std::string::npos);
  EXPECT_NE(event_error({{"type", "artifact"}, {"path", "/a.png"}, {"url", "http://h/a.png"}})
                .find("exactly one"),
            std::string::npos);
}

TEST(ProtocolMessages, MissingOptionalEventFieldsKeepTheirDefaults) {
  const auto error = std::get<ErrorEvent>(parse_event({{"type", "error"}}));
  EXPECT_EQ(error.code, "internal");
  EXPECT_FALSE(error.item_index.has_value());
  EXPECT_TRUE(error.details.is_object());
  const auto finished = std::get<RunFinishedEvent>(parse_event({{"type", "run_finished"}, {"id", "r"}}));
  EXPECT_EQ(finished.items_completed, 0);
  EXPECT_TRUE(finished.memory.is_null());
  // Fields the protocol does not list are ignored.
  EXPECT_NO_THROW(parse_event({{"type", "log"}, {"message", "m"}, {"extra", 1}}));
}

TEST(ProtocolMessages, RunWithoutARequiredFieldNamesIt) {
  const json full = to_json(Request{sample_run()});
  for (const char* field : {"id", "graph", "output_dir"}) {
    json message = full;
    message.erase(field);
    const std::string error = request_error(message);
    EXPECT_NE(error.find(std::string("'") + field + "' is required"), std::string::npos) << error;
    EXPECT_NE(error.find("'run'"), std::string::npos) << error;
  }
}

TEST(ProtocolMessages, FieldsOfTheWrongTypeAreNamed) {
  const json run = to_json(Request{sample_run()});
  const std::vector<std::pair<std::string, json>> cases = {
      {"id", 5}, {"output_dir", json::array()}, {"quality", "high"}, {"previews", "yes"},
      {"format", nullptr}, {"items", json::object()}};
  for (const auto& [field, value] : cases) {
    json message = run;
    message[field] = value;
    const std::string error = request_error(message);
    EXPECT_NE(error.find("'" + field + "'"), std::string::npos) << field << ": " << error;
  }
  json graph_list = run;
  graph_list["graph"] = json::array();
  EXPECT_NE(request_error(graph_list).find("'graph' must be an API-format graph"), std::string::npos);

  EXPECT_NE(request_error({{"type", "hello"}, {"protocol", "2"}}).find("'protocol'"), std::string::npos);
  EXPECT_NE(event_error({{"type", "progress"}, {"step", "one"}}).find("'step'"), std::string::npos);
  EXPECT_NE(event_error({{"type", "error"}, {"item_index", "0"}}).find("'item_index'"),
            std::string::npos);
  const std::string nested =
      event_error({{"type", "hello"}, {"capabilities", {{"devices", "cpu"}}}});
  EXPECT_NE(nested.find("'capabilities'"), std::string::npos) << nested;
  EXPECT_NE(nested.find("'devices'"), std::string::npos) << nested;
  EXPECT_NE(event_error({{"type", "hello"}, {"capabilities", 5}}).find("'capabilities'"),
            std::string::npos);
}

TEST(ProtocolMessages, ItemsNeedAnIndexAndANonNegativeSeed) {
  json message = to_json(Request{sample_run()});
  message["items"] = {{{"index", 0}, {"seed", 1}}, {{"index", 1}, {"seed", -3}}};
  std::string error = request_error(message);
  EXPECT_NE(error.find("items[1]"), std::string::npos) << error;
  EXPECT_NE(error.find("'seed' must be a non-negative integer"), std::string::npos) << error;

  for (const json& item : {json{{"seed", 1}}, json{{"index", "0"}}, json(3), json{{"index", 0}, {"seed", 1.5}}}) {
    message["items"] = json::array({item});
    error = request_error(message);
    EXPECT_NE(error.find("items[0]"), std::string::npos) << item.dump() << ": " << error;
  }
}

TEST(ProtocolMessages, CancelNeedsItsRunId) {
  EXPECT_NE(request_error({{"type", "cancel"}}).find("'id' is required"), std::string::npos);
  EXPECT_NE(request_error({{"type", "cancel"}, {"id", 1}}).find("'id'"), std::string::npos);
}

TEST(ProtocolMessages, UnknownTypesAndNonObjectsAreRefused) {
  EXPECT_NE(request_error({{"type", "dance"}}).find("unknown message type 'dance'"), std::string::npos);
  EXPECT_NE(event_error({{"type", "run"}}).find("unknown message type 'run'"), std::string::npos);
  for (const json& message : {json::array({1}), json("hello"), json::object(), json{{"type", 5}}}) {
    EXPECT_NE(request_error(message).find("'type'"), std::string::npos) << message.dump();
    EXPECT_NE(event_error(message).find("'type'"), std::string::npos) << message.dump();
  }
}

TEST(ProtocolMessages, HelloRefusalNamesBothVersions) {
  HelloEvent hello = sample_hello();
  EXPECT_EQ(hello_refusal(hello), "");
  hello.protocol = kProtocolVersion + 1;
  const std::string refusal = hello_refusal(hello);
  EXPECT_NE(refusal.find(std::to_string(kProtocolVersion + 1)), std::string::npos) << refusal;
  EXPECT_NE(refusal.find(std::to_string(kProtocolVersion)), std::string::npos) << refusal;
  hello = sample_hello();
  hello.runner = "";
  EXPECT_NE(hello_refusal(hello), "");
}

TEST(ProtocolMessages, ARunnerRefusesAWorkerOfAnotherVersionNamingBoth) {
  EXPECT_NO_THROW(check_hello_request(HelloRequest{kProtocolVersion}));
  try {
    check_hello_request(HelloRequest{kProtocolVersion + 1});
    FAIL() << "another version was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kProtocol);
    EXPECT_NE(std::string(e.what()).find("version " + std::to_string(kProtocolVersion + 1)), std::string::npos);
    EXPECT_EQ(e.details(), nlohmann::json({{"worker_protocol", kProtocolVersion + 1},
                                           {"runner_protocol", kProtocolVersion}}));
  }
}

}  // namespace
}  // namespace df::runner

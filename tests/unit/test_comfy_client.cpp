// Unit tests for the ComfyUI client against a fake ComfyUI server: each route's request and answer,
// the auth header, and the errors for refusals, broken answers and an unreachable server.
#include <gtest/gtest.h>

#include "backends/comfy_client.h"
#include "core/error.h"
#include "fake_comfy_server.h"

namespace df::backends {
namespace {

using test::FakeComfyServer;

// The error `action` throws (fails the test when it throws none).
Error error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "expected an error";
  return Error(ErrorCode::kInternal, "none");
}

const nlohmann::json kGraph = {{"1", {{"class_type", "KSampler"}, {"inputs", {{"seed", 1}}}}}};

TEST(ComfyClient, SubmitAcceptedSendsPromptClientIdAndExtras) {
  FakeComfyServer server;
  ComfyClient client({server.url(), ""});
  const auto submission = client.submit(kGraph, "client-1", {{"extra_pnginfo", {{"a", 1}}}}, "p-42");
  EXPECT_TRUE(submission.accepted);
  EXPECT_EQ(submission.prompt_id, "p-42");
  EXPECT_EQ(submission.number, 1);
  const auto sent = nlohmann::json::parse(server.last("/prompt").body);
  EXPECT_EQ(sent["prompt"], kGraph);
  EXPECT_EQ(sent["client_id"], "client-1");
  EXPECT_EQ(sent["extra_data"]["extra_pnginfo"]["a"], 1);
  EXPECT_EQ(sent["prompt_id"], "p-42");
  EXPECT_EQ(server.last("/prompt").content_type, "application/json");

  const auto second = client.submit(kGraph, "client-1");
  EXPECT_EQ(second.prompt_id, "prompt-2");
  EXPECT_EQ(second.number, 2);
  const auto plain = nlohmann::json::parse(server.last("/prompt").body);
  EXPECT_FALSE(plain.contains("extra_data"));
  EXPECT_FALSE(plain.contains("prompt_id"));
}

TEST(ComfyClient, SubmitRefusedGivesComfyErrorWithoutThrowing) {
  FakeComfyServer server;
  ComfyClient client({server.url(), ""});
  const nlohmann::json graph = {{"7", {{"class_type", "NoSuchNode"}, {"inputs", nlohmann::json::object()}}}};
  const auto submission = client.submit(graph, "c");
  EXPECT_FALSE(submission.accepted);
  EXPECT_EQ(submission.error["type"], "invalid_prompt");
  EXPECT_EQ(submission.error["message"], "Cannot execute because node NoSuchNode does not exist.");
  EXPECT_TRUE(submission.node_errors.is_object());
}

TEST(ComfyClient, HistoryIsAbsentUntilTheServerHasTheEntry) {
  FakeComfyServer server;
  ComfyClient client({server.url(), ""});
  EXPECT_FALSE(client.history("p-1").has_value());
  const nlohmann::json entry = {{"outputs", {{"9", {{"images", nlohmann::json::array()}}}}},
                                {"status", {{"status_str", "success"}, {"completed", true}}}};
  server.with([&](auto& state) { state.history["p-1"] = entry; });
  const auto found = client.history("p-1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, entry);
  EXPECT_EQ(server.last("/history/p-1").method, "GET");
}

TEST(ComfyClient, ViewGetsTheFileBytesWithAnEncodedQuery) {
  FakeComfyServer server;
  const std::string bytes("\x89PNG\r\n\x1a\n\0binary", 14);
  server.with([&](auto& state) { state.files["output/my dir/a&b.png"] = bytes; });
  ComfyClient client({server.url(), ""});
  EXPECT_EQ(client.view({"a&b.png", "my dir", "output"}), bytes);
  const auto request = server.last("/view");
  EXPECT_EQ(request.target, "/view?filename=a%26b.png&subfolder=my%20dir&type=output");
  EXPECT_EQ(request.query.at("filename"), "a&b.png");
  EXPECT_EQ(error_of([&] { client.view({"missing.png", "", "output"}); }).code(),
            ErrorCode::kNotFound);
}

TEST(ComfyClient, UploadSendsTheMultipartFieldsComfyWants) {
  FakeComfyServer server;
  ComfyClient client({server.url(), ""});
  const std::string bytes("\x89PNG\0\r\n--not-a-boundary", 23);
  const ComfyFile stored = client.upload_image("in.png", bytes, "dreamforge");
  EXPECT_EQ(stored.filename, "stored_in.png");
  EXPECT_EQ(stored.subfolder, "dreamforge");
  EXPECT_EQ(stored.type, "input");
  const auto parts = server.last("/upload/image").parts;
  const auto* image = api::find_part(parts, "image");
  ASSERT_NE(image, nullptr);
  EXPECT_EQ(image->filename, "in.png");
  EXPECT_EQ(image->body, bytes);
  ASSERT_NE(api::find_part(parts, "subfolder"), nullptr);
  EXPECT_EQ(api::find_part(parts, "subfolder")->body, "dreamforge");
  ASSERT_NE(api::find_part(parts, "type"), nullptr);
  EXPECT_EQ(api::find_part(parts, "type")->body, "input");
  ASSERT_NE(api::find_part(parts, "overwrite"), nullptr);
  EXPECT_EQ(api::find_part(parts, "overwrite")->body, "true");

  client.upload_image("say \"hi\" \\ bye.png", "x");
  EXPECT_EQ(api::find_part(server.last("/upload/image").parts, "image")->filename,
            "say \"hi\" \\ bye.png");
  EXPECT_EQ(error_of([&] { client.upload_image("a\r\nb.png", "x"); }).code(),
            ErrorCode::kInvalidArgument);
}

TEST(ComfyClient, InterruptDeleteAndFreeSendComfyBodies) {
  FakeComfyServer server;
  ComfyClient client({server.url(), ""});
  client.interrupt("p-1");
  EXPECT_EQ(nlohmann::json::parse(server.last("/interrupt").body),
            nlohmann::json({{"prompt_id", "p-1"}}));
  client.delete_queued("p-2");
  const auto deleted = server.last("/queue");
  EXPECT_EQ(deleted.method, "POST");
  EXPECT_EQ(nlohmann::json::parse(deleted.body), nlohmann::json({{"delete", {"p-2"}}}));
  client.free_memory();
  EXPECT_EQ(nlohmann::json::parse(server.last("/free").body),
            nlohmann::json({{"unload_models", true}, {"free_memory", true}}));
}

TEST(ComfyClient, QueueNodeInfoModelsAndStats) {
  FakeComfyServer server;
  server.with([](auto& state) {
    state.running = 1;
    state.pending = 2;
  });
  ComfyClient client({server.url(), ""});
  EXPECT_EQ(client.queue()["queue_pending"].size(), 2u);
  EXPECT_EQ(client.queue_remaining(), 3);
  EXPECT_TRUE(client.object_info().contains("KSampler"));
  EXPECT_EQ(client.model_folders(), (std::vector<std::string>{"checkpoints", "loras"}));
  EXPECT_EQ(client.model_files("checkpoints"), (std::vector<std::string>{"sd15.safetensors"}));
  EXPECT_EQ(error_of([&] { client.model_files("nowhere"); }).code(), ErrorCode::kNotFound);
  EXPECT_EQ(client.system_stats()["system"]["comfyui_version"], "0.3.0");
}

TEST(ComfyClient, EveryRequestCarriesTheAuthHeader) {
  FakeComfyServer server;
  ComfyClient client({server.url(), "Authorization:  Bearer xyz "});
  ASSERT_TRUE(client.auth_header().has_value());
  EXPECT_EQ(client.auth_header()->first, "Authorization");
  EXPECT_EQ(client.auth_header()->second, "Bearer xyz");
  client.object_info();
  client.submit(kGraph, "c");
  client.upload_image("a.png", "bytes");
  client.queue_remaining();
  for (const auto& request : server.received()) {
    EXPECT_EQ(request.authorization, "Bearer xyz") << request.target;
  }
  EXPECT_FALSE(ComfyClient({server.url(), ""}).auth_header().has_value());
  EXPECT_EQ(error_of([&] { ComfyClient({server.url(), "Bearer xyz"}); }).code(),
            ErrorCode::kInvalidArgument);
}

TEST(ComfyClient, WebSocketTargetEncodesTheClientId) {
  ComfyClient client({"http://127.0.0.1:1", ""});
  EXPECT_EQ(client.websocket_target("abc-123"), "/ws?clientId=abc-123");
  EXPECT_EQ(client.websocket_target("a b&c"), "/ws?clientId=a%20b%26c");
}

TEST(ComfyClient, UnreachableServerIsUnavailableNamingServerAndRoute) {
  FakeComfyServer server;
  const std::string url = server.url();
  server.stop();
  ComfyClient client({url, "", 2000});
  const Error error = error_of([&] { client.queue_remaining(); });
  EXPECT_EQ(error.code(), ErrorCode::kUnavailable);
  const std::string message = error.what();
  EXPECT_NE(message.find(url + "/queue"), std::string::npos) << message;
  EXPECT_EQ(error_of([&] { client.submit(kGraph, "c"); }).code(), ErrorCode::kUnavailable);
}

TEST(ComfyClient, ServerErrorsAreUnavailableAndNonJsonIsBadRequest) {
  FakeComfyServer server;
  server.with([](auto& state) {
    state.queue_fails = true;
    state.object_info_as_html = true;
  });
  ComfyClient client({server.url(), ""});
  const Error failed = error_of([&] { client.queue(); });
  EXPECT_EQ(failed.code(), ErrorCode::kUnavailable);
  EXPECT_NE(std::string(failed.what()).find("500"), std::string::npos) << failed.what();
  const Error html = error_of([&] { client.object_info(); });
  EXPECT_EQ(html.code(), ErrorCode::kBadRequest);
  EXPECT_NE(std::string(html.what()).find(server.url() + "/object_info"), std::string::npos)
      << html.what();
}

}  // namespace
}  // namespace df::backends

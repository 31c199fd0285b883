// ComfyMessageTranslator: job events become ComfyUI's execution messages in ComfyUI's order.
#include <gtest/gtest.h>

#include <vector>

#include "api/comfy_messages.h"

namespace df::api {
namespace {

using nlohmann::json;

Event event(const std::string& type, json data = json::object(), int64_t time = 1000) {
  Event e;
  e.type = type;
  e.data = std::move(data);
  e.created_ms = time;
  return e;
}

std::vector<std::string> types(const std::vector<json>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m["type"]);
  return out;
}

TEST(ComfyMessages, ASuccessfulRunInComfyUIsOrder) {
  ComfyMessageTranslator t("p1");
  std::vector<json> all;
  for (const auto& e : {event("job_queued"), event("job_started"),
                        event("node_started", {{"node", "4"}, {"class_type", "CheckpointLoaderSimple"}}),
                        event("node_started", {{"node", "3"}, {"class_type", "KSampler"}}),
                        event("progress", {{"step", 1}, {"total_steps", 2}, {"node", "3"}}),
                        event("progress", {{"step", 2}, {"total_steps", 2}, {"node", "3"}}),
                        event("artifact", {{"node", "9"}, {"filename", "a_00001_.png"}, {"subfolder", ""}, {"kind", "output"}}),
                        event("job_finished", {{"status", "succeeded"}}, 2000)}) {
    for (auto& m : t.translate(e)) all.push_back(m);
  }
  EXPECT_EQ(types(all), (std::vector<std::string>{"execution_start", "execution_cached", "executing",
                                                  "executing", "progress", "progress", "executed",
                                                  "execution_success"}));
  EXPECT_EQ(all[1]["data"]["nodes"], json::array());
  EXPECT_EQ(all[3]["data"], (json{{"node", "3"}, {"display_node", "3"}, {"prompt_id", "p1"}}));
  EXPECT_EQ(all[5]["data"], (json{{"value", 2}, {"max", 2}, {"prompt_id", "p1"}, {"node", "3"}}));
  EXPECT_EQ(all[6]["data"]["output"]["images"][0],
            (json{{"filename", "a_00001_.png"}, {"subfolder", ""}, {"type", "output"}}));
  EXPECT_EQ(all[7]["data"], (json{{"prompt_id", "p1"}, {"timestamp", 2000}}));
  EXPECT_TRUE(t.finished());
}

TEST(ComfyMessages, CachedNodesAreAnnouncedOnceBeforeTheFirstNode) {
  ComfyMessageTranslator t("p");
  t.translate(event("job_started"));
  auto cached = t.translate(event("nodes_cached", {{"nodes", {"4", "6"}}}));
  ASSERT_EQ(types(cached), std::vector<std::string>{"execution_cached"});
  EXPECT_EQ(cached[0]["data"]["nodes"], (json{"4", "6"}));
  EXPECT_EQ(types(t.translate(event("node_started", {{"node", "3"}}))), std::vector<std::string>{"executing"});
}

TEST(ComfyMessages, FailureAndInterruptNameTheNodeThatWasRunning) {
  ComfyMessageTranslator failed("p");
  failed.translate(event("job_started"));
  failed.translate(event("node_started", {{"node", "4"}, {"class_type", "CheckpointLoaderSimple"}}));
  failed.translate(event("node_started", {{"node", "3"}, {"class_type", "KSampler"}}));
  auto error = failed.translate(event("job_finished", {{"status", "failed"}, {"error", {{"code", "oom"}, {"message", "out of memory"}}}}));
  ASSERT_EQ(types(error), std::vector<std::string>{"execution_error"});
  EXPECT_EQ(error[0]["data"]["node_id"], "3");
  EXPECT_EQ(error[0]["data"]["node_type"], "KSampler");
  EXPECT_EQ(error[0]["data"]["executed"], (json{"4"}));
  EXPECT_EQ(error[0]["data"]["exception_type"], "oom");
  EXPECT_EQ(error[0]["data"]["exception_message"], "out of memory");

  ComfyMessageTranslator canceled("q");
  auto interrupted = canceled.translate(event("job_finished", {{"status", "canceled"}}));
  ASSERT_EQ(types(interrupted), std::vector<std::string>{"execution_interrupted"});
  EXPECT_EQ(interrupted[0]["data"]["node_id"], "");  // a string always, as ComfyUI sends it
}

TEST(ComfyMessages, AFailureBeforeAnyNodeHasEveryFieldTheFrontendRequires) {
  ComfyMessageTranslator failed("p");
  failed.translate(event("job_started"));
  auto error = failed.translate(event("job_finished", {{"status", "failed"},
                                                       {"error", {{"code", "runner_crashed"},
                                                                  {"message", "it died"}}}}));
  ASSERT_EQ(types(error), std::vector<std::string>{"execution_error"});
  const json& data = error[0]["data"];
  for (const char* field : {"node_id", "node_type", "exception_message", "exception_type"}) {
    EXPECT_TRUE(data[field].is_string()) << field;
  }
  EXPECT_EQ(data["traceback"], json::array());
  EXPECT_EQ(data["executed"], json::array());
  EXPECT_EQ(data["exception_type"], "runner_crashed");

  // A node can fail before it starts (its fingerprint reads its file): the error names it.
  ComfyMessageTranslator named("q");
  auto named_error = named.translate(event(
      "job_finished", {{"status", "failed"},
                       {"error", {{"code", "corrupt_file"}, {"message", "bad PNG"},
                                  {"details", {{"node_id", "10"}, {"node_type", "LoadImage"}}}}}}));
  EXPECT_EQ(named_error[0]["data"]["node_id"], "10");
  EXPECT_EQ(named_error[0]["data"]["node_type"], "LoadImage");
}

}  // namespace
}  // namespace df::api

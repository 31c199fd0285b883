// Tests of the mapping from ComfyUI's error shapes to Dream Forge's error codes and messages.
#include <gtest/gtest.h>

#include "backends/comfy_errors.h"

namespace df::backends {
namespace {

using nlohmann::json;

const std::string kUrl = "http://127.0.0.1:8188";

json value_not_in_list(const std::string& input, const std::string& value) {
  return {{"type", "value_not_in_list"},
          {"message", "Value not in list"},
          {"details", input + ": '" + value + "' not in ['a.safetensors']"},
          {"extra_info", {{"input_name", input}, {"input_config", nullptr}, {"received_value", value}}}};
}

const json kFailedValidation = {{"type", "prompt_outputs_failed_validation"},
                                {"message", "Prompt outputs failed validation"},
                                {"details", ""},
                                {"extra_info", json::object()}};

TEST(ComfyErrors, MissingNodeTypeNamesTheBackendAndTheType) {
  const json error = {{"type", "missing_node_type"},
                      {"message", "Node 'FancyNode' not found. The custom node may not be installed."},
                      {"details", "Node ID '#7'"},
                      {"extra_info", {{"node_id", "7"}, {"class_type", "FancyNode"}, {"node_title", "FancyNode"}}}};
  const Error mapped = prompt_refusal(error, json::object(), kUrl);
  EXPECT_EQ(mapped.code(), ErrorCode::kInvalidArgument);
  EXPECT_STREQ(mapped.what(), "the backend http://127.0.0.1:8188 has no node type 'FancyNode' (node 7)");
  EXPECT_EQ(mapped.details()["error"], error);
  EXPECT_EQ(mapped.details()["backend"], kUrl);
}

TEST(ComfyErrors, MissingModelFileIsModelNotFound) {
  const json node_errors = {{"4",
                             {{"errors", json::array({value_not_in_list("ckpt_name", "sdxl.safetensors")})},
                              {"dependent_outputs", json::array({"9"})},
                              {"class_type", "CheckpointLoaderSimple"}}}};
  const Error mapped = prompt_refusal(kFailedValidation, node_errors, kUrl);
  EXPECT_EQ(mapped.code(), ErrorCode::kModelNotFound);
  EXPECT_STREQ(mapped.what(),
               "the backend http://127.0.0.1:8188 refused the graph: node 4 (CheckpointLoaderSimple): the "
               "backend http://127.0.0.1:8188 has no model file 'sdxl.safetensors' for ckpt_name");
  EXPECT_EQ(mapped.details()["node_errors"], node_errors);
}

TEST(ComfyErrors, AnyOtherNodeErrorMakesItValidation) {
  const json node_errors = {
      {"4", {{"errors", json::array({value_not_in_list("ckpt_name", "sdxl.safetensors")})}, {"class_type", "CheckpointLoaderSimple"}}},
      {"3", {{"errors", json::array({value_not_in_list("sampler_name", "fancy")})}, {"class_type", "KSampler"}}}};
  const Error mapped = prompt_refusal(kFailedValidation, node_errors, kUrl);
  EXPECT_EQ(mapped.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(mapped.what()).find("node 3 (KSampler): Value not in list (sampler_name: 'fancy' not in"),
            std::string::npos)
      << mapped.what();
}

TEST(ComfyErrors, InvalidPromptWithoutNodeErrorsKeepsComfyMessage) {
  const json error = {{"type", "invalid_prompt"}, {"message", "Prompt has no outputs"}, {"details", ""},
                      {"extra_info", json::object()}};
  const Error mapped = prompt_refusal(error, json::object(), kUrl);
  EXPECT_EQ(mapped.code(), ErrorCode::kInvalidArgument);
  EXPECT_STREQ(mapped.what(), "the backend http://127.0.0.1:8188 refused the graph: Prompt has no outputs");
}

TEST(ComfyErrors, OutOfMemoryExceptionsAreOom) {
  for (const char* type : {"torch.OutOfMemoryError", "torch.cuda.OutOfMemoryError"}) {
    const json data = {{"prompt_id", "p"}, {"node_id", "3"}, {"node_type", "KSampler"},
                       {"exception_type", type},
                       {"exception_message", "Allocation on device \n"}, {"traceback", json::array()}};
    const Error mapped = execution_error(data);
    EXPECT_EQ(mapped.code(), ErrorCode::kOutOfMemory) << type;
    EXPECT_STREQ(mapped.what(), "the backend ran out of memory in node 3 (KSampler): Allocation on device");
    EXPECT_EQ(mapped.details()["node_id"], "3");
    EXPECT_EQ(mapped.details()["exception_type"], type);
  }
}

TEST(ComfyErrors, OtherExceptionsAreInternalWithTheNode) {
  const json data = {{"node_id", "8"}, {"node_type", "VAEDecode"}, {"exception_type", "RuntimeError"},
                     {"exception_message", "shapes do not match\n"}};
  const Error mapped = execution_error(data);
  EXPECT_EQ(mapped.code(), ErrorCode::kInternal);
  EXPECT_STREQ(mapped.what(), "node 8 (VAEDecode) failed on the backend: RuntimeError: shapes do not match");
  EXPECT_EQ(mapped.details()["node_type"], "VAEDecode");
  EXPECT_EQ(mapped.details()["exception_message"], "shapes do not match");
}

TEST(ComfyErrors, InterruptionIsCanceled) {
  const Error mapped = execution_interrupted({{"node_id", "3"}, {"node_type", "KSampler"}, {"executed", json::array()}});
  EXPECT_EQ(mapped.code(), ErrorCode::kCanceled);
  EXPECT_STREQ(mapped.what(), "canceled on the backend at node 3 (KSampler)");
}

TEST(ComfyErrors, UnavailableNamesTheBackend) {
  const Error mapped = backend_unavailable(kUrl, "connection refused");
  EXPECT_EQ(mapped.code(), ErrorCode::kUnavailable);
  EXPECT_STREQ(mapped.what(), "the backend http://127.0.0.1:8188 is not answering: connection refused");
}

TEST(ComfyErrors, HistoryEntriesReportTheirError) {
  const json failed = {{"status",
                        {{"status_str", "error"}, {"completed", false},
                         {"messages", json::array({json::array({"execution_start", {{"prompt_id", "p"}}}),
                                                   json::array({"execution_error",
                                                                {{"node_id", "3"}, {"node_type", "KSampler"},
                                                                 {"exception_type", "torch.OutOfMemoryError"},
                                                                 {"exception_message", "oom"}}})})}}}};
  const auto error = history_error(failed);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code(), ErrorCode::kOutOfMemory);

  const json interrupted = {{"status", {{"messages", json::array({json::array({"execution_interrupted", json::object()})})}}}};
  ASSERT_TRUE(history_error(interrupted));
  EXPECT_EQ(history_error(interrupted)->code(), ErrorCode::kCanceled);

  const json succeeded = {{"status", {{"status_str", "success"}, {"completed", true},
                                      {"messages", json::array({json::array({"execution_success", json::object()})})}}}};
  EXPECT_FALSE(history_error(succeeded));
  EXPECT_FALSE(history_error(json::object()));
}

}  // namespace
}  // namespace df::backends

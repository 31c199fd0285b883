// Unit tests for the graph executor: order, output cache across runs, events, errors, cancel.
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>

#include "graph/executor.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using graph_test::expect_error;
using nlohmann::json;

using NodeBody = std::function<std::vector<Value>(const NodeInputs&, NodeContext&)>;

// A test double: runs `body` and records the node id in a shared log.
class FakeNode : public NodeImpl {
 public:
  FakeNode(NodeBody body, std::function<std::optional<std::string>()> fingerprint,
           std::vector<std::string>& log)
      : body_(std::move(body)), fingerprint_(std::move(fingerprint)), log_(log) {}

  std::vector<Value> execute(const NodeInputs& inputs, NodeContext& ctx) override {
    log_.push_back(inputs.node_id());
    return body_(inputs, ctx);
  }
  std::optional<std::string> fingerprint(const NodeInputs&) const override {
    return fingerprint_ ? fingerprint_() : std::nullopt;
  }

 private:
  NodeBody body_;
  std::function<std::optional<std::string>()> fingerprint_;
  std::vector<std::string>& log_;
};

Value text(const std::string& type, std::string s) { return Value::of(type, std::move(s)); }

// Records observer calls as short strings.
class RecordingObserver : public ExecutionObserver {
 public:
  void on_execution_start() override { events.push_back("start"); }
  void on_node_cached(const std::vector<std::string>& ids) override {
    std::string joined;
    for (const auto& id : ids) joined += (joined.empty() ? "" : ",") + id;
    events.push_back("cached:" + joined);
  }
  void on_node_executing(const std::string& id) override { events.push_back("executing:" + id); }
  void on_node_executed(const std::string& id, const json& ui) override {
    events.push_back("executed:" + id + ":" + ui.dump());
  }
  void on_progress(const std::string& id, int64_t value, int64_t max) override {
    events.push_back("progress:" + id + ":" + std::to_string(value) + "/" + std::to_string(max));
  }
  std::vector<std::string> events;
};

class GraphExecutor : public ::testing::Test {
 protected:
  GraphExecutor() {
    add("CheckpointLoaderSimple", [](const NodeInputs& in, NodeContext&) {
      const std::string name = in.get_string("ckpt_name");
      return std::vector<Value>{text("MODEL", "model:" + name), text("CLIP", "clip:" + name),
                                text("VAE", "vae:" + name)};
    });
    add("CLIPTextEncode", [](const NodeInputs& in, NodeContext&) {
      return std::vector<Value>{text("CONDITIONING", "cond(" + in.get<std::string>("clip") + "," +
                                                         in.get_string("text") + ")")};
    });
    add("EmptyLatentImage", [](const NodeInputs& in, NodeContext&) {
      return std::vector<Value>{text("LATENT", "latent(" + std::to_string(in.get_int("width")) +
                                                   "x" + std::to_string(in.get_int("height")) +
                                                   ")")};
    });
    add("KSampler", [](const NodeInputs& in, NodeContext& ctx) {
      const int64_t steps = in.get_int("steps");
      for (int64_t step = 1; step <= steps; ++step) ctx.report_progress(step, steps);
      return std::vector<Value>{
          text("LATENT", "sampled(" + in.get<std::string>("model") + "," +
                             in.get<std::string>("positive") + "," +
                             in.get<std::string>("negative") + "," +
                             in.get<std::string>("latent_image") +
                             ",seed=" + std::to_string(in.get_uint("seed")) + ")")};
    });
    add("VAEDecode", [](const NodeInputs& in, NodeContext&) {
      return std::vector<Value>{
          text("IMAGE", "image(" + in.get<std::string>("samples") + ")")};
    });
    add("SaveImage", [this](const NodeInputs& in, NodeContext& ctx) {
      saved.push_back(in.get<std::string>("images"));
      ctx.ui_output() = {{"images",
                          {{{"filename", in.get_string("filename_prefix") + "_" +
                                             std::to_string(saved.size()) + "_.png"},
                            {"subfolder", ""},
                            {"type", "output"}}}}};
      return std::vector<Value>{};
    });
    // Steps 2 keeps progress output short.
    prompt["3"]["inputs"]["steps"] = 2;
  }

  void add(const std::string& class_type, NodeBody body,
           std::function<std::optional<std::string>()> fingerprint = {}) {
    registry.add(class_type, [this, body, fingerprint] {
      return std::make_unique<FakeNode>(body, fingerprint, log);
    });
  }

  RunResult run(const json& p, const RunOptions& options = {}) {
    log.clear();
    observer.events.clear();
    return executor.run(parse_workflow(p), {"9"}, observer, options);
  }

  NodeImplRegistry registry;
  Executor executor{registry};
  RecordingObserver observer;
  std::vector<std::string> log;
  std::vector<std::string> saved;
  json prompt = graph_test::legacy_sd15();
};

using Ids = std::vector<std::string>;

TEST_F(GraphExecutor, RunsEveryNodeOnceInAFriendlyDependencyOrder) {
  const RunResult result = run(prompt);
  // 4 first (two links from the output), then 5, 6, 7 by id, then the chain to the output.
  EXPECT_EQ(result.executed, (Ids{"4", "5", "6", "7", "3", "8", "9"}));
  EXPECT_EQ(log, result.executed);
  EXPECT_TRUE(result.cached.empty());
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_EQ(saved[0],
            "image(sampled(model:v1-5-pruned-emaonly-fp16.safetensors,"
            "cond(clip:v1-5-pruned-emaonly-fp16.safetensors,beautiful scenery nature glass bottle "
            "landscape, , purple galaxy bottle,),"
            "cond(clip:v1-5-pruned-emaonly-fp16.safetensors,text, watermark),"
            "latent(512x512),seed=156680208700286))");
  EXPECT_EQ(result.outputs, json::parse(R"({"9": {"images": [
    {"filename": "ComfyUI_1_.png", "subfolder": "", "type": "output"}]}})"));
}

TEST_F(GraphExecutor, ReportsEventsInOrder) {
  run(prompt);
  EXPECT_EQ(observer.events,
            (Ids{"start", "cached:", "executing:4", "executing:5", "executing:6", "executing:7",
                 "executing:3", "progress:3:1/2", "progress:3:2/2", "executing:8", "executing:9",
                 R"(executed:9:{"images":[{"filename":"ComfyUI_1_.png",)"
                 R"("subfolder":"","type":"output"}]})"}));
}

TEST_F(GraphExecutor, IdenticalRunReusesEverythingButTheOutput) {
  run(prompt);
  const RunResult again = run(prompt);
  EXPECT_EQ(again.cached, (Ids{"3", "4", "5", "6", "7", "8"}));
  EXPECT_EQ(again.executed, Ids{"9"});
  EXPECT_EQ(observer.events[1], "cached:3,4,5,6,7,8");
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[1], saved[0]);
  EXPECT_EQ(again.outputs["9"]["images"][0]["filename"], "ComfyUI_2_.png");
  EXPECT_EQ(executor.cached_output_count(), 6u);
}

TEST_F(GraphExecutor, ChangingTheSeedReRunsOnlyTheSamplerAndDownstream) {
  run(prompt);
  prompt["3"]["inputs"]["seed"] = 5;
  const RunResult result = run(prompt);
  EXPECT_EQ(result.executed, (Ids{"3", "8", "9"}));
  EXPECT_EQ(result.cached, (Ids{"4", "5", "6", "7"}));
  EXPECT_NE(saved[1].find("seed=5"), std::string::npos);
}

TEST_F(GraphExecutor, ChangingAPromptReRunsItsEncoderAndDownstream) {
  run(prompt);
  prompt["7"]["inputs"]["text"] = "blurry";
  EXPECT_EQ(run(prompt).executed, (Ids{"7", "3", "8", "9"}));
}

TEST_F(GraphExecutor, NodeIdsDoNotMatterForTheCache) {
  run(prompt);
  json renumbered = json::object();
  for (auto& [id, node] : prompt.items()) {
    json copy = node;
    for (auto& [name, value] : copy["inputs"].items()) {
      if (value.is_array()) value[0] = "1" + value[0].get<std::string>();
    }
    renumbered["1" + id] = copy;
  }
  log.clear();
  const RunResult result = executor.run(parse_workflow(renumbered), {"19"}, observer);
  EXPECT_EQ(result.executed, Ids{"19"});
  EXPECT_EQ(result.cached.size(), 6u);
}

TEST_F(GraphExecutor, OnlyTheLatestRunIsKept) {
  run(prompt);
  json other = prompt;
  other["3"]["inputs"]["seed"] = 1;
  run(other);
  EXPECT_EQ(run(prompt).executed, (Ids{"3", "8", "9"}));  // the first sampler output was dropped
  executor.clear();
  EXPECT_EQ(executor.cached_output_count(), 0u);
  EXPECT_EQ(run(prompt).executed.size(), 7u);
}

TEST_F(GraphExecutor, FingerprintChangesInvalidateTheCache) {
  std::string file_hash = "aaa";
  add("LoadImage",
      [](const NodeInputs& in, NodeContext&) {
        return std::vector<Value>{text("IMAGE", "pixels:" + in.get_string("image")),
                                  text("MASK", "mask")};
      },
      [&file_hash]() -> std::optional<std::string> { return file_hash; });
  prompt["10"] = {{"class_type", "LoadImage"}, {"inputs", {{"image", "cat.png"}}}};
  prompt["9"]["inputs"]["images"] = {"10", 0};
  run(prompt);
  EXPECT_EQ(run(prompt).executed, Ids{"9"});
  file_hash = "bbb";
  EXPECT_EQ(run(prompt).executed, (Ids{"10", "9"}));
}

TEST_F(GraphExecutor, FailingFingerprintMeansAlwaysRun) {
  add("LoadImage",
      [](const NodeInputs&, NodeContext&) {
        return std::vector<Value>{text("IMAGE", "pixels"), text("MASK", "mask")};
      },
      []() -> std::optional<std::string> { throw std::runtime_error("unreadable"); });
  prompt["10"] = {{"class_type", "LoadImage"}, {"inputs", {{"image", "cat.png"}}}};
  prompt["9"]["inputs"]["images"] = {"10", 0};
  run(prompt);
  EXPECT_EQ(run(prompt).executed, (Ids{"10", "9"}));
}

TEST_F(GraphExecutor, UnreachableNodesAreNotRun) {
  prompt["20"] = {{"class_type", "NotImplementedAnywhere"}, {"inputs", json::object()}};
  prompt["21"] = {{"class_type", "EmptyLatentImage"}, {"inputs", {{"width", 8}, {"height", 8}}}};
  EXPECT_EQ(run(prompt).executed.size(), 7u);
}

TEST_F(GraphExecutor, CancelBetweenNodesKeepsFinishedOutputs) {
  int checks = 0;
  RunOptions options;
  options.is_canceled = [&checks] { return ++checks > 3; };  // before the 4th node
  const Error e = expect_error([&] { run(prompt, options); }, ErrorCode::kCanceled);
  EXPECT_EQ(e.details()["node_id"], "7");
  EXPECT_EQ(log, (Ids{"4", "5", "6"}));
  EXPECT_EQ(run(prompt).executed, (Ids{"7", "3", "8", "9"}));
}

TEST_F(GraphExecutor, CancelDuringProgress) {
  bool cancel = false;
  add("Slow", [&cancel](const NodeInputs&, NodeContext& ctx) {
    ctx.report_progress(1, 3);
    cancel = true;
    ctx.report_progress(2, 3);
    return std::vector<Value>{text("LATENT", "never")};
  });
  prompt["3"]["class_type"] = "Slow";
  RunOptions options;
  options.is_canceled = [&cancel] { return cancel; };
  const Error e = expect_error([&] { run(prompt, options); }, ErrorCode::kCanceled);
  EXPECT_EQ(e.details()["node_id"], "3");
  EXPECT_EQ(e.details()["node_type"], "Slow");
  EXPECT_EQ(observer.events.back(), "progress:3:2/3");
}

TEST_F(GraphExecutor, NodeErrorsNameTheNode) {
  add("Failing", [](const NodeInputs&, NodeContext&) -> std::vector<Value> {
    throw Error(ErrorCode::kOutOfMemory, "not enough memory", {{"needed_bytes", 42}});
  });
  prompt["8"]["class_type"] = "Failing";
  Error e = expect_error([&] { run(prompt); }, ErrorCode::kOutOfMemory);
  EXPECT_STREQ(e.what(), "not enough memory");
  EXPECT_EQ(e.details(),
            json::parse(R"({"needed_bytes": 42, "node_id": "8", "node_type": "Failing"})"));
  // The nodes that finished stay cached.
  prompt["8"]["class_type"] = "VAEDecode";
  EXPECT_EQ(run(prompt).executed, (Ids{"8", "9"}));
}

TEST_F(GraphExecutor, ForeignExceptionsBecomeInternalErrors) {
  add("Throwing", [](const NodeInputs&, NodeContext&) -> std::vector<Value> {
    throw std::out_of_range("index 7");
  });
  prompt["5"]["class_type"] = "Throwing";
  const Error e = expect_error([&] { run(prompt); }, ErrorCode::kInternal);
  EXPECT_STREQ(e.what(), "index 7");
  EXPECT_EQ(e.details()["node_id"], "5");
}

TEST_F(GraphExecutor, TheRunnerDescribesForeignExceptions) {
  add("Throwing", [](const NodeInputs&, NodeContext&) -> std::vector<Value> {
    throw std::bad_alloc();
  });
  prompt["5"]["class_type"] = "Throwing";
  RunOptions options;
  options.describe_failure = [](const std::exception& e) {
    return Error(ErrorCode::kOutOfMemory, "out of host memory", {{"reason", "refused"}});
  };
  const Error e = expect_error([&] { run(prompt, options); }, ErrorCode::kOutOfMemory);
  EXPECT_STREQ(e.what(), "out of host memory");
  EXPECT_EQ(e.details(),
            json::parse(R"({"reason": "refused", "node_id": "5", "node_type": "Throwing"})"));
}

TEST_F(GraphExecutor, MissingImplementationIsUnsupported) {
  prompt["5"]["class_type"] = "EmptyHunyuanLatentVideo";
  const Error e = expect_error([&] { run(prompt); }, ErrorCode::kUnsupported);
  EXPECT_EQ(e.details()["node_id"], "5");
  EXPECT_TRUE(log.empty());
}

TEST_F(GraphExecutor, RejectsWorkflowsThatWouldNotValidate) {
  prompt["3"]["inputs"]["latent_image"] = {"8", 0};
  expect_error([&] { run(prompt); }, ErrorCode::kInvalidArgument);
  prompt = graph_test::legacy_sd15();
  prompt["3"]["inputs"]["latent_image"] = {"50", 0};
  expect_error([&] { run(prompt); }, ErrorCode::kInvalidArgument);
  prompt = graph_test::legacy_sd15();
  prompt["8"]["inputs"]["vae"] = {"4", 7};
  const Error e = expect_error([&] { run(prompt); }, ErrorCode::kInternal);
  EXPECT_EQ(e.details()["node_id"], "8");
}

TEST_F(GraphExecutor, NodesSeeThePromptAndExtraPngInfo) {
  json seen_prompt;
  json seen_info;
  add("Inspect", [&](const NodeInputs&, NodeContext& ctx) {
    seen_prompt = ctx.prompt();
    seen_info = ctx.extra_pnginfo();
    return std::vector<Value>{};
  });
  prompt["9"]["class_type"] = "Inspect";
  RunOptions options;
  options.extra_pnginfo = {{"workflow", {{"id", "abc"}}}};
  run(prompt, options);
  EXPECT_EQ(seen_prompt, prompt);
  EXPECT_EQ(seen_info, options.extra_pnginfo);
}

TEST(GraphNodeInputs, ConvertsConstantsLikeComfyUI) {
  NodeInputs in("3", "KSampler");
  in.set_constant("steps", "20");
  in.set_constant("seed", json::parse("18446744073709551615"));
  in.set_constant("cfg", 7);
  in.set_constant("name", 5);
  in.set_linked("model", Value::of("MODEL", std::string("unet")));
  EXPECT_EQ(in.get_int("steps"), 20);
  EXPECT_EQ(in.get_uint("seed"), 18446744073709551615ull);
  EXPECT_DOUBLE_EQ(in.get_float("cfg"), 7.0);
  EXPECT_EQ(in.get_string("name"), "5");
  EXPECT_TRUE(in.has("model"));
  EXPECT_TRUE(in.is_linked("model"));
  EXPECT_EQ(in.get<std::string>("model"), "unet");
  EXPECT_EQ(in.linked("model").type(), "MODEL");
  EXPECT_FALSE(in.has("denoise"));
}

TEST(GraphNodeInputs, ExplainsWrongUse) {
  NodeInputs in("3", "KSampler");
  in.set_constant("steps", "many");
  in.set_constant("seed", -1);
  in.set_linked("model", Value::of("MODEL", 42));
  auto e = expect_error([&] { in.get_int("steps"); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(),
               "Node '3' (KSampler): input 'steps' is not an integer: invalid literal for int() "
               "with base 10: 'many'");
  EXPECT_EQ(e.details()["input_name"], "steps");
  e = expect_error([&] { in.get_uint("seed"); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(),
               "Node '3' (KSampler): input 'seed' = -1 is out of range (0 to "
               "18446744073709551615)");
  e = expect_error([&] { in.get_float("denoise"); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "Node '3' (KSampler): input 'denoise' is missing");
  e = expect_error([&] { in.get_int("model"); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(),
               "Node '3' (KSampler): input 'model' is linked to another node, a value was "
               "expected");
  expect_error([&] { in.get<std::string>("steps"); }, ErrorCode::kInvalidArgument);
  expect_error([&] { in.get<std::string>("model"); }, ErrorCode::kInternal);
}

}  // namespace
}  // namespace df::graph

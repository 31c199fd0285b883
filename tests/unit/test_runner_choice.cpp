// The choice of runner for a claimed job: the claimer, an idle peer, a wait, or a failure.
#include <gtest/gtest.h>

#include "worker/runner_choice.h"

namespace df::worker {
namespace {

using Action = RunnerChoice::Action;

gpu::RunnerState runner(const std::string& worker_id, const std::string& runner_id,
                        const std::string& state = "idle", int queue_remaining = 0,
                        std::vector<std::string> models = {}) {
  gpu::RunnerState r;
  r.worker_id = worker_id;
  r.runner_id = runner_id;
  r.device = runner_id == "native" ? "cuda:0" : "backend";
  r.state = state;
  r.queue_remaining = queue_remaining;
  r.models = std::move(models);
  return r;
}

RunnerChoiceInput input(std::vector<std::string> candidates, std::string claimer,
                        std::vector<gpu::RunnerState> roster) {
  return {std::move(candidates), std::move(claimer), std::move(roster), {}, {}};
}

TEST(JobRunners, TheSpecsRunnersElseNative) {
  Job job;
  EXPECT_EQ(job_runners(job), std::vector<std::string>({"native"})) << "older and /v1 jobs";
  job.spec = {{"runners", {"backend:a", "native"}}};
  EXPECT_EQ(job_runners(job), std::vector<std::string>({"backend:a", "native"}));
  job.spec = {{"runners", nlohmann::json::array()}};
  EXPECT_TRUE(job_runners(job).empty());
}

TEST(RunnerChoice, ACapableClaimerWithNoBetterIdlePeerKeepsTheJob) {
  const auto choice = choose_runner(input({"native"}, "w0",
                                          {runner("w0", "native"), runner("w1", "native")}));
  EXPECT_EQ(choice.action, Action::kRunHere);
}

TEST(RunnerChoice, AnIncapableClaimerHandsTheJobToAnIdleCapablePeer) {
  const auto choice = choose_runner(input({"backend:a"}, "w0",
                                          {runner("w0", "native"), runner("b0", "backend:a")}));
  EXPECT_EQ(choice.action, Action::kHandOver);
  EXPECT_EQ(choice.worker_id, "b0");
}

TEST(RunnerChoice, NativeGoesFirstWhenTheJobListsItFirstAndBackendsWhenTheyComeFirst) {
  const std::vector<gpu::RunnerState> roster = {runner("b0", "backend:a"), runner("w0", "native")};
  auto choice = choose_runner(input({"native", "backend:a"}, "b0", roster));
  EXPECT_EQ(choice.action, Action::kHandOver);
  EXPECT_EQ(choice.worker_id, "w0");
  EXPECT_EQ(choose_runner(input({"native", "backend:a"}, "w0", roster)).action, Action::kRunHere);
  choice = choose_runner(input({"backend:a", "native"}, "w0", roster));
  EXPECT_EQ(choice.action, Action::kHandOver);
  EXPECT_EQ(choice.worker_id, "b0");
}

TEST(RunnerChoice, ABusyPreferredRunnerLeavesTheJobToAnIdleLessPreferredOne) {
  const auto choice = choose_runner(input(
      {"native", "backend:a"}, "b0", {runner("w0", "native", "busy"), runner("b0", "backend:a")}));
  EXPECT_EQ(choice.action, Action::kRunHere);
}

TEST(RunnerChoice, AmongIdleBackendsTheShortestOwnQueueWins) {
  const std::vector<gpu::RunnerState> roster = {runner("b0", "backend:a", "idle", 4),
                                                runner("b1", "backend:b", "idle", 1),
                                                runner("b2", "backend:c", "idle", 2)};
  auto choice = choose_runner(input({"backend:a", "backend:b", "backend:c"}, "b0", roster));
  EXPECT_EQ(choice.action, Action::kHandOver);
  EXPECT_EQ(choice.worker_id, "b1");
  EXPECT_EQ(choose_runner(input({"backend:a", "backend:b", "backend:c"}, "b1", roster)).action,
            Action::kRunHere);
}

TEST(RunnerChoice, EqualQueuesFollowTheJobsOrderAndTheClaimerKeepsATie) {
  const std::vector<gpu::RunnerState> roster = {runner("b0", "backend:a"), runner("b1", "backend:b"),
                                                runner("b2", "backend:b")};
  auto choice = choose_runner(input({"backend:b", "backend:a"}, "b0", roster));
  EXPECT_EQ(choice.action, Action::kHandOver);
  EXPECT_EQ(choice.worker_id, "b1");
  EXPECT_EQ(choose_runner(input({"backend:b", "backend:a"}, "b2", roster)).action,
            Action::kRunHere) << "two instances of one backend are equal: the claimer keeps it";
}

TEST(RunnerChoice, AnIdleWarmNativePeerIsPreferredUnlessTheClaimerIsWarmToo) {
  const std::vector<gpu::RunnerState> roster = {
      runner("w0", "native", "idle", 0, {"sd15.safetensors"}),
      runner("w1", "native", "busy", 0, {"sdxl.safetensors"}),
      runner("w2", "native", "idle", 0, {"sdxl.safetensors"}),
      runner("w3", "native", "out_of_rotation", 0, {"sdxl.safetensors"})};
  auto warm = input({"native"}, "w0", roster);
  warm.checkpoints = {"sdxl.safetensors"};
  auto choice = choose_runner(warm);
  EXPECT_EQ(choice.action, Action::kHandOver);
  EXPECT_EQ(choice.worker_id, "w2");
  warm.claimer = "w2";
  EXPECT_EQ(choose_runner(warm).action, Action::kRunHere) << "already warm here";
  warm.claimer = "w0";
  warm.checkpoints = {"flux.safetensors"};
  EXPECT_EQ(choose_runner(warm).action, Action::kRunHere) << "warm nowhere";
  warm.checkpoints = {"sdxl.safetensors"};
  warm.roster = {roster[0], roster[1], roster[3]};
  EXPECT_EQ(choose_runner(warm).action, Action::kRunHere)
      << "busy and out-of-rotation runners take nothing";
}

TEST(RunnerChoice, AnIncapableClaimerWaitsWhileEveryCapableRunnerIsBusy) {
  const auto choice = choose_runner(input(
      {"backend:a"}, "w0", {runner("w0", "native"), runner("b0", "backend:a", "busy")}));
  EXPECT_EQ(choice.action, Action::kWait);
  EXPECT_NE(choice.reason.find("busy"), std::string::npos) << choice.reason;
}

TEST(RunnerChoice, ABackendThatDoesNotAnswerTakesNothingAndTheJobWaits) {
  auto down = input({"backend:a"}, "w0", {runner("w0", "native"), runner("b0", "backend:a")});
  down.down = {"backend:a"};
  auto choice = choose_runner(down);
  EXPECT_EQ(choice.action, Action::kWait);
  EXPECT_NE(choice.reason.find("does not answer"), std::string::npos) << choice.reason;
  down.claimer = "b0";
  EXPECT_EQ(choose_runner(down).action, Action::kWait) << "not even its own claim";
}

TEST(RunnerChoice, RunnersUnknownToThisProcessMeanWaitingForAnotherOne) {
  auto choice = choose_runner(input({"backend:elsewhere"}, "w0", {runner("w0", "native")}));
  EXPECT_EQ(choice.action, Action::kWait);
  EXPECT_NE(choice.reason.find("elsewhere"), std::string::npos) << choice.reason;
  choice = choose_runner(input({"native"}, "b0", {runner("b0", "backend:a"),
                                                   runner("w0", "native", "out_of_rotation")}));
  EXPECT_EQ(choice.action, Action::kWait) << "a front with backends and no working native runner";
  EXPECT_NE(choice.reason.find("none runs in this service process"), std::string::npos)
      << choice.reason;
}

TEST(RunnerChoice, AJobThatNamesNoRunnerFailsAtOnce) {
  const auto choice = choose_runner(input({}, "w0", {runner("w0", "native")}));
  EXPECT_EQ(choice.action, Action::kFail);
  EXPECT_NE(choice.reason.find("No runner can run this job"), std::string::npos) << choice.reason;
}

TEST(RunnerChoice, BackendRunnerIds) {
  EXPECT_TRUE(is_backend_runner("backend:a"));
  EXPECT_FALSE(is_backend_runner("native"));
}

}  // namespace
}  // namespace df::worker

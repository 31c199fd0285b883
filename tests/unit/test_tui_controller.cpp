// Unit tests for the terminal client's keys: editing, submitting, selecting, cancel, screens.
#include <gtest/gtest.h>

#include "tui/curses_include.h"

#include "tui/controller.h"

namespace df::tui {
namespace {

KeyPress character(int code) { return {code, false}; }
KeyPress function(int code) { return {code, true}; }

class TuiController : public ::testing::Test {
 protected:
  void SetUp() override {
    state_.on_reply(pixels::ListModelsRequest{},
                    {{"type", "model_list"},
                     {"models", {{{"name", "tiny"}, {"path", "/t"}, {"model_type", "checkpoint"},
                                  {"size_mb", 1}},
                                 {{"name", "xl"}, {"path", "/x"}, {"model_type", "checkpoint"},
                                  {"size_mb", 2}}}}});
    form_.set_models(state_.checkpoint_names());
  }

  void type(const std::string& text) {
    for (const char c : text) EXPECT_TRUE(controller_.handle(character(c)));
  }

  void add_job(const std::string& id, const std::string& status_update) {
    state_.on_update({{"type", "job_started"}, {"job_id", id}, {"timestamp", 1}});
    if (status_update == "job_complete") {
      state_.on_update({{"type", "job_complete"}, {"job_id", id}, {"image_path", "/" + id + ".png"},
                        {"duration_s", 1}});
    }
  }

  ClientState state_;
  PromptForm form_;
  std::vector<pixels::Request> sent_;
  Controller controller_{form_, state_, [this](pixels::Request r) { sent_.push_back(r); }};
};

TEST_F(TuiController, TypingThenEnterSubmitsTheGenerate) {
  type("a red boat");
  EXPECT_TRUE(controller_.handle(character('\r')));
  ASSERT_EQ(sent_.size(), 1u);
  const auto& request = std::get<pixels::GenerateRequest>(sent_[0]);
  EXPECT_EQ(request.prompt, "a red boat");
  EXPECT_EQ(request.model, "tiny");
  EXPECT_EQ(controller_.notice(), "submitted " + request.id.substr(0, 8));
}

TEST_F(TuiController, LettersInTheEditorAreTextNotCommands) {
  type("qcgm?");
  EXPECT_EQ(form_.text(FormField::kPrompt), "qcgm?");
  EXPECT_EQ(controller_.screen(), Screen::kMain);
  EXPECT_FALSE(controller_.help_shown());
  EXPECT_TRUE(sent_.empty());
}

TEST_F(TuiController, AFormErrorIsANoticeAndSendsNothing) {
  controller_.handle(character('\n'));
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(controller_.notice(), "Prompt is empty");
}

TEST_F(TuiController, TabGoesThroughTheFieldsToTheJobList) {
  for (int i = 1; i < kFormFieldCount; ++i) controller_.handle(character('\t'));
  EXPECT_EQ(form_.focus(), FormField::kCount);
  EXPECT_EQ(controller_.focus(), Focus::kForm);
  controller_.handle(character('\t'));
  EXPECT_EQ(controller_.focus(), Focus::kQueue);
  controller_.handle(character('\t'));
  EXPECT_EQ(controller_.focus(), Focus::kForm);
  EXPECT_EQ(form_.focus(), FormField::kPrompt);
  controller_.handle(character(27));
  EXPECT_EQ(controller_.focus(), Focus::kQueue);
}

TEST_F(TuiController, ArrowsChooseTheModelInItsField) {
  controller_.handle(character('\t'));
  controller_.handle(function(KEY_RIGHT));
  EXPECT_EQ(form_.model(), "xl");
}

TEST_F(TuiController, CancelSendsForTheSelectedUnfinishedJob) {
  add_job("first", "job_started");
  add_job("second", "job_complete");
  controller_.handle(character(27));  // to the job list
  EXPECT_EQ(controller_.selected_job(), 1);
  controller_.handle(character('c'));
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(controller_.notice(), "job second is done");
  controller_.handle(function(KEY_UP));
  EXPECT_EQ(controller_.selected_job(), 0);
  controller_.handle(character('c'));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(std::get<pixels::CancelRequest>(sent_[0]).job_id, "first");
  controller_.handle(function(KEY_UP));
  EXPECT_EQ(controller_.selected_job(), 0);
}

TEST_F(TuiController, SelectionFollowsTheNewestUntilMoved) {
  controller_.handle(character(27));
  EXPECT_EQ(controller_.selected_job(), -1);
  add_job("a", "job_started");
  add_job("b", "job_started");
  EXPECT_EQ(controller_.selected_job(), 1);
  add_job("c", "job_started");
  EXPECT_EQ(controller_.selected_job(), 2);
  controller_.handle(function(KEY_UP));
  add_job("d", "job_started");
  EXPECT_EQ(controller_.selected_job(), 1);
}

TEST_F(TuiController, ScreensHelpAndQuit) {
  controller_.handle(character(27));
  controller_.handle(character('g'));
  EXPECT_EQ(controller_.screen(), Screen::kGallery);
  controller_.handle(character('?'));
  EXPECT_TRUE(controller_.help_shown());
  controller_.handle(character('x'));
  EXPECT_FALSE(controller_.help_shown());
  controller_.handle(character('m'));
  EXPECT_EQ(controller_.screen(), Screen::kCompare);
  controller_.handle(character(27));
  EXPECT_EQ(controller_.screen(), Screen::kMain);
  controller_.handle(function(KEY_F(1)));
  EXPECT_TRUE(controller_.help_shown());
  controller_.handle(character(27));
  EXPECT_FALSE(controller_.help_shown());
  EXPECT_FALSE(controller_.handle(character('q')));
}

TEST_F(TuiController, F10AndControlCQuitEvenWhileTyping) {
  EXPECT_FALSE(controller_.handle(function(KEY_F(10))));
  EXPECT_FALSE(controller_.handle(character(3)));
}

TEST_F(TuiController, GallerySelection) {
  add_job("a", "job_complete");
  add_job("b", "job_complete");
  controller_.handle(character(27));
  controller_.handle(character('g'));
  EXPECT_EQ(controller_.selected_image(), 1);
  controller_.handle(function(KEY_UP));
  EXPECT_EQ(controller_.selected_image(), 0);
  controller_.handle(function(KEY_DOWN));
  controller_.handle(function(KEY_DOWN));
  EXPECT_EQ(controller_.selected_image(), 1);
}

TEST_F(TuiController, CompareRunsOnePromptAndSeedOnTwoModels) {
  type("a fox");
  controller_.handle(character(27));
  controller_.handle(character('m'));
  EXPECT_EQ(controller_.compare_model(0), 0);
  EXPECT_EQ(controller_.compare_model(1), 1);
  controller_.handle(function(KEY_RIGHT));  // model A: tiny -> xl
  controller_.handle(character('\t'));
  controller_.handle(function(KEY_LEFT));   // model B: xl -> tiny
  controller_.handle(character('\n'));
  ASSERT_EQ(sent_.size(), 2u);
  const auto& a = std::get<pixels::GenerateRequest>(sent_[0]);
  const auto& b = std::get<pixels::GenerateRequest>(sent_[1]);
  EXPECT_EQ(a.model, "xl");
  EXPECT_EQ(b.model, "tiny");
  EXPECT_EQ(a.prompt, "a fox");
  EXPECT_EQ(a.seed, b.seed);
  ASSERT_TRUE(controller_.comparison().has_value());
  EXPECT_EQ(controller_.comparison()->model_a, "xl");
  EXPECT_EQ(controller_.comparison()->request_b, b.id);
}

}  // namespace
}  // namespace df::tui

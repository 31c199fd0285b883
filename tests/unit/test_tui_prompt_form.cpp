// Unit tests for the terminal client's prompt editor: editing, model choice, requests it makes.
#include <gtest/gtest.h>

#include "test_support.h"
#include "tui/prompt_form.h"

namespace df::tui {
namespace {

void type(PromptForm& form, const std::u32string& text) {
  for (const char32_t c : text) form.insert(c);
}

void replace(PromptForm& form, FormField field, const std::u32string& text) {
  form.focus_on(field);
  while (form.cursor() > 0) form.backspace();
  type(form, text);
}

PromptForm filled_form() {
  PromptForm form;
  form.set_models({"tiny", "xl"});
  type(form, U"a lighthouse");
  return form;
}

TEST(TuiPromptForm, DefaultsMakeARequestWithAFreshId) {
  PromptForm form = filled_form();
  const pixels::GenerateRequest first = form.request();
  EXPECT_EQ(first.prompt, "a lighthouse");
  EXPECT_EQ(first.model, "tiny");
  EXPECT_EQ(first.width, 512);
  EXPECT_EQ(first.height, 512);
  EXPECT_EQ(first.steps, 20);
  EXPECT_NEAR(first.cfg_scale, 7.0, 1e-9);
  EXPECT_EQ(first.batch_size, 1);
  EXPECT_FALSE(first.seed.has_value());
  EXPECT_EQ(first.id.size(), 36u);
  EXPECT_NE(form.request().id, first.id);
}

TEST(TuiPromptForm, TabWalksTheFieldsAndSaysWhenItWraps) {
  PromptForm form;
  EXPECT_EQ(form.focus(), FormField::kPrompt);
  for (int i = 1; i < kFormFieldCount; ++i) EXPECT_TRUE(form.next_field());
  EXPECT_EQ(form.focus(), FormField::kCount);
  EXPECT_FALSE(form.next_field());
  EXPECT_EQ(form.focus(), FormField::kPrompt);
  EXPECT_FALSE(form.previous_field());
  EXPECT_EQ(form.focus(), FormField::kCount);
}

TEST(TuiPromptForm, EditingAtTheCursorWithUnicode) {
  PromptForm form;
  type(form, U"ab");
  form.cursor_left();
  type(form, U"é");
  EXPECT_EQ(form.text(FormField::kPrompt), "aéb");
  EXPECT_EQ(form.cursor(), 2u);
  form.backspace();
  EXPECT_EQ(form.text(FormField::kPrompt), "ab");
  form.cursor_right();
  form.cursor_right();
  EXPECT_EQ(form.cursor(), 2u);
}

TEST(TuiPromptForm, NumberFieldsTakeOnlyNumbers) {
  PromptForm form = filled_form();
  replace(form, FormField::kSteps, U"3x0");
  EXPECT_EQ(form.text(FormField::kSteps), "30");
  replace(form, FormField::kCfg, U"4.5.1");
  EXPECT_EQ(form.text(FormField::kCfg), "4.51");
  replace(form, FormField::kSeed, U"-42");
  EXPECT_EQ(form.text(FormField::kSeed), "42");
  replace(form, FormField::kWidth, U"64");
  replace(form, FormField::kCount, U"3");
  const auto request = form.request();
  EXPECT_EQ(request.steps, 30);
  EXPECT_NEAR(request.cfg_scale, 4.51, 1e-9);
  EXPECT_EQ(request.seed, 42u);
  EXPECT_EQ(request.width, 64);
  EXPECT_EQ(request.batch_size, 3);
}

TEST(TuiPromptForm, ModelFieldChoosesWithArrowsAndTakesNoText) {
  PromptForm form = filled_form();
  form.focus_on(FormField::kModel);
  type(form, U"zzz");
  EXPECT_EQ(form.model(), "tiny");
  form.cursor_right();
  EXPECT_EQ(form.model(), "xl");
  form.cursor_right();
  EXPECT_EQ(form.model(), "tiny");
  form.cursor_left();
  EXPECT_EQ(form.text(FormField::kModel), "xl");
  form.set_models({"a", "xl"});
  EXPECT_EQ(form.model(), "xl");
  form.set_models({"b"});
  EXPECT_EQ(form.model(), "b");
}

TEST(TuiPromptForm, BadFieldsAreNamed) {
  PromptForm form;
  EXPECT_EQ(test::error_of([&] { form.request(); }).code(), ErrorCode::kInvalidArgument);
  form.set_models({"tiny"});
  EXPECT_STREQ(test::error_of([&] { form.request(); }).what(), "Prompt is empty");
  type(form, U"x");
  replace(form, FormField::kSteps, U"0");
  EXPECT_NE(std::string(test::error_of([&] { form.request(); }).what()).find("Steps"),
            std::string::npos);
  replace(form, FormField::kSteps, U"5");
  replace(form, FormField::kWidth, U"");
  EXPECT_NE(std::string(test::error_of([&] { form.request(); }).what()).find("Width"),
            std::string::npos);
  replace(form, FormField::kWidth, U"64");
  replace(form, FormField::kCount, U"101");
  EXPECT_NE(std::string(test::error_of([&] { form.request(); }).what()).find("Count"),
            std::string::npos);
}

TEST(TuiPromptForm, NoModelsNoRequest) {
  PromptForm form;
  type(form, U"x");
  EXPECT_EQ(form.model(), "");
  EXPECT_NE(std::string(test::error_of([&] { form.request(); }).what()).find("Model"),
            std::string::npos);
}

TEST(TuiPromptForm, ComparisonSharesPromptAndSeed) {
  PromptForm form = filled_form();
  const auto [a, b] = form.comparison_requests("tiny", "xl");
  EXPECT_EQ(a.model, "tiny");
  EXPECT_EQ(b.model, "xl");
  EXPECT_EQ(a.prompt, b.prompt);
  ASSERT_TRUE(a.seed.has_value());
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_NE(a.id, b.id);
  replace(form, FormField::kSeed, U"77");
  const auto [c, d] = form.comparison_requests("xl", "tiny");
  EXPECT_EQ(c.seed, 77u);
  EXPECT_EQ(d.seed, 77u);
}

}  // namespace
}  // namespace df::tui

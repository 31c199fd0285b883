// The prompt editor's fields: editing, model choice, checks, and the generate request they make.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pixels/pixels_messages.h"

namespace df::tui {

enum class FormField { kPrompt, kModel, kWidth, kHeight, kSteps, kCfg, kSeed, kCount };
inline constexpr int kFormFieldCount = 8;
const char* form_field_label(FormField field);  // "Prompt", "Model", "W", ...

class PromptForm {
 public:
  PromptForm();

  FormField focus() const { return focus_; }
  void focus_on(FormField field) { focus_ = field; }
  // Tab and Shift-Tab: the next or previous field, wrapping around; false when it wrapped (the
  // focus leaves the form).
  bool next_field();
  bool previous_field();

  // Typing into the focused text field at its cursor; number fields take only what a number of
  // their kind has (digits; a '.' in cfg). The model field takes no text.
  void insert(char32_t character);
  void backspace();
  void cursor_left();   // in a text field; in the model field, the previous model
  void cursor_right();  // in a text field; in the model field, the next model
  std::size_t cursor() const;

  // The models to choose from (checkpoint names); keeps the chosen one when it is still offered.
  void set_models(const std::vector<std::string>& models);
  const std::vector<std::string>& models() const { return models_; }
  const std::string& model() const;  // "" while there is none to choose

  // The text a field shows (UTF-8).
  std::string text(FormField field) const;

  // A generate request with a fresh id, or throws Error(kInvalidArgument) naming the field that
  // is empty or out of range (prompt empty, no model, size 64..4096, steps 1..10000, cfg 0..100,
  // count 1..100, seed a 64-bit number or blank for a random one).
  pixels::GenerateRequest request() const;
  // One request for each of two models with the same prompt, settings and seed (a blank seed
  // becomes one random seed for both), each with its own fresh id.
  std::pair<pixels::GenerateRequest, pixels::GenerateRequest> comparison_requests(
      const std::string& model_a, const std::string& model_b) const;

 private:
  std::u32string& field_text(FormField field);
  const std::u32string& field_text(FormField field) const;
  bool accepts(FormField field, char32_t character) const;

  FormField focus_ = FormField::kPrompt;
  std::vector<std::u32string> texts_;
  std::vector<std::size_t> cursors_;
  std::vector<std::string> models_;
  std::size_t model_index_ = 0;
};

}  // namespace df::tui

// The prompt editor's fields and the generate requests they make.
#include "tui/prompt_form.h"

#include <algorithm>
#include <charconv>
#include <sstream>

#include "core/error.h"
#include "core/ids.h"
#include "engine/utf8.h"

namespace df::tui {

namespace {

std::size_t index_of(FormField field) { return static_cast<std::size_t>(field); }

std::string ascii(const std::u32string& text) {
  std::string out;
  for (const char32_t c : text) out.push_back(c < 0x80 ? static_cast<char>(c) : '?');
  return out;
}

template <typename Number>
Number parse_number(FormField field, const std::u32string& text, Number low, Number high) {
  const std::string digits = ascii(text);
  Number value{};
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() ||
      value < low || value > high) {
    std::ostringstream message;
    message << form_field_label(field) << " must be " << low << ".." << high;
    throw Error(ErrorCode::kInvalidArgument, message.str());
  }
  return value;
}

}  // namespace

const char* form_field_label(FormField field) {
  switch (field) {
    case FormField::kPrompt: return "Prompt";
    case FormField::kModel: return "Model";
    case FormField::kWidth: return "Width";
    case FormField::kHeight: return "Height";
    case FormField::kSteps: return "Steps";
    case FormField::kCfg: return "CFG";
    case FormField::kSeed: return "Seed";
    case FormField::kCount: return "Count";
  }
  return "";
}

PromptForm::PromptForm()
    : texts_{U"", U"", U"512", U"512", U"20", U"7.0", U"", U"1"}, cursors_(kFormFieldCount, 0) {
  for (std::size_t i = 0; i < texts_.size(); ++i) cursors_[i] = texts_[i].size();
}

bool PromptForm::next_field() {
  const int next = (static_cast<int>(focus_) + 1) % kFormFieldCount;
  focus_ = static_cast<FormField>(next);
  return next != 0;
}

bool PromptForm::previous_field() {
  const int previous = (static_cast<int>(focus_) + kFormFieldCount - 1) % kFormFieldCount;
  focus_ = static_cast<FormField>(previous);
  return previous != kFormFieldCount - 1;
}

std::u32string& PromptForm::field_text(FormField field) { return texts_[index_of(field)]; }
const std::u32string& PromptForm::field_text(FormField field) const {
  return texts_[index_of(field)];
}

bool PromptForm::accepts(FormField field, char32_t c) const {
  switch (field) {
    case FormField::kPrompt: return c >= 0x20 && c != 0x7f;
    case FormField::kModel: return false;
    case FormField::kCfg:
      return (c >= U'0' && c <= U'9') ||
             (c == U'.' && field_text(field).find(U'.') == std::u32string::npos);
    default: return c >= U'0' && c <= U'9';
  }
}

void PromptForm::insert(char32_t character) {
  if (!accepts(focus_, character)) return;
  std::size_t& at = cursors_[index_of(focus_)];
  field_text(focus_).insert(at, 1, character);
  ++at;
}

void PromptForm::backspace() {
  std::size_t& at = cursors_[index_of(focus_)];
  if (focus_ == FormField::kModel || at == 0) return;
  field_text(focus_).erase(at - 1, 1);
  --at;
}

void PromptForm::cursor_left() {
  if (focus_ == FormField::kModel) {
    if (!models_.empty()) model_index_ = (model_index_ + models_.size() - 1) % models_.size();
    return;
  }
  std::size_t& at = cursors_[index_of(focus_)];
  if (at > 0) --at;
}

void PromptForm::cursor_right() {
  if (focus_ == FormField::kModel) {
    if (!models_.empty()) model_index_ = (model_index_ + 1) % models_.size();
    return;
  }
  std::size_t& at = cursors_[index_of(focus_)];
  at = std::min(at + 1, field_text(focus_).size());
}

std::size_t PromptForm::cursor() const { return cursors_[index_of(focus_)]; }

void PromptForm::set_models(const std::vector<std::string>& models) {
  const std::string chosen = model();
  models_ = models;
  const auto found = std::find(models_.begin(), models_.end(), chosen);
  model_index_ = found == models_.end() ? 0 : static_cast<std::size_t>(found - models_.begin());
}

const std::string& PromptForm::model() const {
  static const std::string none;
  return models_.empty() ? none : models_[model_index_];
}

std::string PromptForm::text(FormField field) const {
  if (field == FormField::kModel) return model();
  return engine::encode_utf8(field_text(field));
}

pixels::GenerateRequest PromptForm::request() const {
  pixels::GenerateRequest request;
  request.id = new_uuid_v7();
  request.prompt = text(FormField::kPrompt);
  if (request.prompt.find_first_not_of(' ') == std::string::npos) {
    throw Error(ErrorCode::kInvalidArgument, "Prompt is empty");
  }
  request.model = model();
  if (request.model.empty()) throw Error(ErrorCode::kInvalidArgument, "no Model to choose");
  request.width = parse_number(FormField::kWidth, field_text(FormField::kWidth), 64, 4096);
  request.height = parse_number(FormField::kHeight, field_text(FormField::kHeight), 64, 4096);
  request.steps = parse_number(FormField::kSteps, field_text(FormField::kSteps), 1, 10000);
  request.cfg_scale = parse_number(FormField::kCfg, field_text(FormField::kCfg), 0.0, 100.0);
  request.batch_size = parse_number(FormField::kCount, field_text(FormField::kCount), 1, 100);
  if (!field_text(FormField::kSeed).empty()) {
    request.seed = parse_number<uint64_t>(FormField::kSeed, field_text(FormField::kSeed), 0,
                                          UINT64_MAX);
  }
  return request;
}

std::pair<pixels::GenerateRequest, pixels::GenerateRequest> PromptForm::comparison_requests(
    const std::string& model_a, const std::string& model_b) const {
  pixels::GenerateRequest first = request();
  pixels::GenerateRequest second = request();
  first.model = model_a;
  second.model = model_b;
  if (!first.seed) {
    const uint64_t seed = std::stoull(random_hex(6), nullptr, 16);
    first.seed = seed;
    second.seed = seed;
  }
  return {first, second};
}

}  // namespace df::tui

// A1111 "parameters" text: formatting from and parsing into GenerationParameters.
#include "image/generation_parameters.h"

#include <array>
#include <charconv>
#include <nlohmann/json.hpp>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace df {
namespace {

constexpr std::string_view kNegativePromptPrefix = "Negative prompt:";
constexpr size_t kModelHashLength = 10;  // A1111's short "AutoV2" hash: sha256 hex, first 10
constexpr size_t kMinFieldsInParameterLine = 3;  // A1111's test for "the last line holds fields"

struct DisplayName {
  std::string_view comfy;
  std::string_view a1111;
};

// ComfyUI samplers whose algorithm A1111 offers under its own name.
constexpr std::array<DisplayName, 16> kSamplerNames{{
    {"euler", "Euler"},
    {"euler_ancestral", "Euler a"},
    {"heun", "Heun"},
    {"dpm_2", "DPM2"},
    {"dpm_2_ancestral", "DPM2 a"},
    {"lms", "LMS"},
    {"dpm_fast", "DPM fast"},
    {"dpm_adaptive", "DPM adaptive"},
    {"dpmpp_2s_ancestral", "DPM++ 2S a"},
    {"dpmpp_sde", "DPM++ SDE"},
    {"dpmpp_2m", "DPM++ 2M"},
    {"dpmpp_2m_sde", "DPM++ 2M SDE"},
    {"dpmpp_3m_sde", "DPM++ 3M SDE"},
    {"ddim", "DDIM"},
    {"uni_pc", "UniPC"},
    {"lcm", "LCM"},
}};

// ComfyUI schedulers and A1111's "Schedule type" labels for the same sigma schedules.
constexpr std::array<DisplayName, 8> kSchedulerNames{{
    {"normal", "Normal"},
    {"karras", "Karras"},
    {"exponential", "Exponential"},
    {"sgm_uniform", "SGM Uniform"},
    {"simple", "Simple"},
    {"ddim_uniform", "DDIM"},
    {"beta", "Beta"},
    {"kl_optimal", "KL Optimal"},
}};

std::string display_name(std::span<const DisplayName> names, const std::string& comfy) {
  for (const auto& name : names) {
    if (name.comfy == comfy) return std::string(name.a1111);
  }
  return comfy;
}

std::string comfy_name(std::span<const DisplayName> names, const std::string& a1111) {
  for (const auto& name : names) {
    if (name.a1111 == a1111) return std::string(name.comfy);
  }
  return a1111;
}

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_blank(text.back())) text.remove_suffix(1);
  return text;
}

std::string format_number(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

// A1111 writes a value as a JSON string when it would otherwise break the "Key: value, ..." line.
std::string quote_if_needed(const std::string& value) {
  if (value.find_first_of(",:\n") == std::string::npos) return value;
  return nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

using Fields = std::vector<std::pair<std::string, std::string>>;

bool is_word_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool is_key_char(char c) { return is_word_char(c) || c == ' ' || c == '-' || c == '/'; }

// The `"Key: value, Key: "quoted, value", ...` fields of A1111's last line, or nullopt when the
// line does not have that shape or has fewer fields than A1111 requires.
std::optional<Fields> parse_field_line(std::string_view line) {
  Fields fields;
  size_t i = 0;
  const auto skip_blanks = [&] {
    while (i < line.size() && is_blank(line[i])) ++i;
  };
  while (true) {
    skip_blanks();
    if (i == line.size()) break;
    const size_t key_start = i;
    if (!is_word_char(line[i])) return std::nullopt;
    while (i < line.size() && is_key_char(line[i])) ++i;
    if (i == line.size() || line[i] != ':' || i - key_start < 2) return std::nullopt;
    std::string key(trim(line.substr(key_start, i - key_start)));
    ++i;
    skip_blanks();
    std::string value;
    if (i < line.size() && line[i] == '"') {
      size_t end = i + 1;
      while (end < line.size() && line[end] != '"') end += line[end] == '\\' ? 2 : 1;
      if (end >= line.size()) return std::nullopt;
      const auto parsed = nlohmann::json::parse(line.substr(i, end - i + 1), nullptr, false);
      if (!parsed.is_string()) return std::nullopt;
      value = parsed.get<std::string>();
      i = end + 1;
      skip_blanks();
    } else {
      const size_t end = std::min(line.find(',', i), line.size());
      value = std::string(trim(line.substr(i, end - i)));
      i = end;
    }
    fields.emplace_back(std::move(key), std::move(value));
    if (i < line.size()) {
      if (line[i] != ',') return std::nullopt;
      ++i;
    }
  }
  if (fields.size() < kMinFieldsInParameterLine) return std::nullopt;
  return fields;
}

[[noreturn]] void throw_malformed(const std::string& key, const std::string& value) {
  throw Error(ErrorCode::kInvalidArgument,
              "A1111 parameters: field '" + key + "' has a malformed value '" + value + "'",
              {{"field", key}});
}

// The whole of `text` as a number of type T.
template <typename T>
T parse_number(const std::string& key, const std::string& text) {
  T value{};
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || result.ec != std::errc() || result.ptr != text.data() + text.size()) {
    throw_malformed(key, text);
  }
  return value;
}

// "512x768" -> {512, 768}.
std::pair<int, int> parse_size(const std::string& key, const std::string& text) {
  const size_t separator = text.find('x');
  if (separator == std::string::npos) throw_malformed(key, text);
  return {parse_number<int>(key, text.substr(0, separator)),
          parse_number<int>(key, text.substr(separator + 1))};
}

void apply_field(GenerationParameters& parameters, const std::string& key,
                 const std::string& value) {
  if (key == "Steps") {
    parameters.steps = parse_number<int>(key, value);
  } else if (key == "Sampler") {
    parameters.sampler = value;
  } else if (key == "Schedule type") {
    parameters.scheduler = value;
  } else if (key == "CFG scale") {
    parameters.cfg = parse_number<double>(key, value);
  } else if (key == "Seed") {
    parameters.seed = parse_number<uint64_t>(key, value);
  } else if (key == "Size") {
    std::tie(parameters.width, parameters.height) = parse_size(key, value);
  } else if (key == "Model hash") {
    parameters.model_hash = value;
  } else if (key == "Model") {
    parameters.model_name = value;
  } else if (key == "Denoising strength") {
    parameters.denoise = parse_number<double>(key, value);
  }
}

// Before A1111 had "Schedule type", the schedule was a suffix of the sampler ("DPM++ 2M Karras").
void split_legacy_sampler_name(GenerationParameters& parameters) {
  if (!parameters.scheduler.empty()) return;
  for (const auto& scheduler : kSchedulerNames) {
    const std::string suffix = " " + std::string(scheduler.a1111);
    if (parameters.sampler.size() > suffix.size() && parameters.sampler.ends_with(suffix)) {
      parameters.sampler.resize(parameters.sampler.size() - suffix.size());
      parameters.scheduler = scheduler.a1111;
      return;
    }
  }
}

void append_line(std::string& text, std::string_view line) {
  if (!text.empty()) text += '\n';
  text += line;
}

}  // namespace

std::string format_a1111_parameters(const GenerationParameters& parameters) {
  std::vector<std::pair<std::string_view, std::string>> fields;
  fields.emplace_back("Steps", std::to_string(parameters.steps));
  if (!parameters.sampler.empty()) {
    fields.emplace_back("Sampler", display_name(kSamplerNames, parameters.sampler));
  }
  if (!parameters.scheduler.empty()) {
    fields.emplace_back("Schedule type", display_name(kSchedulerNames, parameters.scheduler));
  }
  fields.emplace_back("CFG scale", format_number(parameters.cfg));
  fields.emplace_back("Seed", std::to_string(parameters.seed));
  fields.emplace_back("Size",
                      std::to_string(parameters.width) + "x" + std::to_string(parameters.height));
  if (!parameters.model_hash.empty()) {
    fields.emplace_back("Model hash", parameters.model_hash.substr(0, kModelHashLength));
  }
  if (!parameters.model_name.empty()) fields.emplace_back("Model", parameters.model_name);
  if (parameters.denoise)
    fields.emplace_back("Denoising strength", format_number(*parameters.denoise));

  std::string field_line;
  for (const auto& [key, value] : fields) {
    if (!field_line.empty()) field_line += ", ";
    field_line += std::string(key) + ": " + quote_if_needed(value);
  }
  std::string text = parameters.prompt;
  if (!parameters.negative_prompt.empty()) {
    text += "\n" + std::string(kNegativePromptPrefix) + " " + parameters.negative_prompt;
  }
  text += "\n" + field_line;
  return std::string(trim(text));
}

GenerationParameters parse_a1111_parameters(const std::string& text) {
  std::vector<std::string_view> lines;
  const std::string_view body = trim(text);
  for (size_t start = 0; start <= body.size();) {
    const size_t end = std::min(body.find('\n', start), body.size());
    lines.push_back(body.substr(start, end - start));
    start = end + 1;
  }

  GenerationParameters parameters;
  if (const auto fields = parse_field_line(trim(lines.back()))) {
    lines.pop_back();
    for (const auto& [key, value] : *fields) apply_field(parameters, key, value);
  }
  bool in_negative_prompt = false;
  for (std::string_view line : lines) {
    line = trim(line);
    if (line.starts_with(kNegativePromptPrefix)) {
      in_negative_prompt = true;
      line = trim(line.substr(kNegativePromptPrefix.size()));
    }
    append_line(in_negative_prompt ? parameters.negative_prompt : parameters.prompt, line);
  }
  split_legacy_sampler_name(parameters);
  parameters.sampler = comfy_name(kSamplerNames, parameters.sampler);
  parameters.scheduler = comfy_name(kSchedulerNames, parameters.scheduler);
  return parameters;
}

}  // namespace df

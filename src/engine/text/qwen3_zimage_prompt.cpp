// Z-Image prompt path: chat-template text, its ids, and the Qwen3 hidden states of every token.
#include "engine/text/qwen3_zimage_prompt.h"

namespace df::engine {

namespace {

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

}  // namespace

std::string zimage_chat_text(const std::string& prompt) {
  std::string text = "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n";
  replace_all(text, "\\)", ")");
  replace_all(text, "\\(", "(");
  return text;
}

std::vector<int32_t> zimage_prompt_ids(const ByteBpeTokenizer& tokenizer, const std::string& prompt) {
  return tokenizer.encode(zimage_chat_text(prompt));
}

ZImageTextEncoding encode_zimage_prompt(const ByteBpeTokenizer& tokenizer, const Qwen3Encoder& encoder,
                                        const std::string& prompt) {
  const std::vector<int32_t> ids = zimage_prompt_ids(tokenizer, prompt);
  const at::Tensor tokens =
      at::tensor(at::ArrayRef<int32_t>(ids), at::kInt).to(at::kLong).unsqueeze(0);
  const at::Tensor mask = at::ones_like(tokens);
  return {encoder.hidden_states(tokens, mask, kZImageHiddenLayer).to(at::kFloat), mask};
}

}  // namespace df::engine

// Z-Image prompts to conditionings.
#include "engine/family/zimage/zimage_prompt_encoder.h"

#include "engine/text/qwen3_zimage_prompt.h"

namespace df::engine::zimage {

Conditioning ZImagePromptEncoder::encode(const std::string& prompt) const {
  const ZImageTextEncoding encoding = encode_zimage_prompt(tokenizer_, encoder_, prompt);
  Conditioning cond;
  cond.context = encoding.states;
  return cond;
}

std::shared_ptr<const PromptEncoder> load_zimage_prompt_encoder(const std::string& weights_path,
                                                                const std::string& tokenizer_path,
                                                                at::ScalarType dtype) {
  return std::make_shared<const ZImagePromptEncoder>(ByteBpeTokenizer::from_file(tokenizer_path),
                                                     Qwen3Encoder::load(weights_path, dtype));
}

}  // namespace df::engine::zimage

// A weight adapter over row pieces of a fused weight: a diffusers-named LoRA's difference placed
// into the rows of the engine weight that hold that diffusers weight (as ComfyUI's offset targets).
#pragma once

#include <memory>
#include <vector>

#include "engine/adapters/dit_lora_names.h"
#include "engine/adapters/weight_patch.h"

namespace df::engine {

class RowPiecesAdapter : public WeightAdapter {
 public:
  // `inner` computes the difference of the diffusers weight of `source_rows` rows that `pieces`
  // place into the engine weight.
  RowPiecesAdapter(std::shared_ptr<const WeightAdapter> inner, std::vector<RowPiece> pieces,
                   int64_t source_rows)
      : inner_(std::move(inner)), pieces_(std::move(pieces)), source_rows_(source_rows) {}

  // Zero outside the pieces; inside, the inner difference of the diffusers weight gathered from
  // the pieces' rows of `weight` (so DoRA sees the weight it was trained on).
  at::Tensor delta(const at::Tensor& weight) const override;

 private:
  std::shared_ptr<const WeightAdapter> inner_;
  std::vector<RowPiece> pieces_;
  int64_t source_rows_;
};

}  // namespace df::engine

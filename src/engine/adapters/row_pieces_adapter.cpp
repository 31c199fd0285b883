// RowPiecesAdapter: gathers the diffusers weight from a fused weight's rows and scatters its delta.
#include "engine/adapters/row_pieces_adapter.h"

namespace df::engine {

at::Tensor RowPiecesAdapter::delta(const at::Tensor& weight) const {
  std::vector<int64_t> source_shape = weight.sizes().vec();
  source_shape.at(0) = source_rows_;
  at::Tensor source = at::empty(source_shape, weight.options());
  for (const RowPiece& piece : pieces_) {
    source.narrow(0, piece.source_row, piece.rows).copy_(weight.narrow(0, piece.target_row, piece.rows));
  }
  const at::Tensor source_delta = inner_->delta(source).to(at::kFloat);
  at::Tensor out = at::zeros(weight.sizes(), weight.options().dtype(at::kFloat));
  for (const RowPiece& piece : pieces_) {
    out.narrow(0, piece.target_row, piece.rows)
        .copy_(source_delta.narrow(0, piece.source_row, piece.rows));
  }
  return out;
}

}  // namespace df::engine

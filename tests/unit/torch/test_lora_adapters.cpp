// Unit tests for the LoRA-family adapters: each delta against its formula computed here.
#include <gtest/gtest.h>

#include <limits>

#include "core/error.h"
#include "engine/adapters/lycoris_adapters.h"

namespace df::engine {
namespace {

// Deterministic small factors: values i * step + start, in `shape`.
at::Tensor seq(at::IntArrayRef shape, double start = -1.0, double step = 0.125) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return (at::arange(count, at::kFloat) * step + start).reshape(shape);
}

void expect_close(const at::Tensor& actual, const at::Tensor& expected, double tol = 1e-5) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(at::allclose(actual, expected, 1e-5, tol))
      << "actual:\n" << actual << "\nexpected:\n" << expected;
}

// The product of two matrices, written out so the adapters' mm is not checked against itself.
at::Tensor matmul_loops(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor out = at::zeros({a.size(0), b.size(1)});
  for (int64_t i = 0; i < a.size(0); ++i) {
    for (int64_t j = 0; j < b.size(1); ++j) {
      double sum = 0;
      for (int64_t k = 0; k < a.size(1); ++k) {
        sum += a[i][k].item<double>() * b[k][j].item<double>();
      }
      out[i][j].fill_(sum);
    }
  }
  return out;
}

TEST(LoraAdapter, LinearDeltaIsAlphaOverRankTimesUpDown) {
  const at::Tensor up = seq({3, 2});
  const at::Tensor down = seq({2, 4}, 0.5, -0.25);
  const LoraAdapter adapter({up, down, {}}, 1.0);
  const at::Tensor weight = at::zeros({3, 4});
  expect_close(adapter.delta(weight), matmul_loops(up, down) * 0.5);
  EXPECT_EQ(adapter.diff_numel(), 12);
}

TEST(LoraAdapter, WithoutAlphaTheScaleIsOne) {
  const at::Tensor up = seq({3, 2});
  const at::Tensor down = seq({2, 4}, 0.5, -0.25);
  const LoraAdapter adapter({up, down, {}}, std::nullopt);
  expect_close(adapter.delta(at::zeros({3, 4})), matmul_loops(up, down));
}

TEST(LoraAdapter, ConvolutionFactorsFlattenFromTheSecondDimension) {
  const at::Tensor up = seq({4, 2, 1, 1});
  const at::Tensor down = seq({2, 3, 3, 3}, -2.0, 0.0625);
  const LoraAdapter adapter({up, down, {}}, 4.0);
  const at::Tensor expected =
      (matmul_loops(up.reshape({4, 2}), down.reshape({2, 27})) * 2.0).reshape({4, 3, 3, 3});
  expect_close(adapter.delta(at::zeros({4, 3, 3, 3})), expected);
}

TEST(LoraAdapter, MidKernelIsATuckerCore) {
  // diff[o,i,h,w] = sum_m sum_d up[o,m] mid[m,d,h,w] down[d,i]
  const at::Tensor up = seq({4, 2, 1, 1});
  const at::Tensor down = seq({2, 3, 1, 1}, 1.0, -0.25);
  const at::Tensor mid = seq({2, 2, 3, 3}, -1.0, 0.1);
  const LoraAdapter adapter({up, down, mid}, std::nullopt);
  at::Tensor expected = at::zeros({4, 3, 3, 3});
  for (int64_t o = 0; o < 4; ++o) {
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t m = 0; m < 2; ++m) {
        for (int64_t d = 0; d < 2; ++d) {
          expected[o][i].add_(up[o][m][0][0] * mid[m][d] * down[d][i][0][0]);
        }
      }
    }
  }
  expect_close(adapter.delta(at::zeros({4, 3, 3, 3})), expected);
  EXPECT_EQ(adapter.diff_numel(), 4 * 3 * 9);
}

TEST(LoraAdapter, MismatchedRanksAreRefused) {
  try {
    LoraAdapter adapter({seq({3, 2}), seq({3, 4}), {}}, 1.0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruptFile);
  }
}

TEST(LohaAdapter, DeltaIsTheHadamardProductOfTwoLowRankProducts) {
  const at::Tensor w1a = seq({3, 2}), w1b = seq({2, 4}, 0.25);
  const at::Tensor w2a = seq({3, 2}, 2.0, -0.5), w2b = seq({2, 4}, -0.75, 0.2);
  const LohaAdapter adapter({w1a, w1b, w2a, w2b, {}, {}}, 1.0);
  const at::Tensor expected = matmul_loops(w1a, w1b) * matmul_loops(w2a, w2b) * 0.5;
  expect_close(adapter.delta(at::zeros({3, 4})), expected);
}

TEST(LohaAdapter, TuckerCoresRebuildEachFactor) {
  // factor[p,r,k,l] = sum_i sum_j t[i,j,k,l] w_b[j,r] w_a[i,p]
  const at::Tensor t1 = seq({2, 2, 3, 3}), t2 = seq({2, 2, 3, 3}, 0.5, -0.05);
  const at::Tensor w1a = seq({2, 4}), w1b = seq({2, 3}, 0.3, 0.1);
  const at::Tensor w2a = seq({2, 4}, 1.0, -0.2), w2b = seq({2, 3}, -0.4, 0.15);
  const LohaAdapter adapter({w1a, w1b, w2a, w2b, t1, t2}, 2.0);
  auto factor = [](const at::Tensor& t, const at::Tensor& wa, const at::Tensor& wb) {
    at::Tensor out = at::zeros({4, 3, 3, 3});
    for (int64_t p = 0; p < 4; ++p) {
      for (int64_t r = 0; r < 3; ++r) {
        for (int64_t i = 0; i < 2; ++i) {
          for (int64_t j = 0; j < 2; ++j) out[p][r].add_(t[i][j] * wb[j][r] * wa[i][p]);
        }
      }
    }
    return out;
  };
  const at::Tensor expected = factor(t1, w1a, w1b) * factor(t2, w2a, w2b) * (2.0 / 2.0);
  expect_close(adapter.delta(at::zeros({4, 3, 3, 3})), expected);
}

// kron(a, b)[i*rows(b)+k][j*cols(b)+l] = a[i][j] * b[k][l]
at::Tensor kron_loops(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor out = at::zeros({a.size(0) * b.size(0), a.size(1) * b.size(1)});
  for (int64_t i = 0; i < a.size(0); ++i) {
    for (int64_t j = 0; j < a.size(1); ++j) {
      for (int64_t k = 0; k < b.size(0); ++k) {
        for (int64_t l = 0; l < b.size(1); ++l) {
          out[i * b.size(0) + k][j * b.size(1) + l].copy_(a[i][j] * b[k][l]);
        }
      }
    }
  }
  return out;
}

TEST(LokrAdapter, FactorisedW2ScalesByItsRank) {
  const at::Tensor w1 = seq({2, 2});
  const at::Tensor w2a = seq({3, 2}, 0.5, -0.1), w2b = seq({2, 2}, -0.3, 0.2);
  LokrFactors factors;
  factors.w1 = w1;
  factors.w2_a = w2a;
  factors.w2_b = w2b;
  const LokrAdapter adapter(factors, 1.0);
  const at::Tensor expected = kron_loops(w1, matmul_loops(w2a, w2b)) * 0.5;
  expect_close(adapter.delta(at::zeros({6, 4})), expected);
  EXPECT_EQ(adapter.diff_numel(), 24);
}

TEST(LokrAdapter, WholeFactorsIgnoreAlpha) {
  const at::Tensor w1 = seq({2, 3}), w2 = seq({2, 2}, 1.0, -0.3);
  LokrFactors factors;
  factors.w1 = w1;
  factors.w2 = w2;
  expect_close(LokrAdapter(factors, 8.0).delta(at::zeros({4, 6})), kron_loops(w1, w2));
}

TEST(LokrAdapter, KernelW2MakesW1A1x1Kernel) {
  const at::Tensor w1 = seq({2, 2});
  const at::Tensor w2 = seq({2, 3, 3, 3}, 0.2, -0.05);
  LokrFactors factors;
  factors.w1 = w1;
  factors.w2 = w2;
  at::Tensor expected = at::zeros({4, 6, 3, 3});
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 2; ++j) {
      for (int64_t k = 0; k < 2; ++k) {
        for (int64_t l = 0; l < 3; ++l) expected[i * 2 + k][j * 3 + l].copy_(w1[i][j] * w2[k][l]);
      }
    }
  }
  expect_close(LokrAdapter(factors, std::nullopt).delta(at::zeros({4, 6, 3, 3})), expected);
}

TEST(LokrAdapter, MissingSideIsRefused) {
  LokrFactors factors;
  factors.w1 = seq({2, 2});
  EXPECT_THROW(LokrAdapter(factors, 1.0), Error);
}

// ComfyUI's weight_decompose, written out per row / column.
at::Tensor dora_expected(const at::Tensor& weight, const at::Tensor& diff,
                         const at::Tensor& magnitude, bool output_axis) {
  const at::Tensor patched = weight + diff;
  at::Tensor out = patched.clone();
  const double eps = std::numeric_limits<float>::epsilon();
  if (output_axis) {
    for (int64_t o = 0; o < weight.size(0); ++o) {
      const double norm = std::sqrt(weight[o].pow(2).sum().item<double>()) + eps;
      out[o].copy_(patched[o] * (magnitude[o][0].item<double>() / norm));
    }
  } else {
    for (int64_t i = 0; i < weight.size(1); ++i) {
      const at::Tensor column = patched.select(1, i);
      const double norm = std::sqrt(column.pow(2).sum().item<double>()) + eps;
      out.select(1, i).copy_(column * (magnitude[0][i].item<double>() / norm));
    }
  }
  return out - weight;
}

TEST(Dora, OutputAxisNormalisesByTheUnpatchedRows) {
  const at::Tensor up = seq({3, 2}), down = seq({2, 4}, 0.5, -0.25);
  const at::Tensor magnitude = seq({3, 1}, 2.0, 0.5);
  const at::Tensor weight = seq({3, 4}, -4.0, 0.5);
  const LoraAdapter adapter({up, down, {}}, 1.0, magnitude);
  const at::Tensor diff = matmul_loops(up, down) * 0.5;
  expect_close(adapter.delta(weight), dora_expected(weight, diff, magnitude, true));
}

TEST(Dora, InputAxisNormalisesThePatchedColumns) {
  const at::Tensor up = seq({3, 2}), down = seq({2, 4}, 0.5, -0.25);
  const at::Tensor magnitude = seq({1, 4}, 1.5, 0.25);
  const at::Tensor weight = seq({3, 4}, -4.0, 0.5);
  const LoraAdapter adapter({up, down, {}}, std::nullopt, magnitude);
  const at::Tensor diff = matmul_loops(up, down);
  expect_close(adapter.delta(weight), dora_expected(weight, diff, magnitude, false));
}

TEST(Dora, StrengthScalesTheDecomposedChange) {
  // ComfyUI: weight + strength * (decomposed - weight), which apply_patches computes.
  const at::Tensor up = seq({3, 2}), down = seq({2, 4}, 0.5, -0.25);
  const at::Tensor magnitude = seq({3, 1}, 2.0, 0.5);
  const at::Tensor weight = seq({3, 4}, -4.0, 0.5);
  auto adapter = std::make_shared<LoraAdapter>(LoraFactors{up, down, {}}, 1.0, magnitude);
  const Weights patched =
      apply_patches(Weights({{"w", weight}}), {{"w", {WeightPatch{adapter, 0.3, 1.0}}}});
  const at::Tensor change = dora_expected(weight, matmul_loops(up, down) * 0.5, magnitude, true);
  expect_close(patched.get("w"), weight + 0.3 * change);
}

TEST(Dora, LohaAndLokrTakeTheMagnitudeToo) {
  const at::Tensor weight = seq({3, 4}, -4.0, 0.5);
  const at::Tensor magnitude = seq({3, 1}, 2.0, 0.5);
  const at::Tensor w1a = seq({3, 2}), w1b = seq({2, 4}, 0.25);
  const at::Tensor w2a = seq({3, 2}, 2.0, -0.5), w2b = seq({2, 4}, -0.75, 0.2);
  const LohaAdapter loha({w1a, w1b, w2a, w2b, {}, {}}, std::nullopt, magnitude);
  const at::Tensor hadamard = matmul_loops(w1a, w1b) * matmul_loops(w2a, w2b);
  expect_close(loha.delta(weight), dora_expected(weight, hadamard, magnitude, true));

  LokrFactors factors;
  factors.w1 = seq({1, 2});
  factors.w2 = seq({3, 2}, 0.1, 0.3);
  const LokrAdapter lokr(factors, std::nullopt, magnitude);
  expect_close(lokr.delta(weight),
               dora_expected(weight, kron_loops(factors.w1, factors.w2), magnitude, true));
}

}  // namespace
}  // namespace df::engine

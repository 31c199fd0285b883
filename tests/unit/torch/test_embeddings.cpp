// Tests of embedding files: which tensor each text encoder takes, and refused formats.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "../pickle_test_bytes.h"
#include "core/error.h"
#include "engine/embeddings.h"
#include "engine/safetensors.h"

namespace df::engine {
namespace {

namespace fs = std::filesystem;

class EmbeddingVectorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("df_embeddings_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string save(const TensorMap& tensors) {
    const std::string path = (dir_ / "e.safetensors").string();
    save_safetensors(path, tensors);
    return path;
  }
  fs::path dir_;
};

TEST_F(EmbeddingVectorsTest, SdxlFilesGiveEachEncoderItsKey) {
  const at::Tensor l = at::randn({2, 8}), g = at::randn({2, 12});
  const std::string path = save({{"clip_l", l}, {"clip_g", g}});
  EXPECT_TRUE(load_embedding_vectors(path, "clip_l").equal(l));
  EXPECT_TRUE(load_embedding_vectors(path, "clip_g").equal(g));
  EXPECT_TRUE(load_embedding_vectors(path, "clip_h").equal(g));  // first by name
  EXPECT_EQ(embedding_key(Family::kSDXL, 1), "clip_g");
  EXPECT_EQ(embedding_key(Family::kSD2, 0), "clip_h");
}

TEST_F(EmbeddingVectorsTest, A1111AndSingleTensorFilesGiveTheirVectors) {
  const at::Tensor v = at::randn({3, 8});
  EXPECT_TRUE(load_embedding_vectors(save({{"string_to_param.*", v}, {"clip_l", at::randn({1, 8})}}),
                                     "clip_l")
                  .equal(v));
  EXPECT_TRUE(load_embedding_vectors(save({{"emb_params", v}}), "clip_l").equal(v));
  const at::Tensor one = at::randn({8});
  EXPECT_EQ(load_embedding_vectors(save({{"emb_params", one}}), "clip_l").sizes(),
            (std::vector<int64_t>{1, 8}));
}

TEST_F(EmbeddingVectorsTest, PicklesThatWouldRunCodeAreRefused) {
  test::write_file((dir_ / "e.pt").string(), test::hostile_pickle());
  try {
    load_embedding_vectors((dir_ / "e.pt").string(), "clip_l");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsafeFormat);
  }
}

}  // namespace
}  // namespace df::engine

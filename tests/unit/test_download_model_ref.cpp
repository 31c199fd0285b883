// Model references: parsing, printing and matching installed models.
#include <gtest/gtest.h>

#include "download/model_ref.h"
#include "test_support.h"

namespace df::download {
namespace {

TEST(DownloadModelRef, ParsesHuggingFaceRepoRevisionAndFile) {
  const auto ref = parse_model_ref("hf:org/repo@v1.0#unet/model.safetensors");
  EXPECT_EQ(ref.source, ModelSource::kHuggingFace);
  EXPECT_EQ(ref.model, "org/repo");
  EXPECT_EQ(ref.revision, "v1.0");
  EXPECT_EQ(ref.selector, "unet/model.safetensors");
  EXPECT_EQ(format_model_ref(ref), "hf:org/repo@v1.0#unet/model.safetensors");
}

TEST(DownloadModelRef, HuggingFaceDefaultsToMainAndAllowsGlobsAndPrRefs) {
  EXPECT_EQ(format_model_ref(parse_model_ref("hf:org/repo")), "hf:org/repo@main");
  EXPECT_EQ(parse_model_ref("hf:org/repo#*.safetensors").selector, "*.safetensors");
  EXPECT_EQ(parse_model_ref("hf:org/repo@refs/pr/1").revision, "refs/pr/1");
  EXPECT_EQ(parse_model_ref("hf:gpt2").model, "gpt2");
}

TEST(DownloadModelRef, ParsesCivitaiIdsSlugsAndVersions) {
  const auto by_id = parse_model_ref("civitai:4384@128713");
  EXPECT_EQ(by_id.source, ModelSource::kCivitai);
  EXPECT_EQ(by_id.model, "4384");
  EXPECT_EQ(by_id.revision, "128713");
  EXPECT_EQ(format_model_ref(by_id), "civitai:4384@128713");
  EXPECT_EQ(parse_model_ref("civitai:dream-shaper").model, "dream-shaper");
  EXPECT_EQ(format_model_ref(parse_model_ref("civitai:4384")), "civitai:4384");
}

TEST(DownloadModelRef, RejectsMalformedReferences) {
  for (const char* bad :
       {"org/repo", "s3:bucket/x", "hf:", "hf:org/", "hf:../etc", "hf:org/re po", "hf:org/repo@",
        "hf:org/repo#", "hf:org/repo#../x", "hf:org/repo#/abs", "hf:org/repo#a//b", "hf:a/b/c",
        "civitai:", "civitai:12@v2", "civitai:Upper", "civitai:12#file", "hf:org/repo@a..b"}) {
    EXPECT_EQ(test::error_code_of([&] { parse_model_ref(bad); }), ErrorCode::kInvalidArgument)
        << bad;
  }
  const auto error = test::error_of([] { parse_model_ref("hf:org/repo#../x"); });
  EXPECT_NE(std::string(error.what()).find("hf:org/repo"), std::string::npos);
}

TEST(DownloadModelRef, RecognisesReferencesApartFromIds) {
  EXPECT_TRUE(looks_like_model_ref("hf:org/repo"));
  EXPECT_TRUE(looks_like_model_ref("civitai:12"));
  EXPECT_FALSE(looks_like_model_ref("tiny-sd@0123456789ab"));
}

TEST(DownloadModelRef, MatchesInstalledModelsByRevisionNameOrCommit) {
  const auto installed = parse_model_ref("hf:org/repo@main");
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  EXPECT_TRUE(model_ref_matches(parse_model_ref("hf:org/repo"), installed, commit));
  EXPECT_TRUE(model_ref_matches(parse_model_ref("hf:org/repo@main"), installed, commit));
  EXPECT_TRUE(model_ref_matches(parse_model_ref("hf:org/repo@" + commit), installed, commit));
  EXPECT_FALSE(model_ref_matches(parse_model_ref("hf:org/repo@dev"), installed, commit));
  EXPECT_FALSE(model_ref_matches(parse_model_ref("hf:org/repo#a.safetensors"), installed, commit));
  EXPECT_FALSE(model_ref_matches(parse_model_ref("hf:org/other"), installed, commit));
  EXPECT_FALSE(
      model_ref_matches(parse_model_ref("civitai:12"), parse_model_ref("civitai:13"), "5"));
  EXPECT_TRUE(model_ref_matches(parse_model_ref("civitai:12"), parse_model_ref("civitai:12"), "5"));
  EXPECT_TRUE(
      model_ref_matches(parse_model_ref("civitai:12@5"), parse_model_ref("civitai:12"), "5"));
}

}  // namespace
}  // namespace df::download

// What the Hugging Face and CivitAI answers resolve to.
#include <gtest/gtest.h>

#include "download/civitai.h"
#include "download/hugging_face.h"
#include "test_support.h"

namespace df::download {
namespace {

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";

nlohmann::json revision_info() {
  return {{"id", "org/tiny-sd"},
          {"sha", kCommit},
          {"cardData", {{"license", "openrail"}}},
          {"siblings",
           {{{"rfilename", "model_index.json"}, {"size", 541}, {"blobId", "aa"}},
            {{"rfilename", "unet/diffusion pytorch.safetensors"},
             {"size", 99},
             {"blobId", "bb"},
             {"lfs", {{"sha256", "cc"}, {"size", 1234}, {"pointerSize", 134}}}}}}};
}

TEST(DownloadSources, HuggingFaceListingCarriesSizesHashesAndCommitUrls) {
  const auto release =
      hugging_face_release(parse_model_ref("hf:org/tiny-sd"), revision_info(), "http://hub");
  EXPECT_EQ(release.source_uri, "hf:org/tiny-sd@main");
  EXPECT_EQ(release.revision, kCommit);
  EXPECT_EQ(release.name, "tiny-sd");
  EXPECT_EQ(release.version, "0123456789ab");
  EXPECT_EQ(release.kind, "checkpoints");
  EXPECT_EQ(release.extra["license"], "openrail");
  ASSERT_EQ(release.listing.size(), 2u);
  const auto& index = release.listing[0];
  EXPECT_EQ(index.url, "http://hub/org/tiny-sd/resolve/" + kCommit + "/model_index.json");
  EXPECT_EQ(index.size, 541);
  EXPECT_EQ(index.digest.kind, DigestKind::kGitBlobSha1);
  EXPECT_EQ(index.digest.hex, "aa");
  const auto& weights = release.listing[1];
  EXPECT_EQ(weights.url,
            "http://hub/org/tiny-sd/resolve/" + kCommit + "/unet/diffusion%20pytorch.safetensors");
  EXPECT_EQ(weights.size, 1234);
  EXPECT_EQ(weights.digest.kind, DigestKind::kSha256);
  EXPECT_EQ(weights.digest.hex, "cc");
}

TEST(DownloadSources, HuggingFaceSingleFileIsNamedAfterTheFile) {
  const auto release = hugging_face_release(
      parse_model_ref("hf:org/repo#sub/v1-5 pruned.safetensors"), revision_info(), "http://hub");
  EXPECT_EQ(release.name, "v1-5-pruned");
  EXPECT_EQ(release.source_uri, "hf:org/repo@main#sub/v1-5 pruned.safetensors");
  EXPECT_EQ(
      hugging_face_release(parse_model_ref("hf:org/repo#*.safetensors"), revision_info(), "h").name,
      "repo");
}

TEST(DownloadSources, HuggingFaceAnswersWithoutCommitOrHashesAreRefused) {
  const auto ref = parse_model_ref("hf:org/repo");
  auto no_commit = revision_info();
  no_commit["sha"] = "main";
  EXPECT_EQ(test::error_code_of([&] { hugging_face_release(ref, no_commit, "h"); }),
            ErrorCode::kUnavailable);
  auto no_hash = revision_info();
  no_hash["siblings"][0].erase("blobId");
  EXPECT_EQ(test::error_code_of([&] { hugging_face_release(ref, no_hash, "h"); }),
            ErrorCode::kUnavailable);
  auto no_size = revision_info();
  no_size["siblings"][0].erase("size");
  EXPECT_EQ(test::error_code_of([&] { hugging_face_release(ref, no_size, "h"); }),
            ErrorCode::kUnavailable);
}

nlohmann::json civitai_version() {
  return {{"id", 1001},
          {"modelId", 101},
          {"name", "v1"},
          {"baseModel", "SD 1.5"},
          {"trainedWords", {"tinystyle"}},
          {"files",
           {{{"name", "tiny.ckpt"},
             {"type", "Model"},
             {"sizeKB", 2.0},
             {"hashes", {{"SHA256", "AA"}}},
             {"downloadUrl", "http://c/api/download/models/1001?type=Model&format=PickleTensor"}},
            {{"name", "tiny.safetensors"},
             {"type", "Model"},
             {"primary", true},
             {"sizeKB", 1.5},
             {"hashes", {{"SHA256", "ABCDEF"}}},
             {"downloadUrl", "http://c/api/download/models/1001"}},
            {{"name", "data.zip"}, {"type", "Training Data"}, {"downloadUrl", "http://c/x"}}}}};
}

TEST(DownloadSources, CivitaiVersionListsModelFilesPrimaryFirst) {
  const auto release =
      civitai_release(parse_model_ref("civitai:101"), "Tiny Lora: Ink!", "LORA", civitai_version());
  EXPECT_EQ(release.source_uri, "civitai:101");
  EXPECT_EQ(release.revision, "1001");
  EXPECT_EQ(release.name, "tiny-lora-ink");
  EXPECT_EQ(release.version, "1001");
  EXPECT_EQ(release.kind, "loras");
  EXPECT_EQ(release.family, "sd1");
  EXPECT_EQ(release.extra["trained_words"], nlohmann::json({"tinystyle"}));
  ASSERT_EQ(release.listing.size(), 2u);
  EXPECT_EQ(release.listing[0].path, "tiny.safetensors");
  EXPECT_EQ(release.listing[0].size, 1536);
  EXPECT_FALSE(release.listing[0].size_exact);
  EXPECT_EQ(release.listing[0].digest.hex, "abcdef");
  EXPECT_EQ(release.listing[1].path, "tiny.ckpt");
}

TEST(DownloadSources, CivitaiPrefersSafetensorsThenTakesAPickleCheckpoint) {
  Civitai civitai("http://c", "");
  const auto ref = parse_model_ref("civitai:101");
  const auto release = civitai_release(ref, "Tiny", "Checkpoint", civitai_version());
  const auto files = civitai.files_to_fetch(ref, release);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].path, "tiny.safetensors");

  auto pickle_only = civitai_version();
  pickle_only["files"].erase(1);
  const auto pickle_files =
      civitai.files_to_fetch(ref, civitai_release(ref, "Tiny", "Checkpoint", pickle_only));
  ASSERT_EQ(pickle_files.size(), 1u);
  EXPECT_EQ(pickle_files[0].path, "tiny.ckpt");

  auto other_only = pickle_only;
  other_only["files"][0]["name"] = "tiny.onnx";
  const auto refused = test::error_of([&] {
    civitai.files_to_fetch(ref, civitai_release(ref, "Tiny", "Checkpoint", other_only));
  });
  EXPECT_EQ(refused.code(), ErrorCode::kUnsafeFormat);
  EXPECT_NE(std::string(refused.what()).find("tiny.onnx"), std::string::npos);
}

TEST(DownloadSources, CivitaiFileNamesCannotLeaveTheModelFolder) {
  auto version = civitai_version();
  version["files"][1]["name"] = "../evil.safetensors";
  EXPECT_EQ(test::error_code_of(
                [&] { civitai_release(parse_model_ref("civitai:101"), "Tiny", "LORA", version); }),
            ErrorCode::kUnavailable);
}

TEST(DownloadSources, CivitaiTypesBaseModelsAndSlugs) {
  EXPECT_EQ(civitai_kind("Checkpoint"), "checkpoints");
  EXPECT_EQ(civitai_kind("LORA"), "loras");
  EXPECT_EQ(civitai_kind("LoCon"), "loras");
  EXPECT_EQ(civitai_kind("TextualInversion"), "embeddings");
  EXPECT_EQ(civitai_kind("VAE"), "vae");
  EXPECT_EQ(civitai_kind("Controlnet"), "controlnet");
  EXPECT_EQ(civitai_kind("Upscaler"), "upscale_models");
  EXPECT_EQ(test::error_code_of([] { civitai_kind("Workflows"); }), ErrorCode::kUnsupported);
  EXPECT_EQ(civitai_family("SD 1.5"), "sd1");
  EXPECT_EQ(civitai_family("SD 2.1 768"), "sd2");
  EXPECT_EQ(civitai_family("SDXL 1.0"), "sdxl");
  EXPECT_EQ(civitai_family("Pony"), "sdxl");
  EXPECT_EQ(civitai_family("Flux.1 D"), "");
  EXPECT_EQ(civitai_slug("DreamShaper XL (Turbo)"), "dreamshaper-xl-turbo");
}

TEST(DownloadSources, FolderNamesAndUrlEncoding) {
  EXPECT_EQ(folder_name_part("a b/c..d"), "a-b-c..d");
  EXPECT_EQ(folder_name_part("../x"), "x");
  EXPECT_EQ(folder_name_part("///"), "model");
  EXPECT_EQ(url_encode("refs/pr/1"), "refs%2Fpr%2F1");
  EXPECT_EQ(url_encode("a b/c~d.e", /*keep_slashes=*/true), "a%20b/c~d.e");
}

}  // namespace
}  // namespace df::download

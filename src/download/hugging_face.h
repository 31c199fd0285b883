// The Hugging Face source: repos listed through the Hub's HTTP API, files fetched at a commit.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "download/source.h"

namespace df::download {

class HuggingFace : public Source {
 public:
  // `endpoint`: https://huggingface.co or a mirror (HF_ENDPOINT); `token` (HF_TOKEN) is sent as a
  // bearer token, "" for none.
  HuggingFace(std::string endpoint, std::string token, RetryPolicy retry = {});

  // GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true: the commit and its files.
  Release resolve(const ModelRef& ref) override;
  // The file or glob the reference names; else the pipeline its model_index.json describes.
  std::vector<RemoteFile> files_to_fetch(const ModelRef& ref, const Release& release) override;
  const HttpClient& client() const override { return client_; }

 private:
  std::string endpoint_;
  HttpClient client_;
};

// The release the Hub's revision answer describes: the commit, and each file with its size and
// hash (LFS files: sha256; the others: their git blob id), fetched from
// {endpoint}/{repo}/resolve/{commit}/{path}. Throws Error(kUnavailable) for an answer without
// them.
Release hugging_face_release(const ModelRef& ref, const nlohmann::json& revision_info,
                             const std::string& endpoint);

}  // namespace df::download

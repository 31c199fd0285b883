// Finished images and latent previews for the terminal: read from local files or fetched by URL.
#pragma once

#include <list>
#include <string>

#include "image/image8.h"

namespace df::tui {

// The image at a local path or an http:// URL (a signed artifact URL of the /v1 link). Throws
// Error(kIo) for a file that cannot be read or an answer other than 200, Error(kUnavailable) when
// the server cannot be reached, and the decoder's errors for what is not an image.
Image8 load_image(const std::string& path_or_url, int timeout_ms);

// The last few images loaded, so a screen redrawn many times a second reads each file once. A
// failed load is remembered too (with its message) until the source or its version changes.
class ImageCache {
 public:
  explicit ImageCache(int timeout_ms, std::size_t capacity = 8)
      : timeout_ms_(timeout_ms), capacity_(capacity) {}

  // The image of `source` (a latent preview file rewritten at each step passes the step as
  // `version`), or nullptr when it cannot be loaded; error() then says why.
  const Image8* get(const std::string& source, int version);
  const std::string& error() const { return error_; }

 private:
  struct Entry {
    std::string source;
    int version = 0;
    bool loaded = false;
    Image8 image;
    std::string error;
  };

  int timeout_ms_;
  std::size_t capacity_;
  std::list<Entry> entries_;  // most recently used first
  std::string error_;
};

}  // namespace df::tui

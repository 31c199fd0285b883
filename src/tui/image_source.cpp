// Loading the terminal client's images from files and URLs.
#include "tui/image_source.h"

#include <algorithm>

#include "core/error.h"
#include "http/client.h"
#include "image/image.h"

namespace df::tui {

Image8 load_image(const std::string& path_or_url, int timeout_ms) {
  constexpr std::string_view kScheme = "http://";
  if (!path_or_url.starts_with(kScheme)) return read_image_file(path_or_url);
  const std::size_t path_start = path_or_url.find('/', kScheme.size());
  const std::string base = path_or_url.substr(0, path_start);
  const std::string target = path_start == std::string::npos ? "/" : path_or_url.substr(path_start);
  http::Client client(base, timeout_ms);
  const http::ClientResponse response = client.get(target);
  if (response.status != 200) {
    throw Error(ErrorCode::kIo, "GET " + path_or_url.substr(0, path_or_url.find('?')) +
                                    " answered " + std::to_string(response.status));
  }
  return decode_image(std::vector<uint8_t>(response.body.begin(), response.body.end()));
}

const Image8* ImageCache::get(const std::string& source, int version) {
  auto found = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& entry) {
    return entry.source == source && entry.version == version;
  });
  if (found == entries_.end()) {
    Entry entry;
    entry.source = source;
    entry.version = version;
    try {
      entry.image = load_image(source, timeout_ms_);
      entry.loaded = true;
    } catch (const std::exception& e) {
      entry.error = e.what();
    }
    entries_.push_front(std::move(entry));
    if (entries_.size() > capacity_) entries_.pop_back();
    found = entries_.begin();
  } else {
    entries_.splice(entries_.begin(), entries_, found);
  }
  error_ = found->error;
  return found->loaded ? &found->image : nullptr;
}

}  // namespace df::tui

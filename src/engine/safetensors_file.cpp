// safetensors: header validation over a read-only memory map, and the atomic writer.
#include "engine/safetensors_file.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "core/error.h"
#include "engine/file_mapping.h"

namespace df::engine {
namespace {

using nlohmann::json;

// Real headers are a few hundred kilobytes; anything near this is a lie or an attack.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;
// Deep JSON nesting would exhaust the parser's stack; headers need depth 3.
constexpr int kMaxHeaderNesting = 64;
constexpr const char* kMetadataKey = "__metadata__";

[[noreturn]] void corrupt(const std::string& path, const std::string& problem) {
  throw Error(ErrorCode::kCorruptFile, "'" + path + "' is not a valid safetensors file: " + problem,
              {{"path", path}});
}

// Deepest bracket nesting of JSON text, outside string literals.
int json_nesting_depth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | p[i];
  return value;
}

// Multiplies the dims into an element count; nullopt on a negative dim or overflow.
std::optional<uint64_t> element_count(const std::vector<int64_t>& shape) {
  uint64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) return std::nullopt;
    const auto d = static_cast<uint64_t>(dim);
    if (d != 0 && count > std::numeric_limits<uint64_t>::max() / d) return std::nullopt;
    count *= d;
  }
  return count;
}

std::optional<uint64_t> byte_count(const std::string& dtype, const std::vector<int64_t>& shape) {
  const auto count = element_count(shape);
  const uint64_t size = safetensors_dtype_size(dtype);
  if (!count || size == 0) return std::nullopt;
  if (*count != 0 && size > std::numeric_limits<uint64_t>::max() / *count) return std::nullopt;
  return *count * size;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
  return text + "]";
}

SafetensorsTensorInfo parse_entry(const std::string& path, const std::string& name,
                                  const json& entry, uint64_t data_size) {
  const std::string where = "tensor '" + name + "'";
  if (!entry.is_object()) corrupt(path, where + " is not described by an object");
  SafetensorsTensorInfo info;
  info.name = name;
  auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string()) corrupt(path, where + " has no dtype");
  info.dtype = dtype->get<std::string>();
  if (safetensors_dtype_size(info.dtype) == 0) {
    corrupt(path, where + " has unknown dtype '" + info.dtype + "'");
  }
  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array()) corrupt(path, where + " has no shape");
  for (const json& dim : *shape) {
    if (!dim.is_number_unsigned() || dim.get<uint64_t>() > uint64_t(INT64_MAX)) {
      corrupt(path, where + " has an invalid shape " + shape->dump());
    }
    info.shape.push_back(dim.get<int64_t>());
  }
  auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    corrupt(path, where + " has no valid data_offsets [begin, end]");
  }
  info.begin = (*offsets)[0].get<uint64_t>();
  info.end = (*offsets)[1].get<uint64_t>();
  if (info.begin > info.end || info.end > data_size) {
    corrupt(path, where + " has data_offsets [" + std::to_string(info.begin) + ", " +
                      std::to_string(info.end) + "] outside the " + std::to_string(data_size) +
                      "-byte data section (file truncated?)");
  }
  const auto expected = byte_count(info.dtype, info.shape);
  if (!expected || *expected != info.end - info.begin) {
    corrupt(path, where + " has " + std::to_string(info.end - info.begin) + " bytes but dtype " +
                      info.dtype + " and shape " + shape_text(info.shape) + " need " +
                      (expected ? std::to_string(*expected) : std::string("too many")));
  }
  return info;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& value) {
  if (!value.is_object()) corrupt(path, "__metadata__ is not an object");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, entry] : value.items()) {
    if (!entry.is_string()) corrupt(path, "__metadata__ value of '" + key + "' is not a string");
    metadata[key] = entry.get<std::string>();
  }
  return metadata;
}

// Sorts by data position and rejects any two non-empty ranges that share a byte.
void sort_and_check_overlaps(const std::string& path, std::vector<SafetensorsTensorInfo>& tensors) {
  std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.name < b.name;
  });
  const SafetensorsTensorInfo* previous = nullptr;
  for (const auto& info : tensors) {
    if (info.begin == info.end) continue;
    if (previous && info.begin < previous->end) {
      corrupt(path, "tensors '" + previous->name + "' and '" + info.name + "' overlap");
    }
    previous = &info;
  }
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, size_t, std::less<>> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;
  const FileMapping mapping = map_file(path);
  const uint64_t file_size = mapping.bytes.size();
  if (file_size < 8) {
    corrupt(path, "the file is only " + std::to_string(file_size) +
                      " bytes, shorter than the 8-byte header length");
  }
  file.mapping_ = mapping.owner;
  const uint8_t* bytes = mapping.bytes.data();

  const uint64_t header_size = read_u64_le(bytes);
  if (header_size > kMaxHeaderBytes) {
    corrupt(path, "the header claims " + std::to_string(header_size) + " bytes (limit " +
                      std::to_string(kMaxHeaderBytes) + ")");
  }
  if (header_size > file_size - 8) {
    corrupt(path, "the header claims " + std::to_string(header_size) + " bytes but the file has " +
                      std::to_string(file_size - 8) + " after the length (file truncated?)");
  }
  const std::string_view header_text(reinterpret_cast<const char*>(bytes + 8), header_size);
  if (json_nesting_depth(header_text) > kMaxHeaderNesting) {
    corrupt(path, "the header nests too deep");
  }
  const json header = json::parse(header_text.begin(), header_text.end(), nullptr,
                                  /*allow_exceptions=*/false);
  if (header.is_discarded()) corrupt(path, "the header is not valid JSON");
  if (!header.is_object()) corrupt(path, "the header is not a JSON object");

  file.data_ = bytes + 8 + header_size;
  const uint64_t data_size = file_size - 8 - header_size;
  for (const auto& [name, entry] : header.items()) {
    if (name == kMetadataKey) {
      file.metadata_ = parse_metadata(path, entry);
    } else {
      file.tensors_.push_back(parse_entry(path, name, entry, data_size));
    }
  }
  sort_and_check_overlaps(path, file.tensors_);
  for (size_t i = 0; i < file.tensors_.size(); ++i) file.index_[file.tensors_[i].name] = i;
  return file;
}

const SafetensorsTensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void write_safetensors(const std::string& path, const std::vector<TensorBytesView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name == kMetadataKey || header.contains(t.name)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "cannot write tensor name '" + t.name + "' twice (or the reserved __metadata__)");
    }
    if (safetensors_dtype_size(t.dtype) == 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  "tensor '" + t.name + "' has unknown safetensors dtype '" + t.dtype + "'");
    }
    const auto expected = byte_count(t.dtype, t.shape);
    if (!expected || *expected != t.bytes.size()) {
      throw Error(ErrorCode::kInvalidArgument, "tensor '" + t.name + "' has " +
                                                   std::to_string(t.bytes.size()) +
                                                   " bytes, which does not match dtype " + t.dtype +
                                                   " and shape " + shape_text(t.shape));
    }
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("tensor names and metadata must be valid UTF-8: ") + e.what());
  }
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned

  static std::atomic<unsigned> counter{0};
  const std::string temp_path =
      path + ".partial-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
  {
    std::ofstream out(temp_path, std::ios::binary | std::ios::trunc);
    uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(header_text.size() >> (8 * i));
    out.write(reinterpret_cast<const char*>(length), 8);
    out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
    for (const auto& t : tensors) {
      out.write(reinterpret_cast<const char*>(t.bytes.data()),
                static_cast<std::streamsize>(t.bytes.size()));
    }
    out.close();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temp_path, ignored);
      throw Error(ErrorCode::kIo, "cannot write '" + path + "'", {{"path", path}});
    }
  }
  std::error_code error;
  std::filesystem::rename(temp_path, path, error);
  if (error) {
    std::error_code ignored;
    std::filesystem::remove(temp_path, ignored);
    throw Error(ErrorCode::kIo, "cannot write '" + path + "': " + error.message(),
                {{"path", path}});
  }
}

void write_safetensors(const std::string& path, const std::vector<RawTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<TensorBytesView> views;
  views.reserve(tensors.size());
  for (const auto& t : tensors) views.push_back({t.name, t.dtype, t.shape, t.bytes});
  write_safetensors(path, views, metadata);
}

}  // namespace df::engine

// Zip central-directory reader for stored (uncompressed) entries, with zip64 extensions.
#include "engine/torch_pickle/zip_archive.h"

#include <algorithm>
#include <optional>

#include "core/error.h"

namespace df::engine::torch_pickle {
namespace {

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr size_t kEndRecordSize = 22;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kZip64EndSize = 56;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kMaxCommentSize = 0xFFFF;

[[noreturn]] void corrupt(const std::string& path, const std::string& problem) {
  throw Error(ErrorCode::kCorruptFile,
              "'" + path + "' is not a valid PyTorch zip checkpoint: " + problem, {{"path", path}});
}

// Bounds-checked little-endian reads of the archive.
class Bytes {
 public:
  Bytes(std::span<const uint8_t> data, const std::string& path) : data_(data), path_(path) {}

  uint64_t read(uint64_t offset, size_t width, const char* what) const {
    require(offset, width, what);
    uint64_t value = 0;
    for (size_t i = width; i-- > 0;) value = (value << 8) | data_[offset + i];
    return value;
  }
  void require(uint64_t offset, uint64_t size, const char* what) const {
    if (offset > data_.size() || size > data_.size() - offset) {
      corrupt(path_, std::string(what) + " lies outside the " + std::to_string(data_.size()) +
                         "-byte file (truncated?)");
    }
  }
  std::string text(uint64_t offset, size_t size, const char* what) const {
    require(offset, size, what);
    return {reinterpret_cast<const char*>(data_.data() + offset), size};
  }
  uint64_t size() const { return data_.size(); }
  const std::string& path() const { return path_; }

 private:
  std::span<const uint8_t> data_;
  const std::string& path_;
};

struct Directory {
  uint64_t entries = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
};

std::optional<uint64_t> find_end_record(const Bytes& bytes) {
  if (bytes.size() < kEndRecordSize) return std::nullopt;
  const uint64_t last = bytes.size() - kEndRecordSize;
  const uint64_t first = last > kMaxCommentSize ? last - kMaxCommentSize : 0;
  for (uint64_t at = last + 1; at-- > first;) {
    if (bytes.read(at, 4, "the end record") == kEndSignature) return at;
  }
  return std::nullopt;
}

Directory read_zip64_directory(const Bytes& bytes, uint64_t end_record) {
  if (end_record < kZip64LocatorSize) corrupt(bytes.path(), "the zip64 locator is missing");
  const uint64_t locator = end_record - kZip64LocatorSize;
  if (bytes.read(locator, 4, "the zip64 locator") != kZip64LocatorSignature) {
    corrupt(bytes.path(), "the zip64 locator is missing");
  }
  const uint64_t record = bytes.read(locator + 8, 8, "the zip64 locator");
  bytes.require(record, kZip64EndSize, "the zip64 end record");
  if (bytes.read(record, 4, "the zip64 end record") != kZip64EndSignature) {
    corrupt(bytes.path(), "the zip64 end record has a bad signature");
  }
  return {bytes.read(record + 32, 8, "the zip64 end record"),
          bytes.read(record + 48, 8, "the zip64 end record"),
          bytes.read(record + 40, 8, "the zip64 end record")};
}

Directory read_directory(const Bytes& bytes) {
  const auto end_record = find_end_record(bytes);
  if (!end_record) corrupt(bytes.path(), "no end-of-central-directory record");
  const uint64_t entries = bytes.read(*end_record + 10, 2, "the end record");
  const uint64_t size = bytes.read(*end_record + 12, 4, "the end record");
  const uint64_t offset = bytes.read(*end_record + 16, 4, "the end record");
  if (entries == 0xFFFF || size == 0xFFFFFFFF || offset == 0xFFFFFFFF) {
    return read_zip64_directory(bytes, *end_record);
  }
  return {entries, offset, size};
}

struct CentralEntry {
  std::string name;
  uint64_t size = 0;
  uint64_t compressed_size = 0;
  uint64_t local_header = 0;
  uint64_t next = 0;  // offset of the following central header
};

// Replaces the 32-bit fields that hold 0xFFFFFFFF with the zip64 extra field's 64-bit values.
void apply_zip64_extra(const Bytes& bytes, uint64_t extra, uint64_t extra_size,
                       CentralEntry& entry) {
  for (uint64_t at = extra; at + 4 <= extra + extra_size;) {
    const uint64_t id = bytes.read(at, 2, "an extra field");
    const uint64_t length = bytes.read(at + 2, 2, "an extra field");
    if (at + 4 + length > extra + extra_size) corrupt(bytes.path(), "an extra field overruns its header");
    if (id == kZip64ExtraId) {
      uint64_t field = at + 4;
      for (uint64_t* value : {&entry.size, &entry.compressed_size, &entry.local_header}) {
        if (*value != 0xFFFFFFFF) continue;
        if (field + 8 > at + 4 + length) corrupt(bytes.path(), "a zip64 extra field is too short");
        *value = bytes.read(field, 8, "a zip64 extra field");
        field += 8;
      }
    }
    at += 4 + length;
  }
}

CentralEntry read_central_entry(const Bytes& bytes, uint64_t at) {
  bytes.require(at, kCentralHeaderSize, "a central directory header");
  if (bytes.read(at, 4, "a central directory header") != kCentralHeaderSignature) {
    corrupt(bytes.path(), "a central directory header has a bad signature");
  }
  const uint64_t flags = bytes.read(at + 8, 2, "a central directory header");
  const uint64_t method = bytes.read(at + 10, 2, "a central directory header");
  CentralEntry entry;
  entry.compressed_size = bytes.read(at + 20, 4, "a central directory header");
  entry.size = bytes.read(at + 24, 4, "a central directory header");
  const uint64_t name_size = bytes.read(at + 28, 2, "a central directory header");
  const uint64_t extra_size = bytes.read(at + 30, 2, "a central directory header");
  const uint64_t comment_size = bytes.read(at + 32, 2, "a central directory header");
  entry.local_header = bytes.read(at + 42, 4, "a central directory header");
  entry.name = bytes.text(at + kCentralHeaderSize, name_size, "an entry name");
  bytes.require(at + kCentralHeaderSize + name_size, extra_size + comment_size, "an extra field");
  apply_zip64_extra(bytes, at + kCentralHeaderSize + name_size, extra_size, entry);
  entry.next = at + kCentralHeaderSize + name_size + extra_size + comment_size;
  if (flags & 1) {
    throw Error(ErrorCode::kUnsupported, "'" + bytes.path() + "': entry '" + entry.name +
                                             "' is encrypted", {{"path", bytes.path()}});
  }
  if (method != 0 || entry.compressed_size != entry.size) {
    throw Error(ErrorCode::kUnsupported,
                "'" + bytes.path() + "': entry '" + entry.name +
                    "' is compressed; PyTorch checkpoints store their entries uncompressed",
                {{"path", bytes.path()}});
  }
  return entry;
}

ZipEntry locate_data(const Bytes& bytes, const CentralEntry& entry) {
  const uint64_t at = entry.local_header;
  bytes.require(at, kLocalHeaderSize, "a local header");
  if (bytes.read(at, 4, "a local header") != kLocalHeaderSignature) {
    corrupt(bytes.path(), "the local header of '" + entry.name + "' has a bad signature");
  }
  const uint64_t name_size = bytes.read(at + 26, 2, "a local header");
  const uint64_t extra_size = bytes.read(at + 28, 2, "a local header");
  const uint64_t offset = at + kLocalHeaderSize + name_size + extra_size;
  if (offset > bytes.size() || entry.size > bytes.size() - offset) {
    corrupt(bytes.path(), "entry '" + entry.name + "' claims " + std::to_string(entry.size) +
                              " bytes past the end of the file (truncated?)");
  }
  return {offset, entry.size};
}

}  // namespace

bool looks_like_zip(std::span<const uint8_t> bytes) {
  return bytes.size() >= 4 && bytes[0] == 'P' && bytes[1] == 'K' && bytes[2] == 3 && bytes[3] == 4;
}

std::map<std::string, ZipEntry> read_zip_entries(std::span<const uint8_t> archive,
                                                 const std::string& path) {
  const Bytes bytes(archive, path);
  const Directory directory = read_directory(bytes);
  bytes.require(directory.offset, directory.size, "the central directory");
  if (directory.entries > directory.size / kCentralHeaderSize) {
    corrupt(path, "the central directory claims more entries than it can hold");
  }
  std::map<std::string, ZipEntry> entries;
  uint64_t at = directory.offset;
  for (uint64_t i = 0; i < directory.entries; ++i) {
    const CentralEntry entry = read_central_entry(bytes, at);
    if (entry.next > directory.offset + directory.size) {
      corrupt(path, "the central directory overruns its stated size");
    }
    if (!entries.emplace(entry.name, locate_data(bytes, entry)).second) {
      corrupt(path, "entry '" + entry.name + "' appears twice");
    }
    at = entry.next;
  }
  return entries;
}

}  // namespace df::engine::torch_pickle

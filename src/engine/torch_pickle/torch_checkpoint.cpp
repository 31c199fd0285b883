// PyTorch checkpoints: storages from the zip entries or the legacy stream, tensors flattened by name.
#include "engine/torch_pickle/torch_checkpoint.h"

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <set>
#include <vector>

#include "core/error.h"
#include "engine/torch_pickle/unpickler.h"
#include "engine/torch_pickle/zip_archive.h"

namespace df::engine::torch_pickle {
namespace {

// Deeper than any real checkpoint (hypernetworks nest 4 levels); bounds the dotted names.
constexpr size_t kMaxNesting = 100;
// pickle.dumps of torch.serialization's legacy MAGIC_NUMBER, little-endian.
constexpr std::string_view kLegacyMagic = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
constexpr int64_t kLegacyProtocolVersion = 1001;

[[noreturn]] void corrupt(const std::string& path, const std::string& problem) {
  throw Error(ErrorCode::kCorruptFile, "'" + path + "' is not a valid PyTorch checkpoint: " + problem,
              {{"path", path}});
}

std::optional<uint64_t> checked_multiply(uint64_t a, uint64_t b) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return std::nullopt;
  return a * b;
}

// The safetensors dtype name of a storage type global ("torch.FloatStorage" -> "F32").
std::string storage_dtype(const std::string& global) {
  static const std::map<std::string, std::string, std::less<>> dtypes = {
      {"torch.FloatStorage", "F32"}, {"torch.HalfStorage", "F16"},  {"torch.BFloat16Storage", "BF16"},
      {"torch.DoubleStorage", "F64"}, {"torch.LongStorage", "I64"}, {"torch.IntStorage", "I32"},
      {"torch.ShortStorage", "I16"}, {"torch.CharStorage", "I8"},   {"torch.ByteStorage", "U8"},
      {"torch.BoolStorage", "BOOL"},  {"torch.UntypedStorage", "U8"}};
  const auto it = dtypes.find(global);
  return it == dtypes.end() ? std::string() : it->second;
}

struct Storage {
  std::string dtype;
  uint64_t element_size = 0;
  uint64_t elements = 0;
  uint64_t offset = 0;     // of its bytes in the file, once located
  uint64_t available = 0;  // bytes there
  bool located = false;
};

// The storages named by persistent ids ('storage', type, key, location, numel[, view]).
class StorageTable {
 public:
  explicit StorageTable(const std::string& path) : path_(path) {}

  Value load(const Value& id, const Pickle& pickle) {
    if (id.kind != Kind::kTuple) corrupt(path_, "a persistent id is not a tuple");
    const auto& items = pickle.items(id);
    if (items.size() < 5 || items[0].kind != Kind::kString || pickle.text(items[0]) != "storage" ||
        items[1].kind != Kind::kGlobal || items[2].kind != Kind::kString ||
        items[4].kind != Kind::kInt || items[4].integer < 0) {
      corrupt(path_, "a persistent id is not ('storage', type, key, location, size)");
    }
    if (items.size() > 5 && items[5].kind != Kind::kNone) {
      throw Error(ErrorCode::kUnsupported,
                  "'" + path_ + "' holds storage views of the oldest legacy format; re-save it",
                  {{"path", path_}});
    }
    const std::string& key = pickle.text(items[2]);
    const auto [it, inserted] = index_.emplace(key, storages_.size());
    if (inserted) storages_.push_back(describe(pickle.text(items[1]), items[4].integer, key));
    return {Kind::kStorage, 0, 0, it->second};
  }
  PersistentLoad loader() {
    return [this](const Value& id, const Pickle& pickle) { return load(id, pickle); };
  }
  const std::map<std::string, size_t>& index() const { return index_; }
  std::vector<Storage>& storages() { return storages_; }

 private:
  Storage describe(const std::string& type, int64_t elements, const std::string& key) const {
    Storage storage;
    storage.dtype = storage_dtype(type);
    storage.element_size = safetensors_dtype_size(storage.dtype);
    if (storage.element_size == 0) corrupt(path_, "storage '" + key + "' has type " + type);
    storage.elements = static_cast<uint64_t>(elements);
    if (!checked_multiply(storage.elements, storage.element_size)) {
      corrupt(path_, "storage '" + key + "' claims too many elements");
    }
    return storage;
  }

  const std::string& path_;
  std::vector<Storage> storages_;
  std::map<std::string, size_t> index_;
};

void locate(Storage& storage, uint64_t offset, uint64_t available, const std::string& key,
            const std::string& path) {
  const uint64_t needed = storage.elements * storage.element_size;
  if (needed > available) {
    corrupt(path, "storage '" + key + "' claims " + std::to_string(needed) + " bytes but has " +
                      std::to_string(available));
  }
  storage.offset = offset;
  storage.available = available;
  storage.located = true;
}

PersistentLoad refuse_persistent_ids(const std::string& path) {
  return [&path](const Value&, const Pickle&) -> Value {
    corrupt(path, "a header pickle refers to a storage");
  };
}

// ---- flattening the unpickled object into named tensors ----

// The shortest decimal that reads back as `real`, with ".0" on whole numbers as Python prints.
std::string shortest_text(double real) {
  char text[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof text, "%.*g", precision, real);
    if (std::strtod(text, nullptr) == real) break;
  }
  const std::string result = text;
  return result.find_first_of(".ein") == std::string::npos ? result + ".0" : result;
}

std::string python_text(const Value& value, const Pickle& pickle) {
  switch (value.kind) {
    case Kind::kString:
      return pickle.text(value);
    case Kind::kBool:
      return value.integer ? "True" : "False";
    case Kind::kInt:
      return std::to_string(value.integer);
    default:
      return shortest_text(value.real);
  }
}

bool is_scalar(Kind kind) {
  return kind == Kind::kString || kind == Kind::kBool || kind == Kind::kInt || kind == Kind::kFloat;
}

std::optional<Value> dict_value(const Pickle& pickle, const Value& dict, std::string_view key) {
  const auto& items = pickle.items(dict);
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    if (items[i].kind == Kind::kString && pickle.text(items[i]) == key) return items[i + 1];
  }
  return std::nullopt;
}

// The weights inside a wrapper: SD's {"state_dict": ...}, ESRGAN's {"params_ema"|"params": ...}.
Value unwrap(const Pickle& pickle, const Value& root) {
  if (root.kind != Kind::kDict) return root;
  for (const char* wrapper : {"state_dict", "params_ema", "params"}) {
    const auto inner = dict_value(pickle, root, wrapper);
    if (inner && inner->kind == Kind::kDict) return *inner;
  }
  return root;
}

class Flattener {
 public:
  Flattener(const Pickle& pickle, std::vector<Storage>& storages, const std::string& path,
            TorchCheckpoint& out)
      : pickle_(pickle), storages_(storages), path_(path), out_(out),
        visited_(pickle.containers.size(), false) {}

  void run(const Value& root) {
    pending_.push_back({root, "", 0});
    while (!pending_.empty()) {
      Pending next = std::move(pending_.back());
      pending_.pop_back();
      visit(next);
    }
  }

 private:
  struct Pending {
    Value value;
    std::string name;
    size_t depth;
  };

  static std::string join(const std::string& prefix, const std::string& key) {
    return prefix.empty() ? key : prefix + "." + key;
  }
  void visit(const Pending& item) {
    const Value& value = item.value;
    if (value.kind == Kind::kTensor) return add_tensor(item.name, pickle_.tensors[value.ref]);
    if (is_scalar(value.kind)) {
      if (!item.name.empty()) out_.metadata[item.name] = python_text(value, pickle_);
      return;
    }
    if (value.kind != Kind::kDict && value.kind != Kind::kList && value.kind != Kind::kTuple) return;
    if (visited_[value.ref]) return;  // shared or cyclic: its tensors are named once
    visited_[value.ref] = true;
    if (item.depth == kMaxNesting) {
      corrupt(path_, "its containers nest deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    const auto& items = pickle_.items(value);
    if (value.kind == Kind::kDict) {
      for (size_t i = items.size(); i >= 2; i -= 2) {
        const Value& key = items[i - 2];
        if (key.kind != Kind::kString && key.kind != Kind::kInt) continue;
        pending_.push_back({items[i - 1], join(item.name, python_text(key, pickle_)), item.depth + 1});
      }
      return;
    }
    for (size_t i = items.size(); i-- > 0;) {
      pending_.push_back({items[i], join(item.name, std::to_string(i)), item.depth + 1});
    }
  }

  void add_tensor(const std::string& name, const TensorRecord& record) {
    Storage& storage = storages_.at(record.storage);
    if (!storage.located) corrupt(path_, "tensor '" + name + "' uses a storage the file lacks");
    TensorInfo info;
    info.name = name;
    info.dtype = storage.dtype;
    info.shape = record.size;
    info.strides = record.stride;
    const auto span = element_span(info, record.storage_offset);
    const auto start = checked_multiply(static_cast<uint64_t>(record.storage_offset), storage.element_size);
    if (!span || !start || *start > storage.available || *span > storage.available - *start) {
      corrupt(path_, "tensor '" + name + "' reaches past the end of its storage");
    }
    info.offset = storage.offset + *start;
    info.span = *span;
    if (!seen_.insert(name).second) {
      std::erase_if(out_.tensors, [&](const TensorInfo& other) { return other.name == name; });
    }
    out_.tensors.push_back(std::move(info));
  }
  // Bytes from the first element to the end of the last; nullopt when the layout is invalid.
  std::optional<uint64_t> element_span(const TensorInfo& info, int64_t storage_offset) const {
    if (info.shape.size() != info.strides.size() || storage_offset < 0) return std::nullopt;
    uint64_t last = 0;
    for (size_t d = 0; d < info.shape.size(); ++d) {
      if (info.shape[d] < 0 || info.strides[d] < 0) return std::nullopt;
      if (info.shape[d] == 0) return 0;
      const auto reach = checked_multiply(static_cast<uint64_t>(info.shape[d] - 1),
                                          static_cast<uint64_t>(info.strides[d]));
      if (!reach || *reach > std::numeric_limits<uint64_t>::max() / 2 - last) return std::nullopt;
      last += *reach;
    }
    return checked_multiply(last + 1, safetensors_dtype_size(info.dtype));
  }

  const Pickle& pickle_;
  std::vector<Storage>& storages_;
  const std::string& path_;
  TorchCheckpoint& out_;
  std::vector<bool> visited_;
  std::vector<Pending> pending_;
  std::set<std::string> seen_;
};

// The plain strings and numbers beside a wrapper ("global_step", "epoch", ...) as metadata.
void wrapper_metadata(const Pickle& pickle, TorchCheckpoint& out) {
  const auto& items = pickle.items(pickle.root);
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    if (items[i].kind == Kind::kString && is_scalar(items[i + 1].kind)) {
      out.metadata[pickle.text(items[i])] = python_text(items[i + 1], pickle);
    }
  }
}

void flatten(const Pickle& pickle, std::vector<Storage>& storages, const std::string& path,
             TorchCheckpoint& out) {
  const Value weights = unwrap(pickle, pickle.root);
  if (weights.kind != pickle.root.kind || weights.ref != pickle.root.ref) wrapper_metadata(pickle, out);
  Flattener(pickle, storages, path, out).run(weights);
}

// ---- the zip format ----

// The "<archive>/" prefix under which torch.save writes data.pkl.
std::string archive_prefix(const std::map<std::string, ZipEntry>& entries, const std::string& path) {
  std::optional<std::string> prefix;
  for (const auto& [name, entry] : entries) {
    const size_t slash = name.find('/');
    if (slash == std::string::npos || name.substr(slash + 1) != "data.pkl") continue;
    if (prefix) corrupt(path, "the archive holds more than one data.pkl");
    prefix = name.substr(0, slash + 1);
  }
  if (!prefix) corrupt(path, "the archive holds no <name>/data.pkl");
  return *prefix;
}

void check_byte_order(std::span<const uint8_t> bytes, const std::map<std::string, ZipEntry>& entries,
                      const std::string& prefix, const std::string& path) {
  const auto it = entries.find(prefix + "byteorder");
  if (it == entries.end()) return;  // older files are little-endian
  const auto order = bytes.subspan(it->second.offset, it->second.size);
  if (std::string_view(reinterpret_cast<const char*>(order.data()), order.size()) != "little") {
    throw Error(ErrorCode::kUnsupported, "'" + path + "' stores big-endian tensors", {{"path", path}});
  }
}

TorchCheckpoint read_zip(std::span<const uint8_t> bytes, const std::string& path) {
  const auto entries = read_zip_entries(bytes, path);
  const std::string prefix = archive_prefix(entries, path);
  check_byte_order(bytes, entries, prefix, path);
  const ZipEntry& pickle_entry = entries.at(prefix + "data.pkl");
  StorageTable table(path);
  const Pickle pickle =
      unpickle(bytes.subspan(pickle_entry.offset, pickle_entry.size), table.loader(), path).pickle;
  for (const auto& [key, index] : table.index()) {
    const auto entry = entries.find(prefix + "data/" + key);
    if (entry == entries.end()) corrupt(path, "storage '" + key + "' has no data/" + key + " entry");
    locate(table.storages()[index], entry->second.offset, entry->second.size, key, path);
  }
  TorchCheckpoint checkpoint;
  checkpoint.format = WeightsFormat::kPytorchZip;
  flatten(pickle, table.storages(), path, checkpoint);
  return checkpoint;
}

// ---- the legacy format ----

// Reads the header pickles (magic number, protocol version, system info) and returns the offset
// after them.
size_t read_legacy_header(std::span<const uint8_t> bytes, const std::string& path) {
  const PersistentLoad none = refuse_persistent_ids(path);
  size_t at = 0;
  const auto next = [&]() {
    Unpickled part = unpickle(bytes.subspan(at), none, path);
    at += part.length;
    return part.pickle;
  };
  const Pickle magic = next();
  if (magic.root.kind != Kind::kBigInt || magic.text(magic.root) != kLegacyMagic) {
    corrupt(path, "it starts with a pickle but not with PyTorch's magic number");
  }
  const Pickle version = next();
  if (version.root.kind != Kind::kInt || version.root.integer != kLegacyProtocolVersion) {
    throw Error(ErrorCode::kUnsupported, "'" + path + "' uses an unknown legacy protocol version",
                {{"path", path}});
  }
  const Pickle info = next();
  const auto little = info.root.kind == Kind::kDict ? dict_value(info, info.root, "little_endian")
                                                    : std::nullopt;
  if (!little || little->kind != Kind::kBool || little->integer != 1) {
    throw Error(ErrorCode::kUnsupported, "'" + path + "' stores big-endian tensors", {{"path", path}});
  }
  return at;
}

uint64_t read_u64_le(std::span<const uint8_t> bytes, uint64_t at) {
  uint64_t value = 0;
  for (size_t i = 8; i-- > 0;) value = (value << 8) | bytes[at + i];
  return value;
}

// After the keys pickle: for each key, an int64 element count and the storage's bytes.
void locate_legacy_storages(std::span<const uint8_t> bytes, size_t at, const Pickle& keys,
                            StorageTable& table, const std::string& path) {
  if (keys.root.kind != Kind::kList) corrupt(path, "the storage key list is not a list");
  for (const Value& key_value : keys.items(keys.root)) {
    if (key_value.kind != Kind::kString) corrupt(path, "a storage key is not a string");
    const std::string& key = keys.text(key_value);
    const auto index = table.index().find(key);
    if (index == table.index().end()) corrupt(path, "storage '" + key + "' is stored but never used");
    Storage& storage = table.storages()[index->second];
    if (storage.located) corrupt(path, "storage '" + key + "' is stored twice");
    if (bytes.size() - at < 8) corrupt(path, "storage '" + key + "' is cut off (truncated?)");
    const uint64_t count = read_u64_le(bytes, at);
    at += 8;
    if (count != storage.elements) {
      corrupt(path, "storage '" + key + "' holds " + std::to_string(count) + " elements but claims " +
                        std::to_string(storage.elements));
    }
    const uint64_t size = storage.elements * storage.element_size;
    if (size > bytes.size() - at) corrupt(path, "storage '" + key + "' is cut off (truncated?)");
    locate(storage, at, size, key, path);
    at += size;
  }
}

TorchCheckpoint read_legacy(std::span<const uint8_t> bytes, const std::string& path) {
  size_t at = read_legacy_header(bytes, path);
  StorageTable table(path);
  Unpickled main = unpickle(bytes.subspan(at), table.loader(), path);
  at += main.length;
  const Unpickled keys = unpickle(bytes.subspan(at), refuse_persistent_ids(path), path);
  at += keys.length;
  locate_legacy_storages(bytes, at, keys.pickle, table, path);
  TorchCheckpoint checkpoint;
  checkpoint.format = WeightsFormat::kPytorchLegacy;
  flatten(main.pickle, table.storages(), path, checkpoint);
  return checkpoint;
}

}  // namespace

bool starts_like_pickle(std::span<const uint8_t> bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x80 && bytes[1] >= 2 && bytes[1] <= 5;
}

bool starts_like_legacy_checkpoint(std::span<const uint8_t> bytes) {
  if (!starts_like_pickle(bytes)) return false;
  constexpr uint8_t kFrame = 0x95;
  constexpr size_t kFrameSize = 9;
  size_t at = 2;
  if (bytes.size() > at && bytes[at] == kFrame) at += kFrameSize;
  const std::string_view long1_of_magic("\x8a\x0a", 2);
  if (bytes.size() < at + long1_of_magic.size() + kLegacyMagic.size()) return false;
  const std::string_view start(reinterpret_cast<const char*>(bytes.data() + at),
                               long1_of_magic.size() + kLegacyMagic.size());
  return start.substr(0, 2) == long1_of_magic && start.substr(2) == kLegacyMagic;
}

TorchCheckpoint read_torch_checkpoint(std::span<const uint8_t> bytes, const std::string& path) {
  if (looks_like_zip(bytes)) return read_zip(bytes, path);
  if (starts_like_pickle(bytes)) return read_legacy(bytes, path);
  corrupt(path, "it is neither a zip archive nor a pickle stream");
}

}  // namespace df::engine::torch_pickle

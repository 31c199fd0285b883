// Hand-built pickle, zip and PyTorch checkpoint bytes for the weights-reader tests.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace df::test {

// Little-endian bytes of an integer.
inline std::string le_bytes(uint64_t value, size_t width) {
  std::string bytes;
  for (size_t i = 0; i < width; ++i) bytes.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  return bytes;
}

// Pickle opcodes with their operands, appended in order.
class PickleBytes {
 public:
  PickleBytes& proto(int version) { return raw(std::string("\x80", 1) + char(version)); }
  PickleBytes& op(char opcode) { return raw(std::string(1, opcode)); }
  PickleBytes& op(uint8_t opcode) { return op(static_cast<char>(opcode)); }
  PickleBytes& text(const std::string& s) { return op('X').raw(le_bytes(s.size(), 4) + s); }
  PickleBytes& int1(uint8_t value) { return op('K').raw(std::string(1, char(value))); }
  PickleBytes& global(const std::string& module, const std::string& name) {
    return op('c').raw(module + "\n" + name + "\n");
  }
  PickleBytes& raw(const std::string& bytes) {
    bytes_ += bytes;
    return *this;
  }
  // _rebuild_tensor_v2(('storage', <type>, key, 'cpu', numel), offset, size, stride, False,
  // OrderedDict()) for a 1- or 2-D tensor.
  PickleBytes& tensor(const std::string& storage_type, const std::string& key, uint8_t numel,
                      uint8_t offset, const std::vector<uint8_t>& size,
                      const std::vector<uint8_t>& stride, bool legacy_view_field = false) {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    op('(').text("storage").global("torch", storage_type).text(key).text("cpu").int1(numel);
    if (legacy_view_field) op('N');
    op('t').op('Q').int1(offset);
    small_tuple(size).small_tuple(stride);
    op(uint8_t{0x89}).global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
    return *this;
  }
  PickleBytes& small_tuple(const std::vector<uint8_t>& values) {
    op('(');
    for (uint8_t v : values) int1(v);
    return op('t');
  }
  std::string str() const { return bytes_ + "."; }

 private:
  std::string bytes_;
};

// A zip archive of stored entries (CRCs left zero: the reader does not check them). With
// `zip64`, every size and offset lives in zip64 extra fields and end records, as in checkpoints
// over 4 GiB.
inline std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& entries,
                              uint16_t method = 0, bool zip64 = false) {
  const uint64_t in_extra = 0xFFFFFFFF;
  std::string archive, directory;
  for (const auto& [name, data] : entries) {
    const uint64_t local = archive.size();
    const uint64_t size32 = zip64 ? in_extra : data.size();
    const std::string local_extra =
        zip64 ? le_bytes(1, 2) + le_bytes(16, 2) + le_bytes(data.size(), 8) + le_bytes(data.size(), 8) : "";
    const std::string central_extra =
        zip64 ? le_bytes(1, 2) + le_bytes(24, 2) + le_bytes(data.size(), 8) + le_bytes(data.size(), 8) +
                    le_bytes(local, 8)
              : "";
    archive += le_bytes(0x04034b50, 4) + le_bytes(45, 2) + le_bytes(0, 2) + le_bytes(method, 2) +
               le_bytes(0, 4) + le_bytes(0, 4) + le_bytes(size32, 4) + le_bytes(size32, 4) +
               le_bytes(name.size(), 2) + le_bytes(local_extra.size(), 2) + name + local_extra + data;
    directory += le_bytes(0x02014b50, 4) + le_bytes(45, 2) + le_bytes(45, 2) + le_bytes(0, 2) +
                 le_bytes(method, 2) + le_bytes(0, 4) + le_bytes(0, 4) + le_bytes(size32, 4) +
                 le_bytes(size32, 4) + le_bytes(name.size(), 2) + le_bytes(central_extra.size(), 2) +
                 le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 4) +
                 le_bytes(zip64 ? in_extra : local, 4) + name + central_extra;
  }
  const uint64_t directory_offset = archive.size();
  archive += directory;
  if (zip64) {
    const uint64_t record = archive.size();
    archive += le_bytes(0x06064b50, 4) + le_bytes(44, 8) + le_bytes(45, 2) + le_bytes(45, 2) +
               le_bytes(0, 4) + le_bytes(0, 4) + le_bytes(entries.size(), 8) +
               le_bytes(entries.size(), 8) + le_bytes(directory.size(), 8) +
               le_bytes(directory_offset, 8);
    archive += le_bytes(0x07064b50, 4) + le_bytes(0, 4) + le_bytes(record, 8) + le_bytes(1, 4);
  }
  archive += le_bytes(0x06054b50, 4) + le_bytes(0, 2) + le_bytes(0, 2) +
             le_bytes(zip64 ? 0xFFFF : entries.size(), 2) +
             le_bytes(zip64 ? 0xFFFF : entries.size(), 2) +
             le_bytes(zip64 ? in_extra : directory.size(), 4) +
             le_bytes(zip64 ? in_extra : directory_offset, 4) + le_bytes(0, 2);
  return archive;
}

// The float32 bytes of 0, 1, 2, ...
inline std::string float_bytes(size_t count) {
  std::string bytes;
  for (size_t i = 0; i < count; ++i) {
    const float value = static_cast<float>(i);
    bytes.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  return bytes;
}

// torch.save's zip form of `pickle` with one float storage "0" of `floats` elements.
inline std::string zip_checkpoint(const std::string& pickle, size_t floats, bool zip64 = false) {
  return stored_zip({{"archive/data.pkl", pickle},
                     {"archive/byteorder", "little"},
                     {"archive/data/0", float_bytes(floats)},
                     {"archive/version", "3\n"}},
                    0, zip64);
}

// {"w": 2x2 float32 tensor [[0, 1], [2, 3]]} as torch.save's zip form.
inline std::string tiny_zip_checkpoint(bool zip64 = false) {
  PickleBytes pickle;
  pickle.proto(2).op('}').op('(').text("w").tensor("FloatStorage", "0", 4, 0, {2, 2}, {2, 1}).op('u');
  return zip_checkpoint(pickle.str(), 4, zip64);
}

// The same state dict in torch.save's legacy form (magic, protocol, system info, the pickle,
// the storage keys, the storage's element count and bytes).
inline std::string tiny_legacy_checkpoint() {
  const std::string magic("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
  const std::string protocol("\x80\x02M\xe9\x03.", 6);
  PickleBytes info;
  info.proto(2).op('}').op('(').text("little_endian").op(uint8_t{0x88}).op('u');
  PickleBytes main;
  main.proto(2).op('}').op('(').text("w").tensor("FloatStorage", "k0", 4, 0, {2, 2}, {2, 1}, true).op('u');
  PickleBytes keys;
  keys.proto(2).op(']').text("k0").op('a');
  return magic + protocol + info.str() + main.str() + keys.str() + le_bytes(4, 8) + float_bytes(4);
}

// A pickle that would run os.system("touch MARKER") when a normal unpickler loads it.
inline std::string hostile_pickle() {
  PickleBytes pickle;
  pickle.proto(2).global("os", "system").text("touch MARKER").op(uint8_t{0x85}).op('R');
  return pickle.str();
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace df::test

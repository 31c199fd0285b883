// A restricted, non-executing pickle interpreter for PyTorch weights (protocols 2 to 5).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace df::engine::torch_pickle {

enum class Kind {
  kNone,
  kBool,
  kInt,
  kBigInt,      // an integer beyond int64; its little-endian two's-complement bytes in text
  kFloat,
  kString,      // UTF-8 (or a Python 2 byte string)
  kBytes,
  kGlobal,      // an allowed "module.name"
  kNumpyDtype,  // numpy.dtype(code): the code ("f8", "i4", ...) in text
  kList,
  kTuple,
  kDict,        // items hold key, value, key, value, ...
  kSet,
  kStorage,     // ref: an index the persistent loader chose
  kTensor,      // ref: an index into Pickle::tensors
};

// One pickled value. Containers and strings live in the Pickle's arenas (ref), so copying a
// value never copies its contents and a deep or cyclic structure is never walked recursively.
struct Value {
  Kind kind = Kind::kNone;
  int64_t integer = 0;  // kBool (0/1), kInt
  double real = 0;      // kFloat
  size_t ref = 0;       // containers: Pickle::containers; string kinds: Pickle::strings
};

// torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, ...): a view of a storage.
struct TensorRecord {
  size_t storage = 0;
  int64_t storage_offset = 0;  // in elements
  std::vector<int64_t> size;
  std::vector<int64_t> stride;  // in elements
};

struct Pickle {
  Value root;
  std::vector<std::vector<Value>> containers;
  std::vector<std::string> strings;
  std::vector<TensorRecord> tensors;

  const std::string& text(const Value& value) const { return strings[value.ref]; }
  const std::vector<Value>& items(const Value& value) const { return containers[value.ref]; }
};

// Turns a persistent id (BINPERSID's operand, a tuple for PyTorch) into a kStorage value; throws
// df::Error for ids it does not accept.
using PersistentLoad = std::function<Value(const Value& id, const Pickle& pickle)>;

struct Unpickled {
  Pickle pickle;
  size_t length = 0;  // bytes up to and including STOP
};

// Interprets the pickle at the start of `bytes`. Only data opcodes run; GLOBAL and STACK_GLOBAL
// accept the few names PyTorch's weights_only loader allows (tensor and parameter rebuilding,
// storage types, OrderedDict, torch.Size, numpy scalars), and REDUCE/NEWOBJ/BUILD act only on
// those. Throws Error(kUnsafeFormat) naming any other global or an object-building opcode
// (INST, OBJ, EXT*, NEWOBJ_EX), Error(kCorruptFile) for a malformed or truncated pickle and
// Error(kUnsupported) for a protocol above 5. `path` names the file in messages.
Unpickled unpickle(std::span<const uint8_t> bytes, const PersistentLoad& persistent_load,
                   const std::string& path);

}  // namespace df::engine::torch_pickle

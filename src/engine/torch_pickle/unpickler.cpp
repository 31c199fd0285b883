// The restricted pickle interpreter: a stack machine over data opcodes and a short allow-list.
#include "engine/torch_pickle/unpickler.h"

#include <bit>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>

#include "core/error.h"

namespace df::engine::torch_pickle {
namespace {

// Far beyond the few hundred thousand opcodes of the largest real state dicts; bounds memory.
constexpr size_t kMaxOpcodes = 16u * 1024 * 1024;
constexpr int kHighestProtocol = 5;

enum class Callable {
  kOrderedDict,
  kRebuildTensor,
  kRebuildParameter,
  kSize,
  kCodecsEncode,
  kNumpyScalar,
  kNumpyDtype,
  kStorageType,  // referenced by persistent ids, never called
};

const std::map<std::string, Callable, std::less<>>& allowed_globals() {
  static const std::map<std::string, Callable, std::less<>> globals = [] {
    std::map<std::string, Callable, std::less<>> table = {
        {"collections.OrderedDict", Callable::kOrderedDict},
        {"torch._utils._rebuild_tensor", Callable::kRebuildTensor},
        {"torch._utils._rebuild_tensor_v2", Callable::kRebuildTensor},
        {"torch._utils._rebuild_parameter", Callable::kRebuildParameter},
        {"torch._utils._rebuild_parameter_with_state", Callable::kRebuildParameter},
        {"torch.Size", Callable::kSize},
        {"_codecs.encode", Callable::kCodecsEncode},
        {"numpy.core.multiarray.scalar", Callable::kNumpyScalar},
        {"numpy._core.multiarray.scalar", Callable::kNumpyScalar},
        {"numpy.dtype", Callable::kNumpyDtype},
        {"torch.UntypedStorage", Callable::kStorageType}};
    for (const char* type : {"Float", "Half", "BFloat16", "Double", "Long", "Int", "Short", "Char",
                             "Byte", "Bool"}) {
      table.emplace(std::string("torch.") + type + "Storage", Callable::kStorageType);
    }
    return table;
  }();
  return globals;
}

class Machine {
 public:
  Machine(std::span<const uint8_t> bytes, const PersistentLoad& persistent_load,
          const std::string& path)
      : bytes_(bytes), persistent_load_(persistent_load), path_(path) {}

  Unpickled run() {
    for (size_t opcodes = 0;; ++opcodes) {
      if (opcodes == kMaxOpcodes) corrupt("it has more than " + std::to_string(kMaxOpcodes) + " opcodes");
      const uint8_t opcode = read_u8();
      if (opcode == '.') break;
      step(opcode);
    }
    if (stack_.empty() || !marks_.empty()) corrupt("STOP leaves no single result");
    Unpickled result;
    result.pickle = std::move(pickle_);
    result.pickle.root = stack_.back();
    result.length = pos_;
    return result;
  }

 private:
  [[noreturn]] void corrupt(const std::string& problem) const {
    throw Error(ErrorCode::kCorruptFile, "'" + path_ + "' holds an invalid pickle: " + problem,
                {{"path", path_}});
  }
  [[noreturn]] void unsafe(const std::string& problem) const {
    throw Error(ErrorCode::kUnsafeFormat,
                "'" + path_ + "' was refused: its pickle " + problem +
                    "; only plain weights (tensors, numbers, strings, lists and dicts) are loaded",
                {{"path", path_}});
  }

  // ---- input ----
  std::span<const uint8_t> take(uint64_t count) {
    if (count > bytes_.size() - pos_) {
      corrupt("it wants " + std::to_string(count) + " bytes at offset " + std::to_string(pos_) +
              " but only " + std::to_string(bytes_.size() - pos_) + " remain (truncated?)");
    }
    auto span = bytes_.subspan(pos_, count);
    pos_ += count;
    return span;
  }
  uint8_t read_u8() { return take(1)[0]; }
  uint64_t read_le(size_t width) {
    const auto span = take(width);
    uint64_t value = 0;
    for (size_t i = width; i-- > 0;) value = (value << 8) | span[i];
    return value;
  }
  std::string read_text(uint64_t count) {
    const auto span = take(count);
    return {reinterpret_cast<const char*>(span.data()), span.size()};
  }
  std::string read_line() {
    std::string line;
    for (uint8_t c = read_u8(); c != '\n'; c = read_u8()) line.push_back(static_cast<char>(c));
    return line;
  }

  // ---- values ----
  Value string_value(Kind kind, std::string text) {
    pickle_.strings.push_back(std::move(text));
    return {kind, 0, 0, pickle_.strings.size() - 1};
  }
  Value container(Kind kind, std::vector<Value> items = {}) {
    pickle_.containers.push_back(std::move(items));
    return {kind, 0, 0, pickle_.containers.size() - 1};
  }
  static Value integer(int64_t value) { return {Kind::kInt, value, 0, 0}; }
  const std::string& text(const Value& value) const { return pickle_.strings[value.ref]; }
  const std::vector<Value>& tuple_items(const Value& value, const char* what) const {
    if (value.kind != Kind::kTuple) corrupt(std::string(what) + " is not a tuple");
    return pickle_.containers[value.ref];
  }

  // ---- stack ----
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Value value) { stack_.push_back(value); }
  Value pop() {
    if (stack_.size() <= floor()) corrupt("an opcode pops from an empty stack");
    Value value = stack_.back();
    stack_.pop_back();
    return value;
  }
  Value& top() {
    if (stack_.size() <= floor()) corrupt("an opcode needs a value on an empty stack");
    return stack_.back();
  }
  std::vector<Value> pop_mark() {
    if (marks_.empty()) corrupt("an opcode needs a MARK that is not there");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Value> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  std::vector<Value>& mutable_items(const Value& target, Kind kind, const char* opcode) {
    if (target.kind != kind) corrupt(std::string(opcode) + " targets the wrong kind of value");
    return pickle_.containers[target.ref];
  }
  void extend(Kind kind, const char* opcode, const std::vector<Value>& items) {
    if (kind == Kind::kDict && items.size() % 2 != 0) corrupt("SETITEMS has an odd item count");
    auto& target = mutable_items(top(), kind, opcode);
    target.insert(target.end(), items.begin(), items.end());
  }

  // ---- memo ----
  void memo_put(uint64_t index) { memo_[index] = top(); }
  Value memo_get(uint64_t index) const {
    const auto it = memo_.find(index);
    if (it == memo_.end()) corrupt("memo entry " + std::to_string(index) + " is read before it is written");
    return it->second;
  }

  // ---- numbers and text ----
  Value long_value(uint64_t size) {
    const auto span = take(size);
    if (size > 8) return string_value(Kind::kBigInt, {reinterpret_cast<const char*>(span.data()), span.size()});
    uint64_t value = 0;
    for (size_t i = size; i-- > 0;) value = (value << 8) | span[i];
    if (size > 0 && size < 8 && (span[size - 1] & 0x80)) value |= ~uint64_t{0} << (8 * size);
    return integer(static_cast<int64_t>(value));
  }
  double read_float_be() {
    uint64_t bits = 0;
    for (uint8_t byte : take(8)) bits = (bits << 8) | byte;
    return std::bit_cast<double>(bits);
  }
  Value signed_length_string() {
    const auto length = static_cast<int32_t>(read_le(4));
    if (length < 0) corrupt("a string has a negative length");
    return string_value(Kind::kString, read_text(static_cast<uint64_t>(length)));
  }

  // ---- globals and calls ----
  Value global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    if (!allowed_globals().contains(full)) {
      unsafe("references the global '" + full + "', which a weights file never needs");
    }
    return string_value(Kind::kGlobal, full);
  }
  Callable callable(const Value& target, const char* opcode) const {
    if (target.kind != Kind::kGlobal) {
      unsafe(std::string("applies ") + opcode + " to something that is not an allowed function");
    }
    return allowed_globals().find(text(target))->second;
  }
  std::vector<int64_t> int_tuple(const Value& value, const char* what) const {
    std::vector<int64_t> numbers;
    for (const Value& item : tuple_items(value, what)) {
      if (item.kind != Kind::kInt) corrupt(std::string(what) + " holds a non-integer");
      numbers.push_back(item.integer);
    }
    return numbers;
  }
  Value rebuild_tensor(const std::vector<Value>& args) {
    if (args.size() < 4 || args[0].kind != Kind::kStorage || args[1].kind != Kind::kInt) {
      corrupt("a tensor is rebuilt from arguments that are not (storage, offset, size, stride, ...)");
    }
    pickle_.tensors.push_back(
        {args[0].ref, args[1].integer, int_tuple(args[2], "a tensor size"), int_tuple(args[3], "a tensor stride")});
    return {Kind::kTensor, 0, 0, pickle_.tensors.size() - 1};
  }
  Value latin1_bytes(const std::vector<Value>& args) {
    if (args.size() != 2 || args[0].kind != Kind::kString || args[1].kind != Kind::kString ||
        (text(args[1]) != "latin1" && text(args[1]) != "latin-1")) {
      unsafe("calls _codecs.encode other than as (text, 'latin1')");
    }
    std::string bytes;
    const std::string& utf8 = text(args[0]);
    for (size_t i = 0; i < utf8.size(); ++i) {
      const auto c = static_cast<uint8_t>(utf8[i]);
      if (c < 0x80) {
        bytes.push_back(static_cast<char>(c));
      } else if ((c == 0xC2 || c == 0xC3) && i + 1 < utf8.size()) {
        bytes.push_back(static_cast<char>(((c & 0x03) << 6) | (static_cast<uint8_t>(utf8[++i]) & 0x3F)));
      } else {
        corrupt("_codecs.encode gets text outside latin-1");
      }
    }
    return string_value(Kind::kBytes, std::move(bytes));
  }
  Value numpy_scalar(const std::vector<Value>& args) {
    if (args.size() != 2 || args[0].kind != Kind::kNumpyDtype || args[1].kind != Kind::kBytes) {
      corrupt("a numpy scalar is not (dtype, bytes)");
    }
    const std::string& code = text(args[0]);
    const std::string& raw = text(args[1]);
    const auto size = code.size() == 2 ? static_cast<size_t>(code[1] - '0') : 0;
    if (raw.size() != size || (size != 1 && size != 2 && size != 4 && size != 8) ||
        (code[0] != 'f' && code[0] != 'i' && code[0] != 'u' && code[0] != 'b') ||
        (code[0] == 'f' && size < 4)) {
      throw Error(ErrorCode::kUnsupported,
                  "'" + path_ + "' holds a numpy scalar of dtype '" + code + "', which is not supported",
                  {{"path", path_}});
    }
    uint64_t bits = 0;
    for (size_t i = size; i-- > 0;) bits = (bits << 8) | static_cast<uint8_t>(raw[i]);
    if (code[0] == 'f') {
      const double real = size == 8 ? std::bit_cast<double>(bits)
                                    : std::bit_cast<float>(static_cast<uint32_t>(bits));
      return {Kind::kFloat, 0, real, 0};
    }
    if (code[0] == 'i' && size < 8 && (bits >> (8 * size - 1)) & 1) bits |= ~uint64_t{0} << (8 * size);
    return code[0] == 'b' ? Value{Kind::kBool, bits != 0, 0, 0} : integer(static_cast<int64_t>(bits));
  }
  Value numpy_dtype(const std::vector<Value>& args) {
    if (args.empty() || args[0].kind != Kind::kString) corrupt("numpy.dtype gets no type code");
    return string_value(Kind::kNumpyDtype, text(args[0]));
  }
  Value call(Callable function, const std::vector<Value>& args, const std::string& name) {
    switch (function) {
      case Callable::kOrderedDict:
        if (!args.empty()) unsafe("calls collections.OrderedDict with arguments");
        return container(Kind::kDict);
      case Callable::kRebuildTensor:
        return rebuild_tensor(args);
      case Callable::kRebuildParameter:
        if (args.empty() || args[0].kind != Kind::kTensor) corrupt("a parameter wraps no tensor");
        return args[0];
      case Callable::kSize:
        if (args.size() != 1 || args[0].kind != Kind::kTuple) corrupt("torch.Size gets no tuple");
        return args[0];
      case Callable::kCodecsEncode:
        return latin1_bytes(args);
      case Callable::kNumpyScalar:
        return numpy_scalar(args);
      case Callable::kNumpyDtype:
        return numpy_dtype(args);
      case Callable::kStorageType:
        break;
    }
    unsafe("calls '" + name + "'");
  }
  void reduce() {
    const Value args = pop();
    const Value target = pop();
    const Callable function = callable(target, "REDUCE");
    push(call(function, tuple_items(args, "REDUCE's argument"), text(target)));
  }
  void new_object() {
    const Value args = pop();
    const Value target = pop();
    if (callable(target, "NEWOBJ") != Callable::kOrderedDict) unsafe("creates an object of '" + text(target) + "'");
    if (!tuple_items(args, "NEWOBJ's argument").empty()) unsafe("creates an OrderedDict with arguments");
    push(container(Kind::kDict));
  }
  // BUILD sets an object's attributes; dicts (OrderedDict's _metadata), tensors and numpy dtypes
  // keep none of them.
  void build() {
    pop();  // the attributes
    const Kind kind = top().kind;
    if (kind != Kind::kDict && kind != Kind::kTensor && kind != Kind::kNumpyDtype) {
      unsafe("sets attributes (BUILD) on a value that takes none");
    }
  }
  void persistent_id() {
    const Value id = pop();
    push(persistent_load_(id, pickle_));
  }
  void memo_get_op(size_t width) { push(memo_get(read_le(width))); }

  void step(uint8_t opcode) {
    switch (opcode) {
      case 0x80: {  // PROTO
        const uint8_t protocol = read_u8();
        if (protocol > kHighestProtocol) {
          throw Error(ErrorCode::kUnsupported,
                      "'" + path_ + "' uses pickle protocol " + std::to_string(protocol) +
                          " (at most " + std::to_string(kHighestProtocol) + " is supported)",
                      {{"path", path_}});
        }
        return;
      }
      case 0x95: take(8); return;  // FRAME: frames are only a read-ahead hint
      case '(': marks_.push_back(stack_.size()); return;
      case '0': if (!marks_.empty() && marks_.back() == stack_.size()) marks_.pop_back(); else pop(); return;
      case '1': pop_mark(); return;
      case '2': push(top()); return;
      case 'N': push({}); return;
      case 0x88: push({Kind::kBool, 1, 0, 0}); return;
      case 0x89: push({Kind::kBool, 0, 0, 0}); return;
      case 'J': push(integer(static_cast<int32_t>(read_le(4)))); return;
      case 'K': push(integer(static_cast<int64_t>(read_le(1)))); return;
      case 'M': push(integer(static_cast<int64_t>(read_le(2)))); return;
      case 0x8a: push(long_value(read_le(1))); return;
      case 0x8b: {
        const auto size = static_cast<int32_t>(read_le(4));
        if (size < 0) corrupt("LONG4 has a negative length");
        push(long_value(static_cast<uint64_t>(size)));
        return;
      }
      case 'G': push({Kind::kFloat, 0, read_float_be(), 0}); return;
      case 'X': push(string_value(Kind::kString, read_text(read_le(4)))); return;
      case 0x8c: push(string_value(Kind::kString, read_text(read_le(1)))); return;
      case 0x8d: push(string_value(Kind::kString, read_text(read_le(8)))); return;
      case 'T': push(signed_length_string()); return;
      case 'U': push(string_value(Kind::kString, read_text(read_le(1)))); return;
      case 'B': push(string_value(Kind::kBytes, read_text(read_le(4)))); return;
      case 'C': push(string_value(Kind::kBytes, read_text(read_le(1)))); return;
      case 0x8e: case 0x96: push(string_value(Kind::kBytes, read_text(read_le(8)))); return;
      case ')': push(container(Kind::kTuple)); return;
      case ']': push(container(Kind::kList)); return;
      case '}': push(container(Kind::kDict)); return;
      case 0x8f: push(container(Kind::kSet)); return;
      case 't': push(container(Kind::kTuple, pop_mark())); return;
      case 'l': push(container(Kind::kList, pop_mark())); return;
      case 0x91: push(container(Kind::kSet, pop_mark())); return;
      case 'd': {
        auto items = pop_mark();
        if (items.size() % 2 != 0) corrupt("DICT has an odd item count");
        push(container(Kind::kDict, std::move(items)));
        return;
      }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        std::vector<Value> items(opcode - 0x84);
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push(container(Kind::kTuple, std::move(items)));
        return;
      }
      case 'a': { const Value item = pop(); extend(Kind::kList, "APPEND", {item}); return; }
      case 'e': { auto items = pop_mark(); extend(Kind::kList, "APPENDS", items); return; }
      case 's': {
        const Value value = pop();
        const Value key = pop();
        extend(Kind::kDict, "SETITEM", {key, value});
        return;
      }
      case 'u': { auto items = pop_mark(); extend(Kind::kDict, "SETITEMS", items); return; }
      case 0x90: { auto items = pop_mark(); extend(Kind::kSet, "ADDITEMS", items); return; }
      case 'q': memo_put(read_le(1)); return;
      case 'r': memo_put(read_le(4)); return;
      case 0x94: memo_put(memo_.size()); return;
      case 'h': memo_get_op(1); return;
      case 'j': memo_get_op(4); return;
      case 'c': {
        const std::string module = read_line();
        push(global(module, read_line()));
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        const Value name = pop();
        const Value module = pop();
        if (name.kind != Kind::kString || module.kind != Kind::kString) corrupt("STACK_GLOBAL needs two strings");
        push(global(text(module), text(name)));
        return;
      }
      case 'R': reduce(); return;
      case 0x81: new_object(); return;
      case 'b': build(); return;
      case 'Q': persistent_id(); return;
      case 'i': unsafe("creates an object with INST");
      case 'o': unsafe("creates an object with OBJ");
      case 0x92: unsafe("creates an object with NEWOBJ_EX");
      case 0x82: case 0x83: case 0x84: unsafe("loads a registered extension (EXT1/EXT2/EXT4)");
      default: {
        static const char* kHex = "0123456789abcdef";
        corrupt(std::string("opcode 0x") + kHex[opcode >> 4] + kHex[opcode & 15] + " at offset " +
                std::to_string(pos_ - 1) + " is not a supported binary pickle opcode");
      }
    }
  }

  std::span<const uint8_t> bytes_;
  const PersistentLoad& persistent_load_;
  const std::string& path_;
  size_t pos_ = 0;
  Pickle pickle_;
  std::vector<Value> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value> memo_;
};

}  // namespace

Unpickled unpickle(std::span<const uint8_t> bytes, const PersistentLoad& persistent_load,
                   const std::string& path) {
  return Machine(bytes, persistent_load, path).run();
}

}  // namespace df::engine::torch_pickle

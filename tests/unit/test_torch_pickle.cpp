// The PyTorch checkpoint reader: zip and legacy layouts, the restricted unpickler's opcodes and
// allow-list, and hostile, lying, truncated and mutated files.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <span>
#include <string>

#include "core/error.h"
#include "engine/tensor_file.h"
#include "engine/torch_pickle/torch_checkpoint.h"
#include "engine/torch_pickle/unpickler.h"
#include "pickle_test_bytes.h"
#include "test_support.h"

namespace df::engine::torch_pickle {
namespace {

using test::PickleBytes;

std::span<const uint8_t> as_span(const std::string& bytes) {
  return {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
}

TorchCheckpoint read(const std::string& bytes) { return read_torch_checkpoint(as_span(bytes), "mem.pth"); }

Error read_error(const std::string& bytes) { return test::error_of([&] { read(bytes); }); }

// The checkpoint of a data.pkl whose root is a dict built by `items` (MARK ... SETITEMS).
TorchCheckpoint read_dict(const std::string& items) {
  return read(test::zip_checkpoint(PickleBytes().proto(2).op('}').op('(').raw(items).op('u').str(), 4));
}

std::vector<float> floats_at(const std::string& bytes, const TensorInfo& info, size_t count) {
  std::vector<float> values(count);
  std::memcpy(values.data(), bytes.data() + info.offset, count * sizeof(float));
  return values;
}

TEST(TorchCheckpoint, ReadsTheZipLayout) {
  const std::string bytes = test::tiny_zip_checkpoint();
  const TorchCheckpoint checkpoint = read(bytes);
  EXPECT_EQ(checkpoint.format, WeightsFormat::kPytorchZip);
  ASSERT_EQ(checkpoint.tensors.size(), 1u);
  const TensorInfo& w = checkpoint.tensors[0];
  EXPECT_EQ(w.name, "w");
  EXPECT_EQ(w.dtype, "F32");
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(w.strides, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(w.span, 16u);
  EXPECT_TRUE(w.contiguous());
  EXPECT_EQ(floats_at(bytes, w, 4), (std::vector<float>{0, 1, 2, 3}));
}

TEST(TorchCheckpoint, ReadsZip64Records) {
  const std::string bytes = test::tiny_zip_checkpoint(/*zip64=*/true);
  const TorchCheckpoint checkpoint = read(bytes);
  ASSERT_EQ(checkpoint.tensors.size(), 1u);
  EXPECT_EQ(floats_at(bytes, checkpoint.tensors[0], 4), (std::vector<float>{0, 1, 2, 3}));
}

TEST(TorchCheckpoint, ReadsTheLegacyLayout) {
  const std::string bytes = test::tiny_legacy_checkpoint();
  const TorchCheckpoint checkpoint = read(bytes);
  EXPECT_EQ(checkpoint.format, WeightsFormat::kPytorchLegacy);
  ASSERT_EQ(checkpoint.tensors.size(), 1u);
  EXPECT_EQ(checkpoint.tensors[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(floats_at(bytes, checkpoint.tensors[0], 4), (std::vector<float>{0, 1, 2, 3}));
}

TEST(TorchCheckpoint, ViewsOfOneStorageKeepTheirOffsetsAndStrides) {
  PickleBytes items;
  items.text("t").tensor("FloatStorage", "0", 4, 0, {2, 2}, {1, 2});
  items.text("tail").tensor("FloatStorage", "0", 4, 2, {2}, {1});
  const TorchCheckpoint checkpoint = read_dict(items.str().substr(0, items.str().size() - 1));
  ASSERT_EQ(checkpoint.tensors.size(), 2u);
  EXPECT_FALSE(checkpoint.tensors[0].contiguous());
  EXPECT_EQ(checkpoint.tensors[1].offset - checkpoint.tensors[0].offset, 8u);
  EXPECT_EQ(checkpoint.tensors[1].span, 8u);
}

// Every opcode the reader supports, each leaving a value that flattens into metadata.
TEST(TorchCheckpoint, SupportsEveryDataOpcode) {
  PickleBytes p;
  p.proto(4).op(uint8_t{0x95}).raw(test::le_bytes(0, 8));  // FRAME
  p.op('}').op(uint8_t{0x94}).op('(');                      // EMPTY_DICT MEMOIZE MARK
  p.text("none").op('N').text("true").op(uint8_t{0x88}).text("false").op(uint8_t{0x89});
  p.text("int1").int1(7).text("int2").op('M').raw(test::le_bytes(300, 2));
  p.text("int4").op('J').raw(test::le_bytes(0xFFFFFFFB, 4));  // -5
  p.text("long1").op(uint8_t{0x8a}).raw("\x02\xff\x7f");          // 32767
  p.text("long4").op(uint8_t{0x8b}).raw(test::le_bytes(1, 4) + "\xfe");  // -2
  p.text("float").op('G').raw(std::string("\x3f\xf8\0\0\0\0\0\0", 8));  // 1.5
  p.op(uint8_t{0x8c}).raw("\x05short").op(uint8_t{0x8c}).raw("\x02ok");
  p.op(uint8_t{0x8d}).raw(test::le_bytes(5, 8) + "wide8").op(uint8_t{0x8d}).raw(test::le_bytes(2, 8) + "ok");
  p.text("py2").op('U').raw("\x03old").text("py2long").op('T').raw(test::le_bytes(3, 4) + "str");
  p.text("memo").op('q').raw("\x01").op('h').raw("\x01");  // BINPUT 1, BINGET 1
  p.text("lmemo").op('r').raw(test::le_bytes(70000, 4)).op('j').raw(test::le_bytes(70000, 4));
  p.text("dup").int1(9).op('2').op('0');
  p.text("list").op(']').int1(1).op('a').op('(').int1(2).int1(3).op('e');
  p.text("marked").op('(').int1(4).int1(5).op('l');
  p.text("tuples").op('(').op(')').int1(1).op(uint8_t{0x85}).int1(1).int1(2).op(uint8_t{0x86});
  p.int1(1).int1(2).int1(3).op(uint8_t{0x87}).op('(').int1(6).op('t').op('l');
  p.text("dict").op('(').text("k").int1(8).op('d');
  p.text("ordered").global("collections", "OrderedDict").op(')').op('R');
  p.op('}').op('b');  // BUILD: an OrderedDict's attributes are dropped
  p.text("newobj").op(uint8_t{0x8c}).raw("\x0b" "collections").op(uint8_t{0x8c}).raw("\x0bOrderedDict");
  p.op(uint8_t{0x93}).op(')').op(uint8_t{0x81});  // STACK_GLOBAL, NEWOBJ
  p.text("size").global("torch", "Size").int1(3).int1(4).op(uint8_t{0x86}).op(uint8_t{0x85}).op('R');
  p.text("sets").op('(').op(uint8_t{0x8f}).op('(').int1(1).op(uint8_t{0x90}).op('(').int1(2).op(uint8_t{0x91}).op('l');
  p.text("bytes").op('(').op('B').raw(test::le_bytes(1, 4) + "b").op('C').raw("\x01" "c");
  p.op(uint8_t{0x8e}).raw(test::le_bytes(1, 8) + "d").op(uint8_t{0x96}).raw(test::le_bytes(1, 8) + "e").op('l');
  p.text("popmark").op('(').int1(1).op('1').int1(5);
  p.text("big").op(uint8_t{0x8a}).raw("\x09" + std::string(8, '\0') + "\x01");
  const std::string pickle = p.str().substr(0, p.str().size() - 1);
  const TorchCheckpoint checkpoint =
      read(test::zip_checkpoint(PickleBytes().raw(pickle).op('u').str(), 4));
  const auto& m = checkpoint.metadata;
  EXPECT_EQ(m.count("none"), 0u);
  EXPECT_EQ(m.at("true"), "True");
  EXPECT_EQ(m.at("false"), "False");
  EXPECT_EQ(m.at("int1"), "7");
  EXPECT_EQ(m.at("int2"), "300");
  EXPECT_EQ(m.at("int4"), "-5");
  EXPECT_EQ(m.at("long1"), "32767");
  EXPECT_EQ(m.at("long4"), "-2");
  EXPECT_EQ(m.at("float"), "1.5");
  EXPECT_EQ(m.at("short"), "ok");
  EXPECT_EQ(m.at("wide8"), "ok");
  EXPECT_EQ(m.at("py2"), "old");
  EXPECT_EQ(m.at("py2long"), "str");
  EXPECT_EQ(m.at("memo"), "memo");
  EXPECT_EQ(m.at("lmemo"), "lmemo");
  EXPECT_EQ(m.at("dup"), "9");
  EXPECT_EQ(m.at("list.0"), "1");
  EXPECT_EQ(m.at("list.2"), "3");
  EXPECT_EQ(m.at("marked.1"), "5");
  EXPECT_EQ(m.at("tuples.1.0"), "1");
  EXPECT_EQ(m.at("tuples.2.1"), "2");
  EXPECT_EQ(m.at("tuples.3.2"), "3");
  EXPECT_EQ(m.at("tuples.4.0"), "6");
  EXPECT_EQ(m.at("dict.k"), "8");
  EXPECT_EQ(m.at("size.1"), "4");
  EXPECT_EQ(m.at("popmark"), "5");
  EXPECT_EQ(m.count("big"), 0u);  // beyond int64: not a number the metadata can hold
  EXPECT_EQ(m.count("bytes.0"), 0u);
}

TEST(TorchCheckpoint, DecodesNumpyScalars) {
  PickleBytes p;
  const std::string one_tenth("\x9a\x99\x99\x99\x99\x99\xb9\x3f", 8);
  p.text("step").global("numpy.core.multiarray", "scalar");
  p.global("numpy", "dtype").op('(').text("f8").op(uint8_t{0x89}).op(uint8_t{0x88}).op('t').op('R');
  p.op('(').int1(3).text("<").op('N').op('N').op('N').op('J').raw(test::le_bytes(0xFFFFFFFF, 4));
  p.op('J').raw(test::le_bytes(0xFFFFFFFF, 4)).int1(0).op('t').op('b');  // the dtype's BUILD
  p.op('C').raw("\x08" + one_tenth).op(uint8_t{0x86}).op('R');
  p.text("epoch").global("numpy.core.multiarray", "scalar");
  p.global("numpy", "dtype").op('(').text("i4").op(uint8_t{0x89}).op(uint8_t{0x88}).op('t').op('R');
  p.global("_codecs", "encode").op('(').text("\xc3\xbe\xc3\xbf\xc3\xbf\xc3\xbf").text("latin1").op('t').op('R');
  p.op(uint8_t{0x86}).op('R');
  const std::string pickle = p.str();
  const auto checkpoint = read_dict(pickle.substr(0, pickle.size() - 1));
  EXPECT_EQ(checkpoint.metadata.at("step"), "0.1");
  EXPECT_EQ(checkpoint.metadata.at("epoch"), "-2");
}

TEST(TorchCheckpoint, UnwrapsStateDictsAndFlattensNestedWeights) {
  PickleBytes p;
  p.text("state_dict").op('}').op('(').text("model").op('}').op('(');
  p.text("w").tensor("FloatStorage", "0", 4, 0, {4}, {1}).op('u').op('u');
  p.text("global_step").int1(3);
  std::string pickle = p.str();
  auto checkpoint = read_dict(pickle.substr(0, pickle.size() - 1));
  ASSERT_EQ(checkpoint.tensors.size(), 1u);
  EXPECT_EQ(checkpoint.tensors[0].name, "model.w");

  PickleBytes hypernetwork;  // {768: [{"linear.0.weight": t}, ...], "activation_func": "relu"}
  hypernetwork.op('J').raw(test::le_bytes(768, 4)).op('(').op('}').op('(').text("linear.0.weight");
  hypernetwork.tensor("FloatStorage", "0", 4, 0, {2, 2}, {2, 1}).op('u').op('l');
  hypernetwork.text("activation_func").text("relu");
  pickle = hypernetwork.str();
  checkpoint = read_dict(pickle.substr(0, pickle.size() - 1));
  ASSERT_EQ(checkpoint.tensors.size(), 1u);
  EXPECT_EQ(checkpoint.tensors[0].name, "768.0.linear.0.weight");
  EXPECT_EQ(checkpoint.metadata.at("activation_func"), "relu");
}

// ---- hostile pickles ----

std::string with_global(const std::string& module, const std::string& name) {
  PickleBytes p;
  p.proto(2).global(module, name).text("touch MARKER").op(uint8_t{0x85}).op('R');
  return p.str();
}

TEST(TorchCheckpoint, RefusesEveryGlobalOutsideTheAllowList) {
  for (const auto& [module, name] : std::vector<std::pair<std::string, std::string>>{
           {"os", "system"}, {"posix", "system"}, {"nt", "system"}, {"builtins", "eval"},
           {"builtins", "exec"}, {"builtins", "getattr"}, {"__builtin__", "eval"},
           {"subprocess", "Popen"}, {"torch", "load"}, {"torch.storage", "_load_from_bytes"}}) {
    const std::string full = module + "." + name;
    for (const std::string& pickle :
         {with_global(module, name),
          PickleBytes().proto(4).op(uint8_t{0x8c}).raw(std::string(1, char(module.size())) + module)
              .op(uint8_t{0x8c}).raw(std::string(1, char(name.size())) + name).op(uint8_t{0x93}).str()}) {
      for (const std::string& file : {test::zip_checkpoint(pickle, 0), pickle}) {
        const Error error = read_error(file);
        EXPECT_EQ(error.code(), ErrorCode::kUnsafeFormat) << full;
        EXPECT_NE(std::string(error.what()).find("'" + full + "'"), std::string::npos) << error.what();
      }
    }
  }
}

TEST(TorchCheckpoint, RefusesObjectBuildingOpcodes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"INST", PickleBytes().proto(2).op('(').op('i').raw("os\nsystem\n").str()},
      {"OBJ", PickleBytes().proto(2).op('(').global("collections", "OrderedDict").op('o').str()},
      {"EXT1", PickleBytes().proto(2).op(uint8_t{0x82}).raw("\x01").str()},
      {"EXT2", PickleBytes().proto(2).op(uint8_t{0x83}).raw("\x01\x00").str()},
      {"EXT4", PickleBytes().proto(2).op(uint8_t{0x84}).raw(test::le_bytes(1, 4)).str()},
      {"NEWOBJ_EX", PickleBytes().proto(4).global("collections", "OrderedDict").op(')').op('}')
                        .op(uint8_t{0x92}).str()},
      {"REDUCE on a storage type",
       PickleBytes().proto(2).global("torch", "FloatStorage").op(')').op('R').str()},
      {"REDUCE on a string", PickleBytes().proto(2).text("os.system").op(')').op('R').str()},
      {"NEWOBJ of torch.Size", PickleBytes().proto(2).global("torch", "Size").op(')').op(uint8_t{0x81}).str()},
      {"BUILD on a list", PickleBytes().proto(2).op(']').op('}').op('b').str()},
      {"OrderedDict with arguments",
       PickleBytes().proto(2).global("collections", "OrderedDict").op(']').op(uint8_t{0x85}).op('R').str()},
  };
  for (const auto& [what, pickle] : cases) {
    EXPECT_EQ(read_error(test::zip_checkpoint(pickle, 0)).code(), ErrorCode::kUnsafeFormat) << what;
  }
}

TEST(TorchCheckpoint, RefusesHostileValuesNestedInAStateDict) {
  PickleBytes p;
  p.proto(2).op('}').op('(').text("state_dict").op('}').op('(').text("w");
  p.tensor("FloatStorage", "0", 4, 0, {4}, {1}).text("evil").global("builtins", "exec");
  p.text("print(1)").op(uint8_t{0x85}).op('R').op('u').op('u');
  EXPECT_EQ(read_error(test::zip_checkpoint(p.str(), 4)).code(), ErrorCode::kUnsafeFormat);
}

// ---- malformed and lying files ----

TEST(TorchCheckpoint, EveryTruncationEndsInAnError) {
  for (const std::string& file : {test::tiny_zip_checkpoint(), test::tiny_zip_checkpoint(true),
                                  test::tiny_legacy_checkpoint()}) {
    for (size_t size = 0; size < file.size(); ++size) {
      try {
        read(file.substr(0, size));
        ADD_FAILURE() << "a file cut to " << size << " of " << file.size() << " bytes was read";
      } catch (const Error& e) {
        EXPECT_TRUE(e.code() == ErrorCode::kCorruptFile || e.code() == ErrorCode::kUnsupported) << e.what();
      }
    }
  }
}

TEST(TorchCheckpoint, LyingSizesAreCorrupt) {
  std::string zip = test::tiny_zip_checkpoint();
  const size_t directory = zip.find(test::le_bytes(0x02014b50, 4));
  std::string lying = zip;
  lying.replace(directory + 20, 8, test::le_bytes(0x7FFFFFF0, 4) + test::le_bytes(0x7FFFFFF0, 4));
  EXPECT_EQ(read_error(lying).code(), ErrorCode::kCorruptFile);  // data.pkl past the end

  PickleBytes more_elements;  // numel 8 but the entry holds 4 floats
  more_elements.proto(2).op('}').op('(').text("w").tensor("FloatStorage", "0", 8, 0, {8}, {1}).op('u');
  EXPECT_EQ(read_error(test::zip_checkpoint(more_elements.str(), 4)).code(), ErrorCode::kCorruptFile);

  PickleBytes past_storage;  // a view reaching past its storage
  past_storage.proto(2).op('}').op('(').text("w").tensor("FloatStorage", "0", 4, 2, {2, 2}, {2, 1}).op('u');
  EXPECT_EQ(read_error(test::zip_checkpoint(past_storage.str(), 4)).code(), ErrorCode::kCorruptFile);

  const std::string long_string = PickleBytes().proto(2).op('X').raw(test::le_bytes(0xFFFFFFFF, 4)).str();
  EXPECT_EQ(read_error(test::zip_checkpoint(long_string, 0)).code(), ErrorCode::kCorruptFile);
  const std::string long_bytes =
      PickleBytes().proto(4).op(uint8_t{0x8e}).raw(test::le_bytes(~uint64_t{0}, 8)).str();
  EXPECT_EQ(read_error(test::zip_checkpoint(long_bytes, 0)).code(), ErrorCode::kCorruptFile);

  std::string legacy = test::tiny_legacy_checkpoint();
  legacy.replace(legacy.size() - 24, 8, test::le_bytes(1ull << 62, 8));
  EXPECT_EQ(read_error(legacy).code(), ErrorCode::kCorruptFile);
}

TEST(TorchCheckpoint, OverflowingShapesAreCorrupt) {
  PickleBytes p;
  p.proto(2).op('}').op('(').text("w").global("torch._utils", "_rebuild_tensor_v2").op('(');
  p.op('(').text("storage").global("torch", "FloatStorage").text("0").text("cpu").int1(4).op('t').op('Q');
  p.int1(0).op('(').op(uint8_t{0x8a}).raw("\x08" + test::le_bytes(1ull << 62, 8));
  p.op(uint8_t{0x8a}).raw("\x08" + test::le_bytes(1ull << 62, 8)).op('t');
  p.op('(').op(uint8_t{0x8a}).raw("\x08" + test::le_bytes(1ull << 62, 8)).int1(1).op('t').op('t').op('R').op('u');
  EXPECT_EQ(read_error(test::zip_checkpoint(p.str(), 4)).code(), ErrorCode::kCorruptFile);
}

TEST(TorchCheckpoint, MalformedPicklesAreCorrupt) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"memo read first", PickleBytes().proto(2).op('h').raw("\x05").str()},
      {"empty stack", PickleBytes().proto(2).op('a').str()},
      {"no mark", PickleBytes().proto(2).op('t').str()},
      {"odd dict", PickleBytes().proto(2).op('(').int1(1).op('d').str()},
      {"unknown opcode", PickleBytes().proto(2).op(uint8_t{0xff}).str()},
      {"text opcode", PickleBytes().proto(2).op('I').raw("1\n").str()},
      {"mark left open", PickleBytes().proto(2).op('(').op('N').str()},
      {"append to a tuple", PickleBytes().proto(2).op(')').int1(1).op('a').str()},
      {"nothing", std::string(".")},
  };
  for (const auto& [what, pickle] : cases) {
    EXPECT_EQ(read_error(test::zip_checkpoint(pickle, 0)).code(), ErrorCode::kCorruptFile) << what;
  }
  EXPECT_EQ(read_error(test::zip_checkpoint(PickleBytes().proto(6).op('N').str(), 0)).code(),
            ErrorCode::kUnsupported);
}

TEST(TorchCheckpoint, NestingTenThousandDeepEndsInAClearError) {
  const std::string deep = std::string(10000, '(') + std::string(10000, 'l');
  const std::string pickle = PickleBytes().proto(2).op('}').op('(').text("deep").raw(deep).op('u').str();
  const Error error = read_error(test::zip_checkpoint(pickle, 0));
  EXPECT_EQ(error.code(), ErrorCode::kCorruptFile);
  EXPECT_NE(std::string(error.what()).find("nest deeper"), std::string::npos) << error.what();
}

TEST(TorchCheckpoint, ACycleIsReadOnce) {
  // x = []; x.append(x); {"x": x}
  const std::string pickle =
      PickleBytes().proto(2).op('}').op('(').text("x").op(']').op('q').raw(std::string(1, '\0')).op('h').raw(std::string(1, '\0')).op('a').op('u').str();
  EXPECT_TRUE(read(test::zip_checkpoint(pickle, 0)).tensors.empty());
}

TEST(TorchCheckpoint, CompressedOrOddArchivesAreRefused) {
  const std::string pickle = PickleBytes().proto(2).op('}').str();
  EXPECT_EQ(read_error(test::stored_zip({{"archive/data.pkl", pickle}}, 8)).code(), ErrorCode::kUnsupported);
  EXPECT_EQ(read_error(test::stored_zip({{"archive/other.pkl", pickle}})).code(), ErrorCode::kCorruptFile);
  EXPECT_EQ(read_error(test::stored_zip({{"a/data.pkl", pickle}, {"b/data.pkl", pickle}})).code(),
            ErrorCode::kCorruptFile);
  EXPECT_EQ(read_error(test::stored_zip({{"archive/data.pkl", pickle}, {"archive/byteorder", "big"}})).code(),
            ErrorCode::kUnsupported);
  PickleBytes missing_storage;
  missing_storage.proto(2).op('}').op('(').text("w").tensor("FloatStorage", "7", 4, 0, {4}, {1}).op('u');
  EXPECT_EQ(read_error(test::zip_checkpoint(missing_storage.str(), 4)).code(), ErrorCode::kCorruptFile);
}

// Seeded random byte mutations of a valid checkpoint: each read succeeds or throws a df::Error.
TEST(TorchCheckpoint, MutatedFilesSucceedOrFailCleanly) {
  std::mt19937 random(1234);
  for (const std::string& original : {test::tiny_zip_checkpoint(), test::tiny_zip_checkpoint(true),
                                      test::tiny_legacy_checkpoint()}) {
    std::uniform_int_distribution<size_t> position(0, original.size() - 1);
    std::uniform_int_distribution<int> byte(0, 255), count(1, 4);
    for (int round = 0; round < 2000; ++round) {
      std::string mutated = original;
      for (int i = count(random); i > 0; --i) mutated[position(random)] = static_cast<char>(byte(random));
      try {
        const TorchCheckpoint checkpoint = read(mutated);
        for (const TensorInfo& info : checkpoint.tensors) EXPECT_LE(info.offset + info.span, mutated.size());
      } catch (const Error&) {
      }
    }
  }
}

// ---- TensorFile ----

class TensorFileTest : public ::testing::Test {
 protected:
  test::TestDir dir_{"df_tensor_file_"};
  std::string file(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_.path() / name).string();
    test::write_file(path, bytes);
    return path;
  }
};

TEST_F(TensorFileTest, OpensEachFormatByItsContent) {
  const TensorFile zip = TensorFile::open(file("m.ckpt", test::tiny_zip_checkpoint()));
  EXPECT_EQ(zip.format(), WeightsFormat::kPytorchZip);
  ASSERT_NE(zip.find("w"), nullptr);
  float first[4];
  std::memcpy(first, zip.data(*zip.find("w")), sizeof first);
  EXPECT_EQ(first[3], 3.0f);
  const TensorFile legacy = TensorFile::open(file("m.pt", test::tiny_legacy_checkpoint()));
  EXPECT_EQ(legacy.format(), WeightsFormat::kPytorchLegacy);
  EXPECT_EQ(weights_format_name(legacy.format()), "pytorch-legacy");

  const std::string safetensors = file("s.safetensors", "");
  write_safetensors(safetensors, std::vector<RawTensor>{{"x", "F32", {2}, std::vector<uint8_t>(8, 0)}});
  const TensorFile plain = TensorFile::open(safetensors);
  EXPECT_EQ(plain.format(), WeightsFormat::kSafetensors);
  EXPECT_EQ(plain.find("x")->strides, (std::vector<int64_t>{1}));
  EXPECT_EQ(plain.find("x")->span, 8u);
}

TEST_F(TensorFileTest, HostileAndBrokenFilesGiveClearErrors) {
  const Error hostile = test::error_of([&] { TensorFile::open(file("evil.pth", test::hostile_pickle())); });
  EXPECT_EQ(hostile.code(), ErrorCode::kUnsafeFormat);
  EXPECT_NE(std::string(hostile.what()).find("os.system"), std::string::npos);
  EXPECT_EQ(test::error_code_of([&] { TensorFile::open(file("plain.pkl", PickleBytes().proto(2).int1(1).str())); }),
            ErrorCode::kCorruptFile);
  EXPECT_EQ(test::error_code_of([&] { TensorFile::open(file("empty.ckpt", "")); }), ErrorCode::kCorruptFile);
  EXPECT_EQ(test::error_code_of([&] { TensorFile::open((dir_.path() / "missing.pt").string()); }),
            ErrorCode::kIo);
}

TEST(WeightsExtensions, MatchComfyUis) {
  for (const char* name : {"a.safetensors", "a.sft", "a.ckpt", "A.PT", "a.pth", "a.bin", "a.pkl"}) {
    EXPECT_TRUE(has_weights_extension(name)) << name;
  }
  EXPECT_FALSE(has_weights_extension("a.gguf"));
  EXPECT_FALSE(has_pickle_extension("a.safetensors"));
  EXPECT_TRUE(has_pickle_extension("dir.x/a.Ckpt"));
}

}  // namespace
}  // namespace df::engine::torch_pickle

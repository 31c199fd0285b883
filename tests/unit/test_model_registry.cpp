// Tests of the model registry: entries kept in step with the checkpoints folder, enable/disable,
// missing files, downloaded models recorded with their descriptors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/tiny_model.h"
#include "registry/model_registry.h"
#include "store/sqlite_store.h"
#include "test_support.h"

namespace df::registry {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> ids_of(const std::vector<Model>& models) {
  std::vector<std::string> ids;
  for (const auto& model : models) ids.push_back(model.id);
  return ids;
}

class ModelRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(checkpoints());
    engine::write_tiny_model((checkpoints() / "tiny").string(), engine::Family::kSD1, 1);
  }
  fs::path checkpoints() const { return dir_.path() / "checkpoints"; }
  ModelRegistry open_registry(RegistryScope scope = RegistryScope::kThisMachine) {
    return ModelRegistry(store_, checkpoints().string(), scope);
  }

  test::TestDir dir_{"df_model_registry_"};
  store::SqliteStore store_{(dir_.path() / "db.sqlite3").string()};
};

TEST_F(ModelRegistryTest, ModelsInTheFolderAreRegisteredAndOffered) {
  ModelRegistry registry = open_registry();
  EXPECT_TRUE(registry.sync().empty());
  EXPECT_EQ(ids_of(registry.available()), std::vector<std::string>{"tiny"});
  const auto entry = store_.get_model("tiny");
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->family, "sd1");
  EXPECT_TRUE(entry->installed && entry->enabled && entry->test_model);
  EXPECT_GT(entry->created_ms, 0);
}

TEST_F(ModelRegistryTest, AModelCopiedInWhileRunningIsOfferedWithoutARestart) {
  ModelRegistry registry = open_registry();
  registry.sync();
  engine::write_tiny_model((checkpoints() / "second").string(), engine::Family::kSDXL, 2);
  EXPECT_EQ(ids_of(registry.available()), (std::vector<std::string>{"second", "tiny"}));
  EXPECT_EQ(registry.find("second")->family, "sdxl");
}

TEST_F(ModelRegistryTest, DisabledModelsStayRegisteredButAreNotOffered) {
  open_registry().set_enabled("tiny", false);
  ModelRegistry reopened = open_registry();
  reopened.sync();
  EXPECT_TRUE(reopened.available().empty());
  EXPECT_FALSE(reopened.find("tiny")->enabled) << "a sync keeps the user's choice";
  reopened.set_enabled("tiny", true);
  EXPECT_EQ(ids_of(reopened.available()), std::vector<std::string>{"tiny"});
  EXPECT_EQ(test::error_code_of([&] { reopened.set_enabled("nope", true); }), ErrorCode::kNotFound);
}

TEST_F(ModelRegistryTest, AnInstalledEntryWhoseFilesVanishedIsWarnedAboutAndNotOffered) {
  open_registry().sync();
  fs::rename(checkpoints() / "tiny", dir_.path() / "moved-away");
  ModelRegistry registry = open_registry();
  const auto warnings = registry.sync();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("'tiny'"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("missing"), std::string::npos) << warnings[0];
  EXPECT_TRUE(registry.available().empty());
  EXPECT_FALSE(registry.find("tiny")->installed);
  EXPECT_TRUE(registry.sync().empty()) << "warned once";

  fs::rename(dir_.path() / "moved-away", checkpoints() / "tiny");
  EXPECT_EQ(ids_of(registry.available()), std::vector<std::string>{"tiny"});
  EXPECT_TRUE(registry.find("tiny")->installed);
}

TEST_F(ModelRegistryTest, ASharedRegistryOffersModelsWhoseFilesAreOnOtherMachines) {
  open_registry(RegistryScope::kShared).sync();  // a worker registers what it holds
  fs::rename(checkpoints() / "tiny", dir_.path() / "on-the-worker");  // this machine holds none
  ModelRegistry api_side = open_registry(RegistryScope::kShared);
  EXPECT_TRUE(api_side.sync().empty());
  EXPECT_TRUE(api_side.find("tiny")->installed) << "not withdrawn by a machine without the files";
  EXPECT_EQ(ids_of(api_side.available()), std::vector<std::string>{"tiny"});
  EXPECT_EQ(registry_scope_for("postgres://u@db:5432/df"), RegistryScope::kShared);
  EXPECT_EQ(registry_scope_for("sqlite:///var/lib/df.sqlite3"), RegistryScope::kThisMachine);
}

TEST_F(ModelRegistryTest, ADownloadedModelIsRecordedWithItsDescriptor) {
  const fs::path folder = checkpoints() / "tiny-xl@abc1234";
  engine::write_tiny_model(folder.string(), engine::Family::kSDXL, 3);
  Model model;
  model.id = "tiny-xl@abc1234";
  model.name = "org/tiny-xl";
  model.version = "abc1234";
  model.family = "sdxl";
  model.source_uri = "hf:org/tiny-xl@main";
  model.revision = "abc1234def";
  model.local_path = folder.string();
  model.files = {{"unet/config.json", 10, "00ff"}};
  ModelRegistry registry = open_registry();
  registry.add_installed(model);

  const json descriptor = json::parse(std::ifstream(folder / kModelDescriptorFile));
  EXPECT_EQ(descriptor["local_path"], ".");
  EXPECT_EQ(descriptor["source_uri"], "hf:org/tiny-xl@main");
  const auto entry = registry.find("tiny-xl@abc1234");
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->revision, "abc1234def");
  EXPECT_EQ(entry->ckpt_name, "tiny-xl@abc1234");
  EXPECT_EQ(entry->files.size(), 1u);
  EXPECT_TRUE(entry->parameters_schema.contains("properties"));

  // A fresh registry on another database finds the same entry from the folder alone.
  store::SqliteStore other((dir_.path() / "other.sqlite3").string());
  ModelRegistry rebuilt(other, checkpoints().string(), RegistryScope::kThisMachine);
  rebuilt.sync();
  EXPECT_EQ(rebuilt.find("tiny-xl@abc1234")->source_uri, "hf:org/tiny-xl@main");
}

TEST_F(ModelRegistryTest, WeightsDreamForgeCannotLoadAreNotRecordedAsACheckpoint) {
  const fs::path folder = checkpoints() / "junk@1";
  fs::create_directories(folder);
  std::ofstream(folder / "model.safetensors") << "not safetensors";
  Model model;
  model.id = "junk@1";
  model.family = "sd1";
  model.local_path = (folder / "model.safetensors").string();
  ModelRegistry registry = open_registry();
  EXPECT_EQ(test::error_code_of([&] { registry.add_installed(model); }), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(store_.get_model("junk@1"));
}

TEST_F(ModelRegistryTest, RemoveForgetsTheEntry) {
  ModelRegistry registry = open_registry();
  registry.sync();
  EXPECT_TRUE(registry.remove("tiny"));
  EXPECT_FALSE(registry.remove("tiny"));
  EXPECT_FALSE(store_.get_model("tiny"));
}

}  // namespace
}  // namespace df::registry

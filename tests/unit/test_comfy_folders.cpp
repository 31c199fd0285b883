// Tests of ComfyUI's folder types and annotated file names ("a.png [output]").
#include <gtest/gtest.h>

#include "api/comfy_folders.h"

namespace df::api {
namespace {

TEST(ComfyFolders, AnnotatedNamesPickTheirFolder) {
  AnnotatedName output = split_annotated_name("ComfyUI_00001_.png [output]");
  EXPECT_EQ(output.name, "ComfyUI_00001_.png");
  EXPECT_EQ(output.type, "output");
  EXPECT_EQ(split_annotated_name("cat.png [temp]").type, "temp");
  EXPECT_EQ(split_annotated_name("cat.png [input]").name, "cat.png");
  AnnotatedName plain = split_annotated_name("cat [models].png");
  EXPECT_EQ(plain.name, "cat [models].png");
  EXPECT_FALSE(plain.type);
  EXPECT_FALSE(split_annotated_name("cat.png[output]").type);
}

TEST(ComfyFolders, FoldersByType) {
  const ComfyFolders folders{"in", "out", "tmp"};
  EXPECT_EQ(*folders.by_type("input"), "in");
  EXPECT_EQ(*folders.by_type("output"), "out");
  EXPECT_EQ(*folders.by_type("temp"), "tmp");
  EXPECT_EQ(folders.by_type("models"), nullptr);
  EXPECT_EQ(folders.by_type(""), nullptr);
  EXPECT_TRUE(is_comfy_folder_type("temp"));
  EXPECT_FALSE(is_comfy_folder_type("Input"));
}

}  // namespace
}  // namespace df::api

// Unit tests for the JSON Schema validator and default filling used for parameter schemas.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json_schema.h"

namespace df {
namespace {

using nlohmann::json;
using Violations = std::vector<std::string>;

// Each violation as "field: message" ("": message for the value itself), in the order reported.
Violations check(const json& schema, const json& value) {
  Violations described;
  for (const auto& v : validate_against_schema(schema, value)) {
    described.push_back(v.field + ": " + v.message);
  }
  return described;
}

ErrorCode error_code_of(const json& schema, const json& value) {
  try {
    validate_against_schema(schema, value);
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no error for schema " << schema.dump();
  return ErrorCode::kInternal;
}

TEST(JsonSchema, TypeNamesEachJsonKind) {
  EXPECT_EQ(check({{"type", "string"}}, "x"), Violations{});
  EXPECT_EQ(check({{"type", "string"}}, 1), Violations{": must be a string"});
  EXPECT_EQ(check({{"type", "number"}}, 1.5), Violations{});
  EXPECT_EQ(check({{"type", "number"}}, "1.5"), Violations{": must be a number"});
  EXPECT_EQ(check({{"type", "boolean"}}, true), Violations{});
  EXPECT_EQ(check({{"type", "boolean"}}, 0), Violations{": must be a boolean"});
  EXPECT_EQ(check({{"type", "null"}}, nullptr), Violations{});
  EXPECT_EQ(check({{"type", "null"}}, false), Violations{": must be null"});
  EXPECT_EQ(check({{"type", "object"}}, json::object()), Violations{});
  EXPECT_EQ(check({{"type", "object"}}, json::array()), Violations{": must be an object"});
  EXPECT_EQ(check({{"type", "array"}}, json::array()), Violations{});
  EXPECT_EQ(check({{"type", "array"}}, json::object()), Violations{": must be an array"});
}

TEST(JsonSchema, TypeListAcceptsAnyOfItsTypes) {
  json schema = {{"type", {"integer", "string", "null"}}};
  EXPECT_EQ(check(schema, 4), Violations{});
  EXPECT_EQ(check(schema, nullptr), Violations{});
  EXPECT_EQ(check(schema, true), Violations{": must be an integer, a string or null"});
}

TEST(JsonSchema, IntegerAcceptsWholeFloatsButNotFractions) {
  json schema = {{"type", "integer"}};
  EXPECT_EQ(check(schema, 3), Violations{});
  EXPECT_EQ(check(schema, json::parse("3.0")), Violations{});
  EXPECT_EQ(check(schema, 3.5), Violations{": must be an integer"});
  EXPECT_EQ(check({{"type", "number"}}, 3), Violations{});
}

TEST(JsonSchema, TypeMismatchIsTheOnlyViolationOfThatField) {
  EXPECT_EQ(check({{"type", "integer"}, {"minimum", 10}, {"enum", {20, 30}}}, "5"),
            Violations{": must be an integer"});
}

TEST(JsonSchema, EnumAndConst) {
  json samplers = {{"enum", {"euler", "ddim", 7}}};
  EXPECT_EQ(check(samplers, "ddim"), Violations{});
  EXPECT_EQ(check(samplers, json::parse("7.0")), Violations{});
  EXPECT_EQ(check(samplers, "plms"), Violations{R"(: must be one of "euler", "ddim", 7)"});
  EXPECT_EQ(check({{"const", "v1"}}, "v1"), Violations{});
  EXPECT_EQ(check({{"const", "v1"}}, "v2"), Violations{R"(: must be "v1")"});
}

TEST(JsonSchema, NumericBounds) {
  json schema = {{"minimum", 64}, {"maximum", 2048}};
  EXPECT_EQ(check(schema, 64), Violations{});
  EXPECT_EQ(check(schema, 2048), Violations{});
  EXPECT_EQ(check(schema, 63.5), Violations{": must be at least 64"});
  EXPECT_EQ(check(schema, 4096), Violations{": must be at most 2048"});
  json exclusive = {{"exclusiveMinimum", 0}, {"exclusiveMaximum", 1.5}};
  EXPECT_EQ(check(exclusive, 0.25), Violations{});
  EXPECT_EQ(check(exclusive, 0), Violations{": must be greater than 0"});
  EXPECT_EQ(check(exclusive, 1.5), Violations{": must be less than 1.5"});
  EXPECT_EQ(check(schema, "not a number"), Violations{});
}

TEST(JsonSchema, BoundsCompareWholeUint64SeedsExactly) {
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  json schema = {{"type", "integer"}, {"minimum", 0}, {"maximum", kMax - 1}};
  EXPECT_EQ(check(schema, kMax - 1), Violations{});
  EXPECT_EQ(check(schema, kMax), Violations{": must be at most 18446744073709551614"});
  EXPECT_EQ(check(schema, -1), Violations{": must be at least 0"});
}

TEST(JsonSchema, MultipleOf) {
  EXPECT_EQ(check({{"multipleOf", 8}}, 512), Violations{});
  EXPECT_EQ(check({{"multipleOf", 8}}, 513), Violations{": must be a multiple of 8"});
  EXPECT_EQ(check({{"multipleOf", 0.1}}, 0.3), Violations{});
  EXPECT_EQ(check({{"multipleOf", 0.5}}, 1.25), Violations{": must be a multiple of 0.5"});
}

TEST(JsonSchema, StringLengthCountsCodePoints) {
  json schema = {{"minLength", 2}, {"maxLength", 3}};
  EXPECT_EQ(check(schema, "日本語"), Violations{});          // 9 bytes, 3 code points
  EXPECT_EQ(check(schema, "😀😀"), Violations{});             // 8 bytes, 2 code points
  EXPECT_EQ(check(schema, "日本語!"), Violations{": must be at most 3 characters long"});
  EXPECT_EQ(check(schema, "é"), Violations{": must be at least 2 characters long"});
  EXPECT_EQ(check({{"minLength", 1}}, ""), Violations{": must be at least 1 character long"});
}

TEST(JsonSchema, PatternSearchesAnywhereUnlessAnchored) {
  EXPECT_EQ(check({{"pattern", "b+"}}, "abbc"), Violations{});
  EXPECT_EQ(check({{"pattern", "^[a-z_]+$"}}, "dpm_2"),
            Violations{": must match the pattern ^[a-z_]+$"});
  EXPECT_EQ(check({{"pattern", "^[a-z_0-9]+$"}}, "dpm_2"), Violations{});
}

TEST(JsonSchema, PatternGivesUpOnRunawayMatchesWithoutCrashing) {
  auto result = check({{"pattern", "(a|b)*c"}}, std::string(1'000'000, 'a'));
  ASSERT_EQ(result.size(), 1u);
  EXPECT_EQ(result[0].rfind(": is too long or complex to check against the pattern", 0), 0u);
}

TEST(JsonSchema, PropertiesRequiredAndUnknownFields) {
  json schema = {{"type", "object"},
                 {"properties",
                  {{"width", {{"type", "integer"}}}, {"prompt", {{"type", "string"}}}}},
                 {"required", {"prompt"}},
                 {"additionalProperties", false}};
  EXPECT_EQ(check(schema, {{"prompt", "a cat"}, {"width", 512}}), Violations{});
  EXPECT_EQ(check(schema, {{"width", 512}}), Violations{"prompt: is required"});
  EXPECT_EQ(check(schema, {{"prompt", "a cat"}, {"hieght", 512}}),
            Violations{"hieght: unknown field"});
}

TEST(JsonSchema, AdditionalPropertiesSchemaAppliesToUnlistedFields) {
  json schema = {{"properties", {{"name", {{"type", "string"}}}}},
                 {"additionalProperties", {{"type", "number"}}}};
  EXPECT_EQ(check(schema, {{"name", "x"}, {"scale", 1.5}}), Violations{});
  EXPECT_EQ(check(schema, {{"name", "x"}, {"scale", "big"}}),
            Violations{"scale: must be a number"});
  EXPECT_EQ(check({{"properties", json::object()}}, {{"anything", 1}}), Violations{});
}

TEST(JsonSchema, ArrayItemsAndCounts) {
  json schema = {{"items", {{"type", "integer"}}}, {"minItems", 1}, {"maxItems", 2}};
  EXPECT_EQ(check(schema, {1, 2}), Violations{});
  EXPECT_EQ(check(schema, json::array()), Violations{": must have at least 1 item"});
  EXPECT_EQ(check(schema, {1, 2, 3}), Violations{": must have at most 2 items"});
  EXPECT_EQ(check(schema, {1, "two"}), Violations{"1: must be an integer"});
}

TEST(JsonSchema, NestedFieldsAreNamedLikeJsonPointers) {
  json schema = {
      {"properties",
       {{"items",
         {{"items", {{"properties", {{"seed", {{"type", "integer"}, {"minimum", 0}}}}}}}}}}}};
  EXPECT_EQ(check(schema, {{"items", {{{"seed", 1}}, {{"seed", -1}}}}}),
            Violations{"items/1/seed: must be at least 0"});
  EXPECT_EQ(check(schema, {{"items", {{{"seed", "x"}}}}}),
            Violations{"items/0/seed: must be an integer"});
  json slashed = {{"properties", {{"a/b~c", {{"type", "string"}}}}}};
  EXPECT_EQ(check(slashed, {{"a/b~c", 1}}), Violations{"a~1b~0c: must be a string"});
}

TEST(JsonSchema, ReportsEveryViolationDepthFirstInDocumentOrder) {
  json schema = {{"type", "object"},
                 {"properties",
                  {{"count", {{"type", "integer"}, {"minimum", 1}, {"maximum", 100}}},
                   {"size", {{"properties", {{"width", {{"multipleOf", 8}, {"maximum", 2048}}}}}}},
                   {"sampler", {{"enum", {"euler"}}}}}},
                 {"required", {"prompt", "count"}},
                 {"additionalProperties", false}};
  json value = {{"count", 0}, {"size", {{"width", 4100}}}, {"sampler", "plms"}, {"extra", true}};
  EXPECT_EQ(check(schema, value), (Violations{
                                      "count: must be at least 1",
                                      "extra: unknown field",
                                      R"(sampler: must be one of "euler")",
                                      "size/width: must be at most 2048",
                                      "size/width: must be a multiple of 8",
                                      "prompt: is required",
                                  }));
}

TEST(JsonSchema, RefResolvesDefinitionsOfTheRootSchema) {
  json schema = {{"$defs",
                  {{"seed", {{"type", "integer"}, {"minimum", 0}}},
                   {"item", {{"properties", {{"seed", {{"$ref", "#/$defs/seed"}}}}}}}}},
                 {"properties", {{"items", {{"items", {{"$ref", "#/$defs/item"}}}}}}}};
  EXPECT_EQ(check(schema, {{"items", {{{"seed", 5}}}}}), Violations{});
  EXPECT_EQ(check(schema, {{"items", {{{"seed", 5}}, {{"seed", -5}}}}}),
            Violations{"items/1/seed: must be at least 0"});
}

TEST(JsonSchema, RefToMissingOrForeignDefinitionIsAnInvalidSchema) {
  EXPECT_EQ(error_code_of({{"$ref", "#/$defs/nothing"}}, 1), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of({{"$ref", "https://example.com/schema.json"}}, 1),
            ErrorCode::kInvalidArgument);
}

TEST(JsonSchema, RefCycleIsRefusedInsteadOfRecursingForever) {
  json schema = {{"$defs", {{"loop", {{"$ref", "#/$defs/loop"}}}}}, {"$ref", "#/$defs/loop"}};
  EXPECT_EQ(error_code_of(schema, 1), ErrorCode::kInvalidArgument);
}

TEST(JsonSchema, OneOfNeedsExactlyOneMatch) {
  json schema = {{"oneOf", {{{"type", "integer"}}, {{"type", "number"}, {"minimum", 10}}}}};
  EXPECT_EQ(check(schema, 3), Violations{});     // integer only
  EXPECT_EQ(check(schema, 10.5), Violations{});  // number >= 10 only
  EXPECT_EQ(check(schema, 12),
            Violations{": must match exactly one of the allowed forms, but matches 2"});
  EXPECT_EQ(check(schema, "x"),
            Violations{": must match exactly one of the allowed forms, but matches none"});
}

TEST(JsonSchema, AnyOfNeedsAtLeastOneMatch) {
  json schema = {{"anyOf", {{{"type", "string"}}, {{"type", "integer"}}}}};
  EXPECT_EQ(check(schema, "x"), Violations{});
  EXPECT_EQ(check(schema, 1), Violations{});
  EXPECT_EQ(check(schema, 1.5), Violations{": must match at least one of the allowed forms"});
}

TEST(JsonSchema, AnnotationKeywordsAreIgnored) {
  json schema = {{"$schema", "https://json-schema.org/draft/2020-12/schema"},
                 {"$id", "urn:dreamforge:params"},
                 {"title", "Parameters"},
                 {"description", "Generation parameters"},
                 {"properties",
                  {{"steps", {{"type", "integer"}, {"default", 20}, {"examples", {30}}}},
                   {"url", {{"type", "string"}, {"format", "uri"}}}}}};
  EXPECT_EQ(check(schema, {{"steps", 25}, {"url", "not a uri"}}), Violations{});
}

TEST(JsonSchema, BooleanSchemas) {
  EXPECT_EQ(check(true, {{"x", 1}}), Violations{});
  EXPECT_EQ(check({{"items", false}}, {1}), Violations{"0: is not allowed"});
}

TEST(JsonSchema, MalformedSchemasAreInvalidArguments) {
  EXPECT_EQ(error_code_of({{"type", "float"}}, 1), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of({{"pattern", "("}}, "x"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of({{"minimum", "1"}}, 1), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of({{"maxLength", -1}}, "x"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of({{"multipleOf", 0}}, 1), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of({{"oneOf", json::array()}}, 1), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of("not a schema", 1), ErrorCode::kInvalidArgument);
}

TEST(JsonSchemaDefaults, FillsAbsentPropertiesOnly) {
  json schema = {{"properties",
                  {{"steps", {{"type", "integer"}, {"default", 20}}},
                   {"sampler", {{"default", "euler"}}},
                   {"prompt", {{"type", "string"}}}}}};
  EXPECT_EQ(apply_schema_defaults(schema, {{"steps", 30}, {"extra", 1}}),
            (json{{"steps", 30}, {"sampler", "euler"}, {"extra", 1}}));
}

TEST(JsonSchemaDefaults, RecursesIntoPresentOrDefaultedObjects) {
  json hires = {{"properties", {{"scale", {{"default", 1.5}}}, {"steps", {{"default", 10}}}}}};
  json schema = {{"properties",
                  {{"hires", hires},
                   {"refiner",
                    {{"default", json::object()}, {"properties", {{"at", {{"default", 0.8}}}}}}},
                   {"upscale", {{"properties", {{"factor", {{"default", 2}}}}}}}}}};
  EXPECT_EQ(apply_schema_defaults(schema, {{"hires", {{"steps", 4}}}}),
            (json{{"hires", {{"scale", 1.5}, {"steps", 4}}}, {"refiner", {{"at", 0.8}}}}));
}

TEST(JsonSchemaDefaults, FollowsRefs) {
  json schema = {{"$defs", {{"size", {{"properties", {{"width", {{"default", 512}}}}}}}}},
                 {"properties",
                  {{"size", {{"$ref", "#/$defs/size"}, {"default", json::object()}}}}}};
  EXPECT_EQ(apply_schema_defaults(schema, json::object()), (json{{"size", {{"width", 512}}}}));
  EXPECT_EQ(apply_schema_defaults(schema, {{"size", {{"width", 768}}}}),
            (json{{"size", {{"width", 768}}}}));
}

TEST(JsonSchemaDefaults, LeavesNonObjectValuesAlone) {
  json schema = {{"properties", {{"a", {{"default", 1}}}}}};
  EXPECT_EQ(apply_schema_defaults(schema, 5), json(5));
  EXPECT_EQ(apply_schema_defaults(schema, {1, 2}), json({1, 2}));
}

}  // namespace
}  // namespace df

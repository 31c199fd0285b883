// Validates JSON values against the subset of JSON Schema (2020-12) that parameter schemas use.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace df {

struct SchemaViolation {
  std::string field;    // where: "width", "items/0/seed", "" for the value itself (JSON Pointer without '/')
  std::string message;  // plain words: "must be at most 2048", "unknown field", "is required"
};

// Supported keywords: type (string or array of: object, array, string, integer, number, boolean,
// null; integer accepts 3.0), enum, const, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
// multipleOf, minLength, maxLength (in Unicode code points), pattern (ECMAScript regex, search
// semantics), properties, required, additionalProperties (bool or schema), items (schema),
// minItems, maxItems, oneOf, anyOf, $ref to "#/$defs/<name>" within the root schema. Other keywords
// (title, description, default, examples, format, $schema, $id) are ignored. Returns every
// violation found (empty = valid), children before moving on, in document order.
std::vector<SchemaViolation> validate_against_schema(const nlohmann::json& schema, const nlohmann::json& value);

// Returns `value` with absent object properties filled from their schema's "default", recursively
// for nested objects whose property exists or has a default.
nlohmann::json apply_schema_defaults(const nlohmann::json& schema, const nlohmann::json& value);

}  // namespace df

// Validation against the JSON Schema subset used by parameter schemas, and filling in defaults.
#include "core/json_schema.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>

#include <boost/regex.hpp>

#include "core/error.h"

namespace df {
namespace {

using nlohmann::json;

// Deeper nesting of values or $ref chains than this is refused instead of risking the stack.
constexpr int kMaxDepth = 256;

[[noreturn]] void throw_bad_schema(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, "invalid JSON Schema: " + message);
}

void check_depth(int depth) {
  if (depth > kMaxDepth) {
    throw Error(ErrorCode::kInvalidArgument,
                "value or schema nested more than " + std::to_string(kMaxDepth) +
                    " levels deep (is there a $ref cycle?)");
  }
}

// A JSON Pointer reference token: '~' becomes "~0" and '/' becomes "~1".
std::string escape_pointer_token(const std::string& token) {
  std::string escaped;
  for (char c : token) {
    if (c == '~') {
      escaped += "~0";
    } else if (c == '/') {
      escaped += "~1";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

std::string child_field(const std::string& parent, const std::string& token) {
  std::string escaped = escape_pointer_token(token);
  return parent.empty() ? escaped : parent + "/" + escaped;
}

// The schema that `ref` ("#/$defs/<name>", the name pointer-escaped) names within `root`.
const json& resolve_ref(const json& root, const json& ref) {
  static const std::string kPrefix = "#/$defs/";
  if (!ref.is_string() || !ref.get_ref<const std::string&>().starts_with(kPrefix)) {
    throw_bad_schema("$ref " + ref.dump() + " is not supported; only \"#/$defs/<name>\" is");
  }
  const auto& text = ref.get_ref<const std::string&>();
  std::string name;
  for (std::size_t i = kPrefix.size(); i < text.size(); ++i) {
    if (text[i] == '~' && i + 1 < text.size() && (text[i + 1] == '0' || text[i + 1] == '1')) {
      name += text[++i] == '0' ? '~' : '/';
    } else {
      name += text[i];
    }
  }
  auto defs = root.find("$defs");
  if (defs == root.end() || !defs->is_object() || !defs->contains(name)) {
    throw_bad_schema("$ref " + ref.dump() + " names no definition in $defs");
  }
  return (*defs)[name];
}

bool is_integral(const json& value) {
  if (value.is_number_integer()) return true;
  if (!value.is_number_float()) return false;
  double number = value.get<double>();
  return std::isfinite(number) && std::floor(number) == number;
}

bool has_type(const json& value, const std::string& type) {
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "string") return value.is_string();
  if (type == "integer") return is_integral(value);
  if (type == "number") return value.is_number();
  if (type == "boolean") return value.is_boolean();
  return value.is_null();
}

std::string type_in_words(const std::string& type) {
  if (type == "integer" || type == "object" || type == "array") return "an " + type;
  if (type == "null") return "null";
  return "a " + type;
}

// "must be a string", "must be an integer or null", "must be an object, an array or null".
std::string type_message(const std::vector<std::string>& types) {
  std::string message = "must be ";
  for (std::size_t i = 0; i < types.size(); ++i) {
    if (i > 0) message += i + 1 == types.size() ? " or " : ", ";
    message += type_in_words(types[i]);
  }
  return message;
}

// The names in a "type" keyword (a name or an array of names), each checked to be a known type.
std::vector<std::string> type_names(const json& type) {
  static const std::array<std::string, 7> kKnown = {"object",  "array",   "string", "integer",
                                                    "number", "boolean", "null"};
  std::vector<std::string> names;
  for (const auto& entry : type.is_array() ? type : json::array({type})) {
    if (!entry.is_string()) throw_bad_schema("\"type\" must be a string or an array of strings");
    if (std::find(kKnown.begin(), kKnown.end(), entry) == kKnown.end()) {
      throw_bad_schema("unknown type " + entry.dump());
    }
    names.push_back(entry.get<std::string>());
  }
  return names;
}

// The value of a numeric keyword, or nullptr when the schema does not use it.
const json* number_keyword(const json& schema, const char* keyword) {
  auto it = schema.find(keyword);
  if (it == schema.end()) return nullptr;
  if (!it->is_number()) throw_bad_schema(std::string("\"") + keyword + "\" must be a number");
  return &*it;
}

std::optional<std::uint64_t> count_keyword(const json& schema, const char* keyword) {
  auto it = schema.find(keyword);
  if (it == schema.end()) return std::nullopt;
  if (!it->is_number_integer() || (!it->is_number_unsigned() && it->get<std::int64_t>() < 0)) {
    throw_bad_schema(std::string("\"") + keyword + "\" must be a non-negative integer");
  }
  return it->get<std::uint64_t>();
}

// A JSON integer (signed or unsigned 64-bit) widened so that both kinds compare exactly.
__int128 wide_integer(const json& value) {
  return value.is_number_unsigned() ? __int128(value.get<std::uint64_t>())
                                    : __int128(value.get<std::int64_t>());
}

// Orders two JSON numbers: exactly when both are integers (seeds span all of uint64), else as
// doubles.
int compare_numbers(const json& a, const json& b) {
  if (a.is_number_integer() && b.is_number_integer()) {
    __int128 x = wide_integer(a), y = wide_integer(b);
    return (x > y) - (x < y);
  }
  double x = a.get<double>(), y = b.get<double>();
  return (x > y) - (x < y);
}

bool is_multiple_of(const json& value, const json& divisor) {
  if (value.is_number_integer() && divisor.is_number_integer()) {
    return wide_integer(value) % wide_integer(divisor) == 0;
  }
  double quotient = value.get<double>() / divisor.get<double>();
  return std::abs(quotient - std::round(quotient)) <= 1e-9 * std::max(1.0, std::abs(quotient));
}

std::size_t count_code_points(const std::string& text) {
  std::size_t count = 0;
  for (unsigned char byte : text) count += (byte & 0xC0) != 0x80;
  return count;
}

std::string counted(std::uint64_t count, const std::string& noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

std::string list_values(const json& values) {
  std::string text;
  for (const auto& value : values) text += (text.empty() ? "" : ", ") + value.dump();
  return text;
}

class Validator {
 public:
  explicit Validator(const json& root) : root_(root) {}

  void check(const json& schema, const json& value, const std::string& field, int depth,
             std::vector<SchemaViolation>& out) const {
    check_depth(depth);
    if (schema.is_boolean()) {
      if (!schema.get<bool>()) out.push_back({field, "is not allowed"});
      return;
    }
    if (!schema.is_object()) throw_bad_schema("a schema must be an object or a boolean");
    if (auto type = schema.find("type"); type != schema.end()) {
      auto types = type_names(*type);
      auto matches = [&](const std::string& name) { return has_type(value, name); };
      if (std::none_of(types.begin(), types.end(), matches)) {
        out.push_back({field, type_message(types)});
        return;
      }
    }
    if (auto ref = schema.find("$ref"); ref != schema.end()) {
      check(resolve_ref(root_, *ref), value, field, depth + 1, out);
    }
    check_enum_and_const(schema, value, field, out);
    if (value.is_number()) check_number(schema, value, field, out);
    if (value.is_string()) check_string(schema, value.get_ref<const std::string&>(), field, out);
    if (value.is_array()) check_array(schema, value, field, depth, out);
    if (value.is_object()) check_object(schema, value, field, depth, out);
    check_alternatives(schema, value, field, depth, out);
  }

 private:
  static void check_enum_and_const(const json& schema, const json& value, const std::string& field,
                                   std::vector<SchemaViolation>& out) {
    if (auto allowed = schema.find("enum"); allowed != schema.end()) {
      if (!allowed->is_array()) throw_bad_schema("\"enum\" must be an array");
      if (std::find(allowed->begin(), allowed->end(), value) == allowed->end()) {
        out.push_back({field, "must be one of " + list_values(*allowed)});
      }
    }
    if (auto constant = schema.find("const"); constant != schema.end() && *constant != value) {
      out.push_back({field, "must be " + constant->dump()});
    }
  }

  static void check_number(const json& schema, const json& value, const std::string& field,
                           std::vector<SchemaViolation>& out) {
    if (auto bound = number_keyword(schema, "minimum");
        bound && compare_numbers(value, *bound) < 0) {
      out.push_back({field, "must be at least " + bound->dump()});
    }
    if (auto bound = number_keyword(schema, "maximum");
        bound && compare_numbers(value, *bound) > 0) {
      out.push_back({field, "must be at most " + bound->dump()});
    }
    if (auto bound = number_keyword(schema, "exclusiveMinimum");
        bound && compare_numbers(value, *bound) <= 0) {
      out.push_back({field, "must be greater than " + bound->dump()});
    }
    if (auto bound = number_keyword(schema, "exclusiveMaximum");
        bound && compare_numbers(value, *bound) >= 0) {
      out.push_back({field, "must be less than " + bound->dump()});
    }
    if (auto divisor = number_keyword(schema, "multipleOf")) {
      if (divisor->get<double>() <= 0) throw_bad_schema("\"multipleOf\" must be greater than 0");
      if (!is_multiple_of(value, *divisor)) {
        out.push_back({field, "must be a multiple of " + divisor->dump()});
      }
    }
  }

  static void check_string(const json& schema, const std::string& text, const std::string& field,
                           std::vector<SchemaViolation>& out) {
    auto length = count_code_points(text);
    if (auto min = count_keyword(schema, "minLength"); min && length < *min) {
      out.push_back({field, "must be at least " + counted(*min, "character") + " long"});
    }
    if (auto max = count_keyword(schema, "maxLength"); max && length > *max) {
      out.push_back({field, "must be at most " + counted(*max, "character") + " long"});
    }
    if (auto pattern = schema.find("pattern"); pattern != schema.end()) {
      check_pattern(*pattern, text, field, out);
    }
  }

  static void check_pattern(const json& pattern, const std::string& text, const std::string& field,
                            std::vector<SchemaViolation>& out) {
    if (!pattern.is_string()) throw_bad_schema("\"pattern\" must be a string");
    const auto& source = pattern.get_ref<const std::string&>();
    boost::regex expression;
    try {
      expression.assign(source, boost::regex::ECMAScript);
    } catch (const boost::regex_error& e) {
      throw_bad_schema("pattern \"" + source + "\" is not a valid regular expression: " + e.what());
    }
    try {
      if (!boost::regex_search(text, expression)) {
        out.push_back({field, "must match the pattern " + source});
      }
    } catch (const std::runtime_error&) {  // Boost.Regex gives up on runaway matches.
      out.push_back({field, "is too long or complex to check against the pattern " + source});
    }
  }

  void check_array(const json& schema, const json& array, const std::string& field, int depth,
                   std::vector<SchemaViolation>& out) const {
    if (auto min = count_keyword(schema, "minItems"); min && array.size() < *min) {
      out.push_back({field, "must have at least " + counted(*min, "item")});
    }
    if (auto max = count_keyword(schema, "maxItems"); max && array.size() > *max) {
      out.push_back({field, "must have at most " + counted(*max, "item")});
    }
    if (auto items = schema.find("items"); items != schema.end()) {
      for (std::size_t i = 0; i < array.size(); ++i) {
        check(*items, array[i], child_field(field, std::to_string(i)), depth + 1, out);
      }
    }
  }

  void check_object(const json& schema, const json& object, const std::string& field, int depth,
                    std::vector<SchemaViolation>& out) const {
    static const json kNoProperties = json::object();
    auto properties_it = schema.find("properties");
    const json& properties = properties_it == schema.end() ? kNoProperties : *properties_it;
    if (!properties.is_object()) throw_bad_schema("\"properties\" must be an object");
    auto additional = schema.find("additionalProperties");
    for (const auto& [name, member] : object.items()) {
      std::string member_field = child_field(field, name);
      if (auto property = properties.find(name); property != properties.end()) {
        check(*property, member, member_field, depth + 1, out);
      } else if (additional != schema.end() && additional->is_boolean()) {
        if (!additional->get<bool>()) out.push_back({member_field, "unknown field"});
      } else if (additional != schema.end()) {
        check(*additional, member, member_field, depth + 1, out);
      }
    }
    if (auto required = schema.find("required"); required != schema.end()) {
      if (!required->is_array()) throw_bad_schema("\"required\" must be an array of names");
      for (const auto& name : *required) {
        if (!name.is_string()) throw_bad_schema("\"required\" must be an array of names");
        if (!object.contains(name.get_ref<const std::string&>())) {
          out.push_back({child_field(field, name.get<std::string>()), "is required"});
        }
      }
    }
  }

  // Counts how many of the schemas in `keyword` (an array) the value satisfies.
  std::size_t count_matches(const json& schema, const char* keyword, const json& value,
                            int depth) const {
    const json& alternatives = schema[keyword];
    if (!alternatives.is_array() || alternatives.empty()) {
      throw_bad_schema(std::string("\"") + keyword + "\" must be a non-empty array of schemas");
    }
    std::size_t matches = 0;
    for (const auto& alternative : alternatives) {
      std::vector<SchemaViolation> violations;
      check(alternative, value, "", depth + 1, violations);
      matches += violations.empty();
    }
    return matches;
  }

  void check_alternatives(const json& schema, const json& value, const std::string& field,
                          int depth, std::vector<SchemaViolation>& out) const {
    if (schema.contains("anyOf") && count_matches(schema, "anyOf", value, depth) == 0) {
      out.push_back({field, "must match at least one of the allowed forms"});
    }
    if (schema.contains("oneOf")) {
      auto matches = count_matches(schema, "oneOf", value, depth);
      if (matches == 0) {
        out.push_back({field, "must match exactly one of the allowed forms, but matches none"});
      } else if (matches > 1) {
        out.push_back({field, "must match exactly one of the allowed forms, but matches " +
                                  std::to_string(matches)});
      }
    }
  }

  const json& root_;
};

// The schema and the schemas its $ref chain leads to, nearest first.
std::vector<const json*> ref_chain(const json& root, const json& schema) {
  std::vector<const json*> chain{&schema};
  while (chain.back()->is_object() && chain.back()->contains("$ref")) {
    check_depth(static_cast<int>(chain.size()));
    chain.push_back(&resolve_ref(root, (*chain.back())["$ref"]));
  }
  return chain;
}

const json* find_default(const std::vector<const json*>& chain) {
  for (const json* schema : chain) {
    if (schema->is_object() && schema->contains("default")) return &(*schema)["default"];
  }
  return nullptr;
}

json fill_defaults(const json& root, const json& schema, const json& value, int depth) {
  check_depth(depth);
  if (!value.is_object()) return value;
  json filled = value;
  for (const json* layer : ref_chain(root, schema)) {
    if (!layer->is_object() || !layer->contains("properties")) continue;
    const json& properties = (*layer)["properties"];
    if (!properties.is_object()) throw_bad_schema("\"properties\" must be an object");
    for (const auto& [name, property] : properties.items()) {
      if (filled.contains(name)) {
        filled[name] = fill_defaults(root, property, filled[name], depth + 1);
      } else if (const json* fallback = find_default(ref_chain(root, property))) {
        filled[name] = fill_defaults(root, property, *fallback, depth + 1);
      }
    }
  }
  return filled;
}

}  // namespace

std::vector<SchemaViolation> validate_against_schema(const nlohmann::json& schema,
                                                     const nlohmann::json& value) {
  std::vector<SchemaViolation> violations;
  Validator(schema).check(schema, value, "", 0, violations);
  return violations;
}

nlohmann::json apply_schema_defaults(const nlohmann::json& schema, const nlohmann::json& value) {
  return fill_defaults(schema, schema, value, 0);
}

}  // namespace df

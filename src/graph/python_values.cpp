// Python's int()/float()/str()/bool()/repr() on JSON values, as ComfyUI applies them to inputs.
#include "graph/python_values.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string_view>

#include "core/error.h"

namespace df::graph {
namespace {

using u128 = unsigned __int128;
constexpr __int128 kInt128Max = static_cast<__int128>((static_cast<u128>(1) << 127) - 1);
constexpr __int128 kInt128Min = -kInt128Max - 1;

// Python's name for the type of a JSON value, as used in TypeError messages.
std::string python_type_name(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      return "NoneType";
    case nlohmann::json::value_t::object:
      return "dict";
    case nlohmann::json::value_t::array:
      return "list";
    case nlohmann::json::value_t::string:
      return "str";
    case nlohmann::json::value_t::boolean:
      return "bool";
    case nlohmann::json::value_t::number_float:
      return "float";
    default:
      return "int";
  }
}

bool is_python_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

std::string_view strip(std::string_view s) {
  while (!s.empty() && is_python_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_python_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Consumes digits with single underscores between them ("1_000"); appends the digits to `out`.
// Returns false when there is no digit or an underscore is misplaced.
bool take_digit_part(std::string_view& s, std::string& out) {
  if (s.empty() || !is_digit(s.front())) return false;
  while (!s.empty()) {
    if (is_digit(s.front())) {
      out += s.front();
      s.remove_prefix(1);
    } else if (s.front() == '_' && s.size() > 1 && is_digit(s[1])) {
      s.remove_prefix(1);
    } else {
      break;
    }
  }
  return true;
}

std::string int128_to_string(__int128 v) {
  if (v == 0) return "0";
  const bool negative = v < 0;
  u128 magnitude = negative ? static_cast<u128>(-(v + 1)) + 1 : static_cast<u128>(v);
  std::string digits;
  while (magnitude != 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(magnitude % 10)));
    magnitude /= 10;
  }
  return negative ? "-" + digits : digits;
}

PyInt int_from_string(const std::string& original) {
  std::string_view s = strip(original);
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  std::string digits;
  if (!take_digit_part(s, digits) || !s.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "invalid literal for int() with base 10: " + python_repr(original));
  }
  const size_t first_nonzero = digits.find_first_not_of('0');
  digits = first_nonzero == std::string::npos ? "0" : digits.substr(first_nonzero);
  u128 magnitude = 0;
  bool saturated = false;
  for (char c : digits) {
    const u128 limit = static_cast<u128>(kInt128Max);
    if (magnitude > (limit - static_cast<u128>(c - '0')) / 10) {
      saturated = true;
      break;
    }
    magnitude = magnitude * 10 + static_cast<u128>(c - '0');
  }
  PyInt result;
  if (saturated) {
    result.value = negative ? kInt128Min : kInt128Max;
  } else {
    result.value = negative ? -static_cast<__int128>(magnitude) : static_cast<__int128>(magnitude);
  }
  result.text = (negative && digits != "0") ? "-" + digits : digits;
  return result;
}

PyInt int_from_double(double d) {
  if (std::isnan(d)) {
    throw Error(ErrorCode::kInvalidArgument, "cannot convert float NaN to integer");
  }
  if (std::isinf(d)) {
    throw Error(ErrorCode::kInvalidArgument, "cannot convert float infinity to integer");
  }
  const double t = std::trunc(d);
  constexpr double kTwoTo127 = 170141183460469231731687303715884105728.0;
  PyInt result;
  if (t >= kTwoTo127 || t < -kTwoTo127) {
    result.value = t > 0 ? kInt128Max : kInt128Min;
    char buffer[400];
    std::snprintf(buffer, sizeof buffer, "%.0f", t);  // glibc prints the exact integer value
    result.text = buffer;
  } else {
    result.value = static_cast<__int128>(t);
    result.text = int128_to_string(result.value);
  }
  return result;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char ca = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (ca != b[i]) return false;
  }
  return true;
}

// Parses Python's float() syntax; returns false when `s` is not a float literal.
bool parse_float_literal(std::string_view s, double& out) {
  s = strip(s);
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  const double sign = negative ? -1.0 : 1.0;
  if (equals_ignoring_case(s, "inf") || equals_ignoring_case(s, "infinity")) {
    out = sign * std::numeric_limits<double>::infinity();
    return true;
  }
  if (equals_ignoring_case(s, "nan")) {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  std::string integer_digits;
  std::string fraction_digits;
  const bool has_integer = take_digit_part(s, integer_digits);
  if (!s.empty() && s.front() == '.') {
    s.remove_prefix(1);
    if (!take_digit_part(s, fraction_digits) && !has_integer) return false;
  } else if (!has_integer) {
    return false;
  }
  std::string exponent_digits;
  bool negative_exponent = false;
  if (!s.empty() && (s.front() == 'e' || s.front() == 'E')) {
    s.remove_prefix(1);
    if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
      negative_exponent = s.front() == '-';
      s.remove_prefix(1);
    }
    if (!take_digit_part(s, exponent_digits)) return false;
  }
  if (!s.empty()) return false;

  std::string clean = (integer_digits.empty() ? "0" : integer_digits) + "." +
                      (fraction_digits.empty() ? "0" : fraction_digits);
  if (!exponent_digits.empty()) clean += (negative_exponent ? "e-" : "e") + exponent_digits;
  double magnitude = 0.0;
  const auto [end, ec] = std::from_chars(clean.data(), clean.data() + clean.size(), magnitude);
  if (ec == std::errc::result_out_of_range) {
    // Overflow gives inf and underflow zero, as in Python.
    magnitude = negative_exponent ? 0.0 : std::numeric_limits<double>::infinity();
  }
  out = sign * magnitude;
  return true;
}

std::string quote_python_string(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == quote) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02x", c);
      out += buffer;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

}  // namespace

PyInt python_int(const nlohmann::json& v) {
  if (v.is_boolean()) return PyInt{v.get<bool>() ? 1 : 0, v.get<bool>() ? "1" : "0"};
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    return PyInt{static_cast<__int128>(u), std::to_string(u)};
  }
  if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    return PyInt{static_cast<__int128>(i), std::to_string(i)};
  }
  if (v.is_number_float()) return int_from_double(v.get<double>());
  if (v.is_string()) return int_from_string(v.get<std::string>());
  throw Error(ErrorCode::kInvalidArgument,
              "int() argument must be a string, a bytes-like object or a real number, not '" +
                  python_type_name(v) + "'");
}

double python_float(const nlohmann::json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    double out = 0.0;
    if (!parse_float_literal(s, out)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "could not convert string to float: " + python_repr(v));
    }
    return out;
  }
  throw Error(ErrorCode::kInvalidArgument,
              "float() argument must be a string or a real number, not '" + python_type_name(v) +
                  "'");
}

std::string python_str(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::string:
      return v.get<std::string>();
    case nlohmann::json::value_t::null:
      return "None";
    case nlohmann::json::value_t::boolean:
      return v.get<bool>() ? "True" : "False";
    case nlohmann::json::value_t::number_float:
      return python_float_repr(v.get<double>());
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return v.dump();
    default:
      return python_repr(v);
  }
}

bool python_bool(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      return false;
    case nlohmann::json::value_t::boolean:
      return v.get<bool>();
    case nlohmann::json::value_t::number_float:
      return v.get<double>() != 0.0;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return v.get<int64_t>() != 0;
    case nlohmann::json::value_t::string:
      return !v.get_ref<const std::string&>().empty();
    default:
      return !v.empty();
  }
}

std::string python_repr(const nlohmann::json& v) {
  if (v.is_string()) return quote_python_string(v.get<std::string>());
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out += ", ";
      out += python_repr(v[i]);
    }
    return out + "]";
  }
  if (v.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [key, item] : v.items()) {
      if (!first) out += ", ";
      first = false;
      out += quote_python_string(key) + ": " + python_repr(item);
    }
    return out + "}";
  }
  return python_str(v);
}

std::string python_float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 0.0) return std::signbit(x) ? "-0.0" : "0.0";

  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, x,
                                       std::chars_format::scientific);
  const std::string_view sci(buffer, static_cast<size_t>(end - buffer));  // "-1.25e+02"
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (is_digit(c)) digits += c;
  }
  int exponent = 0;
  std::from_chars(sci.data() + e_pos + (sci[e_pos + 1] == '+' ? 2 : 1), sci.data() + sci.size(),
                  exponent);
  const std::string sign = x < 0 ? "-" : "";
  const int decimal_point = exponent + 1;  // digits "d1d2..." mean 0.d1d2... * 10^decimal_point
  const int n = static_cast<int>(digits.size());

  if (decimal_point > -4 && decimal_point <= 16) {
    if (decimal_point <= 0) return sign + "0." + std::string(-decimal_point, '0') + digits;
    if (decimal_point >= n) return sign + digits + std::string(decimal_point - n, '0') + ".0";
    return sign + digits.substr(0, decimal_point) + "." + digits.substr(decimal_point);
  }
  std::string mantissa = digits.substr(0, 1);
  if (n > 1) mantissa += "." + digits.substr(1);
  const int e = decimal_point - 1;
  char exponent_text[16];
  std::snprintf(exponent_text, sizeof exponent_text, "e%c%02d", e < 0 ? '-' : '+', std::abs(e));
  return sign + mantissa + exponent_text;
}

nlohmann::json py_int_to_json(const PyInt& i) {
  if (i.value >= std::numeric_limits<int64_t>::min() &&
      i.value <= std::numeric_limits<int64_t>::max()) {
    return static_cast<int64_t>(i.value);
  }
  if (i.value > 0 && i.value <= static_cast<__int128>(std::numeric_limits<uint64_t>::max())) {
    return static_cast<uint64_t>(i.value);
  }
  double approximate = 0.0;
  const char* first = i.text.data();
  const bool negative = !i.text.empty() && i.text.front() == '-';
  std::from_chars(first + (negative ? 1 : 0), first + i.text.size(), approximate);
  return negative ? -approximate : approximate;
}

}  // namespace df::graph

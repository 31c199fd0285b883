// Python's int()/float()/str()/bool()/repr() on JSON values, as ComfyUI applies them to inputs.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace df::graph {

// An integer as Python's int() produces it. `value` is exact within the 128-bit range and
// saturated beyond it; `text` always holds the exact decimal digits.
struct PyInt {
  __int128 value = 0;
  std::string text;
};

// int(v): JSON integers, floats (truncated toward zero), booleans and numeric strings
// (surrounding whitespace, a sign and single underscores between digits allowed).
// Throws df::Error(kInvalidArgument) with Python's message otherwise.
PyInt python_int(const nlohmann::json& v);

// float(v): JSON numbers, booleans and strings in Python's float syntax (incl. inf/nan).
// Throws df::Error(kInvalidArgument) with Python's message otherwise.
double python_float(const nlohmann::json& v);

// str(v): strings unchanged, numbers and containers as Python prints them.
std::string python_str(const nlohmann::json& v);

// bool(v): Python truthiness (empty strings, zero, null and empty containers are false).
bool python_bool(const nlohmann::json& v);

// repr(v): like str() but strings are quoted the way Python quotes them.
std::string python_repr(const nlohmann::json& v);

// repr(x) of a Python float: shortest round-trip digits, "1.0", "1e-05", "inf", "nan".
std::string python_float_repr(double x);

// The JSON number for an int: a 64-bit integer when it fits, else the nearest double.
nlohmann::json py_int_to_json(const PyInt& i);

}  // namespace df::graph

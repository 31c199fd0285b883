// Unit tests for Python-style conversions of JSON input values (int(), float(), str(), repr()).
#include <gtest/gtest.h>

#include <cmath>

#include "graph/python_values.h"
#include "test_graph_support.h"

namespace df::graph {
namespace {

using nlohmann::json;
using graph_test::expect_error;

TEST(GraphPythonValues, IntAcceptsWhatPythonIntAccepts) {
  EXPECT_EQ(python_int(json(42)).text, "42");
  EXPECT_EQ(python_int(json(-7)).value, -7);
  EXPECT_EQ(python_int(json(3.9)).text, "3");
  EXPECT_EQ(python_int(json(-3.9)).text, "-3");
  EXPECT_EQ(python_int(json(true)).value, 1);
  EXPECT_EQ(python_int(json("  12 ")).value, 12);
  EXPECT_EQ(python_int(json("+5")).value, 5);
  EXPECT_EQ(python_int(json("-007")).text, "-7");
  EXPECT_EQ(python_int(json("1_000")).value, 1000);
  EXPECT_EQ(python_int(json("-0")).text, "0");
}

TEST(GraphPythonValues, IntKeepsSeedsAndBeyondExact) {
  const PyInt max_seed = python_int(json::parse("18446744073709551615"));
  EXPECT_EQ(max_seed.text, "18446744073709551615");
  EXPECT_EQ(py_int_to_json(max_seed), json(18446744073709551615ull));
  EXPECT_EQ(python_int(json::parse("18446744073709551616")).text, "18446744073709551616");
  EXPECT_EQ(python_int(json("18446744073709551616")).text, "18446744073709551616");
  const PyInt huge = python_int(json(std::string(60, '9')));
  EXPECT_EQ(huge.text, std::string(60, '9'));
  EXPECT_GT(huge.value, static_cast<__int128>(1) << 100);
  EXPECT_EQ(python_int(json(1e30)).text, "1000000000000000019884624838656");
}

TEST(GraphPythonValues, IntRejectsWithPythonMessages) {
  auto e = expect_error([] { python_int(json("12.5")); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "invalid literal for int() with base 10: '12.5'");
  e = expect_error([] { python_int(json("1__0")); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "invalid literal for int() with base 10: '1__0'");
  e = expect_error([] { python_int(json("")); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "invalid literal for int() with base 10: ''");
  e = expect_error([] { python_int(json(nullptr)); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(),
               "int() argument must be a string, a bytes-like object or a real number, not "
               "'NoneType'");
  e = expect_error([] { python_int(json::object()); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(),
               "int() argument must be a string, a bytes-like object or a real number, not "
               "'dict'");
}

TEST(GraphPythonValues, FloatAcceptsWhatPythonFloatAccepts) {
  EXPECT_DOUBLE_EQ(python_float(json(8)), 8.0);
  EXPECT_DOUBLE_EQ(python_float(json(" 7.5\n")), 7.5);
  EXPECT_DOUBLE_EQ(python_float(json("1e3")), 1000.0);
  EXPECT_DOUBLE_EQ(python_float(json(".5")), 0.5);
  EXPECT_DOUBLE_EQ(python_float(json("5.")), 5.0);
  EXPECT_DOUBLE_EQ(python_float(json("1_0.2_5")), 10.25);
  EXPECT_DOUBLE_EQ(python_float(json(false)), 0.0);
  EXPECT_TRUE(std::isinf(python_float(json("-Infinity"))));
  EXPECT_TRUE(std::isnan(python_float(json("nan"))));
  EXPECT_TRUE(std::isinf(python_float(json("1e999"))));
  EXPECT_EQ(python_float(json("1e-999")), 0.0);
}

TEST(GraphPythonValues, FloatRejectsWithPythonMessages) {
  auto e = expect_error([] { python_float(json("abc")); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "could not convert string to float: 'abc'");
  e = expect_error([] { python_float(json("0x10")); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "could not convert string to float: '0x10'");
  e = expect_error([] { python_float(json(nullptr)); }, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "float() argument must be a string or a real number, not 'NoneType'");
}

TEST(GraphPythonValues, FloatReprMatchesPython) {
  EXPECT_EQ(python_float_repr(8.0), "8.0");
  EXPECT_EQ(python_float_repr(-0.5), "-0.5");
  EXPECT_EQ(python_float_repr(0.1), "0.1");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
  EXPECT_EQ(python_float_repr(0.00001), "1e-05");
  EXPECT_EQ(python_float_repr(1e16), "1e+16");
  EXPECT_EQ(python_float_repr(1234567890123456.0), "1234567890123456.0");
  EXPECT_EQ(python_float_repr(1.5e300), "1.5e+300");
  EXPECT_EQ(python_float_repr(18446744073709551616.0), "1.8446744073709552e+19");
}

TEST(GraphPythonValues, StrBoolAndRepr) {
  EXPECT_EQ(python_str(json("x")), "x");
  EXPECT_EQ(python_str(json(nullptr)), "None");
  EXPECT_EQ(python_str(json(true)), "True");
  EXPECT_EQ(python_str(json(2.0)), "2.0");
  EXPECT_EQ(python_str(json::array({1, "a", nullptr})), "[1, 'a', None]");
  EXPECT_EQ(python_repr(json("it's")), "\"it's\"");
  EXPECT_EQ(python_repr(json("a\nb\\")), "'a\\nb\\\\'");
  EXPECT_FALSE(python_bool(json("")));
  EXPECT_TRUE(python_bool(json("false")));  // any non-empty string is truthy in Python
  EXPECT_FALSE(python_bool(json(0)));
  EXPECT_FALSE(python_bool(json(nullptr)));
}

}  // namespace
}  // namespace df::graph

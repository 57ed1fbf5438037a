// jinja2's tests (`x is defined`, `x is string`, `x is equalto y` ...), as in jinja2.tests.
#include "model/chat_template/builtins.hpp"
#include "model/chat_template/interpreter.hpp"
#include "model/chat_template/pystring.hpp"

#include <unordered_map>

namespace actorserve::chat_template {

namespace {

using test_fn = bool (*)(interpreter&, const value&, call_arguments&);

bool t_odd(interpreter& in, const value& v, call_arguments& args) {
  bind_arguments("odd", args, {});
  return equals(binary_operation(in, binary_op::mod, v, value(2)), value(1));
}
bool t_even(interpreter& in, const value& v, call_arguments& args) {
  bind_arguments("even", args, {});
  return equals(binary_operation(in, binary_op::mod, v, value(2)), value(0));
}
bool t_divisibleby(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("divisibleby", args, {{"num", {}}});
  return equals(binary_operation(in, binary_op::mod, v, a[0]), value(0));
}
bool t_defined(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("defined", args, {});
  return !v.is_undefined();
}
bool t_undefined(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("undefined", args, {});
  return v.is_undefined();
}
bool t_filter(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("filter", args, {});
  return v.is_string() && is_filter_name(v.text());
}
bool t_test(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("test", args, {});
  return v.is_string() && is_test_name(v.text());
}
bool t_none(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("none", args, {});
  return v.is_none();
}
bool t_boolean(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("boolean", args, {});
  return v.is_bool();
}
bool t_false(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("false", args, {});
  return v.is_bool() && !v.as_bool();
}
bool t_true(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("true", args, {});
  return v.is_bool() && v.as_bool();
}
bool t_integer(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("integer", args, {});
  return v.is_int();
}
bool t_float(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("float", args, {});
  return v.is_float();
}
bool t_lower(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("lower", args, {});
  return py::is_lower(to_str(v));
}
bool t_upper(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("upper", args, {});
  return py::is_upper(to_str(v));
}
bool t_string(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("string", args, {});
  return v.is_string();
}
bool t_mapping(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("mapping", args, {});
  return v.is_dict();
}
bool t_number(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("number", args, {});
  return v.is_number();
}
bool t_sequence(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("sequence", args, {});
  return v.is_string() || v.is_sequence() || v.is_dict() || v.is_undefined();
}
bool t_iterable(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("iterable", args, {});
  return v.is_string() || v.is_sequence() || v.is_dict() || v.is_iterator() || v.is_undefined();
}
bool t_callable(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("callable", args, {});
  return v.is_function() || v.is_object() || v.is_undefined();
}
bool t_sameas(interpreter&, const value& v, call_arguments& args) {
  auto a = bind_arguments("sameas", args, {{"other", {}}});
  const value& o = a[0];
  if (v.kind() != o.kind())
    return false;
  switch (v.kind()) {
  case value_kind::none: return true;
  case value_kind::boolean: return v.as_bool() == o.as_bool();
  case value_kind::integer: return v.as_int() == o.as_int() && v.as_int() >= -5 && v.as_int() <= 256; // CPython's small ints
  case value_kind::floating:
  case value_kind::string:
  case value_kind::undefined: return false;
  default: return v.identity() == o.identity();
  }
}
bool t_escaped(interpreter&, const value&, call_arguments& args) {
  bind_arguments("escaped", args, {});
  return false;
}
bool t_in(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("in", args, {{"seq", {}}});
  return contains(in, a[0], v);
}

bool compare_test(interpreter&, const value& v, call_arguments& args, compare_op op, const char* name) {
  auto a = bind_arguments(name, args, {{"b", {}}});
  switch (op) {
  case compare_op::eq: return equals(v, a[0]);
  case compare_op::ne: return !equals(v, a[0]);
  default: break;
  }
  if (v.is_undefined())
    throw_undefined_error(v);
  if (a[0].is_undefined())
    throw_undefined_error(a[0]);
  const char* symbol = op == compare_op::lt ? "<" : op == compare_op::le ? "<=" : op == compare_op::gt ? ">" : ">=";
  int c = compare(v, a[0], symbol);
  return op == compare_op::lt ? c < 0 : op == compare_op::le ? c <= 0 : op == compare_op::gt ? c > 0 : c >= 0;
}
bool t_eq(interpreter& in, const value& v, call_arguments& a) { return compare_test(in, v, a, compare_op::eq, "eq"); }
bool t_ne(interpreter& in, const value& v, call_arguments& a) { return compare_test(in, v, a, compare_op::ne, "ne"); }
bool t_lt(interpreter& in, const value& v, call_arguments& a) { return compare_test(in, v, a, compare_op::lt, "lt"); }
bool t_le(interpreter& in, const value& v, call_arguments& a) { return compare_test(in, v, a, compare_op::le, "le"); }
bool t_gt(interpreter& in, const value& v, call_arguments& a) { return compare_test(in, v, a, compare_op::gt, "gt"); }
bool t_ge(interpreter& in, const value& v, call_arguments& a) { return compare_test(in, v, a, compare_op::ge, "ge"); }

const std::unordered_map<std::string, test_fn>& tests() {
  static const std::unordered_map<std::string, test_fn> table = {
      {"odd", t_odd},         {"even", t_even},         {"divisibleby", t_divisibleby}, {"defined", t_defined},
      {"undefined", t_undefined}, {"filter", t_filter}, {"test", t_test},       {"none", t_none},
      {"boolean", t_boolean}, {"false", t_false},       {"true", t_true},       {"integer", t_integer},
      {"float", t_float},     {"lower", t_lower},       {"upper", t_upper},     {"string", t_string},
      {"mapping", t_mapping}, {"number", t_number},     {"sequence", t_sequence}, {"iterable", t_iterable},
      {"callable", t_callable}, {"sameas", t_sameas},   {"escaped", t_escaped}, {"in", t_in},
      {"==", t_eq},           {"eq", t_eq},             {"equalto", t_eq},      {"!=", t_ne},
      {"ne", t_ne},           {">", t_gt},              {"gt", t_gt},           {"greaterthan", t_gt},
      {">=", t_ge},           {"ge", t_ge},             {"<", t_lt},            {"lt", t_lt},
      {"lessthan", t_lt},     {"<=", t_le},             {"le", t_le},
  };
  return table;
}

} // namespace

bool is_test_name(std::string_view name) { return tests().count(std::string(name)) != 0; }

bool apply_test(interpreter& in, const std::string& name, const value& subject, call_arguments& args) {
  in.charge();
  auto it = tests().find(name);
  if (it == tests().end())
    throw template_error(template_error_kind::type, "No test named '" + name + "'.");
  return it->second(in, subject, args);
}

} // namespace actorserve::chat_template

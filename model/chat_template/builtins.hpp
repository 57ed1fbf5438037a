#pragma once
// What a chat template can call besides its own macros: jinja2's filters and tests (with
// transformers' tojson), the Python methods of str, dict and list that the sandbox allows,
// the globals (range, dict, namespace, cycler, joiner, raise_exception, strftime_now), and
// Python's operators on values.

#include "model/chat_template/ast.hpp"
#include "model/chat_template/value.hpp"

#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string_view>

namespace actorserve::chat_template {

class interpreter;

bool is_filter_name(std::string_view name);
bool is_test_name(std::string_view name);
/// True for jinja2 builtins actorserve leaves out (their use is an error that says so).
bool is_jinja_builtin(bool is_filter, std::string_view name);

value apply_filter(interpreter& in, const std::string& name, const value& subject, call_arguments& args);
bool apply_test(interpreter& in, const std::string& name, const value& subject, call_arguments& args);

/// A method of a str, dict or list bound to `receiver`. Returns false when Python's type has
/// no such attribute. Mutating methods the sandbox forbids come back as an undefined value
/// whose use fails with jinja2's "access to attribute ... is unsafe" message.
bool find_method(const value& receiver, const std::string& name, value& method);

/// range, dict, namespace, cycler, joiner, raise_exception, strftime_now; null if unknown.
const value* find_global(const std::string& name);

/// Python operators. Errors are type errors with Python's wording.
value binary_operation(interpreter& in, binary_op op, const value& left, const value& right);
value negate(const value& v, bool minus);
/// `item in container`.
bool contains(interpreter& in, const value& container, const value& item);

/// printf-style `format % args` (the `%` operator on strings and the |format filter).
std::string percent_format(interpreter& in, const std::string& format, const value& args);
/// str.format(*args, **kwargs).
std::string str_format(interpreter& in, const std::string& format, call_arguments& args);

/// Binds call arguments to a Python-style signature: one value per parameter, in order.
/// A parameter without a default is required. Throws type errors with Python's wording.
struct param {
  const char* name;
  std::optional<value> default_value;
};
std::vector<value> bind_arguments(const char* function, call_arguments& args, std::initializer_list<param> params);

/// Python int/float coercions used by filters and methods.
std::int64_t to_index(const value& v, const char* what);

/// snprintf into a string of the exact length (numbers formatted the C way, which is how
/// Python formats %f/%e/%g and friends).
template <typename... Args> std::string c_format(const std::string& format, Args... args) {
  int n = std::snprintf(nullptr, 0, format.c_str(), args...);
  if (n < 0)
    throw template_error(template_error_kind::type, "cannot format with '" + format + "'");
  std::string out(static_cast<std::size_t>(n), '\0');
  std::snprintf(out.data(), out.size() + 1, format.c_str(), args...);
  return out;
}

} // namespace actorserve::chat_template

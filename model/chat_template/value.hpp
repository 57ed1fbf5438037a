#pragma once
// The values a chat template computes with, and their Python semantics: truthiness, str()
// and repr() formatting, ==, <, len(), hashing for dict keys. A template sees exactly what
// Python's jinja2 sees after json.loads of the request: None, bool, int, float, str, list,
// dict, plus what templates build themselves (tuples, namespaces, macros, loop objects).
//
// Lists and dicts have reference semantics (shared_ptr), as in Python; strings are values.

#include "model/chat_template/template_error.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace actorserve::chat_template {

class value;
class value_dict;
class interpreter;

using value_list = std::vector<value>;

enum class value_kind : std::uint8_t {
  undefined,        // jinja2's Undefined: prints as "", iterates as empty, errors on use
  none,             // Python None
  boolean,
  integer,          // Python int, limited to 64 bits (overflow is an error)
  floating,         // Python float
  string,           // UTF-8
  list,
  tuple,
  dict,             // insertion-ordered
  iterator,         // a one-shot generator (what selectattr, map, items ... return)
  namespace_object, // namespace(): the one mutable object templates may assign attributes to
  function,         // builtin function, macro or bound method
  object,           // loop, cycler, joiner
};

/// Arguments of a call, a filter or a test (the subject of a filter/test is not included).
struct call_arguments {
  value_list positional;
  std::vector<std::pair<std::string, value>> named;
};

/// Something a template can call.
class callable {
public:
  virtual ~callable() = default;
  virtual value call(interpreter& in, call_arguments& args) = 0;
  /// Python-ish repr, e.g. "<built-in method items of dict object>" or "<Macro 'render'>".
  virtual std::string repr() const = 0;
  virtual std::string type_name() const { return "builtin_function_or_method"; }
};

/// A runtime object with attributes (the loop variable, cycler, joiner).
class object_value {
public:
  virtual ~object_value() = default;
  /// Undefined when the object has no such attribute.
  virtual value attribute(const std::string& name) = 0;
  virtual std::string type_name() const = 0;
  virtual std::string repr() const = 0;
  /// Calling the object (only a recursive loop is callable).
  virtual value call(interpreter& in, call_arguments& args);
};

struct iterator_state {
  std::shared_ptr<value_list> items;
  std::size_t position = 0;
};

class value {
public:
  value() = default; // undefined
  value(bool b) : kind_(value_kind::boolean) { scalar_.b = b; }
  value(std::int64_t i) : kind_(value_kind::integer) { scalar_.i = i; }
  value(int i) : value(static_cast<std::int64_t>(i)) {}
  value(double f) : kind_(value_kind::floating) { scalar_.f = f; }
  value(std::string s) : kind_(value_kind::string), text_(std::move(s)) {}
  value(std::string_view s) : value(std::string(s)) {}
  value(const char* s) : value(std::string(s)) {}

  static value none();
  /// `hint` is the message used if the value is later used in a way that fails, as jinja2's
  /// "'foo' is undefined" or "'dict object' has no attribute 'bar'".
  static value undefined(std::string hint = {});
  /// An attribute the sandbox forbids (list.append, dict.update ...): undefined, and any use
  /// of it is a security error, as in jinja2's sandbox.
  static value unsafe(std::string hint);
  static value make_list(value_list items = {});
  static value make_tuple(value_list items);
  static value make_dict(std::shared_ptr<value_dict> dict = nullptr);
  static value make_namespace(std::shared_ptr<value_dict> attributes);
  static value make_iterator(value_list items);
  static value make_function(std::shared_ptr<callable> f);
  static value make_object(std::shared_ptr<object_value> o);

  value_kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == value_kind::undefined; }
  bool is_unsafe() const { return kind_ == value_kind::undefined && scalar_.b; }
  bool is_none() const { return kind_ == value_kind::none; }
  bool is_bool() const { return kind_ == value_kind::boolean; }
  bool is_int() const { return kind_ == value_kind::integer; }
  bool is_float() const { return kind_ == value_kind::floating; }
  /// bool, int or float (Python's numbers.Number; bool is an int in Python).
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_string() const { return kind_ == value_kind::string; }
  bool is_list() const { return kind_ == value_kind::list; }
  bool is_tuple() const { return kind_ == value_kind::tuple; }
  bool is_sequence() const { return is_list() || is_tuple(); }
  bool is_dict() const { return kind_ == value_kind::dict; }
  bool is_namespace() const { return kind_ == value_kind::namespace_object; }
  bool is_iterator() const { return kind_ == value_kind::iterator; }
  bool is_function() const { return kind_ == value_kind::function; }
  bool is_object() const { return kind_ == value_kind::object; }

  bool as_bool() const { return scalar_.b; }
  std::int64_t as_int() const { return scalar_.i; }
  double as_float() const { return scalar_.f; }
  /// bool, int or float as a double.
  double to_double() const;
  /// The text of a string; the hint of an undefined value.
  const std::string& text() const { return text_; }
  /// Items of a list or tuple.
  value_list& items() const { return *static_cast<value_list*>(ref_.get()); }
  /// Entries of a dict, or the attributes of a namespace.
  value_dict& dict() const { return *static_cast<value_dict*>(ref_.get()); }
  iterator_state& iterator() const { return *static_cast<iterator_state*>(ref_.get()); }
  callable& function() const { return *static_cast<callable*>(ref_.get()); }
  object_value& object() const { return *static_cast<object_value*>(ref_.get()); }
  std::shared_ptr<void> shared() const { return ref_; }
  /// Identity for reference types (Python `is`); null for scalars.
  const void* identity() const { return ref_.get(); }

private:
  value_kind kind_ = value_kind::undefined;
  union {
    bool b;
    std::int64_t i;
    double f;
  } scalar_{};
  std::string text_;
  std::shared_ptr<void> ref_;
};

/// An insertion-ordered dict with Python key semantics (1 == 1.0 == True are one key).
class value_dict {
public:
  const value* find(const value& key) const;
  value* find(const value& key);
  const value* find_string(std::string_view key) const;
  /// Inserts or replaces; throws a type error for an unhashable key (list, dict).
  void set(const value& key, value v);
  bool erase(const value& key);
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<std::pair<value, value>>& entries() const { return entries_; }
  void clear();

private:
  std::ptrdiff_t index_of(const value& key) const;
  void rebuild_index();

  std::vector<std::pair<value, value>> entries_;
  // hash_key -> position, built once the dict is large enough for linear search to hurt.
  std::unique_ptr<std::unordered_map<std::string, std::size_t>> index_;
};

/// Deepest nesting of lists/dicts that printing, comparing and JSON conversion will follow.
inline constexpr int max_value_depth = 512;

/// Python truthiness (undefined is false; an iterator is always true, like a generator).
bool truthy(const value& v);
/// Python's type name: "str", "int", "NoneType", "dict", "Undefined" ...
std::string type_name(const value& v);
/// jinja2's description of an object in undefined messages: "dict object", "None".
std::string object_type_text(const value& v);
/// The same, quoted as jinja2 quotes it in "... has no attribute" messages: "'dict object'".
std::string object_description(const value& v);
/// str(v) as jinja2 prints it ({{ v }}): undefined -> "", None -> "None", lists as repr.
std::string to_str(const value& v);
/// repr(v).
std::string to_repr(const value& v);
/// Python float repr: shortest round-trip digits, "1.0", "1e+16", "inf", "nan".
std::string format_float(double f);
/// Python ==.
bool equals(const value& a, const value& b);
/// Python <, as -1/0/1; throws a type error where Python raises TypeError.
int compare(const value& a, const value& b, const char* op = "<");
/// len(v); throws a type error when Python would.
std::size_t length(const value& v);
/// A string that is equal for keys Python considers equal; throws for unhashable values.
std::string hash_key(const value& v);

/// The template's view of a JSON document (objects keep their key order, as json.loads does).
value from_json(const nlohmann::ordered_json& j);
/// Whether `j` nests arrays/objects deeper than `max_depth`, found without recursion (copying
/// or converting a hostile, deeply nested request recursively could exhaust the stack).
bool json_nested_deeper_than(const nlohmann::ordered_json& j, int max_depth);

struct json_dump_options {
  std::optional<std::string> indent; // None: one line
  bool ensure_ascii = false;         // transformers passes False
  std::string item_separator;        // empty: Python's default for the indent mode
  std::string key_separator;
  bool has_separators = false;
  bool sort_keys = false;
};
/// json.dumps(v, ...) exactly as Python formats it (transformers' tojson filter).
std::string to_json(const value& v, const json_dump_options& options);

/// Throws a template_error of kind `type` (no location; the interpreter adds the line).
[[noreturn]] void throw_type_error(std::string message);
[[noreturn]] void throw_undefined_error(const value& undefined_value);

} // namespace actorserve::chat_template

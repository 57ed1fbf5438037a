#include "model/chat_template/value.hpp"

#include "model/chat_template/pystring.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace actorserve::chat_template {

void throw_type_error(std::string message) {
  throw template_error(template_error_kind::type, std::move(message));
}

void throw_undefined_error(const value& v) {
  throw template_error(v.is_unsafe() ? template_error_kind::security : template_error_kind::undefined,
                       v.text().empty() ? "value is undefined" : v.text());
}

value object_value::call(interpreter&, call_arguments&) {
  throw_type_error(std::string("'").append(type_name()).append("' object is not callable"));
}

value value::none() {
  value v;
  v.kind_ = value_kind::none;
  return v;
}

value value::undefined(std::string hint) {
  value v;
  v.text_ = std::move(hint);
  return v;
}

value value::unsafe(std::string hint) {
  value v = undefined(std::move(hint));
  v.scalar_.b = true;
  return v;
}

value value::make_list(value_list items) {
  value v;
  v.kind_ = value_kind::list;
  v.ref_ = std::make_shared<value_list>(std::move(items));
  return v;
}

value value::make_tuple(value_list items) {
  value v = make_list(std::move(items));
  v.kind_ = value_kind::tuple;
  return v;
}

value value::make_dict(std::shared_ptr<value_dict> dict) {
  value v;
  v.kind_ = value_kind::dict;
  v.ref_ = dict ? std::move(dict) : std::make_shared<value_dict>();
  return v;
}

value value::make_namespace(std::shared_ptr<value_dict> attributes) {
  value v = make_dict(std::move(attributes));
  v.kind_ = value_kind::namespace_object;
  return v;
}

value value::make_iterator(value_list items) {
  value v;
  v.kind_ = value_kind::iterator;
  auto state = std::make_shared<iterator_state>();
  state->items = std::make_shared<value_list>(std::move(items));
  v.ref_ = std::move(state);
  return v;
}

value value::make_function(std::shared_ptr<callable> f) {
  value v;
  v.kind_ = value_kind::function;
  v.ref_ = std::move(f);
  return v;
}

value value::make_object(std::shared_ptr<object_value> o) {
  value v;
  v.kind_ = value_kind::object;
  v.ref_ = std::move(o);
  return v;
}

double value::to_double() const {
  switch (kind_) {
  case value_kind::boolean: return scalar_.b ? 1.0 : 0.0;
  case value_kind::integer: return static_cast<double>(scalar_.i);
  case value_kind::floating: return scalar_.f;
  default: return 0.0;
  }
}

// ---- dict ----

namespace {

constexpr std::size_t dict_index_threshold = 24;

/// Python key equality without building hash keys (the common small-dict path).
bool keys_equal(const value& a, const value& b) {
  if (a.is_string() || b.is_string())
    return a.is_string() && b.is_string() && a.text() == b.text();
  return equals(a, b);
}

} // namespace

std::ptrdiff_t value_dict::index_of(const value& key) const {
  if (index_) {
    auto it = index_->find(hash_key(key));
    return it == index_->end() ? -1 : static_cast<std::ptrdiff_t>(it->second);
  }
  for (std::size_t i = 0; i < entries_.size(); ++i)
    if (keys_equal(entries_[i].first, key))
      return static_cast<std::ptrdiff_t>(i);
  return -1;
}

void value_dict::rebuild_index() {
  index_ = std::make_unique<std::unordered_map<std::string, std::size_t>>();
  for (std::size_t i = 0; i < entries_.size(); ++i)
    (*index_)[hash_key(entries_[i].first)] = i;
}

const value* value_dict::find(const value& key) const {
  auto i = index_of(key);
  return i < 0 ? nullptr : &entries_[static_cast<std::size_t>(i)].second;
}

value* value_dict::find(const value& key) {
  auto i = index_of(key);
  return i < 0 ? nullptr : &entries_[static_cast<std::size_t>(i)].second;
}

const value* value_dict::find_string(std::string_view key) const {
  if (index_)
    return find(value(key));
  for (const auto& [k, v] : entries_)
    if (k.is_string() && k.text() == key)
      return &v;
  return nullptr;
}

void value_dict::set(const value& key, value v) {
  std::string hashed = hash_key(key); // validates hashability even in linear mode
  auto i = index_of(key);
  if (i >= 0) {
    entries_[static_cast<std::size_t>(i)].second = std::move(v);
    return;
  }
  entries_.emplace_back(key, std::move(v));
  if (index_)
    (*index_)[hashed] = entries_.size() - 1;
  else if (entries_.size() > dict_index_threshold)
    rebuild_index();
}

bool value_dict::erase(const value& key) {
  auto i = index_of(key);
  if (i < 0)
    return false;
  entries_.erase(entries_.begin() + i);
  if (index_)
    rebuild_index();
  return true;
}

void value_dict::clear() {
  entries_.clear();
  index_.reset();
}

// ---- Python semantics ----

bool truthy(const value& v) {
  switch (v.kind()) {
  case value_kind::undefined:
  case value_kind::none: return false;
  case value_kind::boolean: return v.as_bool();
  case value_kind::integer: return v.as_int() != 0;
  case value_kind::floating: return v.as_float() != 0.0;
  case value_kind::string: return !v.text().empty();
  case value_kind::list:
  case value_kind::tuple: return !v.items().empty();
  case value_kind::dict: return !v.dict().empty();
  default: return true;
  }
}

std::string type_name(const value& v) {
  switch (v.kind()) {
  case value_kind::undefined: return "Undefined";
  case value_kind::none: return "NoneType";
  case value_kind::boolean: return "bool";
  case value_kind::integer: return "int";
  case value_kind::floating: return "float";
  case value_kind::string: return "str";
  case value_kind::list: return "list";
  case value_kind::tuple: return "tuple";
  case value_kind::dict: return "dict";
  case value_kind::iterator: return "generator";
  case value_kind::namespace_object: return "Namespace";
  case value_kind::function: return v.function().type_name();
  case value_kind::object: return v.object().type_name();
  }
  return "object";
}

std::string object_type_text(const value& v) { return v.is_none() ? "None" : type_name(v) + " object"; }

std::string object_description(const value& v) { return std::string("'").append(object_type_text(v)).append("'"); }

std::string format_float(double f) {
  if (std::isnan(f))
    return "nan";
  if (std::isinf(f))
    return f < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool negative = sci[0] == '-';
  if (negative)
    sci.erase(0, 1);
  auto e = sci.find('e');
  std::string digits;
  for (std::size_t i = 0; i < e; ++i)
    if (sci[i] != '.')
      digits.push_back(sci[i]);
  int exponent = std::stoi(sci.substr(e + 1));
  int decpt = exponent + 1; // value = 0.digits * 10^decpt
  int ndigits = static_cast<int>(digits.size());
  std::string out = negative ? "-" : "";
  if (decpt <= -4 || decpt > 16) {
    out += digits.substr(0, 1);
    if (ndigits > 1)
      out += "." + digits.substr(1);
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp_buf;
  } else if (decpt <= 0) {
    out += "0." + std::string(static_cast<std::size_t>(-decpt), '0') + digits;
  } else if (decpt < ndigits) {
    out += digits.substr(0, static_cast<std::size_t>(decpt)) + "." + digits.substr(static_cast<std::size_t>(decpt));
  } else {
    out += digits + std::string(static_cast<std::size_t>(decpt - ndigits), '0') + ".0";
  }
  return out;
}

namespace {

void check_depth(int depth) {
  if (depth > max_value_depth)
    throw template_error(template_error_kind::limit,
                         "value nested deeper than " + std::to_string(max_value_depth) + " levels");
}

void append_repr(std::string& out, const value& v, int depth);

void append_str(std::string& out, const value& v, int depth) {
  check_depth(depth);
  switch (v.kind()) {
  case value_kind::undefined: return;
  case value_kind::none: out += "None"; return;
  case value_kind::boolean: out += v.as_bool() ? "True" : "False"; return;
  case value_kind::integer: out += std::to_string(v.as_int()); return;
  case value_kind::floating: out += format_float(v.as_float()); return;
  case value_kind::string: out += v.text(); return;
  case value_kind::list:
  case value_kind::tuple: {
    out += v.is_list() ? '[' : '(';
    const auto& items = v.items();
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i)
        out += ", ";
      append_repr(out, items[i], depth + 1);
    }
    if (v.is_tuple() && items.size() == 1)
      out += ',';
    out += v.is_list() ? ']' : ')';
    return;
  }
  case value_kind::dict:
  case value_kind::namespace_object: {
    if (v.is_namespace())
      out += "<Namespace ";
    out += '{';
    bool first = true;
    for (const auto& [key, item] : v.dict().entries()) {
      if (!first)
        out += ", ";
      first = false;
      append_repr(out, key, depth + 1);
      out += ": ";
      append_repr(out, item, depth + 1);
    }
    out += '}';
    if (v.is_namespace())
      out += '>';
    return;
  }
  case value_kind::iterator: out += "<generator object>"; return;
  case value_kind::function: out += v.function().repr(); return;
  case value_kind::object: out += v.object().repr(); return;
  }
}

void append_repr(std::string& out, const value& v, int depth) {
  if (v.is_string())
    out += py::repr(v.text());
  else if (v.is_undefined())
    out += "Undefined";
  else
    append_str(out, v, depth);
}

} // namespace

std::string to_str(const value& v) {
  if (v.is_string())
    return v.text();
  std::string out;
  append_str(out, v, 0);
  return out;
}

std::string to_repr(const value& v) {
  std::string out;
  append_repr(out, v, 0);
  return out;
}

namespace {

bool equals_at(const value& a, const value& b, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float())
      return a.to_double() == b.to_double();
    return (a.is_bool() ? static_cast<std::int64_t>(a.as_bool()) : a.as_int()) ==
           (b.is_bool() ? static_cast<std::int64_t>(b.as_bool()) : b.as_int());
  }
  if (a.kind() != b.kind())
    return false;
  switch (a.kind()) {
  case value_kind::undefined:
  case value_kind::none: return true;
  case value_kind::string: return a.text() == b.text();
  case value_kind::list:
  case value_kind::tuple: {
    const auto &x = a.items(), &y = b.items();
    if (x.size() != y.size())
      return false;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!equals_at(x[i], y[i], depth + 1))
        return false;
    return true;
  }
  case value_kind::dict: {
    if (a.dict().size() != b.dict().size())
      return false;
    for (const auto& [key, item] : a.dict().entries()) {
      const value* other = b.dict().find(key);
      if (!other || !equals_at(item, *other, depth + 1))
        return false;
    }
    return true;
  }
  default: return a.identity() == b.identity();
  }
}

std::int64_t int_of(const value& v) { return v.is_bool() ? static_cast<std::int64_t>(v.as_bool()) : v.as_int(); }

int compare_at(const value& a, const value& b, const char* op, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.to_double(), y = b.to_double();
      return x < y ? -1 : (y < x ? 1 : 0);
    }
    auto x = int_of(a), y = int_of(b);
    return x < y ? -1 : (y < x ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.text().compare(b.text());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if ((a.is_list() && b.is_list()) || (a.is_tuple() && b.is_tuple())) {
    const auto &x = a.items(), &y = b.items();
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!equals_at(x[i], y[i], depth + 1))
        return compare_at(x[i], y[i], op, depth + 1);
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  throw_type_error(std::string("'") + op + "' not supported between instances of '" + type_name(a) + "' and '" +
                   type_name(b) + "'");
}

} // namespace

bool equals(const value& a, const value& b) { return equals_at(a, b, 0); }

int compare(const value& a, const value& b, const char* op) { return compare_at(a, b, op, 0); }

std::size_t length(const value& v) {
  switch (v.kind()) {
  case value_kind::undefined: return 0;
  case value_kind::string: return py::code_point_count(v.text());
  case value_kind::list:
  case value_kind::tuple: return v.items().size();
  case value_kind::dict: return v.dict().size();
  default: throw_type_error("object of type '" + type_name(v) + "' has no len()");
  }
}

std::string hash_key(const value& v) {
  switch (v.kind()) {
  case value_kind::undefined: return "u";
  case value_kind::none: return "n";
  case value_kind::boolean: return v.as_bool() ? "i1" : "i0";
  case value_kind::integer: return "i" + std::to_string(v.as_int());
  case value_kind::floating: {
    double f = v.as_float();
    if (std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 9.2e18)
      return "i" + std::to_string(static_cast<std::int64_t>(f));
    return "f" + format_float(f);
  }
  case value_kind::string: return "s" + v.text();
  case value_kind::tuple: {
    std::string key = "t(";
    for (const auto& item : v.items())
      key += hash_key(item) + "\x1f";
    return key + ")";
  }
  case value_kind::list:
  case value_kind::dict: throw_type_error("unhashable type: '" + type_name(v) + "'");
  default: {
    char buf[32];
    std::snprintf(buf, sizeof buf, "p%p", v.identity());
    return buf;
  }
  }
}

// ---- JSON ----

namespace {

value from_json_at(const nlohmann::ordered_json& j, int depth) {
  check_depth(depth);
  switch (j.type()) {
  case nlohmann::ordered_json::value_t::null: return value::none();
  case nlohmann::ordered_json::value_t::boolean: return value(j.get<bool>());
  case nlohmann::ordered_json::value_t::number_integer: return value(j.get<std::int64_t>());
  case nlohmann::ordered_json::value_t::number_unsigned: {
    auto u = j.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX))
      throw_type_error("integer " + std::to_string(u) + " does not fit in 64 bits");
    return value(static_cast<std::int64_t>(u));
  }
  case nlohmann::ordered_json::value_t::number_float: return value(j.get<double>());
  case nlohmann::ordered_json::value_t::string: return value(j.get_ref<const std::string&>());
  case nlohmann::ordered_json::value_t::array: {
    value_list items;
    items.reserve(j.size());
    for (const auto& item : j)
      items.push_back(from_json_at(item, depth + 1));
    return value::make_list(std::move(items));
  }
  case nlohmann::ordered_json::value_t::object: {
    auto dict = std::make_shared<value_dict>();
    for (const auto& [key, item] : j.items())
      dict->set(value(key), from_json_at(item, depth + 1));
    return value::make_dict(std::move(dict));
  }
  default: throw_type_error("unsupported JSON value (binary or discarded)");
  }
}

void append_json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  static const char* hex = "0123456789abcdef";
  auto append_u = [&](char32_t c) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4)
      out.push_back(hex[(c >> shift) & 0xF]);
  };
  out.push_back('"');
  for (char32_t c : py::decode_utf8(s)) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    default:
      if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
        if (c >= 0x10000) {
          char32_t v = c - 0x10000;
          append_u(0xD800 | (v >> 10));
          append_u(0xDC00 | (v & 0x3FF));
        } else {
          append_u(c);
        }
      } else {
        py::append_utf8(out, c);
      }
    }
  }
  out.push_back('"');
}

std::string json_float(double f) {
  if (std::isnan(f))
    return "NaN";
  if (std::isinf(f))
    return f < 0 ? "-Infinity" : "Infinity";
  return format_float(f);
}

struct json_writer {
  const json_dump_options& options;
  std::string item_separator;
  std::string key_separator;
  std::string out;

  void newline(int level) {
    out.push_back('\n');
    for (int i = 0; i < level; ++i)
      out += *options.indent;
  }

  std::string key_text(const value& key) {
    switch (key.kind()) {
    case value_kind::string: return key.text();
    case value_kind::none: return "null";
    case value_kind::boolean: return key.as_bool() ? "true" : "false";
    case value_kind::integer: return std::to_string(key.as_int());
    case value_kind::floating: return json_float(key.as_float());
    default: throw_type_error("keys must be str, int, float, bool or None, not " + type_name(key));
    }
  }

  void write(const value& v, int level) {
    check_depth(level);
    switch (v.kind()) {
    case value_kind::none: out += "null"; return;
    case value_kind::boolean: out += v.as_bool() ? "true" : "false"; return;
    case value_kind::integer: out += std::to_string(v.as_int()); return;
    case value_kind::floating: out += json_float(v.as_float()); return;
    case value_kind::string: append_json_string(out, v.text(), options.ensure_ascii); return;
    case value_kind::list:
    case value_kind::tuple: {
      const auto& items = v.items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      if (options.indent)
        newline(level + 1);
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) {
          out += item_separator;
          if (options.indent)
            newline(level + 1);
        }
        write(items[i], level + 1);
      }
      if (options.indent)
        newline(level);
      out.push_back(']');
      return;
    }
    case value_kind::dict: {
      const auto& entries = v.dict().entries();
      if (entries.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<value, value>*> order;
      for (const auto& entry : entries)
        order.push_back(&entry);
      if (options.sort_keys)
        std::stable_sort(order.begin(), order.end(),
                         [](auto* a, auto* b) { return compare(a->first, b->first) < 0; });
      out.push_back('{');
      if (options.indent)
        newline(level + 1);
      bool first = true;
      for (const auto* entry : order) {
        if (!first) {
          out += item_separator;
          if (options.indent)
            newline(level + 1);
        }
        first = false;
        append_json_string(out, key_text(entry->first), options.ensure_ascii);
        out += key_separator;
        write(entry->second, level + 1);
      }
      if (options.indent)
        newline(level);
      out.push_back('}');
      return;
    }
    default: throw_type_error("Object of type " + type_name(v) + " is not JSON serializable");
    }
  }
};

} // namespace

value from_json(const nlohmann::ordered_json& j) { return from_json_at(j, 0); }

bool json_nested_deeper_than(const nlohmann::ordered_json& j, int max_depth) {
  std::vector<std::pair<const nlohmann::ordered_json*, int>> pending{{&j, 0}};
  while (!pending.empty()) {
    auto [node, depth] = pending.back();
    pending.pop_back();
    if (!node->is_structured())
      continue;
    if (depth >= max_depth)
      return true;
    for (const auto& child : *node)
      pending.emplace_back(&child, depth + 1);
  }
  return false;
}

std::string to_json(const value& v, const json_dump_options& options) {
  json_writer writer{options, {}, {}, {}};
  if (options.has_separators) {
    writer.item_separator = options.item_separator;
    writer.key_separator = options.key_separator;
  } else {
    writer.item_separator = options.indent ? "," : ", ";
    writer.key_separator = ": ";
  }
  writer.write(v, 0);
  return std::move(writer.out);
}

} // namespace actorserve::chat_template

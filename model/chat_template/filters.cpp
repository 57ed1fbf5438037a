// jinja2's filters as transformers' environment has them (tojson replaced by transformers'
// own: json.dumps with ensure_ascii=False, no HTML escaping, no key sorting). Tests: tests.cpp.
#include "model/chat_template/builtins.hpp"
#include "model/chat_template/interpreter.hpp"
#include "model/chat_template/pystring.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <unordered_map>

namespace actorserve::chat_template {

namespace {

using filter_fn = value (*)(interpreter&, const value&, call_arguments&);

std::string soft_str(const value& v) { return to_str(v); }

value none() { return value::none(); }

/// Python int() of a string: optional sign, digits with single underscores, surrounding spaces.
bool parse_int(const std::string& text, std::int64_t base_arg, std::int64_t& out) {
  if (base_arg != 0 && (base_arg < 2 || base_arg > 36))
    return false; // Python: ValueError, which |int answers with its float fallback
  int base = static_cast<int>(base_arg);
  std::string s = py::strip(text, std::nullopt, true, true);
  std::string digits;
  std::size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-'))
    negative = s[i++] == '-';
  if (base == 0 || base == 16 || base == 8 || base == 2) {
    if (i + 1 < s.size() && s[i] == '0') {
      char p = static_cast<char>(s[i + 1] | 0x20);
      int prefixed = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
      if (prefixed && (base == 0 || base == prefixed)) {
        base = prefixed;
        i += 2;
        if (i < s.size() && s[i] == '_')
          ++i;
      }
    }
    if (base == 0)
      base = 10;
  }
  for (; i < s.size(); ++i) {
    if (s[i] == '_' && !digits.empty() && i + 1 < s.size() && s[i + 1] != '_')
      continue;
    digits.push_back(s[i]);
  }
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); }))
    return false;
  char* end = digits.data();
  errno = 0;
  long long v = std::strtoll(digits.c_str(), &end, base);
  if (*end != '\0' || errno == ERANGE)
    return false;
  out = negative ? -v : v;
  return true;
}

/// Python float() of a string.
bool parse_float(const std::string& text, double& out) {
  std::string s = py::strip(text, std::nullopt, true, true);
  std::string clean;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (i == 0 || i + 1 == s.size() || !std::isdigit(static_cast<unsigned char>(s[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(s[i + 1])))
        return false;
      continue;
    }
    clean.push_back(s[i]);
  }
  if (clean.empty())
    return false;
  std::string lower = py::lower(clean);
  std::string body = lower[0] == '+' || lower[0] == '-' ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    out = body == "nan" ? NAN : INFINITY;
    if (lower[0] == '-')
      out = -out;
    return true;
  }
  if (body.find_first_not_of("0123456789.e+-") != std::string::npos || body.find("0x") != std::string::npos)
    return false;
  char* end = nullptr;
  out = std::strtod(clean.c_str(), &end);
  return *end == '\0';
}

/// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0, with getitem rules.
std::vector<value> attribute_parts(const value& attribute) {
  std::vector<value> parts;
  if (attribute.is_none() || attribute.is_undefined())
    return parts;
  if (!attribute.is_string())
    return {attribute};
  for (const auto& part : py::split(attribute.text(), std::string("."), -1)) {
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    parts.push_back(digits ? value(static_cast<std::int64_t>(std::stoll(part))) : value(part));
  }
  return parts;
}

value get_path(interpreter& in, value item, const std::vector<value>& parts, const value* fallback) {
  for (const auto& part : parts) {
    item = in.get_item(item, part);
    if (fallback && item.is_undefined())
      item = *fallback;
  }
  return item;
}

value ignore_case(const value& v) { return v.is_string() ? value(py::lower(v.text())) : v; }

/// Python's sorted(): stable, reverse keeps equal items in their original order.
void sort_by_keys(std::vector<std::pair<value, value>>& keyed, bool reverse) {
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? compare(b.first, a.first) < 0 : compare(a.first, b.first) < 0;
  });
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&#34;"; break;
    case '\'': out += "&#39;"; break;
    default: out.push_back(c);
    }
  }
  return out;
}

// ---- filters ----

value f_abs(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("abs", args, {});
  if (v.is_bool() || v.is_int()) {
    std::int64_t i = v.is_bool() ? v.as_bool() : v.as_int();
    if (i == INT64_MIN)
      throw_type_error("integer overflow");
    return value(i < 0 ? -i : i);
  }
  if (v.is_float())
    return value(std::fabs(v.as_float()));
  throw_type_error("bad operand type for abs(): '" + type_name(v) + "'");
}

value f_attr(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("attr", args, {{"name", {}}});
  std::string name = soft_str(a[0]);
  value method;
  if ((v.is_string() || v.is_dict() || v.is_sequence()) && find_method(v, name, method))
    return method;
  if (v.is_namespace() || v.is_object())
    return in.get_attribute(v, name);
  return value::undefined(object_description(v) + " has no attribute '" + name + "'");
}

value f_batch(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("batch", args, {{"linecount", {}}, {"fill_with", none()}});
  std::int64_t count = to_index(a[0], "linecount");
  if (count <= 0)
    throw_type_error("batch size must be positive");
  value_list batches, current;
  for (auto& item : in.iterate(v)) {
    current.push_back(std::move(item));
    if (static_cast<std::int64_t>(current.size()) == count) {
      batches.push_back(value::make_list(std::move(current)));
      current.clear();
    }
  }
  if (!current.empty()) {
    if (!a[1].is_none())
      while (static_cast<std::int64_t>(current.size()) < count)
        current.push_back(a[1]);
    batches.push_back(value::make_list(std::move(current)));
  }
  return value::make_iterator(std::move(batches));
}

value f_capitalize(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("capitalize", args, {});
  return value(py::capitalize(soft_str(v)));
}

std::string center_text(const std::string& s, std::int64_t width, const std::string& fill) {
  auto n = static_cast<std::int64_t>(py::code_point_count(s));
  if (width <= n)
    return s;
  std::int64_t margin = width - n;
  std::int64_t left = margin / 2 + (margin & width & 1);
  std::string out;
  for (std::int64_t i = 0; i < left; ++i)
    out += fill;
  out += s;
  for (std::int64_t i = 0; i < margin - left; ++i)
    out += fill;
  return out;
}

value f_center(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("center", args, {{"width", value(80)}});
  std::int64_t width = to_index(a[0], "width");
  in.check_string_size(static_cast<std::size_t>(std::max<std::int64_t>(width, 0)));
  return value(center_text(soft_str(v), width, " "));
}

value f_length(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("length", args, {});
  return value(static_cast<std::int64_t>(length(v)));
}

value f_default(interpreter&, const value& v, call_arguments& args) {
  auto a = bind_arguments("default", args, {{"default_value", value("")}, {"boolean", value(false)}});
  if (v.is_undefined() || (truthy(a[1]) && !truthy(v)))
    return a[0];
  return v;
}

value f_dictsort(interpreter&, const value& v, call_arguments& args) {
  auto a = bind_arguments("dictsort", args, {{"case_sensitive", value(false)}, {"by", value("key")}, {"reverse", value(false)}});
  if (!v.is_dict())
    throw_type_error("'" + type_name(v) + "' object has no attribute 'items'");
  std::string by = soft_str(a[1]);
  if (by != "key" && by != "value")
    throw_type_error("You can only sort by either \"key\" or \"value\"");
  std::vector<std::pair<value, value>> keyed;
  for (const auto& [key, item] : v.dict().entries()) {
    value sort_key = by == "key" ? key : item;
    keyed.emplace_back(truthy(a[0]) ? sort_key : ignore_case(sort_key), value::make_tuple({key, item}));
  }
  sort_by_keys(keyed, truthy(a[2]));
  value_list out;
  for (auto& [_, pair] : keyed)
    out.push_back(std::move(pair));
  return value::make_list(std::move(out));
}

value f_escape(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("escape", args, {});
  return value(html_escape(soft_str(v)));
}

value f_first(interpreter& in, const value& v, call_arguments& args) {
  bind_arguments("first", args, {});
  if (v.is_iterator()) {
    auto& it = v.iterator();
    if (it.position < it.items->size())
      return (*it.items)[it.position++];
  } else if (v.is_string() && !v.text().empty()) {
    return in.get_item(v, value(0));
  } else if (v.is_sequence() && !v.items().empty()) {
    return v.items().front();
  } else if (v.is_dict() && !v.dict().empty()) {
    return v.dict().entries().front().first;
  } else if (!v.is_undefined() && !v.is_string() && !v.is_sequence() && !v.is_dict()) {
    throw_type_error("'" + type_name(v) + "' object is not iterable");
  }
  return value::undefined("No first item, sequence was empty.");
}

value f_last(interpreter& in, const value& v, call_arguments& args) {
  bind_arguments("last", args, {});
  if (v.is_string() && !v.text().empty())
    return in.get_item(v, value(-1));
  if (v.is_sequence() && !v.items().empty())
    return v.items().back();
  if (v.is_dict() && !v.dict().empty())
    return v.dict().entries().back().first;
  if (!v.is_undefined() && !v.is_string() && !v.is_sequence() && !v.is_dict())
    throw_type_error("'" + type_name(v) + "' object is not reversible");
  return value::undefined("No last item, sequence was empty.");
}

value f_float(interpreter&, const value& v, call_arguments& args) {
  auto a = bind_arguments("float", args, {{"default", value(0.0)}});
  if (v.is_undefined())
    throw_undefined_error(v);
  if (v.is_number())
    return value(v.to_double());
  double d;
  if (v.is_string() && parse_float(v.text(), d))
    return value(d);
  return a[0];
}

value f_int(interpreter&, const value& v, call_arguments& args) {
  auto a = bind_arguments("int", args, {{"default", value(0)}, {"base", value(10)}});
  if (v.is_undefined())
    throw_undefined_error(v);
  if (v.is_int() || v.is_bool())
    return value(static_cast<std::int64_t>(v.is_bool() ? v.as_bool() : v.as_int()));
  if (v.is_float()) {
    double f = v.as_float();
    if (!std::isfinite(f))
      return a[0];
    return value(static_cast<std::int64_t>(std::trunc(f)));
  }
  if (v.is_string()) {
    std::int64_t i;
    if (parse_int(v.text(), to_index(a[1], "base"), i))
      return value(i);
    double d;
    if (parse_float(v.text(), d) && std::isfinite(d))
      return value(static_cast<std::int64_t>(std::trunc(d)));
  }
  return a[0];
}

value f_format(interpreter& in, const value& v, call_arguments& args) {
  if (!args.positional.empty() && !args.named.empty())
    throw_type_error("can't handle positional and keyword arguments at the same time");
  if (!args.named.empty()) {
    auto dict = std::make_shared<value_dict>();
    for (auto& [k, x] : args.named)
      dict->set(value(k), x);
    return value(percent_format(in, soft_str(v), value::make_dict(dict)));
  }
  return value(percent_format(in, soft_str(v), value::make_tuple(args.positional)));
}

value f_groupby(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("groupby", args, {{"attribute", {}}, {"default", none()}, {"case_sensitive", value(false)}});
  auto parts = attribute_parts(a[0]);
  const value* fallback = a[1].is_none() ? nullptr : &a[1];
  bool case_sensitive = truthy(a[2]);
  std::vector<std::pair<value, value>> keyed;
  for (auto& item : in.iterate(v)) {
    value key = get_path(in, item, parts, fallback);
    keyed.emplace_back(case_sensitive ? key : ignore_case(key), item);
  }
  sort_by_keys(keyed, false);
  value_list groups;
  for (std::size_t i = 0; i < keyed.size();) {
    value_list members;
    std::size_t j = i;
    for (; j < keyed.size() && equals(keyed[j].first, keyed[i].first); ++j)
      members.push_back(keyed[j].second);
    value grouper = case_sensitive ? keyed[i].first : get_path(in, members.front(), parts, fallback);
    groups.push_back(value::make_tuple({grouper, value::make_list(std::move(members))}));
    i = j;
  }
  return value::make_list(std::move(groups));
}

value f_indent(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("indent", args, {{"width", value(4)}, {"first", value(false)}, {"blank", value(false)}});
  std::string indentation;
  if (a[0].is_string()) {
    indentation = a[0].text();
  } else {
    std::int64_t width = to_index(a[0], "width");
    in.check_string_size(static_cast<std::size_t>(std::max<std::int64_t>(width, 0)));
    indentation.assign(static_cast<std::size_t>(std::max<std::int64_t>(width, 0)), ' ');
  }
  std::string s = soft_str(v) + "\n";
  auto lines = py::splitlines(s, false);
  std::string out;
  if (truthy(a[2])) {
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (i)
        out += "\n" + indentation;
      out += lines[i];
    }
  } else {
    out = lines.empty() ? "" : lines[0];
    for (std::size_t i = 1; i < lines.size(); ++i) {
      out += '\n';
      if (!lines[i].empty())
        out += indentation;
      out += lines[i];
    }
  }
  if (truthy(a[1]))
    out = indentation + out;
  in.check_string_size(out.size());
  return value(std::move(out));
}

value f_items(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("items", args, {});
  if (v.is_undefined())
    return value::make_iterator({});
  if (!v.is_dict())
    throw_type_error("Can only get item pairs from a mapping.");
  value_list pairs;
  for (const auto& [key, item] : v.dict().entries())
    pairs.push_back(value::make_tuple({key, item}));
  return value::make_iterator(std::move(pairs));
}

value f_join(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("join", args, {{"d", value("")}, {"attribute", none()}});
  auto parts = attribute_parts(a[1]);
  std::string separator = soft_str(a[0]), out;
  bool first = true;
  for (auto& item : in.iterate(v)) {
    if (!first)
      out += separator;
    first = false;
    out += to_str(parts.empty() ? item : get_path(in, item, parts, nullptr));
    in.check_string_size(out.size());
  }
  return value(std::move(out));
}

value f_list(interpreter& in, const value& v, call_arguments& args) {
  bind_arguments("list", args, {});
  return value::make_list(in.iterate(v));
}

value f_lower(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("lower", args, {});
  return value(py::lower(soft_str(v)));
}

value f_upper(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("upper", args, {});
  return value(py::upper(soft_str(v)));
}

value f_map(interpreter& in, const value& v, call_arguments& args) {
  value_list out;
  if (args.positional.empty()) {
    value attribute, fallback;
    bool has_attribute = false, has_default = false;
    for (auto& [key, x] : args.named) {
      if (key == "attribute")
        attribute = x, has_attribute = true;
      else if (key == "default")
        fallback = x, has_default = true;
      else
        throw_type_error("Unexpected keyword argument '" + key + "'");
    }
    if (!has_attribute)
      throw_type_error("map requires a filter argument");
    auto parts = attribute_parts(attribute);
    const value* fb = has_default && !fallback.is_none() ? &fallback : nullptr;
    if (truthy(v))
      for (auto& item : in.iterate(v))
        out.push_back(get_path(in, item, parts, fb));
    return value::make_iterator(std::move(out));
  }
  std::string name = soft_str(args.positional[0]);
  call_arguments rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.named = args.named;
  if (truthy(v))
    for (auto& item : in.iterate(v)) {
      call_arguments copy = rest;
      out.push_back(apply_filter(in, name, item, copy));
    }
  return value::make_iterator(std::move(out));
}

value min_or_max(interpreter& in, const value& v, call_arguments& args, bool want_max) {
  auto a = bind_arguments(want_max ? "max" : "min", args, {{"case_sensitive", value(false)}, {"attribute", none()}});
  auto parts = attribute_parts(a[1]);
  value_list items = in.iterate(v);
  if (items.empty())
    return value::undefined("No aggregated item, sequence was empty.");
  auto key_of = [&](const value& item) {
    value key = parts.empty() ? item : get_path(in, item, parts, nullptr);
    return truthy(a[0]) ? key : ignore_case(key);
  };
  std::size_t best = 0;
  value best_key = key_of(items[0]);
  for (std::size_t i = 1; i < items.size(); ++i) {
    value key = key_of(items[i]);
    if (want_max ? compare(key, best_key, ">") > 0 : compare(key, best_key) < 0) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}

value f_max(interpreter& in, const value& v, call_arguments& args) { return min_or_max(in, v, args, true); }
value f_min(interpreter& in, const value& v, call_arguments& args) { return min_or_max(in, v, args, false); }

value select_or_reject(interpreter& in, const value& v, call_arguments& args, bool select, bool by_attribute) {
  value_list out;
  if (!truthy(v))
    return value::make_iterator({});
  std::size_t offset = 0;
  std::vector<value> parts;
  if (by_attribute) {
    if (args.positional.empty())
      throw_type_error("Missing parameter for attribute name");
    parts = attribute_parts(args.positional[0]);
    offset = 1;
  }
  bool has_test = args.positional.size() > offset;
  std::string test = has_test ? soft_str(args.positional[offset]) : "";
  call_arguments test_args;
  if (has_test)
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(offset) + 1, args.positional.end());
  test_args.named = args.named;
  for (auto& item : in.iterate(v)) {
    value subject = by_attribute ? get_path(in, item, parts, nullptr) : item;
    bool passed;
    if (has_test) {
      call_arguments copy = test_args;
      passed = apply_test(in, test, subject, copy);
    } else {
      passed = truthy(subject);
    }
    if (passed == select)
      out.push_back(item);
  }
  return value::make_iterator(std::move(out));
}

value f_select(interpreter& in, const value& v, call_arguments& a) { return select_or_reject(in, v, a, true, false); }
value f_reject(interpreter& in, const value& v, call_arguments& a) { return select_or_reject(in, v, a, false, false); }
value f_selectattr(interpreter& in, const value& v, call_arguments& a) { return select_or_reject(in, v, a, true, true); }
value f_rejectattr(interpreter& in, const value& v, call_arguments& a) { return select_or_reject(in, v, a, false, true); }

value f_replace(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("replace", args, {{"old", {}}, {"new", {}}, {"count", none()}});
  std::int64_t count = a[2].is_none() ? -1 : to_index(a[2], "count");
  std::string s = soft_str(v), old_text = soft_str(a[0]), new_text = soft_str(a[1]);
  std::int64_t hits = py::count(s, old_text);
  if (count >= 0)
    hits = std::min(hits, count);
  in.check_string_size(s.size() + static_cast<std::size_t>(hits) * new_text.size());
  return value(py::replace(s, old_text, new_text, count));
}

value f_reverse(interpreter& in, const value& v, call_arguments& args) {
  bind_arguments("reverse", args, {});
  if (v.is_string()) {
    std::u32string cps = py::decode_utf8(v.text());
    std::reverse(cps.begin(), cps.end());
    return value(py::encode_utf8(cps));
  }
  value_list items = in.iterate(v);
  std::reverse(items.begin(), items.end());
  // jinja2 gives a reverse iterator for sequences and a list for other iterables.
  return v.is_iterator() ? value::make_list(std::move(items)) : value::make_iterator(std::move(items));
}

value f_round(interpreter&, const value& v, call_arguments& args) {
  auto a = bind_arguments("round", args, {{"precision", value(0)}, {"method", value("common")}});
  std::string method = soft_str(a[1]);
  if (method != "common" && method != "ceil" && method != "floor")
    throw_type_error("method must be common, ceil or floor");
  std::int64_t precision = to_index(a[0], "precision");
  if (!v.is_number())
    throw_type_error("type " + type_name(v) + " doesn't define __round__ method");
  if (method == "common") {
    if (!v.is_float()) // round(int, n) stays an int for n >= 0
      return precision >= 0 ? value(static_cast<std::int64_t>(v.is_bool() ? v.as_bool() : v.as_int())) : value(v.to_double());
    double x = v.as_float();
    if (!std::isfinite(x))
      return value(x);
    if (precision > 300)
      return value(x);
    if (precision < 0) {
      double scale = std::pow(10.0, static_cast<double>(-precision));
      return value(std::nearbyint(x / scale) * scale);
    }
    // Python rounds the exact binary value half-to-even at `precision` decimals, which is
    // what printf's correctly rounded %.*f does.
    return value(std::strtod(c_format("%.*f", static_cast<int>(precision), x).c_str(), nullptr));
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.to_double() * scale;
  return value((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

value f_safe(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("safe", args, {});
  return value(soft_str(v));
}

value f_slice(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("slice", args, {{"slices", {}}, {"fill_with", none()}});
  std::int64_t slices = to_index(a[0], "slices");
  if (slices <= 0)
    throw_type_error("slices must be positive");
  value_list seq = in.iterate(v);
  auto length = static_cast<std::int64_t>(seq.size());
  std::int64_t items_per_slice = length / slices, with_extra = length % slices, offset = 0;
  value_list out;
  for (std::int64_t i = 0; i < slices; ++i) {
    std::int64_t start = offset + i * items_per_slice;
    if (i < with_extra)
      ++offset;
    std::int64_t end = offset + (i + 1) * items_per_slice;
    value_list piece(seq.begin() + start, seq.begin() + end);
    if (!a[1].is_none() && i >= with_extra)
      piece.push_back(a[1]);
    out.push_back(value::make_list(std::move(piece)));
  }
  return value::make_iterator(std::move(out));
}

value f_sort(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("sort", args, {{"reverse", value(false)}, {"case_sensitive", value(false)}, {"attribute", none()}});
  std::vector<std::vector<value>> paths;
  if (a[2].is_string())
    for (const auto& one : py::split(a[2].text(), std::string(","), -1))
      paths.push_back(attribute_parts(value(one)));
  else if (!a[2].is_none())
    paths.push_back(attribute_parts(a[2]));
  std::vector<std::pair<value, value>> keyed;
  for (auto& item : in.iterate(v)) {
    value key;
    if (paths.empty()) {
      key = truthy(a[1]) ? item : ignore_case(item);
    } else {
      value_list keys;
      for (const auto& parts : paths) {
        value k = get_path(in, item, parts, nullptr);
        keys.push_back(truthy(a[1]) ? k : ignore_case(k));
      }
      key = value::make_list(std::move(keys));
    }
    keyed.emplace_back(std::move(key), item);
  }
  sort_by_keys(keyed, truthy(a[0]));
  value_list out;
  for (auto& [_, item] : keyed)
    out.push_back(std::move(item));
  return value::make_list(std::move(out));
}

value f_string(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("string", args, {});
  return value(soft_str(v));
}

value f_sum(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("sum", args, {{"attribute", none()}, {"start", value(0)}});
  auto parts = attribute_parts(a[0]);
  if (a[1].is_string())
    throw_type_error("sum() can't sum strings [use ''.join(seq) instead]");
  value total = a[1];
  for (auto& item : in.iterate(v))
    total = binary_operation(in, binary_op::add, total, parts.empty() ? item : get_path(in, item, parts, nullptr));
  return total;
}

value f_title(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("title", args, {});
  // jinja2 splits at runs of "-", whitespace and "({[<", upper-cases the first character
  // of every piece and lower-cases the rest.
  std::u32string cps = py::decode_utf8(soft_str(v));
  auto is_separator = [](char32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py::is_space(c); };
  std::string out;
  std::size_t i = 0;
  while (i < cps.size()) {
    std::size_t j = i;
    bool separator = is_separator(cps[i]);
    while (j < cps.size() && is_separator(cps[j]) == separator)
      ++j;
    std::string piece = py::encode_utf8(std::u32string_view(cps).substr(i, j - i));
    std::string head = py::encode_utf8(std::u32string_view(cps).substr(i, 1));
    out += py::upper(head) + py::lower(piece.substr(head.size()));
    i = j;
  }
  return value(std::move(out));
}

value f_tojson(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("tojson", args,
                          {{"ensure_ascii", value(false)}, {"indent", none()}, {"separators", none()}, {"sort_keys", value(false)}});
  json_dump_options options;
  options.ensure_ascii = truthy(a[0]);
  if (a[1].is_string()) {
    options.indent = a[1].text();
  } else if (!a[1].is_none()) {
    std::int64_t width = to_index(a[1], "indent");
    options.indent = std::string(static_cast<std::size_t>(std::clamp<std::int64_t>(width, 0, 1 << 16)), ' ');
  }
  if (!a[2].is_none()) {
    if (!a[2].is_sequence() || a[2].items().size() != 2 || !a[2].items()[0].is_string() || !a[2].items()[1].is_string())
      throw_type_error("separators must be a (item_separator, key_separator) pair of strings");
    options.has_separators = true;
    options.item_separator = a[2].items()[0].text();
    options.key_separator = a[2].items()[1].text();
  }
  options.sort_keys = truthy(a[3]);
  std::string out = to_json(v, options);
  in.check_string_size(out.size());
  return value(std::move(out));
}

value f_trim(interpreter&, const value& v, call_arguments& args) {
  auto a = bind_arguments("trim", args, {{"chars", none()}});
  std::optional<std::string> chars;
  if (!a[0].is_none())
    chars = soft_str(a[0]);
  return value(py::strip(soft_str(v), chars, true, true));
}

value f_truncate(interpreter&, const value& v, call_arguments& args) {
  auto a = bind_arguments("truncate", args, {{"length", value(255)}, {"killwords", value(false)}, {"end", value("...")}, {"leeway", none()}});
  std::string s = soft_str(v), end = soft_str(a[2]);
  std::int64_t length = to_index(a[0], "length");
  std::int64_t leeway = a[3].is_none() ? 5 : to_index(a[3], "leeway");
  auto end_length = static_cast<std::int64_t>(py::code_point_count(end));
  if (length < end_length)
    throw_type_error("expected length >= " + std::to_string(end_length) + ", got " + std::to_string(length));
  if (leeway < 0)
    throw_type_error("expected leeway >= 0, got " + std::to_string(leeway));
  auto offsets = py::code_point_offsets(s);
  auto n = static_cast<std::int64_t>(offsets.size()) - 1;
  if (n <= length + leeway)
    return value(s);
  std::string head = s.substr(0, offsets[static_cast<std::size_t>(length - end_length)]);
  if (truthy(a[1]))
    return value(head + end);
  auto parts = py::rsplit(head, std::string(" "), 1);
  return value(parts[0] + end);
}

value f_unique(interpreter& in, const value& v, call_arguments& args) {
  auto a = bind_arguments("unique", args, {{"case_sensitive", value(false)}, {"attribute", none()}});
  auto parts = attribute_parts(a[1]);
  value_dict seen;
  value_list out;
  for (auto& item : in.iterate(v)) {
    value key = parts.empty() ? item : get_path(in, item, parts, nullptr);
    if (!truthy(a[0]))
      key = ignore_case(key);
    if (!seen.find(key)) {
      seen.set(key, value(true));
      out.push_back(item);
    }
  }
  return value::make_iterator(std::move(out));
}

value f_wordcount(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("wordcount", args, {});
  // Python's \w: letters, digits and the underscore.
  std::int64_t words = 0;
  bool in_word = false;
  for (char32_t c : py::decode_utf8(soft_str(v))) {
    auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    bool word = c == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
    if (word && !in_word)
      ++words;
    in_word = word;
  }
  return value(words);
}

const std::unordered_map<std::string, filter_fn>& filters() {
  static const std::unordered_map<std::string, filter_fn> table = {
      {"abs", f_abs},         {"attr", f_attr},           {"batch", f_batch},       {"capitalize", f_capitalize},
      {"center", f_center},   {"count", f_length},        {"d", f_default},         {"default", f_default},
      {"dictsort", f_dictsort}, {"e", f_escape},          {"escape", f_escape},     {"forceescape", f_escape},
      {"first", f_first},     {"float", f_float},         {"format", f_format},     {"groupby", f_groupby},
      {"indent", f_indent},   {"int", f_int},             {"items", f_items},       {"join", f_join},
      {"last", f_last},       {"length", f_length},       {"list", f_list},         {"lower", f_lower},
      {"map", f_map},         {"max", f_max},             {"min", f_min},           {"reject", f_reject},
      {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse}, {"round", f_round},
      {"safe", f_safe},       {"select", f_select},       {"selectattr", f_selectattr}, {"slice", f_slice},
      {"sort", f_sort},       {"string", f_string},       {"sum", f_sum},           {"title", f_title},
      {"tojson", f_tojson},   {"trim", f_trim},           {"truncate", f_truncate}, {"unique", f_unique},
      {"upper", f_upper},     {"wordcount", f_wordcount},
  };
  return table;
}

} // namespace

bool is_filter_name(std::string_view name) { return filters().count(std::string(name)) != 0; }

bool is_jinja_builtin(bool is_filter, std::string_view name) {
  static const char* missing_filters[] = {"filesizeformat", "pprint", "random", "striptags", "urlencode",
                                          "urlize", "wordwrap", "xmlattr"};
  if (!is_filter)
    return false;
  return std::any_of(std::begin(missing_filters), std::end(missing_filters), [&](const char* f) { return name == f; });
}

value apply_filter(interpreter& in, const std::string& name, const value& subject, call_arguments& args) {
  in.charge();
  auto it = filters().find(name);
  if (it == filters().end())
    throw template_error(template_error_kind::type,
                         "No filter named '" + name + "'." +
                             (is_jinja_builtin(true, name) ? " (a jinja2 builtin that actorserve does not implement)" : ""));
  return it->second(in, subject, args);
}

} // namespace actorserve::chat_template

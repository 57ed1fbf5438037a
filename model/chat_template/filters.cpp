// jinja2's filters as transformers' environment has them (tojson replaced by transformers'
// own: json.dumps with ensure_ascii=False, no HTML escaping, no key sorting): here the filters
// of strings and numbers and the lookup; those of lists, dicts and other iterables are in
// filters_collections.cpp. Tests: tests.cpp.
#include "model/chat_template/builtins.hpp"
#include "model/chat_template/filter_table.hpp"
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

value f_default(interpreter&, const value& v, call_arguments& args) {
  auto a = bind_arguments("default", args, {{"default_value", value("")}, {"boolean", value(false)}});
  if (v.is_undefined() || (truthy(a[1]) && !truthy(v)))
    return a[0];
  return v;
}

value f_escape(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("escape", args, {});
  return value(html_escape(soft_str(v)));
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

value f_lower(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("lower", args, {});
  return value(py::lower(soft_str(v)));
}

value f_upper(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("upper", args, {});
  return value(py::upper(soft_str(v)));
}

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

value f_string(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("string", args, {});
  return value(soft_str(v));
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

const filter_table& filters() {
  static const filter_table table = [] {
    filter_table t = {
        {"abs", f_abs},         {"capitalize", f_capitalize}, {"center", f_center},   {"d", f_default},
        {"default", f_default}, {"e", f_escape},              {"escape", f_escape},   {"forceescape", f_escape},
        {"float", f_float},     {"format", f_format},         {"indent", f_indent},   {"int", f_int},
        {"lower", f_lower},     {"replace", f_replace},       {"round", f_round},     {"safe", f_safe},
        {"string", f_string},   {"title", f_title},           {"tojson", f_tojson},   {"trim", f_trim},
        {"truncate", f_truncate}, {"upper", f_upper},         {"wordcount", f_wordcount},
    };
    add_collection_filters(t);
    return t;
  }();
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

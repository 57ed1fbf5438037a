// Python methods of str, dict and list that templates call (message.content.startswith(...),
// tool.items(), ...), and the globals of transformers' environment.
#include "model/chat_template/builtins.hpp"
#include "model/chat_template/interpreter.hpp"
#include "model/chat_template/pystring.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <unordered_map>

namespace actorserve::chat_template {

namespace {

using method_fn = value (*)(interpreter&, const value& self, call_arguments& args);

class bound_method : public callable {
public:
  bound_method(value self, std::string name, method_fn fn) : self_(std::move(self)), name_(std::move(name)), fn_(fn) {}
  value call(interpreter& in, call_arguments& args) override {
    in.charge();
    return fn_(in, self_, args);
  }
  std::string repr() const override { return "<built-in method " + name_ + " of " + chat_template::type_name(self_) + " object>"; }

private:
  value self_;
  std::string name_;
  method_fn fn_;
};

class builtin_function : public callable {
public:
  using fn_type = value (*)(interpreter&, call_arguments&);
  builtin_function(std::string name, fn_type fn) : name_(std::move(name)), fn_(fn) {}
  value call(interpreter& in, call_arguments& args) override {
    in.charge();
    return fn_(in, args);
  }
  std::string repr() const override { return "<built-in function " + name_ + ">"; }

private:
  std::string name_;
  fn_type fn_;
};

value none() { return value::none(); }

std::optional<std::string> optional_text(const value& v, const char* what) {
  if (v.is_none())
    return std::nullopt;
  if (!v.is_string())
    throw_type_error(std::string(what) + " arg must be None or str");
  return v.text();
}

const std::string& text_arg(const value& v, const char* function) {
  if (!v.is_string())
    throw_type_error(std::string(function) + "() argument must be str, not " + type_name(v));
  return v.text();
}

/// s[start:end] in code points, for the optional start/end of startswith, find, count ...
std::string code_point_range(const std::string& s, const value& start, const value& end) {
  auto offsets = py::code_point_offsets(s);
  auto n = static_cast<std::int64_t>(offsets.size()) - 1;
  auto clamp = [&](const value& v, std::int64_t fallback) {
    if (v.is_none())
      return fallback;
    std::int64_t i = to_index(v, "slice index");
    if (i < 0)
      i = std::max<std::int64_t>(i + n, 0);
    return std::min(i, n);
  };
  std::int64_t lo = clamp(start, 0), hi = clamp(end, n);
  if (hi <= lo)
    return "";
  return s.substr(offsets[static_cast<std::size_t>(lo)], offsets[static_cast<std::size_t>(hi)] - offsets[static_cast<std::size_t>(lo)]);
}

value affix_test(const value& self, call_arguments& args, bool prefix) {
  const char* name = prefix ? "startswith" : "endswith";
  auto a = bind_arguments(name, args, {{"affix", {}}, {"start", none()}, {"end", none()}});
  std::string s = code_point_range(self.text(), a[1], a[2]);
  auto matches = [&](const value& affix) {
    if (!affix.is_string())
      throw_type_error(std::string(name) + " first arg must be str or a tuple of str, not " + type_name(affix));
    const std::string& t = affix.text();
    if (t.size() > s.size())
      return false;
    return prefix ? s.compare(0, t.size(), t) == 0 : s.compare(s.size() - t.size(), t.size(), t) == 0;
  };
  if (a[0].is_tuple()) {
    for (const auto& affix : a[0].items())
      if (matches(affix))
        return value(true);
    return value(false);
  }
  return value(matches(a[0]));
}

value strip_method(const value& self, call_arguments& args, bool left, bool right, const char* name) {
  auto a = bind_arguments(name, args, {{"chars", none()}});
  return value(py::strip(self.text(), optional_text(a[0], name), left, right));
}

value to_string_list(std::vector<std::string> parts) {
  value_list out;
  out.reserve(parts.size());
  for (auto& p : parts)
    out.emplace_back(std::move(p));
  return value::make_list(std::move(out));
}

value split_method(const value& self, call_arguments& args, bool from_right) {
  const char* name = from_right ? "rsplit" : "split";
  auto a = bind_arguments(name, args, {{"sep", none()}, {"maxsplit", value(-1)}});
  auto sep = optional_text(a[0], name);
  std::int64_t maxsplit = to_index(a[1], "maxsplit");
  if (sep && sep->empty())
    throw_type_error("empty separator");
  return to_string_list(from_right ? py::rsplit(self.text(), sep, maxsplit) : py::split(self.text(), sep, maxsplit));
}

bool all_code_points(const std::string& s, bool (*predicate)(char32_t)) {
  auto cps = py::decode_utf8(s);
  return !cps.empty() && std::all_of(cps.begin(), cps.end(), predicate);
}

bool is_alpha(char32_t c) {
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}
bool is_decimal(char32_t c) { return utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_ND; }
bool is_numeric(char32_t c) {
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO;
}
bool is_alnum(char32_t c) { return is_alpha(c) || is_numeric(c); }

// ---- str.format ----

std::string format_spec_apply(interpreter& in, const value& v, const std::string& spec);

std::string str_format(interpreter& in, const std::string& format, call_arguments& args) {
  std::string out;
  std::size_t auto_index = 0;
  for (std::size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') {
        out.push_back('}');
        ++i;
        continue;
      }
      throw_type_error("Single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    std::size_t close = format.find('}', i);
    if (close == std::string::npos)
      throw_type_error("Single '{' encountered in format string");
    std::string field = format.substr(i + 1, close - i - 1);
    i = close;
    std::string spec, conversion;
    if (auto colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    if (auto bang = field.find('!'); bang != std::string::npos) {
      conversion = field.substr(bang + 1);
      field.resize(bang);
    }
    if (spec.find('{') != std::string::npos)
      throw_type_error("nested replacement fields in format specs are not supported");
    std::size_t name_end = std::min(field.find('.'), field.find('['));
    std::string head = field.substr(0, name_end);
    value v;
    if (head.empty() || std::all_of(head.begin(), head.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      std::size_t index = head.empty() ? auto_index++ : std::stoul(head);
      if (index >= args.positional.size())
        throw_type_error("Replacement index " + std::to_string(index) + " out of range for positional args tuple");
      v = args.positional[index];
    } else {
      auto it = std::find_if(args.named.begin(), args.named.end(), [&](const auto& kv) { return kv.first == head; });
      if (it == args.named.end())
        throw_type_error("KeyError: '" + head + "'");
      v = it->second;
    }
    for (std::size_t p = name_end; p < field.size();) {
      if (field[p] == '.') {
        std::size_t next = std::min(field.find('.', p + 1), field.find('[', p + 1));
        v = in.get_attribute(v, field.substr(p + 1, next - p - 1));
        p = next;
      } else {
        std::size_t end = field.find(']', p);
        if (end == std::string::npos)
          throw_type_error("Missing ']' in format string");
        std::string key = field.substr(p + 1, end - p - 1);
        bool digits = !key.empty() && std::all_of(key.begin(), key.end(), [](char d) { return d >= '0' && d <= '9'; });
        v = in.get_item(v, digits ? value(static_cast<std::int64_t>(std::stoll(key))) : value(key));
        p = end + 1;
      }
    }
    if (conversion == "r" || conversion == "a")
      v = value(to_repr(v));
    else if (conversion == "s")
      v = value(to_str(v));
    else if (!conversion.empty())
      throw_type_error("Unknown conversion specifier " + conversion);
    out += format_spec_apply(in, v, spec);
    in.check_string_size(out.size());
  }
  return out;
}

/// format(v, spec) for the common part of Python's mini-language:
/// [[fill]align][sign][0][width][,|_][.precision][type].
std::string format_spec_apply(interpreter& in, const value& v, const std::string& spec) {
  if (spec.empty())
    return to_str(v);
  std::u32string s = py::decode_utf8(spec);
  std::size_t i = 0;
  std::string fill = " ";
  char align = 0, sign = '-';
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (s.size() >= 2 && is_align(s[1])) {
    fill = py::encode_utf8(s.substr(0, 1));
    align = static_cast<char>(s[1]);
    i = 2;
  } else if (!s.empty() && is_align(s[0])) {
    align = static_cast<char>(s[0]);
    i = 1;
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-' || s[i] == ' '))
    sign = static_cast<char>(s[i++]);
  if (i < s.size() && s[i] == '0') {
    if (!align) {
      fill = "0";
      align = '=';
    }
    ++i;
  }
  std::int64_t width = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    width = width * 10 + (s[i++] - '0');
    if (width > (std::int64_t{1} << 40))
      in.check_string_size(std::size_t{1} << 40);
  }
  char grouping = 0;
  if (i < s.size() && (s[i] == ',' || s[i] == '_'))
    grouping = static_cast<char>(s[i++]);
  int precision = -1;
  if (i < s.size() && s[i] == '.') {
    precision = 0;
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      precision = precision * 10 + static_cast<int>(s[i++] - '0');
      if (precision > (1 << 24))
        in.check_string_size(std::size_t{1} << 40);
    }
  }
  char type = i < s.size() ? static_cast<char>(s[i++]) : 0;
  if (i != s.size())
    throw_type_error("Invalid format specifier '" + spec + "'");
  in.check_string_size(static_cast<std::size_t>(width));
  std::string body;
  bool numeric = v.is_number() && type != 's';
  if (!numeric) {
    if (type && type != 's')
      throw_type_error(std::string("Unknown format code '") + type + "' for object of type '" + type_name(v) + "'");
    body = to_str(v);
    if (precision >= 0) {
      auto offsets = py::code_point_offsets(body);
      if (static_cast<std::size_t>(precision) + 1 < offsets.size())
        body.resize(offsets[static_cast<std::size_t>(precision)]);
    }
    if (!align)
      align = '<';
  } else {
    bool is_int_value = v.is_int() || v.is_bool();
    double d = v.to_double();
    bool negative = is_int_value ? (v.is_bool() ? false : v.as_int() < 0) : std::signbit(d);
    if (!type && is_int_value)
      type = 'd';
    if (type == 'd' || type == 'x' || type == 'X' || type == 'o' || type == 'b' || type == 'c') {
      if (!is_int_value)
        throw_type_error(std::string("Unknown format code '") + type + "' for object of type 'float'");
      std::int64_t n = v.is_bool() ? v.as_bool() : v.as_int();
      unsigned long long magnitude = n < 0 ? 0ULL - static_cast<unsigned long long>(n) : static_cast<unsigned long long>(n);
      if (type == 'b') {
        body = magnitude == 0 ? "0" : "";
        for (; magnitude; magnitude >>= 1)
          body.insert(body.begin(), static_cast<char>('0' + (magnitude & 1)));
      } else if (type == 'c') {
        py::append_utf8(body, static_cast<char32_t>(magnitude));
      } else {
        body = c_format(type == 'd' ? "%llu" : type == 'o' ? "%llo" : type == 'x' ? "%llx" : "%llX", magnitude);
      }
    } else {
      if (!type) {
        body = is_int_value ? std::to_string(static_cast<long long>(d)) : format_float(std::fabs(d));
        if (precision >= 0) {
          body = c_format("%.*g", precision == 0 ? 1 : precision, std::fabs(d));
        }
      } else if (type == '%') {
        body = c_format("%.*f", precision < 0 ? 6 : precision, std::fabs(d) * 100.0) + "%";
      } else if (type == 'f' || type == 'F' || type == 'e' || type == 'E' || type == 'g' || type == 'G') {
        body = c_format(std::string("%.*") + type, precision < 0 ? 6 : precision, std::fabs(d));
      } else {
        throw_type_error(std::string("Unknown format code '") + type + "' for object of type '" + type_name(v) + "'");
      }
    }
    if (grouping && (type == 'd' || type == 'f' || type == 'F' || !type)) {
      std::size_t end = body.find_first_of(".eE");
      if (end == std::string::npos)
        end = body.size();
      for (std::ptrdiff_t p = static_cast<std::ptrdiff_t>(end) - 3; p > 0; p -= 3)
        body.insert(static_cast<std::size_t>(p), 1, grouping);
    }
    std::string sign_text = negative ? "-" : sign == '+' ? "+" : sign == ' ' ? " " : "";
    if (align == '=') {
      auto n = static_cast<std::int64_t>(py::code_point_count(body) + sign_text.size());
      std::string padding;
      for (std::int64_t k = n; k < width; ++k)
        padding += fill;
      return sign_text + padding + body;
    }
    body = sign_text + body;
    if (!align)
      align = '>';
  }
  auto n = static_cast<std::int64_t>(py::code_point_count(body));
  if (n >= width)
    return body;
  std::int64_t total = width - n, left = align == '<' ? 0 : align == '>' ? total : total / 2;
  std::string out;
  for (std::int64_t k = 0; k < left; ++k)
    out += fill;
  out += body;
  for (std::int64_t k = left; k < total; ++k)
    out += fill;
  return out;
}

// ---- str methods ----

value m_startswith(interpreter&, const value& self, call_arguments& a) { return affix_test(self, a, true); }
value m_endswith(interpreter&, const value& self, call_arguments& a) { return affix_test(self, a, false); }
value m_strip(interpreter&, const value& self, call_arguments& a) { return strip_method(self, a, true, true, "strip"); }
value m_lstrip(interpreter&, const value& self, call_arguments& a) { return strip_method(self, a, true, false, "lstrip"); }
value m_rstrip(interpreter&, const value& self, call_arguments& a) { return strip_method(self, a, false, true, "rstrip"); }
value m_split(interpreter&, const value& self, call_arguments& a) { return split_method(self, a, false); }
value m_rsplit(interpreter&, const value& self, call_arguments& a) { return split_method(self, a, true); }
value m_splitlines(interpreter&, const value& self, call_arguments& args) {
  auto a = bind_arguments("splitlines", args, {{"keepends", value(false)}});
  return to_string_list(py::splitlines(self.text(), truthy(a[0])));
}
value m_replace(interpreter& in, const value& self, call_arguments& args) {
  auto a = bind_arguments("replace", args, {{"old", {}}, {"new", {}}, {"count", value(-1)}});
  const std::string &old_text = text_arg(a[0], "replace"), &new_text = text_arg(a[1], "replace");
  std::int64_t count = to_index(a[2], "count");
  std::int64_t hits = py::count(self.text(), old_text);
  if (count >= 0)
    hits = std::min(hits, count);
  in.check_string_size(self.text().size() + static_cast<std::size_t>(hits) * new_text.size());
  return value(py::replace(self.text(), old_text, new_text, count));
}
value m_upper(interpreter&, const value& self, call_arguments& args) {
  bind_arguments("upper", args, {});
  return value(py::upper(self.text()));
}
value m_lower(interpreter&, const value& self, call_arguments& args) {
  bind_arguments("lower", args, {});
  return value(py::lower(self.text()));
}
value m_title(interpreter&, const value& self, call_arguments& args) {
  bind_arguments("title", args, {});
  return value(py::title(self.text()));
}
value m_capitalize(interpreter&, const value& self, call_arguments& args) {
  bind_arguments("capitalize", args, {});
  return value(py::capitalize(self.text()));
}
value m_swapcase(interpreter&, const value& self, call_arguments& args) {
  bind_arguments("swapcase", args, {});
  return value(py::swapcase(self.text()));
}
value find_impl(const value& self, call_arguments& args, bool from_right, bool must_exist, const char* name) {
  auto a = bind_arguments(name, args, {{"sub", {}}, {"start", none()}, {"end", none()}});
  const std::string& sub = text_arg(a[0], name);
  std::int64_t base = 0;
  if (!a[1].is_none()) {
    auto n = static_cast<std::int64_t>(py::code_point_count(self.text()));
    base = to_index(a[1], "start");
    base = base < 0 ? std::max<std::int64_t>(base + n, 0) : std::min(base, n);
  }
  std::int64_t hit = py::find(code_point_range(self.text(), a[1], a[2]), sub, from_right);
  if (hit < 0) {
    if (must_exist)
      throw_type_error("substring not found");
    return value(std::int64_t{-1});
  }
  return value(hit + base);
}
value m_find(interpreter&, const value& self, call_arguments& a) { return find_impl(self, a, false, false, "find"); }
value m_rfind(interpreter&, const value& self, call_arguments& a) { return find_impl(self, a, true, false, "rfind"); }
value m_index(interpreter&, const value& self, call_arguments& a) { return find_impl(self, a, false, true, "index"); }
value m_rindex(interpreter&, const value& self, call_arguments& a) { return find_impl(self, a, true, true, "rindex"); }
value m_count(interpreter&, const value& self, call_arguments& args) {
  auto a = bind_arguments("count", args, {{"sub", {}}, {"start", none()}, {"end", none()}});
  return value(py::count(code_point_range(self.text(), a[1], a[2]), text_arg(a[0], "count")));
}
value m_join(interpreter& in, const value& self, call_arguments& args) {
  auto a = bind_arguments("join", args, {{"iterable", {}}});
  std::string out;
  std::size_t index = 0;
  for (auto& item : in.iterate(a[0])) {
    if (!item.is_string())
      throw_type_error("sequence item " + std::to_string(index) + ": expected str instance, " + type_name(item) + " found");
    if (index++)
      out += self.text();
    out += item.text();
    in.check_string_size(out.size());
  }
  return value(std::move(out));
}
value m_format(interpreter& in, const value& self, call_arguments& args) { return value(str_format(in, self.text(), args)); }
value predicate(const value& self, call_arguments& args, const char* name, bool (*p)(char32_t)) {
  bind_arguments(name, args, {});
  return value(all_code_points(self.text(), p));
}
value m_isdigit(interpreter&, const value& s, call_arguments& a) { return predicate(s, a, "isdigit", is_numeric); }
value m_isnumeric(interpreter&, const value& s, call_arguments& a) { return predicate(s, a, "isnumeric", is_numeric); }
value m_isdecimal(interpreter&, const value& s, call_arguments& a) { return predicate(s, a, "isdecimal", is_decimal); }
value m_isalpha(interpreter&, const value& s, call_arguments& a) { return predicate(s, a, "isalpha", is_alpha); }
value m_isalnum(interpreter&, const value& s, call_arguments& a) { return predicate(s, a, "isalnum", is_alnum); }
value m_isspace(interpreter&, const value& s, call_arguments& a) { return predicate(s, a, "isspace", py::is_space); }
value m_isupper(interpreter&, const value& self, call_arguments& args) {
  bind_arguments("isupper", args, {});
  return value(py::is_upper(self.text()));
}
value m_islower(interpreter&, const value& self, call_arguments& args) {
  bind_arguments("islower", args, {});
  return value(py::is_lower(self.text()));
}
value justify(interpreter& in, const value& self, call_arguments& args, const char* name, char how) {
  auto a = bind_arguments(name, args, {{"width", {}}, {"fillchar", value(" ")}});
  std::int64_t width = to_index(a[0], "width");
  in.check_string_size(static_cast<std::size_t>(std::max<std::int64_t>(width, 0)) * 4);
  const std::string& fill = text_arg(a[1], name);
  if (py::code_point_count(fill) != 1)
    throw_type_error("The fill character must be exactly one character long");
  auto n = static_cast<std::int64_t>(py::code_point_count(self.text()));
  if (width <= n)
    return self;
  std::int64_t total = width - n;
  std::int64_t left = how == '<' ? 0 : how == '>' ? total : total / 2 + (total & width & 1);
  std::string out;
  for (std::int64_t k = 0; k < left; ++k)
    out += fill;
  out += self.text();
  for (std::int64_t k = left; k < total; ++k)
    out += fill;
  return value(std::move(out));
}
value m_center(interpreter& in, const value& s, call_arguments& a) { return justify(in, s, a, "center", '^'); }
value m_ljust(interpreter& in, const value& s, call_arguments& a) { return justify(in, s, a, "ljust", '<'); }
value m_rjust(interpreter& in, const value& s, call_arguments& a) { return justify(in, s, a, "rjust", '>'); }
value m_zfill(interpreter& in, const value& self, call_arguments& args) {
  auto a = bind_arguments("zfill", args, {{"width", {}}});
  std::int64_t width = to_index(a[0], "width");
  in.check_string_size(static_cast<std::size_t>(std::max<std::int64_t>(width, 0)));
  std::string s = self.text();
  auto n = static_cast<std::int64_t>(py::code_point_count(s));
  if (width <= n)
    return self;
  std::size_t at = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
  s.insert(at, static_cast<std::size_t>(width - n), '0');
  return value(std::move(s));
}
value partition_impl(const value& self, call_arguments& args, bool from_right) {
  const char* name = from_right ? "rpartition" : "partition";
  auto a = bind_arguments(name, args, {{"sep", {}}});
  const std::string& sep = text_arg(a[0], name);
  if (sep.empty())
    throw_type_error("empty separator");
  const std::string& s = self.text();
  std::size_t hit = from_right ? s.rfind(sep) : s.find(sep);
  if (hit == std::string::npos)
    return from_right ? value::make_tuple({value(""), value(""), self}) : value::make_tuple({self, value(""), value("")});
  return value::make_tuple({value(s.substr(0, hit)), value(sep), value(s.substr(hit + sep.size()))});
}
value m_partition(interpreter&, const value& s, call_arguments& a) { return partition_impl(s, a, false); }
value m_rpartition(interpreter&, const value& s, call_arguments& a) { return partition_impl(s, a, true); }
value m_removeprefix(interpreter&, const value& self, call_arguments& args) {
  auto a = bind_arguments("removeprefix", args, {{"prefix", {}}});
  const std::string& p = text_arg(a[0], "removeprefix");
  return self.text().compare(0, p.size(), p) == 0 ? value(self.text().substr(p.size())) : self;
}
value m_removesuffix(interpreter&, const value& self, call_arguments& args) {
  auto a = bind_arguments("removesuffix", args, {{"suffix", {}}});
  const std::string& p = text_arg(a[0], "removesuffix");
  const std::string& s = self.text();
  return !p.empty() && s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0
             ? value(s.substr(0, s.size() - p.size()))
             : self;
}

// ---- dict methods ----

value m_get(interpreter&, const value& self, call_arguments& args) {
  auto a = bind_arguments("get", args, {{"key", {}}, {"default", none()}});
  hash_key(a[0]);
  const value* v = self.dict().find(a[0]);
  return v ? *v : a[1];
}
/// dict.items(), keys() and values(), as lists (Python's views iterate the same way).
enum class dict_view { items, keys, values };
value view_of(interpreter& in, const value& self, call_arguments& args, dict_view view, const char* name) {
  bind_arguments(name, args, {});
  value_list out;
  for (const auto& [key, item] : self.dict().entries())
    out.push_back(view == dict_view::items ? value::make_tuple({key, item}) : view == dict_view::keys ? key : item);
  in.charge(out.size());
  return value::make_list(std::move(out));
}
value m_items(interpreter& in, const value& s, call_arguments& a) { return view_of(in, s, a, dict_view::items, "items"); }
value m_keys(interpreter& in, const value& s, call_arguments& a) { return view_of(in, s, a, dict_view::keys, "keys"); }
value m_values(interpreter& in, const value& s, call_arguments& a) { return view_of(in, s, a, dict_view::values, "values"); }
value m_dict_copy(interpreter& in, const value& self, call_arguments& args) {
  bind_arguments("copy", args, {});
  auto copy = std::make_shared<value_dict>();
  for (const auto& [key, item] : self.dict().entries())
    copy->set(key, item);
  in.charge(copy->size());
  return value::make_dict(std::move(copy));
}

// ---- list / tuple methods ----

value m_list_index(interpreter& in, const value& self, call_arguments& args) {
  auto a = bind_arguments("index", args, {{"value", {}}});
  const auto& items = self.items();
  for (std::size_t i = 0; i < items.size(); ++i) {
    in.charge();
    if (equals(items[i], a[0]))
      return value(static_cast<std::int64_t>(i));
  }
  throw_type_error(to_repr(a[0]) + " is not in " + type_name(self));
}
value m_list_count(interpreter& in, const value& self, call_arguments& args) {
  auto a = bind_arguments("count", args, {{"value", {}}});
  in.charge(self.items().size());
  return value(static_cast<std::int64_t>(std::count_if(self.items().begin(), self.items().end(),
                                                        [&](const value& x) { return equals(x, a[0]); })));
}
value m_list_copy(interpreter& in, const value& self, call_arguments& args) {
  bind_arguments("copy", args, {});
  in.charge(self.items().size());
  return value::make_list(self.items());
}
struct method_table {
  std::unordered_map<std::string, method_fn> methods;
  std::vector<std::string> unsafe; // exist in Python, blocked by the sandbox
};

const method_table& str_methods() {
  static const method_table table{
      {{"startswith", m_startswith}, {"endswith", m_endswith}, {"strip", m_strip},       {"lstrip", m_lstrip},
       {"rstrip", m_rstrip},         {"split", m_split},       {"rsplit", m_rsplit},     {"splitlines", m_splitlines},
       {"replace", m_replace},       {"upper", m_upper},       {"lower", m_lower},       {"casefold", m_lower},
       {"title", m_title},           {"capitalize", m_capitalize}, {"swapcase", m_swapcase}, {"find", m_find},
       {"rfind", m_rfind},           {"index", m_index},       {"rindex", m_rindex},     {"count", m_count},
       {"join", m_join},             {"format", m_format},     {"isdigit", m_isdigit},   {"isnumeric", m_isnumeric},
       {"isdecimal", m_isdecimal},   {"isalpha", m_isalpha},   {"isalnum", m_isalnum},   {"isspace", m_isspace},
       {"isupper", m_isupper},       {"islower", m_islower},   {"center", m_center},     {"ljust", m_ljust},
       {"rjust", m_rjust},           {"zfill", m_zfill},       {"partition", m_partition}, {"rpartition", m_rpartition},
       {"removeprefix", m_removeprefix}, {"removesuffix", m_removesuffix}},
      {}};
  return table;
}

const method_table& dict_methods() {
  static const method_table table{
      {{"get", m_get}, {"items", m_items}, {"keys", m_keys}, {"values", m_values}, {"copy", m_dict_copy}},
      {"clear", "pop", "popitem", "setdefault", "update"}};
  return table;
}

const method_table& list_methods() {
  static const method_table table{
      {{"index", m_list_index}, {"count", m_list_count}, {"copy", m_list_copy}},
      {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"}};
  return table;
}

const method_table& tuple_methods() {
  static const method_table table{{{"index", m_list_index}, {"count", m_list_count}}, {}};
  return table;
}

// ---- globals ----

value g_range(interpreter& in, call_arguments& args) {
  if (!args.named.empty())
    throw_type_error("range() takes no keyword arguments");
  auto& p = args.positional;
  if (p.empty() || p.size() > 3)
    throw_type_error("range expected 1 to 3 arguments, got " + std::to_string(p.size()));
  std::int64_t start = 0, stop, step = 1;
  if (p.size() == 1) {
    stop = to_index(p[0], nullptr);
  } else {
    start = to_index(p[0], nullptr);
    stop = to_index(p[1], nullptr);
    if (p.size() == 3)
      step = to_index(p[2], nullptr);
  }
  if (step == 0)
    throw_type_error("range() arg 3 must not be zero");
  __int128 count = 0;
  if (step > 0 && stop > start)
    count = (static_cast<__int128>(stop) - start + step - 1) / step;
  else if (step < 0 && stop < start)
    count = (static_cast<__int128>(start) - stop - step - 1) / -step;
  if (count > 100000)
    throw template_error(template_error_kind::limit,
                         "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  in.charge(static_cast<std::uint64_t>(count));
  value_list out;
  for (std::int64_t k = 0; k < count; ++k)
    out.push_back(value(start + k * step));
  return value::make_list(std::move(out));
}

std::shared_ptr<value_dict> dict_from_arguments(interpreter& in, call_arguments& args, const char* name) {
  auto dict = std::make_shared<value_dict>();
  if (args.positional.size() > 1)
    throw_type_error(std::string(name) + " expected at most 1 argument, got " + std::to_string(args.positional.size()));
  if (!args.positional.empty()) {
    const value& source = args.positional[0];
    if (source.is_dict()) {
      for (const auto& [key, item] : source.dict().entries())
        dict->set(key, item);
    } else {
      for (auto& pair : in.iterate(source)) {
        value_list kv = in.iterate(pair);
        if (kv.size() != 2)
          throw_type_error("dictionary update sequence element has length " + std::to_string(kv.size()) + "; 2 is required");
        dict->set(kv[0], kv[1]);
      }
    }
  }
  for (auto& [key, item] : args.named)
    dict->set(value(key), item);
  return dict;
}

value g_dict(interpreter& in, call_arguments& args) { return value::make_dict(dict_from_arguments(in, args, "dict")); }

value g_namespace(interpreter& in, call_arguments& args) {
  auto attributes = dict_from_arguments(in, args, "namespace");
  in.track_namespace(attributes);
  return value::make_namespace(std::move(attributes));
}

value g_raise_exception(interpreter&, call_arguments& args) {
  auto a = bind_arguments("raise_exception", args, {{"message", {}}});
  throw template_error(template_error_kind::raised, to_str(a[0]));
}

value g_strftime_now(interpreter& in, call_arguments& args) {
  auto a = bind_arguments("strftime_now", args, {{"format", {}}});
  if (!a[0].is_string())
    throw_type_error("strftime() argument 1 must be str, not " + type_name(a[0]));
  auto now = in.options().now ? in.options().now() : std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm local{};
  localtime_r(&t, &local);
  std::string out;
  // strftime cannot tell "empty result" from "buffer too small": grow until it fits.
  for (std::size_t size = 256; size <= (1u << 20); size *= 4) {
    std::string buf(size, '\0');
    std::size_t n = std::strftime(buf.data(), size, a[0].text().c_str(), &local);
    if (n > 0 || a[0].text().empty()) {
      out.assign(buf.data(), n);
      return value(std::move(out));
    }
  }
  return value(std::move(out));
}

class cycler_object : public object_value, public std::enable_shared_from_this<cycler_object> {
public:
  explicit cycler_object(value_list items) : items_(std::move(items)) {}
  value attribute(const std::string& name) override {
    if (name == "current")
      return items_[position_];
    if (name == "next" || name == "reset")
      return value::make_function(std::make_shared<cycler_method>(shared_from_this(), name == "next"));
    return value::undefined("'Cycler object' has no attribute '" + name + "'");
  }
  std::string type_name() const override { return "Cycler"; }
  std::string repr() const override { return "<Cycler>"; }

private:
  class cycler_method : public callable {
  public:
    cycler_method(std::shared_ptr<cycler_object> c, bool advance) : cycler_(std::move(c)), advance_(advance) {}
    value call(interpreter&, call_arguments& args) override {
      bind_arguments(advance_ ? "next" : "reset", args, {});
      if (!advance_) {
        cycler_->position_ = 0;
        return value::none();
      }
      value out = cycler_->items_[cycler_->position_];
      cycler_->position_ = (cycler_->position_ + 1) % cycler_->items_.size();
      return out;
    }
    std::string repr() const override { return "<bound method Cycler>"; }

  private:
    std::shared_ptr<cycler_object> cycler_;
    bool advance_;
  };
  value_list items_;
  std::size_t position_ = 0;
};

value g_cycler(interpreter&, call_arguments& args) {
  if (args.positional.empty())
    throw_type_error("at least one item has to be provided");
  return value::make_object(std::make_shared<cycler_object>(args.positional));
}

class joiner_function : public callable {
public:
  explicit joiner_function(std::string sep) : sep_(std::move(sep)) {}
  value call(interpreter&, call_arguments& args) override {
    bind_arguments("joiner", args, {});
    if (!used_) {
      used_ = true;
      return value("");
    }
    return value(sep_);
  }
  std::string repr() const override { return "<Joiner>"; }

private:
  std::string sep_;
  bool used_ = false;
};

value g_joiner(interpreter&, call_arguments& args) {
  auto a = bind_arguments("joiner", args, {{"sep", value(", ")}});
  return value::make_function(std::make_shared<joiner_function>(to_str(a[0])));
}

} // namespace

bool find_method(const value& receiver, const std::string& name, value& method) {
  const method_table* table = nullptr;
  if (receiver.is_string())
    table = &str_methods();
  else if (receiver.is_dict())
    table = &dict_methods();
  else if (receiver.is_list())
    table = &list_methods();
  else if (receiver.is_tuple())
    table = &tuple_methods();
  if (!table)
    return false;
  auto it = table->methods.find(name);
  if (it != table->methods.end()) {
    method = value::make_function(std::make_shared<bound_method>(receiver, name, it->second));
    return true;
  }
  if (std::find(table->unsafe.begin(), table->unsafe.end(), name) != table->unsafe.end()) {
    method = value::unsafe("access to attribute '" + name + "' of '" + type_name(receiver) + "' object is unsafe.");
    return true;
  }
  return false;
}

const value* find_global(const std::string& name) {
  static const std::unordered_map<std::string, value> globals = [] {
    std::unordered_map<std::string, value> g;
    auto add = [&](const char* n, builtin_function::fn_type fn) {
      g.emplace(n, value::make_function(std::make_shared<builtin_function>(n, fn)));
    };
    add("range", g_range);
    add("dict", g_dict);
    add("namespace", g_namespace);
    add("raise_exception", g_raise_exception);
    add("strftime_now", g_strftime_now);
    add("cycler", g_cycler);
    add("joiner", g_joiner);
    return g;
  }();
  auto it = globals.find(name);
  return it == globals.end() ? nullptr : &it->second;
}

} // namespace actorserve::chat_template

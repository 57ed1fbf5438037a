// Python methods of str, dict and list that templates call (message.content.startswith(...),
// tool.items(), ...). Globals: globals.cpp; str.format: format.cpp.
#include "model/chat_template/builtins.hpp"
#include "model/chat_template/interpreter.hpp"
#include "model/chat_template/pystring.hpp"

#include <utf8proc.h>

#include <algorithm>
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

} // namespace actorserve::chat_template

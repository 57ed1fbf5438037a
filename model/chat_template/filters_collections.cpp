// jinja2's filters of lists, dicts and other iterables (the string and number ones, and the
// lookup, are in filters.cpp). Tests: tests.cpp.
#include "model/chat_template/builtins.hpp"
#include "model/chat_template/filter_table.hpp"
#include "model/chat_template/interpreter.hpp"
#include "model/chat_template/pystring.hpp"

#include <algorithm>

namespace actorserve::chat_template {

namespace {

std::string soft_str(const value& v) { return to_str(v); }

value none() { return value::none(); }

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

value f_length(interpreter&, const value& v, call_arguments& args) {
  bind_arguments("length", args, {});
  return value(static_cast<std::int64_t>(length(v)));
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

} // namespace

void add_collection_filters(filter_table& table) {
  table.insert({
      {"attr", f_attr},       {"batch", f_batch},         {"count", f_length},      {"dictsort", f_dictsort},
      {"first", f_first},     {"groupby", f_groupby},     {"items", f_items},       {"join", f_join},
      {"last", f_last},       {"length", f_length},       {"list", f_list},         {"map", f_map},
      {"max", f_max},         {"min", f_min},             {"reject", f_reject},     {"rejectattr", f_rejectattr},
      {"reverse", f_reverse}, {"select", f_select},       {"selectattr", f_selectattr}, {"slice", f_slice},
      {"sort", f_sort},       {"sum", f_sum},             {"unique", f_unique},
  });
}

} // namespace actorserve::chat_template

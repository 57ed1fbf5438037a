#include "gateway/json_fields.hpp"

#include <cmath>
#include <sstream>

namespace actorserve::gateway {
namespace {

using json = nlohmann::ordered_json;

std::string format_number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string invalid_type_message(const std::string& param, const char* expected, const json& got) {
  return "Invalid type for '" + param + "': expected " + expected + ", but got " + json_kind(got) +
         " instead.";
}

} // namespace

std::string json_kind(const json& v) {
  switch (v.type()) {
  case json::value_t::null: return "null";
  case json::value_t::boolean: return "a boolean";
  case json::value_t::number_integer:
  case json::value_t::number_unsigned: return "an integer";
  case json::value_t::number_float: return "a decimal";
  case json::value_t::string: return "a string";
  case json::value_t::array: return "an array";
  case json::value_t::object: return "an object";
  default: return "an unsupported value";
  }
}

json_fields::json_fields(const json& object, std::string prefix) : object_(object), prefix_(std::move(prefix)) {}

bool json_fields::present(const char* name) const { return object_.contains(name); }

bool json_fields::has(const char* name) const { return get(name) != nullptr; }

const json* json_fields::get(const char* name) const {
  auto it = object_.find(name);
  if (it == object_.end() || it->is_null())
    return nullptr;
  return &*it;
}

void json_fields::wrong_type(const char* name, const char* expected) const {
  const json* v = get(name);
  throw invalid_request(invalid_type_message(param(name), expected, v ? *v : json(nullptr)), param(name),
                        "invalid_type");
}

std::optional<bool> json_fields::boolean(const char* name) const {
  const json* v = get(name);
  if (!v)
    return std::nullopt;
  if (!v->is_boolean())
    wrong_type(name, "a boolean");
  return v->get<bool>();
}

std::optional<std::string> json_fields::string(const char* name) const {
  const json* v = get(name);
  if (!v)
    return std::nullopt;
  if (!v->is_string())
    wrong_type(name, "a string");
  return v->get<std::string>();
}

int64_t json_integer(const json& v, const std::string& param, int64_t min, int64_t max) {
  int64_t value = 0;
  if (v.is_number_integer()) {
    // Unsigned values past int64 are above every maximum we check.
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
      value = INT64_MAX;
    else
      value = v.get<int64_t>();
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) && std::trunc(v.get<double>()) == v.get<double>() &&
             std::fabs(v.get<double>()) < 9.2e18) {
    value = int64_t(v.get<double>());
  } else {
    throw invalid_request(invalid_type_message(param, "an integer", v), param, "invalid_type");
  }
  if (value < min)
    throw invalid_request("Invalid '" + param + "': integer below minimum value. Expected a value >= " +
                              std::to_string(min) + ", but got " + std::to_string(value) + " instead.",
                          param, "integer_below_min_value");
  if (value > max)
    throw invalid_request("Invalid '" + param + "': integer above maximum value. Expected a value <= " +
                              std::to_string(max) + ", but got " + v.dump() + " instead.",
                          param, "integer_above_max_value");
  return value;
}

std::optional<int64_t> json_fields::integer(const char* name, int64_t min, int64_t max) const {
  const json* v = get(name);
  if (!v)
    return std::nullopt;
  return json_integer(*v, param(name), min, max);
}

std::optional<double> json_fields::number(const char* name, double min, double max, bool min_exclusive) const {
  const json* v = get(name);
  if (!v)
    return std::nullopt;
  if (!v->is_number())
    wrong_type(name, "a number");
  const double value = v->get<double>();
  const std::string p = param(name);
  if (value < min || (min_exclusive && value == min))
    throw invalid_request("Invalid '" + p + "': decimal below minimum value. Expected a value " +
                              (min_exclusive ? "> " : ">= ") + format_number(min) + ", but got " +
                              format_number(value) + " instead.",
                          p, "decimal_below_min_value");
  if (value > max)
    throw invalid_request("Invalid '" + p + "': decimal above maximum value. Expected a value <= " +
                              format_number(max) + ", but got " + format_number(value) + " instead.",
                          p, "decimal_above_max_value");
  return value;
}

std::optional<std::vector<std::string>> json_fields::string_or_strings(const char* name, size_t max_items) const {
  const json* v = get(name);
  if (!v)
    return std::nullopt;
  std::vector<std::string> out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (v->size() > max_items)
      throw invalid_request("Invalid '" + param(name) + "': array too long. Expected an array with maximum length " +
                                std::to_string(max_items) + ", but got an array with length " +
                                std::to_string(v->size()) + " instead.",
                            param(name), "array_above_max_length");
    for (size_t i = 0; i < v->size(); ++i) {
      const json& item = (*v)[i];
      const std::string p = param(name) + "[" + std::to_string(i) + "]";
      if (!item.is_string())
        throw invalid_request(invalid_type_message(p, "a string", item), p, "invalid_type");
      out.push_back(item.get<std::string>());
    }
  } else {
    wrong_type(name, "a string or an array of strings");
  }
  return out;
}

std::optional<std::vector<int64_t>> json_fields::integers(const char* name, int64_t min, int64_t max,
                                                          size_t max_items) const {
  const json* v = get(name);
  if (!v)
    return std::nullopt;
  if (!v->is_array())
    wrong_type(name, "an array of integers");
  if (v->size() > max_items)
    throw invalid_request("Invalid '" + param(name) + "': array too long. Expected an array with maximum length " +
                              std::to_string(max_items) + ", but got an array with length " +
                              std::to_string(v->size()) + " instead.",
                          param(name), "array_above_max_length");
  std::vector<int64_t> out;
  out.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i)
    out.push_back(json_integer((*v)[i], param(name) + "[" + std::to_string(i) + "]", min, max));
  return out;
}

} // namespace actorserve::gateway

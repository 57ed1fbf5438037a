#pragma once
// Reading tokenizer.json fields with errors that name the field (model_error, never a crash on a
// wrong type or a missing key).

#include "model/error.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace actorserve::tokenization {

using json = nlohmann::json;

[[noreturn]] inline void field_error(const std::string& where, const std::string& what) {
  throw model_error("tokenizer.json: " + where + ": " + what);
}

inline const json& require(const json& object, const char* key, const std::string& where) {
  if (!object.is_object())
    field_error(where, "expected an object");
  auto it = object.find(key);
  if (it == object.end())
    field_error(where, std::string("missing field \"") + key + "\"");
  return *it;
}

inline std::string string_field(const json& object, const char* key, const std::string& where) {
  const json& v = require(object, key, where);
  if (!v.is_string())
    field_error(where, std::string("field \"") + key + "\" must be a string");
  return v.get<std::string>();
}

inline std::string string_or(const json& object, const char* key, std::string fallback,
                             const std::string& where) {
  if (!object.is_object())
    field_error(where, "expected an object");
  auto it = object.find(key);
  if (it == object.end() || it->is_null())
    return fallback;
  if (!it->is_string())
    field_error(where, std::string("field \"") + key + "\" must be a string");
  return it->get<std::string>();
}

inline bool bool_or(const json& object, const char* key, bool fallback, const std::string& where) {
  if (!object.is_object())
    field_error(where, "expected an object");
  auto it = object.find(key);
  if (it == object.end() || it->is_null())
    return fallback;
  if (!it->is_boolean())
    field_error(where, std::string("field \"") + key + "\" must be true or false");
  return it->get<bool>();
}

inline uint64_t uint_or(const json& object, const char* key, uint64_t fallback, const std::string& where) {
  if (!object.is_object())
    field_error(where, "expected an object");
  auto it = object.find(key);
  if (it == object.end() || it->is_null())
    return fallback;
  if (!it->is_number_unsigned())
    field_error(where, std::string("field \"") + key + "\" must be a non-negative integer");
  return it->get<uint64_t>();
}

inline uint32_t token_id(const json& value, const std::string& where) {
  if (!value.is_number_unsigned() || value.get<uint64_t>() > 0xffffffffull)
    field_error(where, "token id must be an integer in [0, 2^32)");
  return static_cast<uint32_t>(value.get<uint64_t>());
}

/// The "type" tag of a component object.
inline std::string type_of(const json& object, const std::string& where) {
  return string_field(object, "type", where);
}

/// A pattern object {"String": "..."} or {"Regex": "..."}: returns the regex source to compile.
std::string pattern_source(const json& pattern, const std::string& where);

} // namespace actorserve::tokenization

#pragma once
// Typed access to the fields of a JSON request object with OpenAI's error messages: every
// accessor throws api_error (400) naming the field, what was expected and what came. A field
// that is absent or null reads as "not given" (nullopt), as OpenAI treats null as the default.

#include "gateway/api_error.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace actorserve::gateway {

/// "a string", "an integer", "a number", "a boolean", "an array", "an object", "null".
std::string json_kind(const nlohmann::ordered_json& v);

class json_fields {
public:
  /// `prefix` is prepended to field names in messages ("messages[2]." for nested objects).
  explicit json_fields(const nlohmann::ordered_json& object, std::string prefix = {});

  bool has(const char* name) const;          // present and not null
  bool present(const char* name) const;      // present, null or not
  const nlohmann::ordered_json* get(const char* name) const; // nullptr when absent or null
  std::string param(const char* name) const { return prefix_ + name; }

  std::optional<bool> boolean(const char* name) const;
  std::optional<std::string> string(const char* name) const;
  /// An integer in [min, max]; a number with a zero fraction (2.0) counts as an integer.
  std::optional<int64_t> integer(const char* name, int64_t min, int64_t max) const;
  /// A number in [min, max]; `min_exclusive` makes the lower bound open ((0, 1] for top_p).
  std::optional<double> number(const char* name, double min, double max, bool min_exclusive = false) const;
  /// A string or an array of strings (OpenAI's `stop`), at most `max_items`.
  std::optional<std::vector<std::string>> string_or_strings(const char* name, size_t max_items) const;
  /// An array of integers in [min, max].
  std::optional<std::vector<int64_t>> integers(const char* name, int64_t min, int64_t max, size_t max_items) const;

  [[noreturn]] void wrong_type(const char* name, const char* expected) const;

private:
  const nlohmann::ordered_json& object_;
  std::string prefix_;
};

/// Reads an integer out of a JSON value (integral numbers only, in [min, max]); throws the
/// OpenAI error for `param` otherwise.
int64_t json_integer(const nlohmann::ordered_json& v, const std::string& param, int64_t min, int64_t max);

} // namespace actorserve::gateway

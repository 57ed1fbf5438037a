#pragma once
// JSON text -> nlohmann::ordered_json, keeping every object's keys in the order they were
// sent. Chat templates print client objects (tool definitions, tool calls) with `tojson`, and
// transformers/vLLM print them in the client's order (Python dicts keep insertion order), so
// the gateway must not sort them as nlohmann::json does.
//
// ordered_json::parse checks every new key against all earlier keys of its object (O(n^2) for
// an object of n keys: a 16 MB body of small keys would take minutes). This parser keeps a
// hash index per large object instead. Duplicate keys behave as Python's json.loads: the last
// value wins, at the position of the first occurrence.

#include <nlohmann/json.hpp>

#include <string_view>

namespace actorserve::gateway {

/// Throws nlohmann::json::parse_error (the same type json::parse throws) on malformed JSON or
/// invalid UTF-8.
nlohmann::ordered_json parse_ordered_json(std::string_view text);

} // namespace actorserve::gateway

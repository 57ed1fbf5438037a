#pragma once
// The filter table is filled by two files: filters.cpp (filters of strings and numbers, and
// the lookup) and filters_collections.cpp (filters of lists, dicts and other iterables).

#include "model/chat_template/value.hpp"

#include <string>
#include <unordered_map>

namespace actorserve::chat_template {

class interpreter;

using filter_fn = value (*)(interpreter&, const value&, call_arguments&);
using filter_table = std::unordered_map<std::string, filter_fn>;

/// Adds attr, batch, count/length, dictsort, first, last, groupby, items, join, list, map,
/// max, min, select/reject(attr), reverse, slice, sort, sum and unique.
void add_collection_filters(filter_table& table);

} // namespace actorserve::chat_template

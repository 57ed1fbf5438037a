#pragma once
// Builds the statement tree of a template from its tokens, with jinja2's grammar and
// precedence. Unknown tags, unknown filters/tests outside `if` (which jinja2 rejects when it
// compiles), and nesting deeper than `max_depth` are syntax errors with line and column.

#include "model/chat_template/ast.hpp"

#include <string_view>

namespace actorserve::chat_template {

node_list parse_template(std::string_view source, int max_depth);

} // namespace actorserve::chat_template

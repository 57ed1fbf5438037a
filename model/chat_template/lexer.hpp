#pragma once
// Splits template source into tokens the way jinja2's lexer does with the settings
// transformers uses: trim_blocks and lstrip_blocks on, keep_trailing_newline off, `{%-`/`-%}`
// and `{%+`/`+%}` whitespace control, comments dropped, `{% raw %}` kept verbatim.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace actorserve::chat_template {

enum class token_type {
  data,           // template text outside tags
  variable_begin, // {{
  variable_end,   // }}
  block_begin,    // {%
  block_end,      // %}
  name,
  string,         // text holds the decoded literal
  integer,
  floating,
  op,             // text holds the operator: "+", "//", "==", "(", ...
  eof,
};

struct token {
  token_type type = token_type::eof;
  std::string text;
  std::int64_t int_value = 0;
  double float_value = 0.0;
  int line = 1;
  int column = 1;
};

/// Throws template_error (syntax, with line and column) on malformed input.
std::vector<token> tokenize(std::string_view source);

/// A readable name for a token in parse errors: "end of statement block", "'foo'", "')'".
std::string describe(const token& t);

} // namespace actorserve::chat_template

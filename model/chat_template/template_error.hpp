#pragma once
// Errors of the chat-template interpreter. Every failure of a template (syntax, runtime,
// raise_exception, a limit) is a template_error: a message with the template line (and the
// column for syntax errors) that a user debugging a model can act on.

#include "model/error.hpp"

#include <string>

namespace actorserve::chat_template {

enum class template_error_kind {
  syntax,    // the template does not parse (line and column known)
  undefined, // an undefined value was used where Python's jinja2 raises UndefinedError
  type,      // an operation Python would refuse (TypeError, ValueError, KeyError ...)
  security,  // something the transformers sandbox forbids (e.g. list.append)
  raised,    // the template called raise_exception(message)
  limit,     // a limit of template_limits was reached (loops, output, recursion, size)
};

class template_error : public model_error {
public:
  /// `line` and `column` are 1-based; 0 when unknown.
  template_error(template_error_kind kind, std::string message, int line = 0, int column = 0)
      : model_error(format(kind, message, line, column)), kind_(kind), message_(std::move(message)),
        line_(line), column_(column) {}

  template_error_kind kind() const { return kind_; }
  /// The message without the location prefix; for `raised`, exactly what the template passed.
  const std::string& message() const { return message_; }
  int line() const { return line_; }
  int column() const { return column_; }

private:
  static std::string format(template_error_kind kind, const std::string& message, int line, int column) {
    std::string text = "chat template";
    if (line > 0) {
      text.append(" line ").append(std::to_string(line));
      if (column > 0)
        text.append(" column ").append(std::to_string(column));
    }
    switch (kind) {
    case template_error_kind::syntax: text.append(": syntax error: "); break;
    case template_error_kind::raised: text.append(": raise_exception: "); break;
    case template_error_kind::limit: text.append(": limit reached: "); break;
    default: text.append(": "); break;
    }
    return text.append(message);
  }

  template_error_kind kind_;
  std::string message_;
  int line_;
  int column_;
};

} // namespace actorserve::chat_template

#pragma once
// The parser of parser.cpp (statements) and parse_expression.cpp (expressions): a recursive
// descent over the lexer's tokens with jinja2's grammar. Internal to the chat-template code.

#include "model/chat_template/ast.hpp"
#include "model/chat_template/lexer.hpp"

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

namespace actorserve::chat_template::detail {

class parser {
public:
  parser(std::vector<token> tokens, int max_depth) : tokens_(std::move(tokens)), max_depth_(max_depth) {}

  node_list parse() {
    node_list body = subparse({});
    return body;
  }

private:
  // ---- token stream ----
  const token& current() const { return tokens_[pos_]; }
  const token& look() const { return tokens_[std::min(pos_ + 1, tokens_.size() - 1)]; }
  const token& next() {
    const token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size())
      ++pos_;
    return t;
  }
  bool is_op(const char* op) const { return current().type == token_type::op && current().text == op; }
  bool is_name(const char* name) const { return current().type == token_type::name && current().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op))
      return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name))
      return false;
    next();
    return true;
  }

  [[noreturn]] void fail(const std::string& message, const token& at) const {
    throw template_error(template_error_kind::syntax, message, at.line, at.column);
  }
  [[noreturn]] void fail(const std::string& message) const { fail(message, current()); }

  void expect_op(const char* op) {
    if (!is_op(op))
      fail(std::string("expected token '") + op + "', got " + describe(current()));
    next();
  }
  void expect(token_type type, const char* what) {
    if (current().type != type)
      fail(std::string("expected ") + what + ", got " + describe(current()));
    next();
  }
  std::string expect_name() {
    if (current().type != token_type::name)
      fail("expected token 'name', got " + describe(current()));
    return next().text;
  }

  /// Operator chains (a + b + c ...) are parsed in loops but evaluated recursively: their
  /// tree height has its own, larger bound.
  int max_tree_height() const { return 8 * max_depth_; }

  /// Bounds recursion of the parser: nested blocks, brackets and prefix operators.
  struct depth_guard {
    parser& p;
    explicit depth_guard(parser& owner) : p(owner) {
      if (++p.depth_ > p.max_depth_)
        p.fail("template nested deeper than " + std::to_string(p.max_depth_) + " levels");
    }
    ~depth_guard() { --p.depth_; }
  };

  expr_ptr make(expr_kind kind, int line) {
    auto e = std::make_unique<expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  /// Sets the height of a freshly built node from its children and enforces the limit:
  /// left-leaning chains (a + b + c ...) are built in loops, not by recursion.
  expr_ptr finish(expr_ptr e) {
    int h = 0;
    auto see = [&](const expr_ptr& c) {
      if (c)
        h = std::max(h, c->depth);
    };
    for (const auto& c : e->items)
      see(c);
    see(e->first), see(e->second), see(e->third);
    for (const auto& c : e->args.positional)
      see(c);
    for (const auto& [_, c] : e->args.named)
      see(c);
    see(e->args.star_args), see(e->args.star_kwargs);
    e->depth = h + 1;
    if (e->depth > max_tree_height())
      fail("expression nested deeper than " + std::to_string(max_tree_height()) + " levels");
    return e;
  }

  // ---- statements (parser.cpp) ----
  node_list subparse(std::initializer_list<const char*> end_tokens);
  node_list parse_statements(std::initializer_list<const char*> end_tokens, bool drop_needle);
  node_ptr parse_statement();
  /// Bodies of macros, call blocks, with/filter/set blocks start a new jinja2 frame: filters
  /// unknown at compile time are errors again there, and break/continue leave the loop.
  struct frame_guard {
    parser& p;
    int saved_soft, saved_loop;
    frame_guard(parser& owner, bool resets_loop) : p(owner), saved_soft(owner.soft_depth_), saved_loop(owner.loop_depth_) {
      p.soft_depth_ = 0;
      if (resets_loop)
        p.loop_depth_ = 0;
    }
    ~frame_guard() {
      p.soft_depth_ = saved_soft;
      p.loop_depth_ = saved_loop;
    }
  };
  node_ptr parse_for();
  node_ptr parse_if();
  node_ptr parse_set();
  void parse_signature(node& n);
  void mark_special_names(node& n);
  node_ptr parse_macro();
  node_ptr parse_call_block();
  node_ptr parse_filter_block();
  node_ptr parse_with();
  node_ptr parse_print();
  node_ptr parse_generation();
  assign_target to_target(const expr& e);
  assign_target parse_assign_target(bool with_tuple, bool name_only, std::initializer_list<const char*> extra_end,
                                     bool with_namespace);

  // ---- expressions (parse_expression.cpp) ----
  /// Every nested expression (brackets, call and filter arguments, subscripts) comes through
  /// here, so this is where nesting is counted.
  expr_ptr parse_expression(bool with_condexpr);
  expr_ptr parse_condexpr();
  expr_ptr parse_or();
  expr_ptr parse_and();
  expr_ptr parse_not();
  expr_ptr parse_compare();
  expr_ptr binary(binary_op op, expr_ptr left, expr_ptr right, int line);
  expr_ptr parse_math1();
  expr_ptr parse_concat();
  expr_ptr parse_math2();
  expr_ptr parse_pow();
  expr_ptr parse_unary(bool with_filter);
  expr_ptr parse_primary();
  bool is_tuple_end(std::initializer_list<const char*> extra_end) const;
  expr_ptr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<const char*> extra_end,
                       bool explicit_parentheses);
  expr_ptr parse_list();
  expr_ptr parse_dict();
  expr_ptr parse_postfix(expr_ptr e);
  expr_ptr parse_filter_expr(expr_ptr e);
  expr_ptr parse_subscript(expr_ptr object);
  expr_ptr parse_subscribed();
  void parse_call_args(call_syntax& args);
  expr_ptr parse_call(expr_ptr callee);
  std::string dotted_name();
  void check_known(bool is_filter, const std::string& name, const token& at);
  expr_ptr parse_filter(expr_ptr subject, bool start_inline);
  expr_ptr parse_test(expr_ptr subject);

  std::vector<token> tokens_;
  std::size_t pos_ = 0;
  int max_depth_;
  int depth_ = 0;
  int soft_depth_ = 0; // inside if statements / inline ifs (jinja2's "soft" frames)
  int loop_depth_ = 0; // for loops enclosing the current statement, within one frame
};

} // namespace actorserve::chat_template::detail

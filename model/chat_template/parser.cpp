#include "model/chat_template/parser.hpp"

#include "model/chat_template/builtins.hpp"
#include "model/chat_template/lexer.hpp"

#include <algorithm>
#include <initializer_list>

namespace actorserve::chat_template {

namespace {

bool is_compare_op(const token& t) {
  static const char* ops[] = {"==", "!=", "<", "<=", ">", ">="};
  return t.type == token_type::op && std::any_of(std::begin(ops), std::end(ops), [&](const char* o) { return t.text == o; });
}

compare_op compare_op_of(const std::string& s) {
  if (s == "==") return compare_op::eq;
  if (s == "!=") return compare_op::ne;
  if (s == "<") return compare_op::lt;
  if (s == "<=") return compare_op::le;
  if (s == ">") return compare_op::gt;
  return compare_op::ge;
}

/// Names a macro body reads (to decide whether it accepts varargs/kwargs/caller).
void collect_names(const expr* e, std::vector<std::string>& out);
void collect_names(const node_list& nodes, std::vector<std::string>& out);

void collect_names(const expr* e, std::vector<std::string>& out) {
  if (!e)
    return;
  if (e->kind == expr_kind::name)
    out.push_back(e->name);
  for (const auto& item : e->items)
    collect_names(item.get(), out);
  collect_names(e->first.get(), out);
  collect_names(e->second.get(), out);
  collect_names(e->third.get(), out);
  for (const auto& a : e->args.positional)
    collect_names(a.get(), out);
  for (const auto& [_, a] : e->args.named)
    collect_names(a.get(), out);
  collect_names(e->args.star_args.get(), out);
  collect_names(e->args.star_kwargs.get(), out);
}

void collect_names(const node_list& nodes, std::vector<std::string>& out) {
  for (const auto& n : nodes) {
    collect_names(n->value.get(), out);
    collect_names(n->condition.get(), out);
    collect_names(n->filter.get(), out);
    for (const auto& b : n->branches) {
      collect_names(b.test.get(), out);
      collect_names(b.body, out);
    }
    for (const auto& p : n->params)
      collect_names(p.default_value.get(), out);
    for (const auto& [_, v] : n->bindings)
      collect_names(v.get(), out);
    // A nested macro has its own varargs/kwargs/caller.
    if (n->kind != node_kind::macro) {
      collect_names(n->body, out);
      collect_names(n->else_body, out);
    }
  }
}

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

  // ---- statements ----

  node_list subparse(std::initializer_list<const char*> end_tokens) {
    depth_guard guard(*this);
    node_list body;
    while (true) {
      const token& t = current();
      if (t.type == token_type::eof) {
        if (end_tokens.size() != 0) {
          std::string wanted;
          for (const char* e : end_tokens)
            wanted += (wanted.empty() ? "'" : " or '") + std::string(e) + "'";
          fail("unexpected end of template; jinja was looking for " + wanted);
        }
        return body;
      }
      if (t.type == token_type::data) {
        auto n = std::make_unique<node>();
        n->kind = node_kind::text;
        n->line = t.line;
        n->text = t.text;
        body.push_back(std::move(n));
        next();
      } else if (t.type == token_type::variable_begin) {
        next();
        auto n = std::make_unique<node>();
        n->kind = node_kind::output;
        n->line = t.line;
        n->value = parse_tuple(false, true, {}, false);
        expect(token_type::variable_end, "end of print statement");
        body.push_back(std::move(n));
      } else if (t.type == token_type::block_begin) {
        next();
        if (current().type == token_type::name)
          for (const char* e : end_tokens)
            if (current().text == e)
              return body;
        body.push_back(parse_statement());
        expect(token_type::block_end, "end of statement block");
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  node_list parse_statements(std::initializer_list<const char*> end_tokens, bool drop_needle) {
    skip_op(":");
    expect(token_type::block_end, "end of statement block");
    node_list body = subparse(end_tokens);
    if (drop_needle)
      next();
    return body;
  }

  node_ptr parse_statement() {
    const token& t = current();
    if (t.type != token_type::name)
      fail("tag name expected");
    const std::string& tag = t.text;
    if (tag == "for") return parse_for();
    if (tag == "if") return parse_if();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "call") return parse_call_block();
    if (tag == "filter") return parse_filter_block();
    if (tag == "with") return parse_with();
    if (tag == "print") return parse_print();
    if (tag == "generation") return parse_generation();
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0)
        fail("'" + tag + "' outside loop");
      auto n = std::make_unique<node>();
      n->kind = tag == "break" ? node_kind::loop_break : node_kind::loop_continue;
      n->line = t.line;
      next();
      return n;
    }
    if (tag == "include" || tag == "import" || tag == "from" || tag == "extends" || tag == "block")
      fail("'" + tag + "' needs a template loader; chat templates have none");
    if (tag == "autoescape")
      fail("'autoescape' is not supported in chat templates");
    fail("Encountered unknown tag '" + tag + "'");
  }

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

  node_ptr parse_for() {
    auto n = std::make_unique<node>();
    n->kind = node_kind::for_loop;
    n->line = next().line;
    n->target = parse_assign_target(true, false, {"in"}, false);
    if (!skip_name("in"))
      fail("expected token 'in', got " + describe(current()));
    n->value = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if"))
      n->condition = parse_expression(true);
    n->recursive = skip_name("recursive");
    {
      frame_guard frame(*this, false);
      ++loop_depth_;
      n->body = parse_statements({"endfor", "else"}, false);
    }
    if (next().text == "else") {
      frame_guard frame(*this, false);
      n->else_body = parse_statements({"endfor"}, true);
    }
    return n;
  }

  node_ptr parse_if() {
    auto n = std::make_unique<node>();
    n->kind = node_kind::if_chain;
    n->line = next().line;
    ++soft_depth_;
    while (true) {
      if_branch branch;
      branch.test = parse_tuple(false, false, {}, false);
      branch.body = parse_statements({"elif", "else", "endif"}, false);
      n->branches.push_back(std::move(branch));
      const token& t = next();
      if (t.text == "elif")
        continue;
      if (t.text == "else")
        n->else_body = parse_statements({"endif"}, true);
      break;
    }
    --soft_depth_;
    return n;
  }

  node_ptr parse_set() {
    auto n = std::make_unique<node>();
    n->line = next().line;
    n->target = parse_assign_target(true, false, {}, true);
    if (skip_op("=")) {
      n->kind = node_kind::set;
      n->value = parse_tuple(false, true, {}, false);
      return n;
    }
    n->kind = node_kind::set_block;
    n->filter = parse_filter(nullptr, false);
    frame_guard frame(*this, false);
    n->body = parse_statements({"endset"}, true);
    return n;
  }

  void parse_signature(node& n) {
    expect_op("(");
    while (!is_op(")")) {
      if (!n.params.empty())
        expect_op(",");
      macro_param p;
      p.name = expect_name();
      if (skip_op("="))
        p.default_value = parse_expression(true);
      else if (!n.params.empty() && n.params.back().default_value)
        fail("non-default argument follows default argument");
      n.params.push_back(std::move(p));
    }
    expect_op(")");
  }

  void mark_special_names(node& n) {
    std::vector<std::string> names;
    collect_names(n.body, names);
    for (const auto& p : n.params)
      collect_names(p.default_value.get(), names);
    for (const auto& name : names) {
      n.uses_varargs |= name == "varargs";
      n.uses_kwargs |= name == "kwargs";
      n.uses_caller |= name == "caller";
    }
  }

  node_ptr parse_macro() {
    auto n = std::make_unique<node>();
    n->kind = node_kind::macro;
    n->line = next().line;
    n->name = expect_name();
    parse_signature(*n);
    frame_guard frame(*this, true);
    n->body = parse_statements({"endmacro"}, true);
    mark_special_names(*n);
    return n;
  }

  node_ptr parse_call_block() {
    auto n = std::make_unique<node>();
    n->kind = node_kind::call_block;
    const token& start = next();
    n->line = start.line;
    if (is_op("("))
      parse_signature(*n);
    n->value = parse_expression(true);
    if (n->value->kind != expr_kind::call)
      fail("expected call", start);
    frame_guard frame(*this, true);
    n->body = parse_statements({"endcall"}, true);
    mark_special_names(*n);
    return n;
  }

  node_ptr parse_filter_block() {
    auto n = std::make_unique<node>();
    n->kind = node_kind::filter_block;
    n->line = next().line;
    n->filter = parse_filter(nullptr, true);
    frame_guard frame(*this, false);
    n->body = parse_statements({"endfilter"}, true);
    return n;
  }

  node_ptr parse_with() {
    auto n = std::make_unique<node>();
    n->kind = node_kind::with_block;
    n->line = next().line;
    while (current().type != token_type::block_end) {
      if (!n->bindings.empty())
        expect_op(",");
      assign_target target = parse_assign_target(true, false, {}, false);
      expect_op("=");
      n->bindings.emplace_back(std::move(target), parse_expression(true));
    }
    frame_guard frame(*this, false);
    n->body = parse_statements({"endwith"}, true);
    return n;
  }

  node_ptr parse_print() {
    auto n = std::make_unique<node>();
    n->kind = node_kind::output;
    n->line = next().line;
    auto tuple = make(expr_kind::tuple, n->line);
    while (current().type != token_type::block_end) {
      if (!tuple->items.empty())
        expect_op(",");
      tuple->items.push_back(parse_expression(true));
    }
    // `print a, b` prints each expression in turn, like {{ a }}{{ b }}.
    auto concat = make(expr_kind::concat, n->line);
    concat->items = std::move(tuple->items);
    n->value = finish(std::move(concat));
    return n;
  }

  node_ptr parse_generation() {
    auto n = std::make_unique<node>();
    n->kind = node_kind::scope;
    n->line = next().line;
    n->body = parse_statements({"endgeneration"}, true);
    return n;
  }

  assign_target to_target(const expr& e) {
    assign_target t;
    if (e.kind == expr_kind::name) {
      if (e.name == "true" || e.name == "false" || e.name == "none" || e.name == "True" || e.name == "False" || e.name == "None")
        fail("can't assign to 'const'");
      t.name = e.name;
      return t;
    }
    if (e.kind == expr_kind::tuple) {
      t.kind = assign_target::target_kind::tuple;
      for (const auto& item : e.items)
        t.elements.push_back(to_target(*item));
      return t;
    }
    fail("can't assign to this expression");
  }

  assign_target parse_assign_target(bool with_tuple, bool name_only, std::initializer_list<const char*> extra_end,
                                     bool with_namespace) {
    if (with_namespace && current().type == token_type::name && look().type == token_type::op && look().text == ".") {
      assign_target t;
      t.kind = assign_target::target_kind::namespace_attribute;
      t.name = next().text;
      next();
      t.attribute = expect_name();
      return t;
    }
    if (name_only) {
      assign_target t;
      t.name = expect_name();
      return t;
    }
    expr_ptr e = with_tuple ? parse_tuple(true, true, extra_end, false) : parse_primary();
    return to_target(*e);
  }

  // ---- expressions ----

  /// Every nested expression (brackets, call and filter arguments, subscripts) comes through
  /// here, so this is where nesting is counted.
  expr_ptr parse_expression(bool with_condexpr) {
    depth_guard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  expr_ptr parse_condexpr() {
    int line = current().line;
    expr_ptr body = parse_or();
    while (skip_name("if")) {
      ++soft_depth_;
      auto cond = make(expr_kind::conditional, line);
      cond->second = parse_or();
      if (skip_name("else")) {
        depth_guard guard(*this);
        cond->third = parse_condexpr();
      }
      --soft_depth_;
      cond->first = std::move(body);
      body = finish(std::move(cond));
      line = current().line;
    }
    return body;
  }

  expr_ptr parse_or() {
    expr_ptr left = parse_and();
    while (is_name("or")) {
      auto e = make(expr_kind::logical_or, next().line);
      e->first = std::move(left);
      e->second = parse_and();
      left = finish(std::move(e));
    }
    return left;
  }

  expr_ptr parse_and() {
    expr_ptr left = parse_not();
    while (is_name("and")) {
      auto e = make(expr_kind::logical_and, next().line);
      e->first = std::move(left);
      e->second = parse_not();
      left = finish(std::move(e));
    }
    return left;
  }

  expr_ptr parse_not() {
    if (is_name("not")) {
      depth_guard guard(*this);
      auto e = make(expr_kind::logical_not, next().line);
      e->first = parse_not();
      return finish(std::move(e));
    }
    return parse_compare();
  }

  expr_ptr parse_compare() {
    int line = current().line;
    expr_ptr first = parse_math1();
    expr_ptr cmp;
    while (true) {
      compare_op op;
      if (is_compare_op(current())) {
        op = compare_op_of(next().text);
      } else if (skip_name("in")) {
        op = compare_op::in;
      } else if (is_name("not") && look().type == token_type::name && look().text == "in") {
        next(), next();
        op = compare_op::not_in;
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(expr_kind::compare, line);
        cmp->first = std::move(first);
      }
      cmp->compare_ops.push_back(op);
      cmp->items.push_back(parse_math1());
    }
    return cmp ? finish(std::move(cmp)) : std::move(first);
  }

  expr_ptr binary(binary_op op, expr_ptr left, expr_ptr right, int line) {
    auto e = make(expr_kind::binary, line);
    e->op = op;
    e->first = std::move(left);
    e->second = std::move(right);
    return finish(std::move(e));
  }

  expr_ptr parse_math1() {
    expr_ptr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const token& t = next();
      left = binary(t.text == "+" ? binary_op::add : binary_op::sub, std::move(left), parse_concat(), t.line);
    }
    return left;
  }

  expr_ptr parse_concat() {
    int line = current().line;
    expr_ptr first = parse_math2();
    if (!is_op("~"))
      return first;
    auto e = make(expr_kind::concat, line);
    e->items.push_back(std::move(first));
    while (skip_op("~"))
      e->items.push_back(parse_math2());
    return finish(std::move(e));
  }

  expr_ptr parse_math2() {
    expr_ptr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const token& t = next();
      binary_op op = t.text == "*" ? binary_op::mul : t.text == "/" ? binary_op::div : t.text == "//" ? binary_op::floordiv : binary_op::mod;
      left = binary(op, std::move(left), parse_pow(), t.line);
    }
    return left;
  }

  expr_ptr parse_pow() {
    expr_ptr left = parse_unary(true);
    while (is_op("**")) {
      const token& t = next();
      left = binary(binary_op::pow, std::move(left), parse_unary(true), t.line);
    }
    return left;
  }

  expr_ptr parse_unary(bool with_filter) {
    expr_ptr e;
    if (is_op("-") || is_op("+")) {
      depth_guard guard(*this);
      const token& t = next();
      e = make(t.text == "-" ? expr_kind::negate : expr_kind::positive, t.line);
      e->first = parse_unary(false);
      e = finish(std::move(e));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter)
      e = parse_filter_expr(std::move(e));
    return e;
  }

  expr_ptr parse_primary() {
    const token& t = current();
    if (t.type == token_type::name) {
      next();
      if (t.text == "true" || t.text == "True" || t.text == "false" || t.text == "False") {
        auto e = make(expr_kind::constant, t.line);
        e->constant = value(t.text == "true" || t.text == "True");
        return e;
      }
      if (t.text == "none" || t.text == "None") {
        auto e = make(expr_kind::constant, t.line);
        e->constant = value::none();
        return e;
      }
      auto e = make(expr_kind::name, t.line);
      e->name = t.text;
      return e;
    }
    if (t.type == token_type::string) {
      std::string text;
      int line = t.line;
      while (current().type == token_type::string)
        text += next().text;
      auto e = make(expr_kind::constant, line);
      e->constant = value(std::move(text));
      return e;
    }
    if (t.type == token_type::integer || t.type == token_type::floating) {
      next();
      auto e = make(expr_kind::constant, t.line);
      e->constant = t.type == token_type::integer ? value(t.int_value) : value(t.float_value);
      return e;
    }
    if (is_op("(")) {
      next();
      expr_ptr e = parse_tuple(false, true, {}, true);
      expect_op(")");
      return e;
    }
    if (is_op("["))
      return parse_list();
    if (is_op("{"))
      return parse_dict();
    fail("unexpected " + describe(t));
  }

  bool is_tuple_end(std::initializer_list<const char*> extra_end) const {
    const token& t = current();
    if (t.type == token_type::variable_end || t.type == token_type::block_end || t.type == token_type::eof ||
        (t.type == token_type::op && t.text == ")"))
      return true;
    if (t.type == token_type::name)
      for (const char* e : extra_end)
        if (t.text == e)
          return true;
    return false;
  }

  expr_ptr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<const char*> extra_end,
                       bool explicit_parentheses) {
    int line = current().line;
    std::vector<expr_ptr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty())
        expect_op(",");
      if (is_tuple_end(extra_end))
        break;
      items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(","))
        is_tuple = true;
      else
        break;
      line = current().line;
    }
    if (!is_tuple) {
      if (!items.empty())
        return std::move(items[0]);
      if (!explicit_parentheses)
        fail("Expected an expression, got " + describe(current()));
    }
    auto e = make(expr_kind::tuple, line);
    e->items = std::move(items);
    return finish(std::move(e));
  }

  expr_ptr parse_list() {
    auto e = make(expr_kind::list, next().line);
    while (!is_op("]")) {
      if (!e->items.empty())
        expect_op(",");
      if (is_op("]"))
        break;
      e->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return finish(std::move(e));
  }

  expr_ptr parse_dict() {
    auto e = make(expr_kind::dict, next().line);
    while (!is_op("}")) {
      if (!e->items.empty())
        expect_op(",");
      if (is_op("}"))
        break;
      e->items.push_back(parse_expression(true));
      expect_op(":");
      e->items.push_back(parse_expression(true));
    }
    expect_op("}");
    return finish(std::move(e));
  }

  expr_ptr parse_postfix(expr_ptr e) {
    while (true) {
      if (is_op(".") || is_op("["))
        e = parse_subscript(std::move(e));
      else if (is_op("("))
        e = parse_call(std::move(e));
      else
        return e;
    }
  }

  expr_ptr parse_filter_expr(expr_ptr e) {
    while (true) {
      if (is_op("|"))
        e = parse_filter(std::move(e), false);
      else if (is_name("is"))
        e = parse_test(std::move(e));
      else if (is_op("("))
        e = parse_call(std::move(e));
      else
        return e;
    }
  }

  expr_ptr parse_subscript(expr_ptr object) {
    const token& t = next();
    if (t.text == ".") {
      const token& attr = current();
      if (attr.type == token_type::name) {
        next();
        auto e = make(expr_kind::getattr, t.line);
        e->first = std::move(object);
        e->name = attr.text;
        return finish(std::move(e));
      }
      if (attr.type != token_type::integer)
        fail("expected name or number");
      next();
      auto index = make(expr_kind::constant, attr.line);
      index->constant = value(attr.int_value);
      auto e = make(expr_kind::getitem, t.line);
      e->first = std::move(object);
      e->second = std::move(index);
      return finish(std::move(e));
    }
    std::vector<expr_ptr> args;
    while (!is_op("]")) {
      if (!args.empty())
        expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto e = make(expr_kind::getitem, t.line);
    e->first = std::move(object);
    if (args.size() == 1) {
      e->second = std::move(args[0]);
    } else {
      auto tuple = make(expr_kind::tuple, t.line);
      tuple->items = std::move(args);
      e->second = finish(std::move(tuple));
    }
    return finish(std::move(e));
  }

  expr_ptr parse_subscribed() {
    int line = current().line;
    expr_ptr start;
    if (is_op(":")) {
      next();
    } else {
      expr_ptr e = parse_expression(true);
      if (!is_op(":"))
        return e;
      next();
      start = std::move(e);
    }
    auto slice = make(expr_kind::slice, line);
    slice->first = std::move(start);
    if (!is_op(":") && !is_op("]") && !is_op(","))
      slice->second = parse_expression(true);
    if (skip_op(":"))
      if (!is_op("]") && !is_op(","))
        slice->third = parse_expression(true);
    return finish(std::move(slice));
  }

  void parse_call_args(call_syntax& args) {
    const token& open = current();
    expect_op("(");
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok)
        fail("invalid syntax for function call expression", open);
    };
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")"))
          break;
      }
      if (is_op("*")) {
        ensure(!args.star_args && !args.star_kwargs);
        next();
        args.star_args = parse_expression(true);
      } else if (is_op("**")) {
        ensure(!args.star_kwargs);
        next();
        args.star_kwargs = parse_expression(true);
      } else if (current().type == token_type::name && look().type == token_type::op && look().text == "=") {
        ensure(!args.star_kwargs);
        std::string key = next().text;
        next();
        args.named.emplace_back(std::move(key), parse_expression(true));
      } else {
        ensure(!args.star_args && !args.star_kwargs && args.named.empty());
        args.positional.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  expr_ptr parse_call(expr_ptr callee) {
    auto e = make(expr_kind::call, current().line);
    e->first = std::move(callee);
    parse_call_args(e->args);
    return finish(std::move(e));
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (skip_op("."))
      name.append(".").append(expect_name());
    return name;
  }

  void check_known(bool is_filter, const std::string& name, const token& at) {
    bool known = is_filter ? is_filter_name(name) : is_test_name(name);
    // jinja2 rejects unknown filters and tests when it compiles the template, except inside
    // an `if` or an inline if, where it waits until they are used.
    if (!known && soft_depth_ == 0)
      fail(std::string("No ") + (is_filter ? "filter" : "test") + " named '" + name + "'." +
               (is_jinja_builtin(is_filter, name) ? " (a jinja2 builtin that actorserve does not implement)" : ""),
           at);
  }

  expr_ptr parse_filter(expr_ptr subject, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline)
        next();
      const token& at = current();
      auto e = make(expr_kind::filter, at.line);
      e->name = dotted_name();
      check_known(true, e->name, at);
      if (is_op("("))
        parse_call_args(e->args);
      e->first = std::move(subject);
      subject = finish(std::move(e));
      start_inline = false;
    }
    return subject;
  }

  expr_ptr parse_test(expr_ptr subject) {
    const token& is_token = next();
    bool negated = skip_name("not");
    const token& at = current();
    auto e = make(expr_kind::test, is_token.line);
    e->name = dotted_name();
    check_known(false, e->name, at);
    const token& t = current();
    if (is_op("(")) {
      parse_call_args(e->args);
    } else if ((t.type == token_type::name || t.type == token_type::string || t.type == token_type::integer ||
                t.type == token_type::floating || is_op("(") || is_op("[") || is_op("{")) &&
               !(is_name("else") || is_name("or") || is_name("and"))) {
      if (is_name("is"))
        fail("You cannot chain multiple tests with is");
      e->args.positional.push_back(parse_postfix(parse_primary()));
    }
    e->first = std::move(subject);
    expr_ptr result = finish(std::move(e));
    if (negated) {
      auto n = make(expr_kind::logical_not, is_token.line);
      n->first = std::move(result);
      result = finish(std::move(n));
    }
    return result;
  }

  std::vector<token> tokens_;
  std::size_t pos_ = 0;
  int max_depth_;
  int depth_ = 0;
  int soft_depth_ = 0; // inside if statements / inline ifs (jinja2's "soft" frames)
  int loop_depth_ = 0; // for loops enclosing the current statement, within one frame
};

} // namespace

node_list parse_template(std::string_view source, int max_depth) {
  return parser(tokenize(source), max_depth).parse();
}

} // namespace actorserve::chat_template

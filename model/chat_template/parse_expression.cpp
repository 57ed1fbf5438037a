// Expressions of the chat-template parser: jinja2's precedence, from inline if down to
// primaries, postfix subscripts and calls, filters and tests.
#include "model/chat_template/builtins.hpp"
#include "model/chat_template/parser_impl.hpp"

namespace actorserve::chat_template::detail {

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

} // namespace

expr_ptr parser::parse_expression(bool with_condexpr) {
  depth_guard guard(*this);
  return with_condexpr ? parse_condexpr() : parse_or();
}

expr_ptr parser::parse_condexpr() {
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

expr_ptr parser::parse_or() {
  expr_ptr left = parse_and();
  while (is_name("or")) {
    auto e = make(expr_kind::logical_or, next().line);
    e->first = std::move(left);
    e->second = parse_and();
    left = finish(std::move(e));
  }
  return left;
}

expr_ptr parser::parse_and() {
  expr_ptr left = parse_not();
  while (is_name("and")) {
    auto e = make(expr_kind::logical_and, next().line);
    e->first = std::move(left);
    e->second = parse_not();
    left = finish(std::move(e));
  }
  return left;
}

expr_ptr parser::parse_not() {
  if (is_name("not")) {
    depth_guard guard(*this);
    auto e = make(expr_kind::logical_not, next().line);
    e->first = parse_not();
    return finish(std::move(e));
  }
  return parse_compare();
}

expr_ptr parser::parse_compare() {
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

expr_ptr parser::binary(binary_op op, expr_ptr left, expr_ptr right, int line) {
  auto e = make(expr_kind::binary, line);
  e->op = op;
  e->first = std::move(left);
  e->second = std::move(right);
  return finish(std::move(e));
}

expr_ptr parser::parse_math1() {
  expr_ptr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    const token& t = next();
    left = binary(t.text == "+" ? binary_op::add : binary_op::sub, std::move(left), parse_concat(), t.line);
  }
  return left;
}

expr_ptr parser::parse_concat() {
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

expr_ptr parser::parse_math2() {
  expr_ptr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const token& t = next();
    binary_op op = t.text == "*" ? binary_op::mul : t.text == "/" ? binary_op::div : t.text == "//" ? binary_op::floordiv : binary_op::mod;
    left = binary(op, std::move(left), parse_pow(), t.line);
  }
  return left;
}

expr_ptr parser::parse_pow() {
  expr_ptr left = parse_unary(true);
  while (is_op("**")) {
    const token& t = next();
    left = binary(binary_op::pow, std::move(left), parse_unary(true), t.line);
  }
  return left;
}

expr_ptr parser::parse_unary(bool with_filter) {
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

expr_ptr parser::parse_primary() {
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

bool parser::is_tuple_end(std::initializer_list<const char*> extra_end) const {
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

expr_ptr parser::parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<const char*> extra_end,
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

expr_ptr parser::parse_list() {
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

expr_ptr parser::parse_dict() {
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

expr_ptr parser::parse_postfix(expr_ptr e) {
  while (true) {
    if (is_op(".") || is_op("["))
      e = parse_subscript(std::move(e));
    else if (is_op("("))
      e = parse_call(std::move(e));
    else
      return e;
  }
}

expr_ptr parser::parse_filter_expr(expr_ptr e) {
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

expr_ptr parser::parse_subscript(expr_ptr object) {
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

expr_ptr parser::parse_subscribed() {
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

void parser::parse_call_args(call_syntax& args) {
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

expr_ptr parser::parse_call(expr_ptr callee) {
  auto e = make(expr_kind::call, current().line);
  e->first = std::move(callee);
  parse_call_args(e->args);
  return finish(std::move(e));
}

std::string parser::dotted_name() {
  std::string name = expect_name();
  while (skip_op("."))
    name.append(".").append(expect_name());
  return name;
}

void parser::check_known(bool is_filter, const std::string& name, const token& at) {
  bool known = is_filter ? is_filter_name(name) : is_test_name(name);
  // jinja2 rejects unknown filters and tests when it compiles the template, except inside
  // an `if` or an inline if, where it waits until they are used.
  if (!known && soft_depth_ == 0)
    fail(std::string("No ") + (is_filter ? "filter" : "test") + " named '" + name + "'." +
             (is_jinja_builtin(is_filter, name) ? " (a jinja2 builtin that actorserve does not implement)" : ""),
         at);
}

expr_ptr parser::parse_filter(expr_ptr subject, bool start_inline) {
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

expr_ptr parser::parse_test(expr_ptr subject) {
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

} // namespace actorserve::chat_template::detail

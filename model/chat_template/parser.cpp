// Statements of the chat-template parser (expressions: parse_expression.cpp).
#include "model/chat_template/parser.hpp"

#include "model/chat_template/builtins.hpp"
#include "model/chat_template/parser_impl.hpp"

namespace actorserve::chat_template {

namespace {

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

} // namespace

namespace detail {

node_list parser::subparse(std::initializer_list<const char*> end_tokens) {
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

node_list parser::parse_statements(std::initializer_list<const char*> end_tokens, bool drop_needle) {
  skip_op(":");
  expect(token_type::block_end, "end of statement block");
  node_list body = subparse(end_tokens);
  if (drop_needle)
    next();
  return body;
}

node_ptr parser::parse_statement() {
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

node_ptr parser::parse_for() {
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

node_ptr parser::parse_if() {
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

node_ptr parser::parse_set() {
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

void parser::parse_signature(node& n) {
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

void parser::mark_special_names(node& n) {
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

node_ptr parser::parse_macro() {
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

node_ptr parser::parse_call_block() {
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

node_ptr parser::parse_filter_block() {
  auto n = std::make_unique<node>();
  n->kind = node_kind::filter_block;
  n->line = next().line;
  n->filter = parse_filter(nullptr, true);
  frame_guard frame(*this, false);
  n->body = parse_statements({"endfilter"}, true);
  return n;
}

node_ptr parser::parse_with() {
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

node_ptr parser::parse_print() {
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

node_ptr parser::parse_generation() {
  auto n = std::make_unique<node>();
  n->kind = node_kind::scope;
  n->line = next().line;
  n->body = parse_statements({"endgeneration"}, true);
  return n;
}

assign_target parser::to_target(const expr& e) {
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

assign_target parser::parse_assign_target(bool with_tuple, bool name_only, std::initializer_list<const char*> extra_end,
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

} // namespace detail

node_list parse_template(std::string_view source, int max_depth) {
  return detail::parser(tokenize(source), max_depth).parse();
}

} // namespace actorserve::chat_template

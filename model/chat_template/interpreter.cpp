#include "model/chat_template/interpreter.hpp"

#include "model/chat_template/builtins.hpp"
#include "model/chat_template/pystring.hpp"

#include <algorithm>
#include <new>
#include <optional>
#include <stdexcept>

namespace actorserve::chat_template {

void rethrow_with_line(const template_error& e, int line) {
  throw template_error(e.kind(), e.message(), line, e.column());
}

const value* frame::lookup(const std::string& name) const {
  for (const frame* f = this; f; f = f->parent_.get()) {
    auto it = f->vars_.find(name);
    if (it != f->vars_.end())
      return &it->second;
  }
  return nullptr;
}

namespace {

/// A macro (or the `caller` of a call block) closed over the scope that defined it.
class macro_callable : public callable {
public:
  macro_callable(const node& definition, std::shared_ptr<frame> closure, std::string name)
      : definition_(definition), closure_(std::move(closure)), name_(std::move(name)) {}

  value call(interpreter& in, call_arguments& args) override {
    value caller;
    for (auto it = args.named.begin(); it != args.named.end(); ++it) {
      if (it->first == "caller" && definition_.uses_caller) {
        caller = it->second;
        args.named.erase(it);
        break;
      }
    }
    return value(in.call_macro(definition_, closure_, args, caller));
  }
  std::string repr() const override { return "<Macro '" + name_ + "'>"; }
  std::string type_name() const override { return "Macro"; }

private:
  const node& definition_;
  std::shared_ptr<frame> closure_;
  std::string name_;
};

/// jinja2's LoopContext.
class loop_object : public object_value, public std::enable_shared_from_this<loop_object> {
public:
  loop_object(std::shared_ptr<value_list> items, int depth, const node& loop, std::shared_ptr<frame> outer)
      : items_(std::move(items)), depth_(depth), loop_(loop), outer_(std::move(outer)) {}

  std::size_t index0 = 0;

  value attribute(const std::string& name) override {
    auto length = static_cast<std::int64_t>(items_->size());
    auto i = static_cast<std::int64_t>(index0);
    if (name == "index") return value(i + 1);
    if (name == "index0") return value(i);
    if (name == "revindex") return value(length - i);
    if (name == "revindex0") return value(length - i - 1);
    if (name == "first") return value(i == 0);
    if (name == "last") return value(i == length - 1);
    if (name == "length") return value(length);
    if (name == "depth") return value(static_cast<std::int64_t>(depth_));
    if (name == "depth0") return value(static_cast<std::int64_t>(depth_ - 1));
    if (name == "previtem")
      return i > 0 ? (*items_)[index0 - 1] : value::undefined("there is no previous item");
    if (name == "nextitem")
      return i + 1 < length ? (*items_)[index0 + 1] : value::undefined("there is no next item");
    if (name == "cycle" || name == "changed")
      return value::make_function(std::make_shared<loop_method>(shared_from_this(), name));
    return value::undefined("'LoopContext object' has no attribute '" + name + "'");
  }
  std::string type_name() const override { return "LoopContext"; }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(index0 + 1) + "/" + std::to_string(items_->size()) + ">";
  }
  value call(interpreter& in, call_arguments& args) override {
    if (!loop_.recursive)
      throw_type_error("Tried to call non recursive loop. Maybe you forgot the 'recursive' modifier.");
    if (args.positional.size() != 1 || !args.named.empty())
      throw_type_error("loop() takes exactly one argument");
    return value(in.run_recursive_loop(loop_, outer_, args.positional[0], depth_ + 1));
  }

private:
  class loop_method : public callable {
  public:
    loop_method(std::shared_ptr<loop_object> loop, std::string name) : loop_(std::move(loop)), name_(std::move(name)) {}
    value call(interpreter&, call_arguments& args) override {
      if (name_ == "cycle") {
        if (args.positional.empty())
          throw_type_error("no items for cycling given");
        return args.positional[loop_->index0 % args.positional.size()];
      }
      value key = value::make_tuple(args.positional);
      if (loop_->has_changed_value_ && equals(loop_->changed_value_, key))
        return value(false);
      loop_->changed_value_ = key;
      loop_->has_changed_value_ = true;
      return value(true);
    }
    std::string repr() const override { return "<bound method LoopContext." + name_ + ">"; }

  private:
    std::shared_ptr<loop_object> loop_;
    std::string name_;
  };

  std::shared_ptr<value_list> items_;
  int depth_;
  const node& loop_;
  std::shared_ptr<frame> outer_;
  value changed_value_;
  bool has_changed_value_ = false;
};

/// Restores the output target when a capture ends, also on errors.
struct output_swap {
  std::string*& target;
  std::string* saved;
  output_swap(std::string*& t, std::string* replacement) : target(t), saved(t) { target = replacement; }
  ~output_swap() { target = saved; }
};

struct depth_count {
  int& depth;
  depth_count(int& d, int limit) : depth(d) {
    if (++depth > limit) {
      --depth;
      throw template_error(template_error_kind::limit,
                           "macro calls or recursive loops nested deeper than " + std::to_string(limit));
    }
  }
  ~depth_count() { --depth; }
};

} // namespace

interpreter::interpreter(const render_options& options) : options_(options) {}

interpreter::~interpreter() {
  // Macros close over the frame that holds them, and namespaces may hold themselves: clear
  // those so that no reference cycle outlives the render.
  for (auto& ns : namespaces_)
    ns->clear();
  for (auto& f : macro_frames_)
    f->clear();
}

std::string interpreter::render(const node_list& body, std::shared_ptr<frame> root) {
  std::string result;
  output_swap swap(out_, &result);
  try {
    exec(body, root);
  } catch (const std::bad_alloc&) {
    throw template_error(template_error_kind::limit, "out of memory while rendering");
  }
  return result;
}

void interpreter::charge(std::uint64_t n) {
  operations_ += n;
  if (operations_ > options_.limits.max_operations)
    throw template_error(template_error_kind::limit,
                         "template ran more than " + std::to_string(options_.limits.max_operations) + " operations");
}

void interpreter::count_iterations(std::uint64_t n) {
  iterations_ += n;
  if (iterations_ > options_.limits.max_loop_iterations)
    throw template_error(template_error_kind::limit, "loops ran more than " +
                                                          std::to_string(options_.limits.max_loop_iterations) +
                                                          " iterations");
}

void interpreter::check_string_size(std::size_t bytes) const {
  if (bytes > options_.limits.max_output_bytes)
    throw template_error(template_error_kind::limit,
                         "string or output larger than " + std::to_string(options_.limits.max_output_bytes) + " bytes");
}

void interpreter::track_namespace(const std::shared_ptr<value_dict>& attributes) { namespaces_.push_back(attributes); }

void interpreter::write(std::string_view text) {
  check_string_size(out_->size() + text.size());
  out_->append(text);
}

std::string interpreter::capture(const node_list& body, const std::shared_ptr<frame>& scope) {
  std::string captured;
  output_swap swap(out_, &captured);
  exec(body, scope);
  return captured;
}

interpreter::flow interpreter::exec(const node_list& body, const std::shared_ptr<frame>& scope) {
  for (const auto& n : body) {
    flow f = exec_node(*n, scope);
    if (f != flow::normal)
      return f;
  }
  return flow::normal;
}

interpreter::flow interpreter::exec_node(const node& n, const std::shared_ptr<frame>& scope) {
  charge();
  try {
    switch (n.kind) {
    case node_kind::text: write(n.text); break;
    case node_kind::output: write(to_str(eval(*n.value, scope))); break;
    case node_kind::if_chain:
      for (const auto& branch : n.branches)
        if (truthy(eval(*branch.test, scope)))
          return exec(branch.body, scope);
      return exec(n.else_body, scope);
    case node_kind::for_loop: exec_for(n, scope, eval(*n.value, scope), 1); break;
    case node_kind::set: bind(n.target, eval(*n.value, scope), scope); break;
    case node_kind::set_block: {
      value captured(capture(n.body, std::make_shared<frame>(scope)));
      bind(n.target, n.filter ? eval_filter(*n.filter, scope, &captured) : captured, scope);
      break;
    }
    case node_kind::macro:
      scope->set(n.name, value::make_function(std::make_shared<macro_callable>(n, scope, n.name)));
      macro_frames_.push_back(scope);
      break;
    case node_kind::call_block: {
      value caller = value::make_function(std::make_shared<macro_callable>(n, scope, "caller"));
      value callee = eval(*n.value->first, scope);
      call_arguments args;
      eval_args(n.value->args, scope, args);
      args.named.emplace_back("caller", caller);
      write(to_str(call(callee, args)));
      break;
    }
    case node_kind::filter_block: {
      value captured(capture(n.body, std::make_shared<frame>(scope)));
      write(to_str(eval_filter(*n.filter, scope, &captured)));
      break;
    }
    case node_kind::with_block: {
      auto inner = std::make_shared<frame>(scope);
      for (const auto& [target, e] : n.bindings)
        bind(target, eval(*e, scope), inner);
      return exec(n.body, inner);
    }
    case node_kind::scope: return exec(n.body, std::make_shared<frame>(scope));
    case node_kind::loop_break: return flow::loop_break;
    case node_kind::loop_continue: return flow::loop_continue;
    }
  } catch (const template_error& e) {
    if (e.line() == 0)
      rethrow_with_line(e, n.line);
    throw;
  } catch (const std::invalid_argument& e) {
    throw template_error(template_error_kind::type, e.what(), n.line);
  } catch (const std::out_of_range& e) { // std::stoll on a huge attribute index, and the like
    throw template_error(template_error_kind::type, std::string("number out of range: ").append(e.what()), n.line);
  } catch (const std::length_error& e) {
    throw template_error(template_error_kind::limit, e.what(), n.line);
  }
  return flow::normal;
}

void interpreter::exec_for(const node& n, const std::shared_ptr<frame>& scope, const value& iterable, int depth) {
  auto items = std::make_shared<value_list>(iterate(iterable));
  if (n.condition) {
    value_list kept;
    for (auto& item : *items) {
      count_iterations();
      auto test_scope = std::make_shared<frame>(scope);
      bind(n.target, item, test_scope);
      if (truthy(eval(*n.condition, test_scope)))
        kept.push_back(std::move(item));
    }
    *items = std::move(kept);
  }
  if (items->empty()) {
    exec(n.else_body, std::make_shared<frame>(scope));
    return;
  }
  auto loop = std::make_shared<loop_object>(items, depth, n, scope);
  value loop_value = value::make_object(loop);
  for (std::size_t i = 0; i < items->size(); ++i) {
    count_iterations();
    loop->index0 = i;
    auto body_scope = std::make_shared<frame>(scope);
    bind(n.target, (*items)[i], body_scope);
    body_scope->set("loop", loop_value);
    if (exec(n.body, body_scope) == flow::loop_break)
      break;
  }
}

std::string interpreter::run_recursive_loop(const node& loop, const std::shared_ptr<frame>& outer,
                                             const value& iterable, int depth) {
  depth_count guard(recursion_depth_, options_.limits.max_recursion_depth);
  std::string captured;
  output_swap swap(out_, &captured);
  exec_for(loop, outer, iterable, depth);
  return captured;
}

std::string interpreter::call_macro(const node& definition, const std::shared_ptr<frame>& closure,
                                    call_arguments& args, const value& caller) {
  depth_count guard(recursion_depth_, options_.limits.max_recursion_depth);
  auto scope = std::make_shared<frame>(closure);
  const std::string name = definition.kind == node_kind::macro ? definition.name : "caller";
  const auto& params = definition.params;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    auto named = std::find_if(args.named.begin(), args.named.end(), [&](const auto& kv) { return kv.first == p.name; });
    if (i < args.positional.size()) {
      if (named != args.named.end())
        throw_type_error("macro '" + name + "' got multiple values for argument '" + p.name + "'");
      scope->set(p.name, args.positional[i]);
    } else if (named != args.named.end()) {
      scope->set(p.name, std::move(named->second));
      args.named.erase(named);
    } else if (p.default_value) {
      scope->set(p.name, eval(*p.default_value, scope));
    } else {
      scope->set(p.name, value::undefined("parameter '" + p.name + "' was not provided"));
    }
  }
  value_list extra;
  for (std::size_t i = params.size(); i < args.positional.size(); ++i)
    extra.push_back(args.positional[i]);
  if (!extra.empty() && !definition.uses_varargs)
    throw_type_error("macro '" + name + "' takes not more than " + std::to_string(params.size()) + " argument(s)");
  if (definition.uses_varargs)
    scope->set("varargs", value::make_tuple(std::move(extra)));
  auto kwargs = std::make_shared<value_dict>();
  for (auto& [key, v] : args.named) {
    if (!definition.uses_kwargs)
      throw_type_error("macro '" + name + "' takes no keyword argument '" + key + "'");
    kwargs->set(value(key), v);
  }
  if (definition.uses_kwargs)
    scope->set("kwargs", value::make_dict(kwargs));
  if (definition.uses_caller)
    scope->set("caller", caller.is_undefined() ? value::undefined("No caller defined") : caller);
  return capture(definition.body, scope);
}

void interpreter::bind(const assign_target& target, const value& v, const std::shared_ptr<frame>& scope) {
  switch (target.kind) {
  case assign_target::target_kind::name: scope->set(target.name, v); return;
  case assign_target::target_kind::namespace_attribute: {
    value ns = lookup(target.name, scope);
    if (!ns.is_namespace())
      throw_type_error("cannot assign attribute on non-namespace object");
    ns.dict().set(value(target.attribute), v);
    return;
  }
  case assign_target::target_kind::tuple: {
    value_list items = iterate(v);
    std::size_t want = target.elements.size();
    if (items.size() < want)
      throw_type_error("not enough values to unpack (expected " + std::to_string(want) + ", got " +
                       std::to_string(items.size()) + ")");
    if (items.size() > want)
      throw_type_error("too many values to unpack (expected " + std::to_string(want) + ")");
    for (std::size_t i = 0; i < want; ++i)
      bind(target.elements[i], items[i], scope);
    return;
  }
  }
}

value_list interpreter::iterate(const value& v) {
  switch (v.kind()) {
  case value_kind::undefined: return {};
  case value_kind::list:
  case value_kind::tuple: charge(v.items().size()); return v.items();
  case value_kind::dict: {
    value_list keys;
    for (const auto& [key, _] : v.dict().entries())
      keys.push_back(key);
    charge(keys.size());
    return keys;
  }
  case value_kind::string: {
    value_list chars;
    auto offsets = py::code_point_offsets(v.text());
    for (std::size_t i = 0; i + 1 < offsets.size(); ++i)
      chars.emplace_back(v.text().substr(offsets[i], offsets[i + 1] - offsets[i]));
    charge(chars.size());
    return chars;
  }
  case value_kind::iterator: {
    auto& it = v.iterator();
    value_list rest(it.items->begin() + static_cast<std::ptrdiff_t>(it.position), it.items->end());
    it.position = it.items->size();
    charge(rest.size());
    return rest;
  }
  default: throw_type_error("'" + type_name(v) + "' object is not iterable");
  }
}

value interpreter::lookup(const std::string& name, const std::shared_ptr<frame>& scope) {
  if (const value* v = scope->lookup(name))
    return *v;
  if (const value* g = find_global(name))
    return *g;
  return value::undefined("'" + name + "' is undefined");
}

value interpreter::get_attribute(const value& object, const std::string& name) {
  switch (object.kind()) {
  case value_kind::undefined: throw_undefined_error(object);
  case value_kind::dict: {
    value method;
    if (find_method(object, name, method))
      return method;
    if (const value* v = object.dict().find_string(name))
      return *v;
    break;
  }
  case value_kind::namespace_object:
    if (const value* v = object.dict().find_string(name))
      return *v;
    break;
  case value_kind::object: {
    value v = object.object().attribute(name);
    return v;
  }
  default: {
    value method;
    if (find_method(object, name, method))
      return method;
  }
  }
  return value::undefined(object_description(object) + " has no attribute '" + name + "'");
}

value interpreter::get_item(const value& object, const value& key) {
  if (object.is_undefined())
    throw_undefined_error(object);
  bool integer_key = key.is_int() || key.is_bool();
  if (integer_key && (object.is_sequence() || object.is_string())) {
    std::int64_t i = key.is_bool() ? key.as_bool() : key.as_int();
    if (object.is_string()) {
      auto offsets = py::code_point_offsets(object.text());
      auto n = static_cast<std::int64_t>(offsets.size()) - 1;
      if (i < 0)
        i += n;
      if (i >= 0 && i < n)
        return value(object.text().substr(offsets[static_cast<std::size_t>(i)],
                                          offsets[static_cast<std::size_t>(i) + 1] - offsets[static_cast<std::size_t>(i)]));
    } else {
      auto n = static_cast<std::int64_t>(object.items().size());
      if (i < 0)
        i += n;
      if (i >= 0 && i < n)
        return object.items()[static_cast<std::size_t>(i)];
    }
    return value::undefined(object_type_text(object) + " has no element " + to_repr(key));
  }
  if (object.is_dict() && !key.is_list() && !key.is_dict()) {
    if (const value* v = object.dict().find(key))
      return *v;
  }
  if (key.is_string())
    return get_attribute(object, key.text());
  return value::undefined(object_type_text(object) + " has no element " + to_repr(key));
}

value interpreter::call(const value& callee, call_arguments& args) {
  switch (callee.kind()) {
  case value_kind::function: return callee.function().call(*this, args);
  case value_kind::object: return callee.object().call(*this, args);
  case value_kind::undefined: throw_undefined_error(callee);
  default: throw_type_error("'" + type_name(callee) + "' object is not callable");
  }
}

void interpreter::eval_args(const call_syntax& syntax, const std::shared_ptr<frame>& scope, call_arguments& out) {
  for (const auto& e : syntax.positional)
    out.positional.push_back(eval(*e, scope));
  if (syntax.star_args)
    for (auto& v : iterate(eval(*syntax.star_args, scope)))
      out.positional.push_back(std::move(v));
  for (const auto& [key, e] : syntax.named)
    out.named.emplace_back(key, eval(*e, scope));
  if (syntax.star_kwargs) {
    value mapping = eval(*syntax.star_kwargs, scope);
    if (!mapping.is_dict())
      throw_type_error("argument after ** must be a mapping, not " + type_name(mapping));
    for (const auto& [key, v] : mapping.dict().entries()) {
      if (!key.is_string())
        throw_type_error("keywords must be strings");
      out.named.emplace_back(key.text(), v);
    }
  }
}

value interpreter::eval_filter(const expr& e, const std::shared_ptr<frame>& scope, const value* block_input) {
  value subject;
  if (!e.first)
    subject = block_input ? *block_input : value();
  else if (e.first->kind == expr_kind::filter)
    subject = eval_filter(*e.first, scope, block_input);
  else
    subject = eval(*e.first, scope);
  call_arguments args;
  eval_args(e.args, scope, args);
  return apply_filter(*this, e.name, subject, args);
}

value interpreter::eval_slice(const value& object, const expr& slice, const std::shared_ptr<frame>& scope) {
  auto bound = [&](const expr_ptr& part) -> std::optional<std::int64_t> {
    if (!part)
      return std::nullopt;
    value v = eval(*part, scope);
    if (v.is_none())
      return std::nullopt;
    if (!v.is_int() && !v.is_bool())
      throw_type_error("slice indices must be integers or None or have an __index__ method");
    return v.is_bool() ? static_cast<std::int64_t>(v.as_bool()) : v.as_int();
  };
  auto start = bound(slice.first), stop = bound(slice.second), step_opt = bound(slice.third);
  if (object.is_undefined())
    throw_undefined_error(object);
  std::int64_t step = step_opt.value_or(1);
  if (step == 0)
    throw_type_error("slice step cannot be zero");
  if (!object.is_sequence() && !object.is_string())
    return value::undefined(object_type_text(object) + " has no element slice");
  std::vector<std::size_t> offsets;
  std::int64_t n;
  if (object.is_string()) {
    offsets = py::code_point_offsets(object.text());
    n = static_cast<std::int64_t>(offsets.size()) - 1;
  } else {
    n = static_cast<std::int64_t>(object.items().size());
  }
  auto adjust = [&](std::optional<std::int64_t> v, std::int64_t fallback) {
    if (!v)
      return fallback;
    std::int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0)
        i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  std::int64_t lo = adjust(start, step < 0 ? n - 1 : 0);
  std::int64_t hi = adjust(stop, step < 0 ? -1 : n);
  std::vector<std::int64_t> picks;
  for (std::int64_t i = lo; step > 0 ? i < hi : i > hi; i += step)
    picks.push_back(i);
  charge(picks.size());
  if (object.is_string()) {
    std::string out;
    for (auto i : picks)
      out.append(object.text(), offsets[static_cast<std::size_t>(i)],
                 offsets[static_cast<std::size_t>(i) + 1] - offsets[static_cast<std::size_t>(i)]);
    return value(std::move(out));
  }
  value_list out;
  out.reserve(picks.size());
  for (auto i : picks)
    out.push_back(object.items()[static_cast<std::size_t>(i)]);
  return object.is_tuple() ? value::make_tuple(std::move(out)) : value::make_list(std::move(out));
}

bool interpreter::compare_values(compare_op op, const value& left, const value& right) {
  switch (op) {
  case compare_op::eq: return equals(left, right);
  case compare_op::ne: return !equals(left, right);
  case compare_op::in: return contains(*this, right, left);
  case compare_op::not_in: return !contains(*this, right, left);
  default: break;
  }
  if (left.is_undefined())
    throw_undefined_error(left);
  if (right.is_undefined())
    throw_undefined_error(right);
  const char* symbol = op == compare_op::lt ? "<" : op == compare_op::le ? "<=" : op == compare_op::gt ? ">" : ">=";
  int c = compare(left, right, symbol);
  switch (op) {
  case compare_op::lt: return c < 0;
  case compare_op::le: return c <= 0;
  case compare_op::gt: return c > 0;
  default: return c >= 0;
  }
}

value interpreter::eval(const expr& e, const std::shared_ptr<frame>& scope) {
  charge();
  try {
    switch (e.kind) {
    case expr_kind::constant: return e.constant;
    case expr_kind::name: return lookup(e.name, scope);
    case expr_kind::list:
    case expr_kind::tuple: {
      value_list items;
      items.reserve(e.items.size());
      for (const auto& item : e.items)
        items.push_back(eval(*item, scope));
      return e.kind == expr_kind::list ? value::make_list(std::move(items)) : value::make_tuple(std::move(items));
    }
    case expr_kind::dict: {
      auto dict = std::make_shared<value_dict>();
      for (std::size_t i = 0; i + 1 < e.items.size(); i += 2) {
        value key = eval(*e.items[i], scope);
        dict->set(key, eval(*e.items[i + 1], scope));
      }
      return value::make_dict(std::move(dict));
    }
    case expr_kind::getattr: return get_attribute(eval(*e.first, scope), e.name);
    case expr_kind::getitem: {
      value object = eval(*e.first, scope);
      if (e.second->kind == expr_kind::slice)
        return eval_slice(object, *e.second, scope);
      return get_item(object, eval(*e.second, scope));
    }
    case expr_kind::slice: throw_type_error("slice outside of a subscript");
    case expr_kind::call: {
      value callee = eval(*e.first, scope);
      call_arguments args;
      eval_args(e.args, scope, args);
      return call(callee, args);
    }
    case expr_kind::filter: return eval_filter(e, scope, nullptr);
    case expr_kind::test: {
      value subject = eval(*e.first, scope);
      call_arguments args;
      eval_args(e.args, scope, args);
      return value(apply_test(*this, e.name, subject, args));
    }
    case expr_kind::negate:
    case expr_kind::positive: return negate(eval(*e.first, scope), e.kind == expr_kind::negate);
    case expr_kind::logical_not: return value(!truthy(eval(*e.first, scope)));
    case expr_kind::logical_and: {
      value left = eval(*e.first, scope);
      return truthy(left) ? eval(*e.second, scope) : left;
    }
    case expr_kind::logical_or: {
      value left = eval(*e.first, scope);
      return truthy(left) ? left : eval(*e.second, scope);
    }
    case expr_kind::binary: {
      value left = eval(*e.first, scope);
      value right = eval(*e.second, scope);
      return binary_operation(*this, e.op, left, right);
    }
    case expr_kind::compare: {
      value left = eval(*e.first, scope);
      for (std::size_t i = 0; i < e.items.size(); ++i) {
        value right = eval(*e.items[i], scope);
        if (!compare_values(e.compare_ops[i], left, right))
          return value(false);
        left = std::move(right);
      }
      return value(true);
    }
    case expr_kind::concat: {
      std::string out;
      for (const auto& item : e.items) {
        out += to_str(eval(*item, scope));
        check_string_size(out.size());
      }
      return value(std::move(out));
    }
    case expr_kind::conditional:
      if (truthy(eval(*e.second, scope)))
        return eval(*e.first, scope);
      if (e.third)
        return eval(*e.third, scope);
      return value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined.");
    }
  } catch (const template_error& err) {
    if (err.line() == 0)
      rethrow_with_line(err, e.line);
    throw;
  }
  return value();
}

} // namespace actorserve::chat_template

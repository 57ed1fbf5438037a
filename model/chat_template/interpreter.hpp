#pragma once
// Renders a parsed template: jinja2's scoping (a frame per loop iteration and per macro
// call; `if` adds none), Undefined semantics, the transformers sandbox (no mutation of
// lists and dicts except through namespace()), and the limits that keep a hostile or broken
// template from running away.

#include "model/chat_template/ast.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

namespace actorserve::chat_template {

struct template_limits {
  std::size_t max_template_bytes = 1 << 20;       // template source size
  std::size_t max_output_bytes = 32 << 20;        // rendered text, and any single string value
  std::uint64_t max_loop_iterations = 1'000'000;  // summed over every loop of one render
  int max_recursion_depth = 64;                   // nested macro calls and recursive loops
  int max_nesting_depth = 128;                    // nesting of blocks and expressions in the source
  std::uint64_t max_operations = 50'000'000;      // evaluated expressions + items touched by filters
};

struct render_options {
  template_limits limits;
  /// The clock behind strftime_now (transformers uses the local time of datetime.now()).
  std::function<std::chrono::system_clock::time_point()> now;
};

/// Variables of one scope; lookups fall through to the enclosing scope.
class frame {
public:
  explicit frame(std::shared_ptr<frame> parent = nullptr) : parent_(std::move(parent)) {}
  const value* lookup(const std::string& name) const;
  void set(const std::string& name, value v) { vars_[name] = std::move(v); }
  void clear() { vars_.clear(); }

private:
  std::unordered_map<std::string, value> vars_;
  std::shared_ptr<frame> parent_;
};

class interpreter {
public:
  explicit interpreter(const render_options& options);
  ~interpreter();

  /// Renders `body` with `root` as the template's top-level scope.
  std::string render(const node_list& body, std::shared_ptr<frame> root);

  // ---- services for builtins (filters, tests, methods, globals) ----
  value get_attribute(const value& object, const std::string& name);
  value get_item(const value& object, const value& key);
  value call(const value& callee, call_arguments& args);
  /// Items of an iterable in iteration order (consumes an iterator); type error otherwise.
  value_list iterate(const value& iterable);
  /// Charges `n` operations against the budget.
  void charge(std::uint64_t n = 1);
  /// Refuses strings past the output limit before they are built.
  void check_string_size(std::size_t bytes) const;
  /// Counts one loop iteration (also used for list repetition and ranges).
  void count_iterations(std::uint64_t n = 1);
  const render_options& options() const { return options_; }
  /// Registers a namespace so that reference cycles through it are broken after rendering.
  void track_namespace(const std::shared_ptr<value_dict>& attributes);
  /// Renders a macro or caller body into a string in a new scope.
  std::string call_macro(const node& definition, const std::shared_ptr<frame>& closure, call_arguments& args,
                         const value& caller);
  /// Renders a recursive loop's body for `loop(items)`.
  std::string run_recursive_loop(const node& loop, const std::shared_ptr<frame>& outer, const value& iterable,
                                 int depth);

private:
  enum class flow { normal, loop_break, loop_continue };

  flow exec(const node_list& body, const std::shared_ptr<frame>& scope);
  flow exec_node(const node& n, const std::shared_ptr<frame>& scope);
  void exec_for(const node& n, const std::shared_ptr<frame>& scope, const value& iterable, int depth);
  void bind(const assign_target& target, const value& v, const std::shared_ptr<frame>& scope);
  std::string capture(const node_list& body, const std::shared_ptr<frame>& scope);
  void write(std::string_view text);

  value eval(const expr& e, const std::shared_ptr<frame>& scope);
  value eval_filter(const expr& e, const std::shared_ptr<frame>& scope, const value* block_input);
  value eval_slice(const value& object, const expr& slice, const std::shared_ptr<frame>& scope);
  void eval_args(const call_syntax& syntax, const std::shared_ptr<frame>& scope, call_arguments& out);
  bool compare_values(compare_op op, const value& left, const value& right);
  value lookup(const std::string& name, const std::shared_ptr<frame>& scope);

  const render_options& options_;
  std::string* out_ = nullptr;
  std::uint64_t operations_ = 0;
  std::uint64_t iterations_ = 0;
  int recursion_depth_ = 0;
  std::vector<std::shared_ptr<value_dict>> namespaces_;
  std::vector<std::shared_ptr<frame>> macro_frames_;
};

/// Adds the line of the construct being evaluated to errors raised without one.
[[noreturn]] void rethrow_with_line(const template_error& e, int line);

} // namespace actorserve::chat_template

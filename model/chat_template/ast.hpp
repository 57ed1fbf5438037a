#pragma once
// The parsed form of a template: expressions and statements, as jinja2's parser builds them
// (same precedence, same statement set minus template inheritance and includes).

#include "model/chat_template/value.hpp"

#include <memory>
#include <string>
#include <vector>

namespace actorserve::chat_template {

struct expr;
using expr_ptr = std::unique_ptr<expr>;

enum class expr_kind {
  constant,    // constant
  name,        // name
  list,        // items
  tuple,       // items
  dict,        // items: key, value, key, value ...
  getattr,     // first.name
  getitem,     // first[second]
  slice,       // first:second:third (each may be null); only inside getitem
  call,        // first(args)
  filter,      // first|name(args); first is null inside filter blocks and `set x | f` blocks
  test,        // first is name(args)
  negate,      // -first
  positive,    // +first
  logical_not, // not first
  logical_and, // first and second
  logical_or,  // first or second
  binary,      // first op second
  compare,     // first op[0] items[0] op[1] items[1] ... (Python comparison chains)
  concat,      // items[0] ~ items[1] ~ ...
  conditional, // first if second else third (third may be null)
};

enum class binary_op { add, sub, mul, div, floordiv, mod, pow };
enum class compare_op { eq, ne, lt, le, gt, ge, in, not_in };

struct call_syntax {
  std::vector<expr_ptr> positional;
  std::vector<std::pair<std::string, expr_ptr>> named;
  expr_ptr star_args;   // *iterable
  expr_ptr star_kwargs; // **mapping
};

struct expr {
  expr_kind kind = expr_kind::constant;
  int line = 0;
  int depth = 1; // height of this subtree, bounded by the parser
  value constant;
  std::string name;
  binary_op op = binary_op::add;
  std::vector<compare_op> compare_ops;
  std::vector<expr_ptr> items;
  expr_ptr first, second, third;
  call_syntax args;
};

struct node;
using node_ptr = std::unique_ptr<node>;
using node_list = std::vector<node_ptr>;

struct assign_target {
  enum class target_kind { name, tuple, namespace_attribute };
  target_kind kind = target_kind::name;
  std::string name;                    // variable, or the namespace variable
  std::string attribute;               // namespace attribute
  std::vector<assign_target> elements; // tuple unpacking
};

struct macro_param {
  std::string name;
  expr_ptr default_value; // null: required (undefined when not passed, as jinja2)
};

enum class node_kind {
  text,         // text
  output,       // {{ value }}
  if_chain,     // branches, else_body
  for_loop,     // target in value [if condition] [recursive]: body [else else_body]
  set,          // target = value
  set_block,    // {% set target [| filter] %}body{% endset %}
  macro,        // name(params): body
  call_block,   // {% call(params) value %}body{% endcall %}
  filter_block, // {% filter filter %}body{% endfilter %}
  with_block,   // {% with bindings %}body{% endwith %}
  scope,        // body rendered as is ({% generation %} of transformers)
  loop_break,
  loop_continue,
};

struct if_branch {
  expr_ptr test;
  node_list body;
};

struct node {
  node_kind kind = node_kind::text;
  int line = 0;
  std::string text;
  expr_ptr value;
  assign_target target;
  std::vector<if_branch> branches;
  node_list body, else_body;
  expr_ptr condition;
  bool recursive = false;
  expr_ptr filter;
  std::string name;
  std::vector<macro_param> params;
  // Which special names a macro body reads: extra arguments are errors unless it does.
  bool uses_varargs = false, uses_kwargs = false, uses_caller = false;
  std::vector<std::pair<assign_target, expr_ptr>> bindings;
};

} // namespace actorserve::chat_template

// Python's arithmetic, `in` and unary minus on template values (`%` on strings: format.cpp).
#include "model/chat_template/builtins.hpp"
#include "model/chat_template/interpreter.hpp"
#include "model/chat_template/pystring.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace actorserve::chat_template {

namespace {

std::int64_t int_of(const value& v) { return v.is_bool() ? static_cast<std::int64_t>(v.as_bool()) : v.as_int(); }
bool is_integral(const value& v) { return v.is_int() || v.is_bool(); }

[[noreturn]] void unsupported(const char* op, const value& l, const value& r) {
  throw_type_error(std::string("unsupported operand type(s) for ") + op + ": '" + type_name(l) + "' and '" +
                   type_name(r) + "'");
}

[[noreturn]] void overflow() { throw_type_error("integer overflow: actorserve's templates compute with 64-bit integers"); }

std::int64_t checked_add(std::int64_t a, std::int64_t b) {
  std::int64_t out;
  if (__builtin_add_overflow(a, b, &out))
    overflow();
  return out;
}
std::int64_t checked_sub(std::int64_t a, std::int64_t b) {
  std::int64_t out;
  if (__builtin_sub_overflow(a, b, &out))
    overflow();
  return out;
}
std::int64_t checked_mul(std::int64_t a, std::int64_t b) {
  std::int64_t out;
  if (__builtin_mul_overflow(a, b, &out))
    overflow();
  return out;
}

double float_mod(double x, double y) {
  double mod = std::fmod(x, y);
  if (mod != 0.0) {
    if ((y < 0) != (mod < 0))
      mod += y;
  } else {
    mod = std::copysign(0.0, y);
  }
  return mod;
}

/// CPython's float floor division (float_floor_div), exact in the corner cases.
double float_floordiv(double x, double y) {
  double mod = std::fmod(x, y);
  double div = (x - mod) / y;
  if (mod != 0.0 && ((y < 0) != (mod < 0)))
    div -= 1.0;
  if (div != 0.0) {
    double floored = std::floor(div);
    if (div - floored > 0.5)
      floored += 1.0;
    return floored;
  }
  return std::copysign(0.0, x / y);
}

value repeat(interpreter& in, const value& seq, std::int64_t times) {
  if (times < 0)
    times = 0;
  if (seq.is_string()) {
    in.check_string_size(seq.text().size() * static_cast<std::size_t>(times));
    std::string out;
    out.reserve(seq.text().size() * static_cast<std::size_t>(times));
    for (std::int64_t i = 0; i < times; ++i)
      out += seq.text();
    return value(std::move(out));
  }
  in.count_iterations(seq.items().size() * static_cast<std::uint64_t>(times));
  value_list out;
  for (std::int64_t i = 0; i < times; ++i)
    out.insert(out.end(), seq.items().begin(), seq.items().end());
  return seq.is_tuple() ? value::make_tuple(std::move(out)) : value::make_list(std::move(out));
}

value power(const value& l, const value& r) {
  if (is_integral(l) && is_integral(r) && int_of(r) >= 0) {
    std::int64_t base = int_of(l), exponent = int_of(r), result = 1;
    while (exponent > 0) {
      if (exponent & 1)
        result = checked_mul(result, base);
      exponent >>= 1;
      if (exponent > 0)
        base = checked_mul(base, base);
    }
    return value(result);
  }
  double x = l.to_double(), y = r.to_double();
  if (x == 0.0 && y < 0)
    throw_type_error("0.0 cannot be raised to a negative power");
  if (x < 0 && y != std::floor(y))
    throw_type_error("negative number cannot be raised to a fractional power (Python would return a complex number)");
  return value(std::pow(x, y));
}

} // namespace

std::int64_t to_index(const value& v, const char* what) {
  if (is_integral(v))
    return int_of(v);
  std::string message = std::string("'").append(type_name(v)).append("' object cannot be interpreted as an integer");
  if (what)
    message.append(" (").append(what).append(")");
  throw_type_error(std::move(message));
}

value binary_operation(interpreter& in, binary_op op, const value& l, const value& r) {
  if (l.is_undefined())
    throw_undefined_error(l);
  if (r.is_undefined())
    throw_undefined_error(r);
  bool numbers = l.is_number() && r.is_number();
  bool integers = is_integral(l) && is_integral(r);
  switch (op) {
  case binary_op::add:
    if (integers)
      return value(checked_add(int_of(l), int_of(r)));
    if (numbers)
      return value(l.to_double() + r.to_double());
    if (l.is_string() && r.is_string()) {
      in.check_string_size(l.text().size() + r.text().size());
      return value(l.text() + r.text());
    }
    if ((l.is_list() && r.is_list()) || (l.is_tuple() && r.is_tuple())) {
      in.count_iterations(l.items().size() + r.items().size());
      value_list out = l.items();
      out.insert(out.end(), r.items().begin(), r.items().end());
      return l.is_list() ? value::make_list(std::move(out)) : value::make_tuple(std::move(out));
    }
    if (l.is_string() || l.is_list() || l.is_tuple())
      throw_type_error("can only concatenate " + type_name(l) + " (not \"" + type_name(r) + "\") to " + type_name(l));
    unsupported("+", l, r);
  case binary_op::sub:
    if (integers)
      return value(checked_sub(int_of(l), int_of(r)));
    if (numbers)
      return value(l.to_double() - r.to_double());
    unsupported("-", l, r);
  case binary_op::mul:
    if (integers)
      return value(checked_mul(int_of(l), int_of(r)));
    if (numbers)
      return value(l.to_double() * r.to_double());
    if ((l.is_string() || l.is_sequence()) && is_integral(r))
      return repeat(in, l, int_of(r));
    if ((r.is_string() || r.is_sequence()) && is_integral(l))
      return repeat(in, r, int_of(l));
    if (l.is_string() || l.is_sequence() || r.is_string() || r.is_sequence())
      throw_type_error("can't multiply sequence by non-int of type '" +
                       type_name(l.is_string() || l.is_sequence() ? r : l) + "'");
    unsupported("*", l, r);
  case binary_op::div:
    if (!numbers)
      unsupported("/", l, r);
    if (r.to_double() == 0.0)
      throw_type_error("division by zero");
    return value(l.to_double() / r.to_double());
  case binary_op::floordiv:
    if (integers) {
      std::int64_t a = int_of(l), b = int_of(r);
      if (b == 0)
        throw_type_error("integer division or modulo by zero");
      if (a == INT64_MIN && b == -1)
        overflow();
      std::int64_t q = a / b;
      if ((a % b != 0) && ((a < 0) != (b < 0)))
        --q;
      return value(q);
    }
    if (!numbers)
      unsupported("//", l, r);
    if (r.to_double() == 0.0)
      throw_type_error("float floor division by zero");
    return value(float_floordiv(l.to_double(), r.to_double()));
  case binary_op::mod:
    if (l.is_string())
      return value(percent_format(in, l.text(), r));
    if (integers) {
      std::int64_t a = int_of(l), b = int_of(r);
      if (b == 0)
        throw_type_error("integer modulo by zero");
      if (b == -1)
        return value(std::int64_t{0});
      std::int64_t m = a % b;
      if (m != 0 && ((m < 0) != (b < 0)))
        m += b;
      return value(m);
    }
    if (!numbers)
      unsupported("%", l, r);
    if (r.to_double() == 0.0)
      throw_type_error("float modulo");
    return value(float_mod(l.to_double(), r.to_double()));
  case binary_op::pow:
    if (!numbers)
      unsupported("** or pow()", l, r);
    return power(l, r);
  }
  unsupported("?", l, r);
}

value negate(const value& v, bool minus) {
  if (v.is_undefined())
    throw_undefined_error(v);
  if (is_integral(v)) {
    std::int64_t i = int_of(v);
    if (!minus)
      return value(i);
    if (i == INT64_MIN)
      overflow();
    return value(-i);
  }
  if (v.is_float())
    return value(minus ? -v.as_float() : v.as_float());
  throw_type_error(std::string("bad operand type for unary ") + (minus ? "-" : "+") + ": '" + type_name(v) + "'");
}

bool contains(interpreter& in, const value& container, const value& item) {
  switch (container.kind()) {
  case value_kind::string:
    if (!item.is_string())
      throw_type_error("'in <string>' requires string as left operand, not " + type_name(item));
    return container.text().find(item.text()) != std::string::npos;
  case value_kind::list:
  case value_kind::tuple:
    in.charge(container.items().size());
    for (const auto& x : container.items())
      if (equals(x, item))
        return true;
    return false;
  case value_kind::dict:
    hash_key(item); // unhashable items are a TypeError, as in Python
    return container.dict().find(item) != nullptr;
  case value_kind::undefined: return false;
  case value_kind::iterator: {
    auto& it = container.iterator();
    while (it.position < it.items->size()) {
      in.charge();
      if (equals((*it.items)[it.position++], item))
        return true;
    }
    return false;
  }
  default: throw_type_error("argument of type '" + type_name(container) + "' is not iterable");
  }
}

std::vector<value> bind_arguments(const char* function, call_arguments& args, std::initializer_list<param> params) {
  std::vector<value> out(params.size());
  std::vector<bool> given(params.size(), false);
  if (args.positional.size() > params.size())
    throw_type_error(std::string(function) + "() takes at most " + std::to_string(params.size()) + " argument(s) (" +
                     std::to_string(args.positional.size()) + " given)");
  for (std::size_t i = 0; i < args.positional.size(); ++i) {
    out[i] = args.positional[i];
    given[i] = true;
  }
  for (auto& [key, v] : args.named) {
    std::size_t i = 0;
    for (const auto& p : params) {
      if (key == p.name)
        break;
      ++i;
    }
    if (i == params.size())
      throw_type_error(std::string(function) + "() got an unexpected keyword argument '" + key + "'");
    if (given[i])
      throw_type_error(std::string(function) + "() got multiple values for argument '" + key + "'");
    out[i] = v;
    given[i] = true;
  }
  std::size_t i = 0;
  for (const auto& p : params) {
    if (!given[i]) {
      if (!p.default_value)
        throw_type_error(std::string(function) + "() missing required argument '" + p.name + "'");
      out[i] = *p.default_value;
    }
    ++i;
  }
  return out;
}

} // namespace actorserve::chat_template

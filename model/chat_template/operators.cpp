// Python's arithmetic, `in`, unary minus and printf-style `%` formatting on template values.
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

// ---- printf-style formatting ----

namespace {

std::string pad(std::string text, int width, bool left_align, char fill) {
  auto n = static_cast<int>(py::code_point_count(text));
  if (n >= width)
    return text;
  std::string padding(static_cast<std::size_t>(width - n), fill);
  if (left_align)
    return text + padding;
  if (fill == '0' && !text.empty() && (text[0] == '-' || text[0] == '+' || text[0] == ' '))
    return text.substr(0, 1) + padding + text.substr(1);
  return padding + text;
}

double number_for_format(const value& v, char conversion) {
  if (v.is_number())
    return v.to_double();
  throw_type_error(std::string("%") + conversion + " format: a real number is required, not " + type_name(v));
}

} // namespace

std::string percent_format(interpreter& in, const std::string& format, const value& args) {
  const value_list* positional = nullptr;
  value_list single;
  if (args.is_tuple()) {
    positional = &args.items();
  } else {
    single.push_back(args);
    positional = &single;
  }
  std::size_t next_arg = 0;
  bool used_mapping = false;
  auto take = [&]() -> const value& {
    if (next_arg >= positional->size())
      throw_type_error("not enough arguments for format string");
    return (*positional)[next_arg++];
  };
  std::string out;
  for (std::size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (++i >= format.size())
      throw_type_error("incomplete format");
    const value* mapped = nullptr;
    value mapped_value;
    if (format[i] == '(') {
      std::size_t close = format.find(')', i);
      if (close == std::string::npos)
        throw_type_error("incomplete format key");
      if (!args.is_dict())
        throw_type_error("format requires a mapping");
      const value* v = args.dict().find_string(std::string_view(format).substr(i + 1, close - i - 1));
      if (!v)
        throw_type_error("KeyError: '" + format.substr(i + 1, close - i - 1) + "'");
      mapped_value = *v;
      mapped = &mapped_value;
      used_mapping = true;
      i = close + 1;
    }
    bool left = false, zero = false, plus = false, space = false, alt = false;
    for (; i < format.size(); ++i) {
      char f = format[i];
      if (f == '-') left = true;
      else if (f == '0') zero = true;
      else if (f == '+') plus = true;
      else if (f == ' ') space = true;
      else if (f == '#') alt = true;
      else break;
    }
    // Widths and precisions past the output limit are refused before anything is padded.
    auto bounded = [&](std::int64_t n) {
      in.check_string_size(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
      return static_cast<int>(std::min<std::int64_t>(n, INT32_MAX));
    };
    auto digits = [&]() {
      std::int64_t n = 0;
      while (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i]))) {
        n = n * 10 + (format[i++] - '0');
        if (n > (std::int64_t{1} << 40))
          in.check_string_size(std::size_t{1} << 40);
      }
      return n;
    };
    int width = 0, precision = -1;
    if (i < format.size() && format[i] == '*') {
      width = bounded(to_index(take(), "width"));
      ++i;
    } else {
      width = bounded(digits());
    }
    if (i < format.size() && format[i] == '.') {
      ++i;
      if (i < format.size() && format[i] == '*') {
        precision = bounded(to_index(take(), "precision"));
        ++i;
      } else {
        precision = bounded(digits());
      }
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L'))
      ++i;
    if (i >= format.size())
      throw_type_error("incomplete format");
    char conversion = format[i];
    if (conversion == '%') {
      out.push_back('%');
      continue;
    }
    const value& v = mapped ? *mapped : take();
    std::string piece;
    std::string flags = std::string(left ? "-" : "") + (zero ? "0" : "") + (plus ? "+" : "") + (space ? " " : "") + (alt ? "#" : "");
    switch (conversion) {
    case 's':
    case 'r':
    case 'a': {
      piece = conversion == 's' ? to_str(v) : to_repr(v);
      if (precision >= 0) {
        auto offsets = py::code_point_offsets(piece);
        if (static_cast<std::size_t>(precision) + 1 < offsets.size())
          piece.resize(offsets[static_cast<std::size_t>(precision)]);
      }
      piece = pad(piece, width, left, ' ');
      break;
    }
    case 'd':
    case 'i':
    case 'u': {
      if (!v.is_number())
        throw_type_error(std::string("%") + conversion + " format: a real number is required, not " + type_name(v));
      auto n = v.is_float() ? static_cast<long long>(std::trunc(v.as_float())) : static_cast<long long>(int_of(v));
      // C ignores the 0 flag when a precision is given; pass one only when the format has it.
      piece = precision < 0 ? c_format("%" + flags + "*lld", width, n) : c_format("%" + flags + "*.*lld", width, precision, n);
      break;
    }
    case 'x':
    case 'X':
    case 'o': {
      if (!is_integral(v))
        throw_type_error(std::string("%") + conversion + " format: an integer is required, not " + type_name(v));
      long long n = int_of(v);
      // C prints negatives as two's complement; Python prints a sign and the magnitude.
      auto magnitude = n < 0 ? 0ULL - static_cast<unsigned long long>(n) : static_cast<unsigned long long>(n);
      std::string digits = precision < 0 ? c_format("%" + flags + "ll" + conversion, magnitude)
                                         : c_format("%" + flags + ".*ll" + conversion, precision, magnitude);
      piece = pad(n < 0 ? "-" + digits : digits, width, left, zero && precision < 0 ? '0' : ' ');
      break;
    }
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G': {
      double d = number_for_format(v, conversion);
      piece = c_format("%" + flags + "*.*" + conversion, width, precision < 0 ? 6 : precision, d);
      break;
    }
    case 'c': {
      if (v.is_string() && py::code_point_count(v.text()) == 1)
        piece = v.text();
      else if (is_integral(v) && int_of(v) >= 0 && int_of(v) <= 0x10FFFF)
        py::append_utf8(piece, static_cast<char32_t>(int_of(v)));
      else
        throw_type_error("%c requires int or char");
      piece = pad(piece, width, left, ' ');
      break;
    }
    default: throw_type_error(std::string("unsupported format character '") + conversion + "'");
    }
    out += piece;
    in.check_string_size(out.size());
  }
  if (!used_mapping && args.is_tuple() && next_arg < positional->size())
    throw_type_error("not all arguments converted during string formatting");
  if (!used_mapping && !args.is_tuple() && !args.is_dict() && next_arg == 0)
    throw_type_error("not all arguments converted during string formatting");
  return out;
}

} // namespace actorserve::chat_template

// Python's string formatting: printf-style `format % args` (and the |format filter), and
// str.format with the common part of the format-spec mini-language.
#include "model/chat_template/builtins.hpp"
#include "model/chat_template/interpreter.hpp"
#include "model/chat_template/pystring.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace actorserve::chat_template {

namespace {

bool is_integral(const value& v) { return v.is_int() || v.is_bool(); }
std::int64_t int_of(const value& v) { return v.is_bool() ? static_cast<std::int64_t>(v.as_bool()) : v.as_int(); }

/// format(v, spec) for the common part of Python's mini-language:
/// [[fill]align][sign][0][width][,|_][.precision][type].
std::string format_spec_apply(interpreter& in, const value& v, const std::string& spec) {
  if (spec.empty())
    return to_str(v);
  std::u32string s = py::decode_utf8(spec);
  std::size_t i = 0;
  std::string fill = " ";
  char align = 0, sign = '-';
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (s.size() >= 2 && is_align(s[1])) {
    fill = py::encode_utf8(s.substr(0, 1));
    align = static_cast<char>(s[1]);
    i = 2;
  } else if (!s.empty() && is_align(s[0])) {
    align = static_cast<char>(s[0]);
    i = 1;
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-' || s[i] == ' '))
    sign = static_cast<char>(s[i++]);
  if (i < s.size() && s[i] == '0') {
    if (!align) {
      fill = "0";
      align = '=';
    }
    ++i;
  }
  std::int64_t width = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    width = width * 10 + (s[i++] - '0');
    if (width > (std::int64_t{1} << 40))
      in.check_string_size(std::size_t{1} << 40);
  }
  char grouping = 0;
  if (i < s.size() && (s[i] == ',' || s[i] == '_'))
    grouping = static_cast<char>(s[i++]);
  int precision = -1;
  if (i < s.size() && s[i] == '.') {
    precision = 0;
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      precision = precision * 10 + static_cast<int>(s[i++] - '0');
      if (precision > (1 << 24))
        in.check_string_size(std::size_t{1} << 40);
    }
  }
  char type = i < s.size() ? static_cast<char>(s[i++]) : 0;
  if (i != s.size())
    throw_type_error("Invalid format specifier '" + spec + "'");
  in.check_string_size(static_cast<std::size_t>(width));
  std::string body;
  bool numeric = v.is_number() && type != 's';
  if (!numeric) {
    if (type && type != 's')
      throw_type_error(std::string("Unknown format code '") + type + "' for object of type '" + type_name(v) + "'");
    body = to_str(v);
    if (precision >= 0) {
      auto offsets = py::code_point_offsets(body);
      if (static_cast<std::size_t>(precision) + 1 < offsets.size())
        body.resize(offsets[static_cast<std::size_t>(precision)]);
    }
    if (!align)
      align = '<';
  } else {
    bool is_int_value = v.is_int() || v.is_bool();
    double d = v.to_double();
    bool negative = is_int_value ? (v.is_bool() ? false : v.as_int() < 0) : std::signbit(d);
    if (!type && is_int_value)
      type = 'd';
    if (type == 'd' || type == 'x' || type == 'X' || type == 'o' || type == 'b' || type == 'c') {
      if (!is_int_value)
        throw_type_error(std::string("Unknown format code '") + type + "' for object of type 'float'");
      std::int64_t n = v.is_bool() ? v.as_bool() : v.as_int();
      unsigned long long magnitude = n < 0 ? 0ULL - static_cast<unsigned long long>(n) : static_cast<unsigned long long>(n);
      if (type == 'b') {
        body = magnitude == 0 ? "0" : "";
        for (; magnitude; magnitude >>= 1)
          body.insert(body.begin(), static_cast<char>('0' + (magnitude & 1)));
      } else if (type == 'c') {
        py::append_utf8(body, static_cast<char32_t>(magnitude));
      } else {
        body = c_format(type == 'd' ? "%llu" : type == 'o' ? "%llo" : type == 'x' ? "%llx" : "%llX", magnitude);
      }
    } else {
      if (!type) {
        body = is_int_value ? std::to_string(static_cast<long long>(d)) : format_float(std::fabs(d));
        if (precision >= 0) {
          body = c_format("%.*g", precision == 0 ? 1 : precision, std::fabs(d));
        }
      } else if (type == '%') {
        body = c_format("%.*f", precision < 0 ? 6 : precision, std::fabs(d) * 100.0) + "%";
      } else if (type == 'f' || type == 'F' || type == 'e' || type == 'E' || type == 'g' || type == 'G') {
        body = c_format(std::string("%.*") + type, precision < 0 ? 6 : precision, std::fabs(d));
      } else {
        throw_type_error(std::string("Unknown format code '") + type + "' for object of type '" + type_name(v) + "'");
      }
    }
    if (grouping && (type == 'd' || type == 'f' || type == 'F' || !type)) {
      std::size_t end = body.find_first_of(".eE");
      if (end == std::string::npos)
        end = body.size();
      for (std::ptrdiff_t p = static_cast<std::ptrdiff_t>(end) - 3; p > 0; p -= 3)
        body.insert(static_cast<std::size_t>(p), 1, grouping);
    }
    std::string sign_text = negative ? "-" : sign == '+' ? "+" : sign == ' ' ? " " : "";
    if (align == '=') {
      auto n = static_cast<std::int64_t>(py::code_point_count(body) + sign_text.size());
      std::string padding;
      for (std::int64_t k = n; k < width; ++k)
        padding += fill;
      return sign_text + padding + body;
    }
    body = sign_text + body;
    if (!align)
      align = '>';
  }
  auto n = static_cast<std::int64_t>(py::code_point_count(body));
  if (n >= width)
    return body;
  std::int64_t total = width - n, left = align == '<' ? 0 : align == '>' ? total : total / 2;
  std::string out;
  for (std::int64_t k = 0; k < left; ++k)
    out += fill;
  out += body;
  for (std::int64_t k = left; k < total; ++k)
    out += fill;
  return out;
}

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

std::string str_format(interpreter& in, const std::string& format, call_arguments& args) {
  std::string out;
  std::size_t auto_index = 0;
  for (std::size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') {
        out.push_back('}');
        ++i;
        continue;
      }
      throw_type_error("Single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    std::size_t close = format.find('}', i);
    if (close == std::string::npos)
      throw_type_error("Single '{' encountered in format string");
    std::string field = format.substr(i + 1, close - i - 1);
    i = close;
    std::string spec, conversion;
    if (auto colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    if (auto bang = field.find('!'); bang != std::string::npos) {
      conversion = field.substr(bang + 1);
      field.resize(bang);
    }
    if (spec.find('{') != std::string::npos)
      throw_type_error("nested replacement fields in format specs are not supported");
    std::size_t name_end = std::min(field.find('.'), field.find('['));
    std::string head = field.substr(0, name_end);
    value v;
    if (head.empty() || std::all_of(head.begin(), head.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      std::size_t index = head.empty() ? auto_index++ : std::stoul(head);
      if (index >= args.positional.size())
        throw_type_error("Replacement index " + std::to_string(index) + " out of range for positional args tuple");
      v = args.positional[index];
    } else {
      auto it = std::find_if(args.named.begin(), args.named.end(), [&](const auto& kv) { return kv.first == head; });
      if (it == args.named.end())
        throw_type_error("KeyError: '" + head + "'");
      v = it->second;
    }
    for (std::size_t p = name_end; p < field.size();) {
      if (field[p] == '.') {
        std::size_t next = std::min(field.find('.', p + 1), field.find('[', p + 1));
        v = in.get_attribute(v, field.substr(p + 1, next - p - 1));
        p = next;
      } else {
        std::size_t end = field.find(']', p);
        if (end == std::string::npos)
          throw_type_error("Missing ']' in format string");
        std::string key = field.substr(p + 1, end - p - 1);
        bool digits = !key.empty() && std::all_of(key.begin(), key.end(), [](char d) { return d >= '0' && d <= '9'; });
        v = in.get_item(v, digits ? value(static_cast<std::int64_t>(std::stoll(key))) : value(key));
        p = end + 1;
      }
    }
    if (conversion == "r" || conversion == "a")
      v = value(to_repr(v));
    else if (conversion == "s")
      v = value(to_str(v));
    else if (!conversion.empty())
      throw_type_error("Unknown conversion specifier " + conversion);
    out += format_spec_apply(in, v, spec);
    in.check_string_size(out.size());
  }
  return out;
}

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

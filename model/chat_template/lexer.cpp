#include "model/chat_template/lexer.hpp"

#include "model/chat_template/pystring.hpp"
#include "model/chat_template/template_error.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace actorserve::chat_template {

namespace {

/// jinja2 splits lines on \r\n, \r and \n, joins them with \n, and drops one trailing newline.
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n')
        ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n')
    out.pop_back();
  return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

class lexer {
public:
  explicit lexer(std::string_view source) : src_(normalize_newlines(source)) {
    line_starts_.push_back(0);
    for (std::size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n')
        line_starts_.push_back(i + 1);
  }

  std::vector<token> run() {
    std::size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      std::size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        emit_data(src_.substr(pos), pos);
        break;
      }
      char kind = src_[tag + 1];
      char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      std::string text = src_.substr(pos, tag - pos);
      std::size_t raw_body = kind == '%' ? match_raw_begin(tag) : std::string::npos;
      text = strip_before_tag(std::move(text), sign, kind != '{', line_starting);
      emit_data(std::move(text), pos);
      if (raw_body != std::string::npos) {
        pos = lex_raw(tag, raw_body, line_starting);
        continue;
      }
      std::size_t body = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        pos = skip_comment(tag, body, line_starting);
      } else {
        push(kind == '{' ? token_type::variable_begin : token_type::block_begin, kind == '{' ? "{{" : "{%", tag);
        pos = lex_tag(body, kind == '{', line_starting);
      }
    }
    token end;
    end.type = token_type::eof;
    locate(src_.size(), end);
    tokens_.push_back(std::move(end));
    return std::move(tokens_);
  }

private:
  [[noreturn]] void fail(const std::string& message, std::size_t offset) {
    token t;
    locate(offset, t);
    throw template_error(template_error_kind::syntax, message, t.line, t.column);
  }

  /// Line and column (in code points) of a byte offset. Tokens come in increasing order,
  /// so the column is counted on from the previous token: linear over one long line.
  void locate(std::size_t offset, token& t) {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    std::size_t line_start = *(it - 1);
    t.line = static_cast<int>(it - line_starts_.begin());
    if (cursor_offset_ < line_start || cursor_offset_ > offset) {
      cursor_offset_ = line_start;
      cursor_column_ = 1;
    }
    cursor_column_ += py::code_point_count(std::string_view(src_).substr(cursor_offset_, offset - cursor_offset_));
    cursor_offset_ = offset;
    t.column = static_cast<int>(cursor_column_);
  }

  void push(token_type type, std::string text, std::size_t offset) {
    token t;
    t.type = type;
    t.text = std::move(text);
    locate(offset, t);
    tokens_.push_back(std::move(t));
  }

  void emit_data(std::string text, std::size_t offset) {
    if (!text.empty())
      push(token_type::data, std::move(text), offset);
  }

  std::size_t find_tag(std::size_t pos) const {
    for (std::size_t i = src_.find('{', pos); i != std::string::npos; i = src_.find('{', i + 1))
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    return std::string::npos;
  }

  bool space_at(std::size_t pos, std::size_t& len) const {
    unsigned char byte = static_cast<unsigned char>(src_[pos]);
    if (byte < 0x80) {
      len = 1;
      return py::is_space(byte);
    }
    char32_t c;
    std::u32string one = py::decode_utf8(std::string_view(src_).substr(pos, std::min<std::size_t>(4, src_.size() - pos)));
    if (one.empty())
      return false;
    c = one[0];
    if (!py::is_space(c))
      return false;
    std::string enc;
    py::append_utf8(enc, c);
    len = enc.size();
    return true;
  }

  std::size_t skip_spaces(std::size_t pos) const {
    std::size_t len;
    while (pos < src_.size() && space_at(pos, len))
      pos += len;
    return pos;
  }

  /// The whitespace a tag removes from the text before it: everything for `-`; with
  /// lstrip_blocks, spaces between the start of the line and a block or comment tag.
  static std::string strip_before_tag(std::string text, char sign, bool is_block_or_comment, bool line_starting) {
    if (sign == '-')
      return py::strip(text, std::nullopt, false, true);
    if (sign == '+' || !is_block_or_comment)
      return text;
    std::size_t line_pos = text.rfind('\n');
    line_pos = line_pos == std::string::npos ? 0 : line_pos + 1;
    if (line_pos == 0 && !line_starting)
      return text;
    std::string_view rest = std::string_view(text).substr(line_pos);
    if (rest.empty())
      return text;
    for (char32_t c : py::decode_utf8(rest))
      if (!py::is_space(c))
        return text;
    text.resize(line_pos);
    return text;
  }

  /// Where a block tag closes: `+%}` keeps what follows, `-%}` eats all whitespace after
  /// it, `%}` eats one newline (trim_blocks). Returns the end offset, or npos.
  std::size_t match_block_end(std::size_t pos, const char* close) const {
    auto at = [&](std::size_t p, std::string_view s) { return src_.compare(p, s.size(), s) == 0; };
    if (at(pos, std::string("+") + close))
      return pos + 3;
    if (at(pos, std::string("-") + close))
      return skip_spaces(pos + 3);
    if (at(pos, close)) {
      std::size_t end = pos + 2;
      if (end < src_.size() && src_[end] == '\n')
        ++end;
      return end;
    }
    return std::string::npos;
  }

  /// `{% raw %}` (with optional -/+ and spaces): returns where the raw body starts.
  std::size_t match_raw_begin(std::size_t tag) const {
    std::size_t p = tag + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+'))
      ++p;
    p = skip_spaces(p);
    if (src_.compare(p, 3, "raw") != 0)
      return std::string::npos;
    p = skip_spaces(p + 3);
    if (src_.compare(p, 3, "-%}") == 0)
      return skip_spaces(p + 3);
    if (src_.compare(p, 2, "%}") == 0)
      return p + 2; // no trim_blocks on the raw opener, as in jinja2
    return std::string::npos;
  }

  std::size_t lex_raw(std::size_t tag, std::size_t body, bool& line_starting) {
    line_starting = src_[body - 1] == '\n';
    for (std::size_t p = src_.find("{%", body); p != std::string::npos; p = src_.find("{%", p + 1)) {
      std::size_t q = p + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+'))
        sign = src_[q++];
      q = skip_spaces(q);
      if (src_.compare(q, 6, "endraw") != 0)
        continue;
      std::size_t end = match_block_end(skip_spaces(q + 6), "%}");
      if (end == std::string::npos)
        continue;
      emit_data(strip_before_tag(src_.substr(body, p - body), sign, true, line_starting), body);
      line_starting = src_[end - 1] == '\n';
      return end;
    }
    fail("Missing end of raw directive", tag);
  }

  std::size_t skip_comment(std::size_t tag, std::size_t body, bool& line_starting) {
    std::size_t close = src_.find("#}", body);
    if (close == std::string::npos)
      fail("Missing end of comment tag", tag);
    std::size_t start = close > body && (src_[close - 1] == '-' || src_[close - 1] == '+') ? close - 1 : close;
    std::size_t end = match_block_end(start, "#}");
    line_starting = src_[end - 1] == '\n';
    return end;
  }

  std::size_t lex_tag(std::size_t pos, bool is_variable, bool& line_starting) {
    std::vector<char> balance;
    while (pos < src_.size()) {
      if (balance.empty()) {
        std::size_t end = std::string::npos;
        if (is_variable) {
          if (src_.compare(pos, 3, "-}}") == 0)
            end = skip_spaces(pos + 3);
          else if (src_.compare(pos, 2, "}}") == 0)
            end = pos + 2;
        } else {
          end = match_block_end(pos, "%}");
        }
        if (end != std::string::npos) {
          push(is_variable ? token_type::variable_end : token_type::block_end, is_variable ? "}}" : "%}", pos);
          line_starting = src_[end - 1] == '\n';
          return end;
        }
      }
      std::size_t space_len;
      if (space_at(pos, space_len)) {
        pos += space_len;
        continue;
      }
      char c = src_[pos];
      if (is_digit(c)) {
        pos = lex_number(pos);
      } else if (c == '\'' || c == '"') {
        pos = lex_string(pos);
      } else if (std::size_t name_end = match_name(pos); name_end != pos) {
        push(token_type::name, src_.substr(pos, name_end - pos), pos);
        pos = name_end;
      } else {
        pos = lex_operator(pos, balance);
      }
    }
    return pos; // end of input inside a tag: the parser reports the missing end
  }

  std::size_t match_name(std::size_t pos) const {
    std::size_t p = pos;
    while (p < src_.size()) {
      unsigned char c = static_cast<unsigned char>(src_[p]);
      if (c < 0x80) {
        bool ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (p > pos && is_digit(static_cast<char>(c)));
        if (!ok)
          break;
        ++p;
        continue;
      }
      // Non-ASCII identifier characters: letters (and, after the first, marks and digits).
      std::u32string cp = py::decode_utf8(std::string_view(src_).substr(p, std::min<std::size_t>(4, src_.size() - p)));
      auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp[0]));
      bool letter = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
      bool continuation = cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ND ||
                          cat == UTF8PROC_CATEGORY_PC;
      if (!(letter || (p > pos && continuation)))
        break;
      std::string enc;
      py::append_utf8(enc, cp[0]);
      p += enc.size();
    }
    return p;
  }

  std::size_t digits_at(std::size_t p) const {
    // (\d+_)*\d+ : digits, optionally separated by single underscores.
    std::size_t start = p;
    while (p < src_.size() && is_digit(src_[p])) {
      ++p;
      if (p + 1 < src_.size() && src_[p] == '_' && is_digit(src_[p + 1]))
        ++p;
    }
    return p == start ? std::string::npos : p;
  }

  std::size_t lex_number(std::size_t pos) {
    auto clean = [&](std::size_t from, std::size_t to) {
      std::string s;
      for (std::size_t i = from; i < to; ++i)
        if (src_[i] != '_')
          s.push_back(src_[i]);
      return s;
    };
    // Floats first, as jinja2 does; a float never directly follows a '.' (attribute numbers).
    if (pos == 0 || src_[pos - 1] != '.') {
      std::size_t int_end = digits_at(pos);
      std::size_t p = int_end, float_end = std::string::npos;
      std::size_t frac_end = (p < src_.size() && src_[p] == '.') ? digits_at(p + 1) : std::string::npos;
      std::size_t q = frac_end != std::string::npos ? frac_end : p;
      if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
        std::size_t r = q + 1;
        if (r < src_.size() && (src_[r] == '+' || src_[r] == '-'))
          ++r;
        float_end = digits_at(r);
      }
      if (float_end == std::string::npos && frac_end != std::string::npos)
        float_end = frac_end;
      if (float_end != std::string::npos) {
        token t;
        t.type = token_type::floating;
        t.text = clean(pos, float_end);
        t.float_value = std::strtod(t.text.c_str(), nullptr);
        locate(pos, t);
        tokens_.push_back(std::move(t));
        return float_end;
      }
    }
    std::size_t end = pos;
    int base = 10;
    char prefix = pos + 1 < src_.size() ? static_cast<char>(src_[pos + 1] | 0x20) : 0;
    auto radix_digits = [&](std::size_t p, int radix) {
      std::size_t start = p;
      while (p < src_.size()) {
        std::size_t q = p + (src_[p] == '_' ? 1 : 0);
        if (q >= src_.size())
          break;
        char d = src_[q];
        bool ok = radix == 2 ? (d == '0' || d == '1') : radix == 8 ? (d >= '0' && d <= '7') : is_hex(d);
        if (!ok)
          break;
        p = q + 1;
      }
      return p == start ? std::string::npos : p;
    };
    if (src_[pos] == '0' && (prefix == 'b' || prefix == 'o' || prefix == 'x')) {
      base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : 16;
      std::size_t e = radix_digits(pos + 2, base);
      if (e != std::string::npos)
        end = e;
      else
        base = 10;
    }
    if (base == 10) {
      if (src_[pos] == '0') {
        end = pos + 1;
        while (end < src_.size() && (src_[end] == '0' || (src_[end] == '_' && end + 1 < src_.size() && src_[end + 1] == '0')))
          end += src_[end] == '_' ? 2 : 1;
      } else {
        end = digits_at(pos);
      }
    }
    token t;
    t.type = token_type::integer;
    t.text = src_.substr(pos, end - pos);
    std::string digits = clean(base == 10 ? pos : pos + 2, end);
    errno = 0;
    char* stop = nullptr;
    unsigned long long v = std::strtoull(digits.c_str(), &stop, base);
    if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX))
      fail("integer literal " + t.text + " does not fit in 64 bits", pos);
    t.int_value = static_cast<std::int64_t>(v);
    locate(pos, t);
    tokens_.push_back(std::move(t));
    return end;
  }

  std::size_t lex_string(std::size_t pos) {
    char quote = src_[pos];
    std::size_t p = pos + 1;
    while (p < src_.size() && src_[p] != quote) {
      if (src_[p] == '\\')
        ++p;
      ++p;
    }
    if (p >= src_.size())
      fail("unterminated string literal", pos);
    token t;
    t.type = token_type::string;
    t.text = unescape(std::string_view(src_).substr(pos + 1, p - pos - 1), pos);
    locate(pos, t);
    tokens_.push_back(std::move(t));
    return p + 1;
  }

  /// Python's "unicode-escape" decoding of the literal, after jinja2's backslashreplace of
  /// non-ASCII characters (so a backslash before a non-ASCII character stays literal).
  std::string unescape(std::string_view raw, std::size_t offset) {
    std::string out;
    std::u32string cps = py::decode_utf8(raw);
    auto hex_value = [&](std::size_t from, std::size_t count, const char* what) {
      char32_t v = 0;
      for (std::size_t k = 0; k < count; ++k) {
        if (from + k >= cps.size() || cps[from + k] > 0x7F || !is_hex(static_cast<char>(cps[from + k])))
          fail(std::string("truncated ") + what + " escape", offset);
        char h = static_cast<char>(cps[from + k]);
        v = v * 16 + static_cast<char32_t>(is_digit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
      }
      return v;
    };
    auto append_checked = [&](char32_t c) {
      if (c >= 0xD800 && c <= 0xDFFF)
        fail("surrogate code points cannot be encoded as UTF-8", offset);
      if (c > 0x10FFFF)
        fail("illegal Unicode character", offset);
      py::append_utf8(out, c);
    };
    for (std::size_t i = 0; i < cps.size(); ++i) {
      char32_t c = cps[i];
      if (c != '\\' || i + 1 >= cps.size()) {
        py::append_utf8(out, c);
        continue;
      }
      char32_t e = cps[++i];
      switch (e) {
      case '\n': break;
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case 'x': append_checked(hex_value(i + 1, 2, "\\xXX")), i += 2; break;
      case 'u': append_checked(hex_value(i + 1, 4, "\\uXXXX")), i += 4; break;
      case 'U': append_checked(hex_value(i + 1, 8, "\\UXXXXXXXX")), i += 8; break;
      case 'N': fail("\\N{...} escapes are not supported", offset);
      default:
        if (e >= '0' && e <= '7') {
          char32_t v = e - '0';
          for (int k = 0; k < 2 && i + 1 < cps.size() && cps[i + 1] >= '0' && cps[i + 1] <= '7'; ++k)
            v = v * 8 + (cps[++i] - '0');
          append_checked(v);
        } else if (e > 0x7F) {
          // jinja2 turned the character into its \x/\u/\U spelling before decoding, so the
          // backslash escaped the spelling's own backslash.
          char buf[16];
          if (e < 0x100)
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(e));
          else if (e < 0x10000)
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(e));
          else
            std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(e));
          out += buf;
        } else {
          out.push_back('\\');
          py::append_utf8(out, e);
        }
      }
    }
    return out;
  }

  std::size_t lex_operator(std::size_t pos, std::vector<char>& balance) {
    static const char* two[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : two)
      if (src_.compare(pos, 2, op) == 0) {
        push(token_type::op, op, pos);
        return pos + 2;
      }
    char c = src_[pos];
    static const std::string single = "+-/*%~[](){}><=.:|,;";
    if (single.find(c) == std::string::npos) {
      std::string shown = c == '\'' ? std::string("\"'\"") : std::string("'").append(1, c).append("'");
      if (static_cast<unsigned char>(c) >= 0x80) {
        std::u32string cp = py::decode_utf8(std::string_view(src_).substr(pos, std::min<std::size_t>(4, src_.size() - pos)));
        std::string enc;
        py::append_utf8(enc, cp[0]);
        shown = "'" + enc + "'";
      }
      fail("unexpected char " + shown, pos);
    }
    if (c == '(' || c == '[' || c == '{') {
      balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty())
        fail(std::string("unexpected '") + c + "'", pos);
      char expected = balance.back();
      balance.pop_back();
      if (expected != c)
        fail(std::string("unexpected '") + c + "', expected '" + expected + "'", pos);
    }
    push(token_type::op, std::string(1, c), pos);
    return pos + 1;
  }

  std::string src_;
  std::vector<std::size_t> line_starts_;
  std::size_t cursor_offset_ = 0;
  std::size_t cursor_column_ = 1;
  std::vector<token> tokens_;
};

} // namespace

std::vector<token> tokenize(std::string_view source) { return lexer(source).run(); }

std::string describe(const token& t) {
  switch (t.type) {
  case token_type::data: return "template data / text";
  case token_type::variable_begin: return "begin of print statement";
  case token_type::variable_end: return "end of print statement";
  case token_type::block_begin: return "begin of statement block";
  case token_type::block_end: return "end of statement block";
  case token_type::name: return "'" + t.text + "'";
  case token_type::string: return "string";
  case token_type::integer: return "integer";
  case token_type::floating: return "float";
  case token_type::op: return "'" + t.text + "'";
  case token_type::eof: return "end of template";
  }
  return "token";
}

} // namespace actorserve::chat_template

#include "model/chat_template/pystring.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <stdexcept>

namespace actorserve::chat_template::py {

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

namespace {

/// Decodes the code point at s[pos]; returns its length in bytes (0 if invalid).
std::size_t decode_one(std::string_view s, std::size_t pos, char32_t& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  std::size_t left = s.size() - pos;
  unsigned char b = p[0];
  if (b < 0x80) {
    out = b;
    return 1;
  }
  std::size_t len = 0;
  char32_t cp = 0, min = 0;
  if ((b & 0xE0) == 0xC0) {
    len = 2, cp = b & 0x1F, min = 0x80;
  } else if ((b & 0xF0) == 0xE0) {
    len = 3, cp = b & 0x0F, min = 0x800;
  } else if ((b & 0xF8) == 0xF0) {
    len = 4, cp = b & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (left < len)
    return 0;
  for (std::size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  out = cp;
  return len;
}

bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

bool is_cased_category(char32_t c) {
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
}

// Full case mappings that expand to more than one code point and that simple mapping
// (utf8proc) does not give; the few a chat would plausibly contain.
void append_upper(std::string& out, char32_t c) {
  if (c == 0x00DF) { // sharp s
    out += "SS";
    return;
  }
  append_utf8(out, static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c))));
}

void append_lower(std::string& out, char32_t c) {
  if (c == 0x0130) { // capital I with dot above -> i + combining dot above
    out += "i\xCC\x87";
    return;
  }
  append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
}

void append_title(std::string& out, char32_t c) {
  if (c == 0x00DF) {
    out += "Ss";
    return;
  }
  append_utf8(out, static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(c))));
}

template <typename F> std::string map_code_points(std::string_view s, F f) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : decode_utf8(s))
    f(out, c);
  return out;
}

std::vector<std::string> split_whitespace(std::string_view s, std::int64_t maxsplit) {
  std::u32string cps = decode_utf8(s);
  std::vector<std::string> parts;
  std::size_t i = 0, n = cps.size();
  while (i < n) {
    while (i < n && is_space(cps[i]))
      ++i;
    if (i == n)
      break;
    if (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) == maxsplit) {
      parts.push_back(encode_utf8(std::u32string_view(cps).substr(i)));
      return parts;
    }
    std::size_t start = i;
    while (i < n && !is_space(cps[i]))
      ++i;
    parts.push_back(encode_utf8(std::u32string_view(cps).substr(start, i - start)));
  }
  return parts;
}

std::vector<std::string> rsplit_whitespace(std::string_view s, std::int64_t maxsplit) {
  std::u32string cps = decode_utf8(s);
  std::vector<std::string> parts;
  std::size_t i = cps.size();
  while (i > 0) {
    while (i > 0 && is_space(cps[i - 1]))
      --i;
    if (i == 0)
      break;
    if (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) == maxsplit) {
      parts.push_back(encode_utf8(std::u32string_view(cps).substr(0, i)));
      break;
    }
    std::size_t end = i;
    while (i > 0 && !is_space(cps[i - 1]))
      --i;
    parts.push_back(encode_utf8(std::u32string_view(cps).substr(i, end - i)));
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

} // namespace

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  while (pos < s.size()) {
    char32_t cp;
    std::size_t len = decode_one(s, pos, cp);
    if (len == 0) {
      out.push_back(0xFFFD);
      ++pos;
    } else {
      out.push_back(cp);
      pos += len;
    }
  }
  return out;
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s)
    append_utf8(out, c);
  return out;
}

bool is_valid_utf8(std::string_view s) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    char32_t cp;
    std::size_t len = decode_one(s, pos, cp);
    if (len == 0)
      return false;
    pos += len;
  }
  return true;
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::size_t code_point_count(std::string_view s) {
  std::size_t n = 0;
  for (char c : s)
    n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::vector<std::size_t> code_point_offsets(std::string_view s) {
  std::vector<std::size_t> offsets;
  offsets.reserve(s.size() + 1);
  for (std::size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80)
      offsets.push_back(i);
  offsets.push_back(s.size());
  return offsets;
}

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_printable(char32_t c) {
  if (c == ' ')
    return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
  case UTF8PROC_CATEGORY_CC:
  case UTF8PROC_CATEGORY_CF:
  case UTF8PROC_CATEGORY_CS:
  case UTF8PROC_CATEGORY_CO:
  case UTF8PROC_CATEGORY_CN:
  case UTF8PROC_CATEGORY_ZL:
  case UTF8PROC_CATEGORY_ZP:
  case UTF8PROC_CATEGORY_ZS: return false;
  default: return true;
  }
}

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  // Works on the bytes: only the code points at both ends are decoded (trim runs on every
  // message of a long conversation).
  std::u32string set = chars ? decode_utf8(*chars) : std::u32string{};
  auto strippable = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : is_space(c); };
  std::size_t begin = 0, end = s.size();
  if (left) {
    while (begin < end) {
      char32_t c;
      std::size_t len = decode_one(s, begin, c);
      if (len == 0 || !strippable(c))
        break;
      begin += len;
    }
  }
  if (right) {
    while (end > begin) {
      std::size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
        --start;
      char32_t c;
      std::size_t len = decode_one(s, start, c);
      if (len != end - start || !strippable(c))
        break;
      end = start;
    }
  }
  return std::string(s.substr(begin, end - begin));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, std::int64_t maxsplit) {
  if (!sep)
    return split_whitespace(s, maxsplit);
  if (sep->empty())
    throw std::invalid_argument("empty separator");
  std::vector<std::string> parts;
  std::size_t pos = 0;
  while (maxsplit < 0 || static_cast<std::int64_t>(parts.size()) < maxsplit) {
    std::size_t hit = s.find(*sep, pos);
    if (hit == std::string_view::npos)
      break;
    parts.emplace_back(s.substr(pos, hit - pos));
    pos = hit + sep->size();
  }
  parts.emplace_back(s.substr(pos));
  return parts;
}

std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, std::int64_t maxsplit) {
  if (!sep)
    return rsplit_whitespace(s, maxsplit);
  if (sep->empty())
    throw std::invalid_argument("empty separator");
  std::vector<std::string> parts;
  std::size_t end = s.size();
  while (maxsplit < 0 || static_cast<std::int64_t>(parts.size()) < maxsplit) {
    if (end < sep->size())
      break;
    std::size_t hit = s.rfind(*sep, end - sep->size());
    if (hit == std::string_view::npos)
      break;
    parts.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
    end = hit;
  }
  parts.emplace_back(s.substr(0, end));
  std::reverse(parts.begin(), parts.end());
  return parts;
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  std::u32string cps = decode_utf8(s);
  std::vector<std::string> lines;
  std::size_t start = 0, i = 0;
  while (i < cps.size()) {
    if (!is_line_break(cps[i])) {
      ++i;
      continue;
    }
    std::size_t eol = i + 1;
    if (cps[i] == '\r' && eol < cps.size() && cps[eol] == '\n')
      ++eol;
    lines.push_back(encode_utf8(std::u32string_view(cps).substr(start, (keepends ? eol : i) - start)));
    start = i = eol;
  }
  if (start < cps.size())
    lines.push_back(encode_utf8(std::u32string_view(cps).substr(start)));
  return lines;
}

std::string replace(std::string_view s, std::string_view old_text, std::string_view new_text, std::int64_t count) {
  std::string out;
  if (old_text.empty()) {
    // Python inserts the replacement before every code point and at the end.
    auto offsets = code_point_offsets(s);
    std::int64_t done = 0;
    for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
      if (count < 0 || done < count) {
        out += new_text;
        ++done;
      }
      out += s.substr(offsets[i], offsets[i + 1] - offsets[i]);
    }
    if (count < 0 || done < count)
      out += new_text;
    return out;
  }
  std::size_t pos = 0;
  std::int64_t done = 0;
  while (count < 0 || done < count) {
    std::size_t hit = s.find(old_text, pos);
    if (hit == std::string_view::npos)
      break;
    out += s.substr(pos, hit - pos);
    out += new_text;
    pos = hit + old_text.size();
    ++done;
  }
  out += s.substr(pos);
  return out;
}

std::int64_t find(std::string_view s, std::string_view sub, bool from_right) {
  std::size_t hit = from_right ? s.rfind(sub) : s.find(sub);
  if (hit == std::string_view::npos)
    return -1;
  return static_cast<std::int64_t>(code_point_count(s.substr(0, hit)));
}

std::int64_t count(std::string_view s, std::string_view sub) {
  if (sub.empty())
    return static_cast<std::int64_t>(code_point_count(s)) + 1;
  std::int64_t n = 0;
  for (std::size_t pos = s.find(sub); pos != std::string_view::npos; pos = s.find(sub, pos + sub.size()))
    ++n;
  return n;
}

std::string upper(std::string_view s) {
  return map_code_points(s, [](std::string& out, char32_t c) { append_upper(out, c); });
}

std::string lower(std::string_view s) {
  return map_code_points(s, [](std::string& out, char32_t c) { append_lower(out, c); });
}

std::string capitalize(std::string_view s) {
  bool first = true;
  return map_code_points(s, [&](std::string& out, char32_t c) {
    if (first)
      append_title(out, c);
    else
      append_lower(out, c);
    first = false;
  });
}

std::string title(std::string_view s) {
  bool previous_cased = false;
  return map_code_points(s, [&](std::string& out, char32_t c) {
    bool cased = is_cased_category(c);
    if (previous_cased)
      append_lower(out, c);
    else
      append_title(out, c);
    previous_cased = cased;
  });
}

std::string swapcase(std::string_view s) {
  return map_code_points(s, [](std::string& out, char32_t c) {
    auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    if (cat == UTF8PROC_CATEGORY_LU)
      append_lower(out, c);
    else if (cat == UTF8PROC_CATEGORY_LL)
      append_upper(out, c);
    else
      append_utf8(out, c);
  });
}

namespace {

/// str.isupper/islower: at least one cased character, and none of the other case.
bool all_cased_as(std::string_view s, utf8proc_category_t wanted, utf8proc_category_t other) {
  bool any_cased = false;
  for (char32_t c : decode_utf8(s)) {
    auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    if (cat == other || cat == UTF8PROC_CATEGORY_LT)
      return false;
    any_cased |= cat == wanted;
  }
  return any_cased;
}

} // namespace

bool is_upper(std::string_view s) { return all_cased_as(s, UTF8PROC_CATEGORY_LU, UTF8PROC_CATEGORY_LL); }
bool is_lower(std::string_view s) { return all_cased_as(s, UTF8PROC_CATEGORY_LL, UTF8PROC_CATEGORY_LU); }

std::string repr(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  static const char* hex = "0123456789abcdef";
  for (char32_t c : decode_utf8(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F || (c >= 0x80 && !is_printable(c))) {
      int digits = c < 0x100 ? 2 : (c < 0x10000 ? 4 : 8);
      out += digits == 2 ? "\\x" : (digits == 4 ? "\\u" : "\\U");
      for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
        out.push_back(hex[(c >> shift) & 0xF]);
    } else {
      append_utf8(out, c);
    }
  }
  out.push_back(quote);
  return out;
}

} // namespace actorserve::chat_template::py

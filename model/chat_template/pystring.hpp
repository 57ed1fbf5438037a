#pragma once
// Python `str` semantics on UTF-8 std::strings, for the chat-template interpreter.
// Templates index, slice, strip, split and case-map strings the way Python does: by code
// point, with Python's notion of whitespace and line breaks. Strings here are valid UTF-8
// (template text is checked on load; JSON input is valid by construction).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace actorserve::chat_template::py {

void append_utf8(std::string& out, char32_t code_point);
/// Decodes UTF-8; an invalid byte decodes as U+FFFD (never happens for checked input).
std::u32string decode_utf8(std::string_view s);
std::string encode_utf8(std::u32string_view s);
bool is_valid_utf8(std::string_view s);
bool is_ascii(std::string_view s);
std::size_t code_point_count(std::string_view s);
/// Byte offset of every code point, plus s.size() at the end (size = count + 1).
std::vector<std::size_t> code_point_offsets(std::string_view s);

/// str.isspace() for one code point.
bool is_space(char32_t c);
/// str.isprintable() for one code point (decides what repr() escapes).
bool is_printable(char32_t c);

/// str.strip/lstrip/rstrip; `chars` absent means whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
/// str.split / str.rsplit; `sep` absent splits on whitespace runs. maxsplit < 0: no limit.
/// Throws std::invalid_argument for an empty separator.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, std::int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, std::int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
/// str.replace; count < 0 replaces all.
std::string replace(std::string_view s, std::string_view old_text, std::string_view new_text, std::int64_t count);
/// str.find / str.rfind / str.count, in code points; -1 when absent.
std::int64_t find(std::string_view s, std::string_view sub, bool from_right);
std::int64_t count(std::string_view s, std::string_view sub);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s); // str.capitalize
std::string title(std::string_view s);      // str.title (not jinja's |title filter)
std::string swapcase(std::string_view s);
bool is_upper(std::string_view s);          // str.isupper
bool is_lower(std::string_view s);          // str.islower

/// repr() of a str: quotes chosen and characters escaped as CPython does.
std::string repr(std::string_view s);

} // namespace actorserve::chat_template::py

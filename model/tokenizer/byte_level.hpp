#pragma once
// GPT-2's byte-to-unicode table: every byte gets a printable character (bytes that are printable
// Latin-1 map to themselves, the other 68 to U+0100..U+0143), so that byte-level BPE vocabularies
// can be stored as text. "Ġ" (U+0120) is the space byte, "Ċ" (U+010A) the newline byte.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace actorserve::tokenization {

/// The code point that byte b is written as.
char32_t byte_to_code_point(uint8_t b);

/// The byte that code point cp stands for, or -1 when cp is not in the table.
int code_point_to_byte(char32_t cp);

/// Appends the byte-level spelling of raw bytes (each byte becomes one character).
void append_byte_level(std::string& out, std::string_view bytes);

/// The raw bytes a byte-level spelled token stands for; false (and out unchanged) when some
/// character of the token is not in the table.
bool decode_byte_level(std::string_view token, std::string& out);

} // namespace actorserve::tokenization

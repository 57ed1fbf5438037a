#pragma once
// Element types of tensors on disk and on the device, and scalar conversions.

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace actorserve {

enum class dtype : uint8_t { f32, f16, bf16, f8_e4m3, i8, i32, i64, u8, bool_ };

/// Bytes per element.
size_t dtype_size(dtype t);
/// The safetensors name ("F32", "BF16", "F8_E4M3", ...).
std::string_view dtype_name(dtype t);
/// Parses a safetensors dtype name; nullopt when unknown.
std::optional<dtype> parse_dtype(std::string_view name);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// Round to nearest even, as torch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return uint16_t((bits >> 16) | 0x40);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t((bits + rounding) >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float f8_e4m3_to_f32(uint8_t v);

/// Converts `count` elements of type `t` at `src` to fp32 (f32, f16, bf16, f8_e4m3, i8, i32).
void convert_to_f32(dtype t, const void* src, float* dst, size_t count);

} // namespace actorserve

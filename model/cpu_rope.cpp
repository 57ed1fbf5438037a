#include "model/cpu_rope.hpp"

#include <cmath>

namespace actorserve {

std::vector<float> rope_inv_freq(const model_config& c) {
  const int64_t dim = c.head_dim;
  const float base = float(c.rope_theta);
  std::vector<float> inv_freq(size_t(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in fp32.
    const float exponent = float(2 * i) / float(dim);
    inv_freq[size_t(i)] = 1.0f / std::pow(base, exponent);
  }
  const rope_scaling_config& s = c.rope_scaling;
  if (s.type == rope_scaling_type::linear) {
    for (float& f : inv_freq)
      f = f / float(s.factor);
  } else if (s.type == rope_scaling_type::llama3) {
    // transformers' _compute_llama3_parameters: long wavelengths are slowed down by `factor`,
    // short ones kept, and the band between interpolated smoothly.
    const float factor = float(s.factor);
    const float low = float(s.low_freq_factor), high = float(s.high_freq_factor);
    const float old_len = float(s.original_max_position_embeddings);
    const float low_freq_wavelen = old_len / low;
    const float high_freq_wavelen = old_len / high;
    for (float& f : inv_freq) {
      const float wavelen = float(2.0 * M_PI) / f;
      float scaled = wavelen > low_freq_wavelen ? f / factor : f;
      const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      if (medium) {
        const float smooth = (old_len / wavelen - low) / (high - low);
        scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
      f = scaled;
    }
  }
  return inv_freq;
}

void apply_rope(float* heads, int64_t num_heads, int64_t head_dim, int32_t pos, const float* inv_freq) {
  const int64_t half = head_dim / 2;
  // Angles in fp32 like torch (position * inv_freq), cos/sin rounded from double.
  float cos_v[512], sin_v[512];
  for (int64_t i = 0; i < half; ++i) {
    const float angle = float(pos) * inv_freq[i];
    cos_v[i] = float(std::cos(double(angle)));
    sin_v[i] = float(std::sin(double(angle)));
  }
  for (int64_t h = 0; h < num_heads; ++h) {
    float* x = heads + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float x1 = x[i], x2 = x[i + half];
      x[i] = x1 * cos_v[i] - x2 * sin_v[i];
      x[i + half] = x2 * cos_v[i] + x1 * sin_v[i];
    }
  }
}

} // namespace actorserve

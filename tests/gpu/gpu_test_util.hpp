#pragma once
// Helpers of the GPU test suite: device buffers holding values in a test dtype, the rounding
// the device applies to them (so CPU references see exactly the device's inputs), and error
// norms with a tolerance per dtype.

#include "gpu/cuda_check.hpp"
#include "gpu/device_info.hpp"
#include "model/dtype.hpp"

#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace actorserve::gpu::testing {

inline void require_gpu() { REQUIRE(device_count() > 0); }

/// The value `v` becomes when stored as `t`.
inline float round_as(dtype t, float v) {
  switch (t) {
    case dtype::bf16:
      return bf16_to_f32(f32_to_bf16(v));
    case dtype::f16:
      return f16_to_f32(f32_to_f16(v));
    default:
      return v;
  }
}

/// Relative L2 error bound of a kernel output in dtype t against an fp64 reference.
inline double tolerance(dtype t) {
  switch (t) {
    case dtype::bf16:
      return 1.5e-2;
    case dtype::f16:
      return 2e-3;
    default:
      return 1e-5;
  }
}

inline const char* name_of(dtype t) { return t == dtype::bf16 ? "bf16" : t == dtype::f16 ? "fp16" : "fp32"; }

/// Owns device memory.
class device_buffer {
public:
  device_buffer() = default;
  explicit device_buffer(size_t bytes) : bytes_(bytes) {
    ACTORSERVE_CUDA_CHECK(cudaMalloc(&ptr_, bytes < 1 ? 1 : bytes));
  }
  ~device_buffer() {
    if (ptr_)
      cudaFree(ptr_);
  }
  device_buffer(device_buffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; }
  device_buffer& operator=(device_buffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }
  /// Fills every byte with 0xff (NaN in every float dtype): unwritten outputs show up. Waits for
  /// the fill, so that kernels on a non-blocking stream cannot run before it.
  void poison() {
    ACTORSERVE_CUDA_CHECK(cudaMemset(ptr_, 0xff, bytes_));
    ACTORSERVE_CUDA_CHECK(cudaDeviceSynchronize());
  }

private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

/// Rounds `values` in place to dtype t and uploads them as t.
inline device_buffer upload(dtype t, std::vector<float>& values) {
  const size_t n = values.size(), elem = dtype_size(t);
  std::vector<char> raw(n * elem);
  for (size_t i = 0; i < n; ++i) {
    values[i] = round_as(t, values[i]);
    if (t == dtype::f32) {
      std::memcpy(raw.data() + i * 4, &values[i], 4);
    } else {
      const uint16_t h = t == dtype::bf16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
      std::memcpy(raw.data() + i * 2, &h, 2);
    }
  }
  device_buffer buf(n * elem);
  ACTORSERVE_CUDA_CHECK(cudaMemcpy(buf.get(), raw.data(), raw.size(), cudaMemcpyHostToDevice));
  return buf;
}

template <typename T>
device_buffer upload_raw(const std::vector<T>& v) {
  device_buffer buf(v.size() * sizeof(T));
  ACTORSERVE_CUDA_CHECK(cudaMemcpy(buf.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return buf;
}

template <typename T>
std::vector<T> download_raw(const device_buffer& buf, size_t n) {
  std::vector<T> v(n);
  ACTORSERVE_CUDA_CHECK(cudaDeviceSynchronize());
  ACTORSERVE_CUDA_CHECK(cudaMemcpy(v.data(), buf.get(), n * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

/// Downloads n values of dtype t as floats.
inline std::vector<float> download(dtype t, const device_buffer& buf, size_t n) {
  ACTORSERVE_CUDA_CHECK(cudaDeviceSynchronize());
  const size_t elem = dtype_size(t);
  std::vector<char> raw(n * elem);
  ACTORSERVE_CUDA_CHECK(cudaMemcpy(raw.data(), buf.get(), raw.size(), cudaMemcpyDeviceToHost));
  std::vector<float> out(n);
  convert_to_f32(t, raw.data(), out.data(), n);
  return out;
}

inline std::vector<float> random_values(std::mt19937& rng, size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v)
    x = d(rng);
  return v;
}

/// ||out - ref|| / ||ref||; infinity when out has a NaN or infinity.
inline double rel_l2(const std::vector<float>& out, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(out[i]))
      return INFINITY;
    num += (double(out[i]) - ref[i]) * (double(out[i]) - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

} // namespace actorserve::gpu::testing

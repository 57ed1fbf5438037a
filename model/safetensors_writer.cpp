// Writing safetensors files the way the Python library does: header keys sorted, the header
// padded with spaces so that the data section starts 8-byte aligned, tensors stored back to
// back in the order given. Values are produced in fp32 by a fill function and converted on
// the way out, one chunk at a time, so memory stays bounded whatever the model size.
#include "model/error.hpp"
#include "model/safetensors.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <set>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

namespace actorserve {

namespace {

struct file_layout {
  std::string header;            // JSON, padded with spaces to a multiple of 8 bytes
  std::vector<uint64_t> offsets; // of each tensor from the start of the data section
  uint64_t data_size = 0;
};

file_layout plan(const std::filesystem::path& path, const std::vector<tensor_spec>& tensors,
                 const std::map<std::string, std::string>& metadata) {
  file_layout out;
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  std::set<std::string> seen;
  for (const auto& t : tensors) {
    if (t.type != dtype::f32 && t.type != dtype::f16 && t.type != dtype::bf16)
      throw model_error(path.string() + ": tensor '" + t.name + "': can only write F32, F16 or BF16, not " +
                        std::string(dtype_name(t.type)));
    if (t.name.empty() || t.name == "__metadata__" || !seen.insert(t.name).second)
      throw model_error(path.string() + ": tensor name '" + t.name + "' is empty, reserved or repeated");
    for (int64_t d : t.shape)
      if (d < 0)
        throw model_error(path.string() + ": tensor '" + t.name + "' has a negative dimension");
    uint64_t nbytes = uint64_t(t.numel()) * dtype_size(t.type);
    out.offsets.push_back(out.data_size);
    header[t.name] = {{"dtype", dtype_name(t.type)},
                      {"shape", t.shape},
                      {"data_offsets", {out.data_size, out.data_size + nbytes}}};
    out.data_size += nbytes;
  }
  out.header = header.dump();
  out.header.append((8 - out.header.size() % 8) % 8, ' ');
  return out;
}

void encode(dtype type, const float* values, std::byte* out, int64_t count) {
  if (type == dtype::f32) {
    std::memcpy(out, values, size_t(count) * 4);
    return;
  }
  auto* halves = reinterpret_cast<uint16_t*>(out);
  if (type == dtype::bf16) {
    for (int64_t i = 0; i < count; ++i)
      halves[i] = f32_to_bf16(values[i]);
  } else {
    for (int64_t i = 0; i < count; ++i)
      halves[i] = f32_to_f16(values[i]);
  }
}

void write_all(int fd, const void* data, size_t size, uint64_t offset, const std::string& where) {
  auto* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, off_t(offset));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      throw model_error(where + ": write failed: " + std::strerror(errno));
    p += n;
    size -= size_t(n);
    offset += uint64_t(n);
  }
}

struct chunk_job {
  size_t tensor;
  int64_t first;
  int64_t count;
};

} // namespace

void write_safetensors_chunked(const std::filesystem::path& path, const std::vector<tensor_spec>& tensors,
                               const tensor_chunk_fill& fill, const safetensors_write_options& options,
                               const std::map<std::string, std::string>& metadata) {
  const file_layout layout = plan(path, tensors, metadata);
  const int64_t chunk_elements = std::max<int64_t>(1, options.chunk_elements);
  std::vector<chunk_job> jobs;
  for (size_t i = 0; i < tensors.size(); ++i)
    for (int64_t first = 0; first < tensors[i].numel(); first += chunk_elements)
      jobs.push_back({i, first, std::min(chunk_elements, tensors[i].numel() - first)});

  // Written under a temporary name and renamed at the end: an interrupted run never leaves a
  // file that looks complete.
  const auto partial = std::filesystem::path(path.string() + ".partial");
  const std::string where = partial.string();
  int fd = ::open(where.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw model_error(where + ": cannot be created: " + std::strerror(errno));
  try {
    const uint64_t data_start = 8 + layout.header.size();
    unsigned char length[8];
    for (int i = 0; i < 8; ++i)
      length[i] = uint8_t(uint64_t(layout.header.size()) >> (8 * i));
    write_all(fd, length, 8, 0, where);
    write_all(fd, layout.header.data(), layout.header.size(), 8, where);
    if (::ftruncate(fd, off_t(data_start + layout.data_size)) != 0)
      throw model_error(where + ": cannot be sized: " + std::strerror(errno));

    std::atomic<size_t> next_job{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex progress_mutex;
    uint64_t bytes_done = 0;
    auto worker = [&] {
      std::vector<float> values;
      std::vector<std::byte> bytes;
      try {
        for (size_t j; !failed && (j = next_job++) < jobs.size();) {
          const chunk_job& job = jobs[j];
          const tensor_spec& spec = tensors[job.tensor];
          const size_t element_size = dtype_size(spec.type);
          values.resize(size_t(job.count));
          bytes.resize(size_t(job.count) * element_size);
          fill(spec, job.first, job.count, values.data());
          encode(spec.type, values.data(), bytes.data(), job.count);
          write_all(fd, bytes.data(), bytes.size(),
                    data_start + layout.offsets[job.tensor] + uint64_t(job.first) * element_size, where);
          std::lock_guard lock(progress_mutex);
          bytes_done += bytes.size();
          if (options.progress)
            options.progress(bytes_done, layout.data_size);
        }
      } catch (...) {
        std::lock_guard lock(progress_mutex);
        if (!error)
          error = std::current_exception();
        failed = true;
      }
    };
    std::vector<std::thread> threads;
    for (int i = 1; i < options.num_threads; ++i)
      threads.emplace_back(worker);
    worker();
    for (auto& t : threads)
      t.join();
    if (error)
      std::rethrow_exception(error);
    if (::close(fd) != 0) {
      fd = -1;
      throw model_error(where + ": close failed: " + std::strerror(errno));
    }
    fd = -1;
    std::filesystem::rename(partial, path);
  } catch (...) {
    if (fd >= 0)
      ::close(fd);
    std::error_code ignored;
    std::filesystem::remove(partial, ignored);
    throw;
  }
}

void write_safetensors(const std::filesystem::path& path, const std::vector<tensor_spec>& tensors,
                       const tensor_fill& fill, const std::map<std::string, std::string>& metadata) {
  // One chunk per tensor: the fill function produces a whole tensor at once.
  safetensors_write_options options;
  options.chunk_elements = 1;
  for (const auto& t : tensors)
    options.chunk_elements = std::max(options.chunk_elements, t.numel());
  write_safetensors_chunked(
      path, tensors, [&](const tensor_spec& spec, int64_t, int64_t, float* out) { fill(spec, out); }, options,
      metadata);
}

} // namespace actorserve

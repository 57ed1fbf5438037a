#pragma once
// Memory-mapped safetensors files, single file or sharded (model.safetensors.index.json).

#include "model/dtype.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace actorserve {

/// A tensor inside a mapped file. `data` stays valid while the owning file is open.
struct tensor_view {
  std::string name;
  dtype type = dtype::f32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

/// One .safetensors file, memory-mapped read-only. Every structural problem (truncated file,
/// header length past the end, bad JSON, unknown dtype, offsets out of range or overlapping,
/// shape/size mismatch) throws model_error naming the file and the tensor.
class safetensors_file {
public:
  explicit safetensors_file(const std::filesystem::path& path);
  ~safetensors_file();
  safetensors_file(const safetensors_file&) = delete;
  safetensors_file& operator=(const safetensors_file&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, tensor_view>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// nullptr when absent.
  const tensor_view* find(const std::string& name) const;

private:
  std::filesystem::path path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, tensor_view> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// All safetensors files of a model folder: model.safetensors, or the shards listed in
/// model.safetensors.index.json (every listed tensor must exist in the shard named).
class safetensors_model {
public:
  explicit safetensors_model(const std::filesystem::path& model_dir);

  const tensor_view* find(const std::string& name) const;
  /// Throws model_error "missing tensor NAME in DIR" when absent.
  const tensor_view& get(const std::string& name) const;
  /// All tensor names, sorted.
  std::vector<std::string> names() const;
  const std::vector<std::unique_ptr<safetensors_file>>& files() const { return files_; }

private:
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<safetensors_file>> files_;
  std::map<std::string, const tensor_view*> index_;
};

/// A tensor to write: its values are produced in fp32 by the caller and stored as `type`
/// (f32, f16 or bf16).
struct tensor_spec {
  std::string name;
  dtype type = dtype::bf16;
  std::vector<int64_t> shape;
  int64_t numel() const;
};

/// Fills `out` (numel floats) with the values of `spec`.
using tensor_fill = std::function<void(const tensor_spec& spec, float* out)>;

/// Writes one safetensors file tensor by tensor (only one tensor's fp32 values in memory at a
/// time), header keys sorted and the data start 8-byte aligned like the Python writer.
void write_safetensors(const std::filesystem::path& path, const std::vector<tensor_spec>& tensors,
                       const tensor_fill& fill,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

/// Fills out[0, count) with the elements [first, first + count) of `spec` in row-major order,
/// so that a large tensor can be produced in chunks, by several threads at once.
using tensor_chunk_fill =
    std::function<void(const tensor_spec& spec, int64_t first, int64_t count, float* out)>;

struct safetensors_write_options {
  int num_threads = 1;                       // chunks are filled and written in parallel
  int64_t chunk_elements = int64_t{1} << 22; // fp32 values per chunk and thread
  /// Called (never concurrently) as chunks land, with the data bytes written so far.
  std::function<void(uint64_t bytes_done, uint64_t bytes_total)> progress;
};

/// Like write_safetensors, but the values come in chunks filled by `options.num_threads`
/// threads, each writing its chunk at its final offset; the bytes do not depend on the number
/// of threads. The file appears under its name only once complete.
void write_safetensors_chunked(const std::filesystem::path& path, const std::vector<tensor_spec>& tensors,
                               const tensor_chunk_fill& fill, const safetensors_write_options& options,
                               const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

} // namespace actorserve

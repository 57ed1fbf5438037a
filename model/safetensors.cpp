// Reading safetensors files: an 8-byte little-endian header length, a JSON header mapping
// tensor names to {dtype, shape, data_offsets} (offsets relative to the data section that
// follows the header), then the data. The file is mapped read-only; tensor_view points into it.
// Data is not assumed to be aligned: readers copy or convert (convert_to_f32) from it.
#include "model/safetensors.hpp"

#include "model/error.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace actorserve {

namespace {

using json = nlohmann::json;

int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// Closes a file descriptor on scope exit.
struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

class header_parser {
public:
  header_parser(const std::filesystem::path& path, uint64_t data_size) : path_(path.string()), data_size_(data_size) {}

  [[noreturn]] void fail(const std::string& what) const { throw model_error(path_ + ": " + what); }
  [[noreturn]] void fail(const std::string& tensor, const std::string& what) const {
    throw model_error(path_ + ": tensor '" + tensor + "': " + what);
  }

  /// Reads one tensor entry; `begin`/`end` are its data offsets.
  tensor_view tensor(const std::string& name, const json& entry, uint64_t& begin, uint64_t& end) const {
    if (!entry.is_object())
      fail(name, "entry must be an object, got " + std::string(entry.type_name()));
    tensor_view t;
    t.name = name;

    auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string())
      fail(name, "missing or non-string 'dtype'");
    auto type = parse_dtype(dtype_it->get<std::string>());
    if (!type)
      fail(name, "unknown dtype '" + dtype_it->get<std::string>() + "'");
    t.type = *type;

    auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array())
      fail(name, "missing or non-list 'shape'");
    uint64_t numel = 1;
    for (const auto& d : *shape_it) {
      if (!d.is_number_unsigned())
        fail(name, "shape " + shape_it->dump() + " must hold non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, dim, &numel))
        fail(name, "shape " + shape_it->dump() + " is too large");
      t.shape.push_back(int64_t(dim));
    }

    auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned())
      fail(name, "data_offsets must be two non-negative integers [begin, end], got " +
                     (offsets_it == entry.end() ? std::string("nothing") : offsets_it->dump()));
    begin = (*offsets_it)[0].get<uint64_t>();
    end = (*offsets_it)[1].get<uint64_t>();
    if (end < begin)
      fail(name, "data_offsets " + offsets_it->dump() + " are not increasing");
    if (end > data_size_)
      fail(name, "data_offsets " + offsets_it->dump() + " run past the end of the data section (" +
                     std::to_string(data_size_) + " bytes)");

    uint64_t expected;
    if (__builtin_mul_overflow(numel, uint64_t(dtype_size(t.type)), &expected) || expected != end - begin)
      fail(name, "shape " + shape_it->dump() + " of " + std::string(dtype_name(t.type)) + " needs " +
                     std::to_string(numel) + " x " + std::to_string(dtype_size(t.type)) +
                     " bytes but data_offsets " + offsets_it->dump() + " hold " + std::to_string(end - begin));
    t.nbytes = size_t(end - begin);
    return t;
  }

private:
  std::string path_;
  uint64_t data_size_;
};

} // namespace

int64_t tensor_view::numel() const { return product(shape); }
int64_t tensor_spec::numel() const { return product(shape); }

safetensors_file::safetensors_file(const std::filesystem::path& path) : path_(path) {
  const std::string where = path.string();
  fd_guard file{::open(where.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0)
    throw model_error(where + ": cannot be opened: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(file.fd, &st) != 0)
    throw model_error(where + ": cannot be read: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    throw model_error(where + ": not a regular file");
  auto file_size = uint64_t(st.st_size);
  if (file_size < 8)
    throw model_error(where + ": truncated: " + std::to_string(file_size) +
                      " bytes, shorter than the 8-byte header length");
  map_ = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, file.fd, 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw model_error(where + ": cannot be memory-mapped: " + std::strerror(errno));
  }
  map_size_ = file_size;

  try {
    auto* bytes = static_cast<const std::byte*>(map_);
    uint64_t header_size = 0;
    for (int i = 7; i >= 0; --i) // little-endian, whatever the host
      header_size = header_size << 8 | uint64_t(bytes[i]);
    if (header_size > file_size - 8)
      throw model_error(where + ": header length " + std::to_string(header_size) +
                        " runs past the end of the file (" + std::to_string(file_size) + " bytes)");
    const uint64_t data_start = 8 + header_size;
    header_parser parser(path, file_size - data_start);

    json header;
    try {
      header = json::parse(reinterpret_cast<const char*>(bytes + 8), reinterpret_cast<const char*>(bytes + data_start));
    } catch (const json::exception& e) {
      parser.fail(std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object())
      parser.fail("header must be a JSON object, got " + std::string(header.type_name()));

    struct extent {
      uint64_t begin, end;
      const std::string* name;
    };
    std::vector<extent> extents;
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object())
          parser.fail("__metadata__ must be an object of strings");
        for (const auto& [key, value] : entry.items()) {
          if (!value.is_string())
            parser.fail("__metadata__ value of '" + key + "' must be a string, got " + value.dump());
          metadata_[key] = value.get<std::string>();
        }
        continue;
      }
      uint64_t begin = 0, end = 0;
      tensor_view t = parser.tensor(name, entry, begin, end);
      t.data = bytes + data_start + begin;
      auto [it, inserted] = tensors_.emplace(name, std::move(t));
      if (end > begin)
        extents.push_back({begin, end, &it->first});
    }

    std::sort(extents.begin(), extents.end(),
              [](const extent& a, const extent& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
    for (size_t i = 1; i < extents.size(); ++i)
      if (extents[i].begin < extents[i - 1].end)
        parser.fail(*extents[i].name, "data [" + std::to_string(extents[i].begin) + ", " +
                                          std::to_string(extents[i].end) + ") overlaps tensor '" +
                                          *extents[i - 1].name + "' [" + std::to_string(extents[i - 1].begin) +
                                          ", " + std::to_string(extents[i - 1].end) + ")");
  } catch (...) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

safetensors_file::~safetensors_file() {
  if (map_)
    ::munmap(map_, map_size_);
}

const tensor_view* safetensors_file::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

safetensors_model::safetensors_model(const std::filesystem::path& model_dir) : dir_(model_dir) {
  const auto index_path = model_dir / "model.safetensors.index.json";
  const auto single_path = model_dir / "model.safetensors";
  if (std::filesystem::exists(index_path)) {
    const std::string where = index_path.string();
    std::ifstream in(index_path, std::ios::binary);
    if (!in)
      throw model_error(where + ": cannot be opened");
    std::stringstream text;
    text << in.rdbuf();
    json index;
    try {
      index = json::parse(text.str());
    } catch (const json::exception& e) {
      throw model_error(where + ": not valid JSON: " + e.what());
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      throw model_error(where + ": 'weight_map' (an object of tensor name -> shard file) is missing");
    std::map<std::string, safetensors_file*> shards;
    for (const auto& [name, shard] : index["weight_map"].items()) {
      if (!shard.is_string())
        throw model_error(where + ": weight_map entry of '" + name + "' must be a file name, got " + shard.dump());
      auto file_name = shard.get<std::string>();
      if (file_name.empty() || file_name.find('/') != std::string::npos || file_name == "." || file_name == "..")
        throw model_error(where + ": weight_map entry of '" + name + "' names '" + file_name +
                          "', which is not a file of " + model_dir.string());
      auto& file = shards[file_name];
      if (!file) {
        files_.push_back(std::make_unique<safetensors_file>(model_dir / file_name));
        file = files_.back().get();
      }
      const tensor_view* t = file->find(name);
      if (!t)
        throw model_error(where + ": tensor '" + name + "' is listed in shard '" + file_name +
                          "' but that file does not contain it");
      index_[name] = t;
    }
  } else if (std::filesystem::exists(single_path)) {
    files_.push_back(std::make_unique<safetensors_file>(single_path));
    for (const auto& [name, t] : files_.back()->tensors())
      index_[name] = &t;
  } else {
    throw model_error(model_dir.string() + ": no weights: neither model.safetensors nor model.safetensors.index.json exists");
  }
}

const tensor_view* safetensors_model::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const tensor_view& safetensors_model::get(const std::string& name) const {
  if (const tensor_view* t = find(name))
    return *t;
  throw model_error("missing tensor " + name + " in " + dir_.string());
}

std::vector<std::string> safetensors_model::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, t] : index_)
    out.push_back(name);
  return out;
}

} // namespace actorserve

#pragma once
// Reading the cluster's msgpack documents ([version, kind, fields...]; wire.cpp and
// kv_transfer.cpp): one whole document per string, fields read in order with their types
// checked by msgpack (a mistyped field throws msgpack::type_error, which callers turn into a
// wire_error along with every other decoding failure).

#include "actors/cluster/wire.hpp"

#include <msgpack.hpp>

#include <string>

namespace actorserve::cluster::doc {

/// The fields of one msgpack array, read front to back.
class reader {
public:
  explicit reader(const msgpack::object& o) {
    if (o.type != msgpack::type::ARRAY)
      throw wire_error("not an array");
    items_ = o.via.array.ptr;
    size_ = o.via.array.size;
  }
  template <class T> T next() {
    if (pos_ >= size_)
      throw wire_error("truncated: field " + std::to_string(pos_) + " missing");
    return items_[pos_++].as<T>();
  }
  reader array() {
    if (pos_ >= size_)
      throw wire_error("truncated: field " + std::to_string(pos_) + " missing");
    return reader(items_[pos_++]);
  }
  size_t size() const { return size_; }
  void expect_end() const {
    if (pos_ != size_)
      throw wire_error("unexpected extra fields");
  }

private:
  const msgpack::object* items_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
};

/// Unpacks `bytes` as exactly one document of at most `max_bytes`. msgpack's size limits are
/// bounded by the document's length (an element takes at least one byte), so a forged length
/// prefix cannot make the decoder allocate more than the document could hold.
inline msgpack::object_handle unpack(const std::string& bytes, size_t max_bytes) {
  if (bytes.size() > max_bytes)
    throw wire_error("document of " + std::to_string(bytes.size()) + " bytes is too large");
  const size_t n = bytes.size();
  size_t offset = 0;
  msgpack::unpack_limit limit(n, n, n, n, n, 16);
  msgpack::object_handle h = msgpack::unpack(bytes.data(), n, offset, nullptr, nullptr, limit);
  if (offset != n)
    throw wire_error("trailing bytes after the document");
  return h;
}

} // namespace actorserve::cluster::doc

#include "actors/cluster/kv_transfer.hpp"

#include "actors/cluster/msgpack_doc.hpp"

#include <msgpack.hpp>
#include <xxhash.h>

#include <algorithm>

namespace actorserve::cluster {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

// Kinds after the version, distinct from wire.cpp's (1..8) so no document is read as another.
enum kv_kind : uint32_t { k_kv_header = 101, k_kv_chunk, k_kv_fetch, k_kv_refusal };

constexpr size_t max_kv_document_bytes = size_t(64) << 20;
constexpr size_t max_header_tokens = size_t(1) << 24;

uint64_t xxh3(const std::string& s) { return XXH3_64bits(s.data(), s.size()); }

using doc_reader = doc::reader;

void begin(packer& p, kv_kind k, uint32_t fields) {
  p.pack_array(2 + fields);
  p.pack(protocol_version);
  p.pack(uint32_t(k));
}

std::string finish(const msgpack::sbuffer& b) { return std::string(b.data(), b.size()); }

// Parses a KV document (size-limited unpacking: msgpack_doc.hpp), checks version and kind.
template <class Body> void parse(const std::string& bytes, kv_kind k, Body&& body) {
  try {
    msgpack::object_handle h = doc::unpack(bytes, max_kv_document_bytes);
    doc_reader r(h.get());
    const auto version = r.next<uint32_t>();
    if (version != protocol_version)
      throw wire_error("protocol version " + std::to_string(version) + ", this node speaks " +
                       std::to_string(protocol_version));
    if (r.next<uint32_t>() != uint32_t(k))
      throw wire_error("unexpected message kind");
    body(r);
    r.expect_end();
  } catch (const wire_error&) {
    throw;
  } catch (const std::exception& e) { // unpack_error, type_error, size overflows, bad_alloc ...
    throw wire_error(std::string("malformed KV document: ") + e.what());
  }
}

std::string describe(const kv_transfer_layout& l) {
  return std::to_string(l.num_layers) + " layers x " + std::to_string(l.num_kv_heads) + " KV heads x " +
         std::to_string(l.head_dim) + " " + l.dtype;
}

} // namespace

const char* to_string(migration_method m) { return m == migration_method::kv ? "kv" : "recompute"; }

std::optional<migration_method> parse_migration_method(std::string_view s) {
  if (s == "kv")
    return migration_method::kv;
  if (s == "recompute")
    return migration_method::recompute;
  return std::nullopt;
}

std::string encode(const kv_header& m) {
  msgpack::sbuffer b;
  packer p(b);
  begin(p, k_kv_header, 13);
  p.pack(m.transfer_id), p.pack(m.model_id);
  p.pack(m.layout.num_layers), p.pack(m.layout.num_kv_heads), p.pack(m.layout.head_dim), p.pack(m.layout.dtype);
  p.pack(m.layout.element_bytes), p.pack(m.block_size), p.pack(m.token_ids), p.pack(m.total_bytes);
  p.pack(m.chunk_bytes), p.pack(m.num_chunks), p.pack(m.payload_hash);
  return finish(b);
}

void decode(const std::string& bytes, kv_header& m) {
  parse(bytes, k_kv_header, [&](doc_reader& r) {
    m.transfer_id = r.next<uint64_t>(), m.model_id = r.next<std::string>();
    m.layout.num_layers = r.next<int32_t>(), m.layout.num_kv_heads = r.next<int32_t>();
    m.layout.head_dim = r.next<int32_t>(), m.layout.dtype = r.next<std::string>();
    m.layout.element_bytes = r.next<int32_t>(), m.block_size = r.next<int32_t>();
    m.token_ids = r.next<std::vector<int32_t>>(), m.total_bytes = r.next<uint64_t>();
    m.chunk_bytes = r.next<uint32_t>(), m.num_chunks = r.next<uint32_t>(), m.payload_hash = r.next<uint64_t>();
  });
}

std::string encode(const kv_chunk& m) {
  msgpack::sbuffer b;
  packer p(b);
  begin(p, k_kv_chunk, 4);
  p.pack(m.transfer_id), p.pack(m.index), p.pack(m.hash);
  p.pack_bin(uint32_t(m.bytes.size()));
  p.pack_bin_body(m.bytes.data(), uint32_t(m.bytes.size()));
  return finish(b);
}

void decode(const std::string& bytes, kv_chunk& m) {
  parse(bytes, k_kv_chunk, [&](doc_reader& r) {
    m.transfer_id = r.next<uint64_t>(), m.index = r.next<uint32_t>(), m.hash = r.next<uint64_t>();
    const auto bin = r.next<msgpack::type::raw_ref>(); // BIN or STR; anything else is a type error
    m.bytes.assign(bin.ptr, bin.size);
  });
}

std::string encode(const kv_fetch_msg& m) {
  msgpack::sbuffer b;
  packer p(b);
  begin(p, k_kv_fetch, 2);
  p.pack(m.transfer_id), p.pack(m.index);
  return finish(b);
}

void decode(const std::string& bytes, kv_fetch_msg& m) {
  parse(bytes, k_kv_fetch, [&](doc_reader& r) { m.transfer_id = r.next<uint64_t>(), m.index = r.next<int64_t>(); });
}

std::string encode(const kv_refusal& m) {
  msgpack::sbuffer b;
  packer p(b);
  begin(p, k_kv_refusal, 1);
  p.pack(m.reason);
  return finish(b);
}

void decode(const std::string& bytes, kv_refusal& m) {
  parse(bytes, k_kv_refusal, [&](doc_reader& r) { m.reason = r.next<std::string>(); });
}

bool is_kv_refusal(const std::string& bytes, std::string& reason) {
  kv_refusal m;
  try {
    decode(bytes, m);
  } catch (const wire_error&) {
    return false;
  }
  reason = m.reason;
  return true;
}

kv_package package_kv(const kv_snapshot& snap, uint64_t transfer_id, const std::string& model_id,
                      size_t chunk_bytes) {
  if (!snap.error.empty())
    throw wire_error("no KV snapshot: " + snap.error);
  if (chunk_bytes == 0 || chunk_bytes > max_kv_document_bytes / 2)
    throw wire_error("KV chunk size " + std::to_string(chunk_bytes) + " is out of range");
  if (int64_t(snap.data.size()) != int64_t(snap.token_ids.size()) * snap.layout.token_bytes())
    throw wire_error("KV snapshot of " + std::to_string(snap.data.size()) + " bytes does not match " +
                     std::to_string(snap.token_ids.size()) + " tokens of " + describe(snap.layout));
  kv_package pkg;
  kv_header& h = pkg.header;
  h.transfer_id = transfer_id;
  h.model_id = model_id;
  h.layout = snap.layout;
  h.block_size = snap.block_size;
  h.token_ids = snap.token_ids;
  h.total_bytes = snap.data.size();
  h.chunk_bytes = uint32_t(chunk_bytes);
  h.num_chunks = uint32_t((snap.data.size() + chunk_bytes - 1) / chunk_bytes);
  h.payload_hash = xxh3(snap.data);
  pkg.header_doc = encode(h);
  for (uint32_t i = 0; i < h.num_chunks; ++i) {
    kv_chunk c;
    c.transfer_id = transfer_id;
    c.index = i;
    c.bytes = snap.data.substr(size_t(i) * chunk_bytes, chunk_bytes);
    c.hash = xxh3(c.bytes);
    pkg.chunk_docs.push_back(encode(c));
  }
  return pkg;
}

kv_assembler::kv_assembler(const std::string& header_doc, const std::string& model_id,
                           const kv_transfer_layout& local, uint64_t max_bytes) {
  decode(header_doc, header_);
  const kv_header& h = header_;
  if (h.model_id != model_id)
    throw wire_error("KV payload of model '" + h.model_id + "', this node serves '" + model_id + "'");
  if (!(h.layout == local))
    throw wire_error("KV payload layout " + describe(h.layout) + " (" + std::to_string(h.layout.element_bytes) +
                     " bytes each), this node's is " + describe(local) + " (" + std::to_string(local.element_bytes) +
                     ")");
  if (h.token_ids.empty() || h.token_ids.size() > max_header_tokens)
    throw wire_error("KV payload of " + std::to_string(h.token_ids.size()) + " tokens");
  if (h.block_size <= 0)
    throw wire_error("KV payload with block size " + std::to_string(h.block_size));
  if (h.total_bytes != uint64_t(h.token_ids.size()) * uint64_t(local.token_bytes()))
    throw wire_error("KV payload of " + std::to_string(h.total_bytes) + " bytes for " +
                     std::to_string(h.token_ids.size()) + " tokens of " + std::to_string(local.token_bytes()) +
                     " bytes");
  if (h.total_bytes > max_bytes)
    throw wire_error("KV payload of " + std::to_string(h.total_bytes) + " bytes exceeds the limit of " +
                     std::to_string(max_bytes));
  if (h.chunk_bytes == 0 || h.chunk_bytes > max_kv_document_bytes / 2 ||
      h.num_chunks != (h.total_bytes + h.chunk_bytes - 1) / h.chunk_bytes)
    throw wire_error("KV payload of " + std::to_string(h.total_bytes) + " bytes announces " +
                     std::to_string(h.num_chunks) + " chunks of " + std::to_string(h.chunk_bytes));
  payload_.reserve(size_t(h.total_bytes));
}

void kv_assembler::add_chunk(const std::string& chunk_doc) {
  if (complete())
    throw wire_error("KV chunk after the last one");
  kv_chunk c;
  decode(chunk_doc, c);
  if (c.transfer_id != header_.transfer_id)
    throw wire_error("KV chunk of transfer " + std::to_string(c.transfer_id) + ", expected " +
                     std::to_string(header_.transfer_id));
  if (c.index != next_)
    throw wire_error("KV chunk " + std::to_string(c.index) + " out of order (expected " + std::to_string(next_) + ")");
  const uint64_t offset = uint64_t(next_) * header_.chunk_bytes;
  const uint64_t expected = std::min<uint64_t>(header_.chunk_bytes, header_.total_bytes - offset);
  if (c.bytes.size() != expected)
    throw wire_error("KV chunk " + std::to_string(c.index) + " holds " + std::to_string(c.bytes.size()) +
                     " bytes, expected " + std::to_string(expected) + " (truncated?)");
  if (xxh3(c.bytes) != c.hash)
    throw wire_error("KV chunk " + std::to_string(c.index) + " fails its checksum (corrupt)");
  payload_ += c.bytes;
  ++next_;
}

std::shared_ptr<const kv_snapshot> kv_assembler::finish() {
  if (!complete())
    throw wire_error("KV payload incomplete: " + std::to_string(next_) + " of " + std::to_string(header_.num_chunks) +
                     " chunks");
  if (xxh3(payload_) != header_.payload_hash)
    throw wire_error("KV payload fails its checksum (corrupt)");
  auto snap = std::make_shared<kv_snapshot>();
  snap->token_ids = header_.token_ids;
  snap->layout = header_.layout;
  snap->block_size = header_.block_size;
  snap->data = std::move(payload_);
  payload_.clear();
  return snap;
}

std::string kv_model_id(const std::string& served_model_name, const std::string& config_json_text) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(config_json_text.data(), config_json_text.size())));
  return served_model_name + "@" + hex;
}

} // namespace actorserve::cluster

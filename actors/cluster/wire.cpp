#include "actors/cluster/wire.hpp"

#include "actors/cluster/msgpack_doc.hpp"

#include <msgpack.hpp>

#include <chrono>
#include <sstream>

namespace actorserve::cluster {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

// Document kinds, after the version: a document of one kind is never read as another.
enum kind : uint32_t { k_hello = 1, k_hello_reply, k_load, k_forward, k_forward_reply, k_output, k_migrate, k_cancel };

constexpr size_t max_document_bytes = size_t(64) << 20;

using reader = doc::reader;

std::string finish(const msgpack::sbuffer& b) { return std::string(b.data(), b.size()); }

void header(packer& p, kind k, uint32_t fields) {
  p.pack_array(2 + fields);
  p.pack(protocol_version);
  p.pack(uint32_t(k));
}

// Parses the document, checks version and kind, and hands the reader to `body`.
template <class Body> void parse(const std::string& bytes, kind k, Body&& body) {
  try {
    msgpack::object_handle h = doc::unpack(bytes, max_document_bytes);
    reader r(h.get());
    const auto version = r.next<uint32_t>();
    if (k != k_hello && version != protocol_version) // a hello's version is checked by the node
      throw wire_error("protocol version " + std::to_string(version) + ", this node speaks " +
                       std::to_string(protocol_version));
    if (r.next<uint32_t>() != uint32_t(k))
      throw wire_error("unexpected message kind");
    body(r);
    r.expect_end();
  } catch (const wire_error&) {
    throw;
  } catch (const std::exception& e) { // msgpack's unpack_error, type_error, insufficient_bytes ...
    throw wire_error(std::string("malformed document: ") + e.what());
  }
}

template <class E> E checked_enum(int32_t v, int32_t max, const char* what) {
  if (v < 0 || v > max)
    throw wire_error(std::string("bad ") + what + " " + std::to_string(v));
  return E(v);
}

void pack_request(packer& p, const generate_request& r) {
  const sampling_params& s = r.sampling;
  int64_t deadline_ms = -1;
  if (r.deadline != engine_clock::time_point::max())
    deadline_ms = std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(r.deadline - engine_clock::now()).count());
  p.pack_array(24);
  p.pack(r.prompt_token_ids);
  p.pack(s.temperature), p.pack(s.top_p), p.pack(s.top_k), p.pack(s.min_p), p.pack(s.repetition_penalty);
  p.pack(s.presence_penalty), p.pack(s.frequency_penalty), p.pack(s.seed), p.pack(s.logprobs);
  p.pack(r.has_seed), p.pack(r.max_tokens), p.pack(r.min_tokens), p.pack(r.stop_token_ids), p.pack(r.stop);
  p.pack(r.include_stop_str_in_output), p.pack(r.ignore_eos), p.pack(r.skip_special_tokens), p.pack(r.detokenize);
  p.pack(r.n), p.pack(r.priority), p.pack(deadline_ms);
  p.pack(int32_t(0)); // reserved
  p.pack(r.resume_output_token_ids);
}

generate_request read_request(reader r) {
  generate_request q;
  sampling_params& s = q.sampling;
  q.prompt_token_ids = r.next<std::vector<int32_t>>();
  s.temperature = r.next<float>(), s.top_p = r.next<float>(), s.top_k = r.next<int32_t>();
  s.min_p = r.next<float>(), s.repetition_penalty = r.next<float>(), s.presence_penalty = r.next<float>();
  s.frequency_penalty = r.next<float>(), s.seed = r.next<uint64_t>(), s.logprobs = r.next<int32_t>();
  q.has_seed = r.next<bool>(), q.max_tokens = r.next<int32_t>(), q.min_tokens = r.next<int32_t>();
  q.stop_token_ids = r.next<std::vector<int32_t>>();
  q.stop = r.next<std::vector<std::string>>();
  q.include_stop_str_in_output = r.next<bool>(), q.ignore_eos = r.next<bool>();
  q.skip_special_tokens = r.next<bool>(), q.detokenize = r.next<bool>();
  q.n = r.next<int32_t>(), q.priority = r.next<int32_t>();
  const auto deadline_ms = r.next<int64_t>();
  (void)r.next<int32_t>();
  q.resume_output_token_ids = r.next<std::vector<int32_t>>();
  r.expect_end();
  if (deadline_ms >= 0)
    q.deadline = engine_clock::now() + std::chrono::milliseconds(deadline_ms);
  // The engine validates the rest (it answers invalid_request); these would make us misbehave.
  if (q.n < 1 || q.n > 1024)
    throw wire_error("bad n " + std::to_string(q.n));
  return q;
}

void pack_output(packer& p, const request_output& o) {
  p.pack_array(13);
  p.pack(o.request_id);
  p.pack_array(uint32_t(o.choices.size()));
  for (const choice_delta& c : o.choices) {
    p.pack_array(7);
    p.pack(c.index), p.pack(c.token_ids), p.pack(c.text);
    p.pack_array(uint32_t(c.logprobs.size()));
    for (const token_logprob& lp : c.logprobs) {
      p.pack_array(3);
      p.pack(lp.token), p.pack(lp.logprob);
      p.pack_array(uint32_t(lp.top.size()));
      for (const auto& [t, v] : lp.top)
        p.pack_array(2), p.pack(t), p.pack(v);
    }
    p.pack(int32_t(c.finish)), p.pack(c.stop_str), p.pack(c.stop_token);
  }
  p.pack(o.finished), p.pack(int32_t(o.error)), p.pack(o.error_message);
  p.pack(o.usage.prompt_tokens), p.pack(o.usage.completion_tokens);
  const request_metrics& m = o.metrics;
  p.pack(m.queue_time_s), p.pack(m.ttft_s), p.pack(m.e2e_s), p.pack(m.inter_token_s);
  p.pack(m.num_preemptions), p.pack(m.num_cached_prompt_tokens);
}

request_output read_output(reader r) {
  request_output o;
  o.request_id = r.next<uint64_t>();
  reader choices = r.array();
  for (size_t i = 0; i < choices.size(); ++i) {
    reader c = choices.array();
    choice_delta d;
    d.index = c.next<int32_t>(), d.token_ids = c.next<std::vector<int32_t>>(), d.text = c.next<std::string>();
    reader lps = c.array();
    for (size_t j = 0; j < lps.size(); ++j) {
      reader l = lps.array();
      token_logprob lp;
      lp.token = l.next<int32_t>(), lp.logprob = l.next<float>();
      reader top = l.array();
      for (size_t t = 0; t < top.size(); ++t) {
        reader pair = top.array();
        const auto id = pair.next<int32_t>();
        lp.top.emplace_back(id, pair.next<float>());
        pair.expect_end();
      }
      l.expect_end();
      d.logprobs.push_back(std::move(lp));
    }
    d.finish = checked_enum<finish_reason>(c.next<int32_t>(), int32_t(finish_reason::abort), "finish_reason");
    d.stop_str = c.next<std::string>(), d.stop_token = c.next<int32_t>();
    c.expect_end();
    o.choices.push_back(std::move(d));
  }
  o.finished = r.next<bool>();
  o.error = checked_enum<engine_errc>(r.next<int32_t>(), int32_t(engine_errc::cancelled), "engine_errc");
  o.error_message = r.next<std::string>();
  o.usage.prompt_tokens = r.next<int32_t>(), o.usage.completion_tokens = r.next<int32_t>();
  request_metrics& m = o.metrics;
  m.queue_time_s = r.next<double>(), m.ttft_s = r.next<double>(), m.e2e_s = r.next<double>();
  m.inter_token_s = r.next<std::vector<double>>();
  m.num_preemptions = r.next<int32_t>(), m.num_cached_prompt_tokens = r.next<int32_t>();
  r.expect_end();
  return o;
}

} // namespace

std::string encode(const hello_msg& m) {
  msgpack::sbuffer b;
  packer p(b);
  p.pack_array(4);
  p.pack(m.version); // a hello carries its own version (tests send wrong ones)
  p.pack(uint32_t(k_hello));
  p.pack(m.name), p.pack(m.incarnation);
  return finish(b);
}
std::string encode(const hello_reply_msg& m) {
  msgpack::sbuffer b;
  packer p(b);
  header(p, k_hello_reply, 4);
  p.pack(m.accepted), p.pack(m.reason), p.pack(m.name), p.pack(m.incarnation);
  return finish(b);
}
std::string encode(const load_msg& m) {
  msgpack::sbuffer b;
  packer p(b);
  header(p, k_load, 8);
  p.pack(m.name), p.pack(m.incarnation), p.pack(m.running), p.pack(m.waiting), p.pack(m.capacity);
  p.pack(m.kv_usage), p.pack(m.draining), p.pack(m.new_prefixes);
  return finish(b);
}
std::string encode(const forward_msg& m) {
  msgpack::sbuffer b;
  packer p(b);
  header(p, k_forward, 5);
  p.pack(m.origin_id), p.pack(m.attempt);
  pack_request(p, m.request);
  p.pack(m.kv_node), p.pack(m.kv_transfer_id);
  return finish(b);
}
std::string encode(const forward_reply_msg& m) {
  msgpack::sbuffer b;
  packer p(b);
  header(p, k_forward_reply, 2);
  p.pack(int32_t(m.error)), p.pack(m.message);
  return finish(b);
}
std::string encode(const output_msg& m) {
  msgpack::sbuffer b;
  packer p(b);
  header(p, k_output, 3);
  p.pack(m.origin_id), p.pack(m.attempt);
  pack_output(p, m.output);
  return finish(b);
}
std::string encode(const migrate_msg& m) {
  msgpack::sbuffer b;
  packer p(b);
  header(p, k_migrate, 4);
  p.pack(m.origin_id), p.pack(m.attempt), p.pack(m.kv_transfer_id), p.pack(m.to);
  return finish(b);
}
std::string encode(const cancel_msg& m) {
  msgpack::sbuffer b;
  packer p(b);
  header(p, k_cancel, 2);
  p.pack(m.origin_id), p.pack(m.attempt);
  return finish(b);
}

void decode(const std::string& bytes, hello_msg& m) {
  m.version = peek_version(bytes);
  parse(bytes, k_hello, [&](reader& r) {
    m.name = r.next<std::string>(), m.incarnation = r.next<uint64_t>();
  });
  if (m.name.empty())
    throw wire_error("hello without a node name");
}
void decode(const std::string& bytes, hello_reply_msg& m) {
  parse(bytes, k_hello_reply, [&](reader& r) {
    m.accepted = r.next<bool>(), m.reason = r.next<std::string>(), m.name = r.next<std::string>();
    m.incarnation = r.next<uint64_t>();
  });
}
void decode(const std::string& bytes, load_msg& m) {
  parse(bytes, k_load, [&](reader& r) {
    m.name = r.next<std::string>(), m.incarnation = r.next<uint64_t>(), m.running = r.next<int32_t>();
    m.waiting = r.next<int32_t>(), m.capacity = r.next<int32_t>(), m.kv_usage = r.next<double>();
    m.draining = r.next<bool>(), m.new_prefixes = r.next<std::vector<uint64_t>>();
  });
  if (m.capacity < 1)
    throw wire_error("load report with capacity " + std::to_string(m.capacity));
}
void decode(const std::string& bytes, forward_msg& m) {
  parse(bytes, k_forward, [&](reader& r) {
    m.origin_id = r.next<uint64_t>(), m.attempt = r.next<uint32_t>();
    m.request = read_request(r.array());
    m.kv_node = r.next<std::string>(), m.kv_transfer_id = r.next<uint64_t>();
  });
}
void decode(const std::string& bytes, forward_reply_msg& m) {
  parse(bytes, k_forward_reply, [&](reader& r) {
    m.error = checked_enum<engine_errc>(r.next<int32_t>(), int32_t(engine_errc::cancelled), "engine_errc");
    m.message = r.next<std::string>();
  });
}
void decode(const std::string& bytes, output_msg& m) {
  parse(bytes, k_output, [&](reader& r) {
    m.origin_id = r.next<uint64_t>(), m.attempt = r.next<uint32_t>();
    m.output = read_output(r.array());
  });
}
void decode(const std::string& bytes, migrate_msg& m) {
  parse(bytes, k_migrate, [&](reader& r) {
    m.origin_id = r.next<uint64_t>(), m.attempt = r.next<uint32_t>(), m.kv_transfer_id = r.next<uint64_t>();
    m.to = r.next<std::string>();
  });
}
void decode(const std::string& bytes, cancel_msg& m) {
  parse(bytes, k_cancel, [&](reader& r) { m.origin_id = r.next<uint64_t>(), m.attempt = r.next<uint32_t>(); });
}

uint32_t peek_version(const std::string& bytes) {
  try {
    msgpack::object_handle h = doc::unpack(bytes, max_document_bytes);
    reader r(h.get());
    return r.next<uint32_t>();
  } catch (const std::exception&) {
    return 0;
  }
}

} // namespace actorserve::cluster

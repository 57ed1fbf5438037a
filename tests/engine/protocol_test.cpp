// The actor protocol with a scripted executor actor: what the scheduler sends (sequences added
// once, then only differences), the embedding entry point (generate_atom, request_output
// messages), cancellation reaching the executor as a drop, and a lost executor.
#include "actors/engine_actors.hpp"
#include "actors/engine_shared.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <mutex>
#include <thread>

using namespace actorserve;
using namespace std::chrono_literals;

namespace {

struct script {
  std::mutex mutex;
  std::vector<step_plan> plans;
  int fail_at_step = -1; // quit (die) when this many plans have been received
  std::chrono::milliseconds delay{0}; // per step
};

struct scripted_state {
  std::shared_ptr<script> log;
  std::map<uint64_t, int32_t> outputs; // seq -> tokens sampled so far
};

// Token k of sequence s is 10 + (s * 3 + k) % 50: predictable without a model.
int32_t scripted_token(uint64_t seq_id, int32_t k) { return 10 + int32_t((seq_id * 3 + uint64_t(k)) % 50); }

executor_actor::behavior_type scripted_executor(executor_actor::stateful_pointer<scripted_state> self,
                                                std::shared_ptr<script> log) {
  self->state.log = log;
  return {
      [=](info_atom) {
        executor_info i;
        i.name = "scripted";
        i.vocab_size = 100;
        i.max_position_embeddings = 512;
        i.eos_token_ids = {1};
        i.num_blocks = 64;
        i.block_size = 4;
        return i;
      },
      [=](step_atom, const step_plan& plan) -> caf::result<step_result> {
        auto& st = self->state;
        size_t n;
        {
          std::lock_guard<std::mutex> lock(st.log->mutex);
          st.log->plans.push_back(plan);
          n = st.log->plans.size();
        }
        std::this_thread::sleep_for(st.log->delay);
        if (int(n) == st.log->fail_at_step) {
          self->quit(caf::exit_reason::user_shutdown);
          return caf::make_error(caf::sec::request_receiver_down);
        }
        step_result r;
        r.step_id = plan.step_id;
        for (const auto& s : plan.seqs) {
          if (!s.needs_logits)
            continue;
          sampled_wire w;
          w.seq_id = s.seq_id;
          w.token = scripted_token(s.seq_id, st.outputs[s.seq_id]++);
          r.sampled.push_back(w);
        }
        return r;
      },
      [=](reset_atom) { return int32_t(0); },
      [=](kv_export_atom, uint64_t) {
        kv_snapshot s;
        s.error = "the scripted executor has no KV";
        return s;
      },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<script> log = std::make_shared<script>();
  engine_handles h;

  explicit fixture(int fail_at_step = -1, std::chrono::milliseconds delay = {}) {
    register_engine_types(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    log->fail_at_step = fail_at_step;
    log->delay = delay;
    auto exec = sys->spawn<caf::detached>(scripted_executor, log);
    engine_config c;
    c.max_num_batched_tokens = 16;
    h = spawn_engine(*sys, c, exec, nullptr);
  }
  ~fixture() {
    caf::anon_send_exit(h.scheduler, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(h.kv, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(h.executor, caf::exit_reason::user_shutdown);
  }
};

generate_request req(std::vector<int32_t> prompt, int32_t max_tokens) {
  generate_request r;
  r.prompt_token_ids = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  return r;
}

/// Receives request_output messages for one request until its final one.
std::vector<request_output> receive_all(caf::scoped_actor& self) {
  std::vector<request_output> out;
  bool done = false;
  while (!done) {
    self->receive([&](request_output& o) {
                    done = o.finished;
                    out.push_back(std::move(o));
                  },
                  caf::after(std::chrono::seconds(10)) >> [&] { FAIL("no output within 10 s"); });
  }
  return out;
}

} // namespace

TEST_CASE("embedding: generate_atom streams request_output messages to the receiver", "[protocol]") {
  fixture f;
  caf::scoped_actor self{*f.sys};
  submit_result res;
  self->request(f.h.scheduler, 5s, generate_atom_v, req({5, 6, 7, 8, 9, 10, 11}, 6), caf::actor{self})
      .receive([&](submit_result& r) { res = r; }, [&](caf::error& err) { FAIL(to_string(err)); });
  REQUIRE(res);
  auto outs = receive_all(self);
  std::vector<int32_t> tokens;
  for (const auto& o : outs) {
    CHECK(o.request_id == res.request_id);
    for (const auto& c : o.choices)
      tokens.insert(tokens.end(), c.token_ids.begin(), c.token_ids.end());
  }
  // The scheduler's first sequence has id 1: tokens follow the script.
  std::vector<int32_t> expected;
  for (int32_t k = 0; k < 6; ++k)
    expected.push_back(scripted_token(1, k));
  CHECK(tokens == expected);
  CHECK(outs.back().finished);
  CHECK(outs.back().choices.back().finish == finish_reason::length);
  CHECK(outs.back().usage.completion_tokens == 6);

  // An invalid request is answered with the reason and nothing is streamed.
  self->request(f.h.scheduler, 5s, generate_atom_v, req({}, 6), caf::actor{self})
      .receive([&](submit_result& r) { res = r; }, [&](caf::error& err) { FAIL(to_string(err)); });
  CHECK(res.error == engine_errc::invalid_request);
}

TEST_CASE("after a sequence is added, steps carry only differences", "[protocol]") {
  fixture f;
  caf::scoped_actor self{*f.sys};
  // 20 prompt tokens with a 16-token budget: two prefill chunks, then decodes.
  std::vector<int32_t> prompt(20, 7);
  self->request(f.h.scheduler, 5s, generate_atom_v, req(prompt, 9), caf::actor{self}).receive([](submit_result&) {}, [](caf::error&) {});
  receive_all(self);
  std::lock_guard<std::mutex> lock(f.log->mutex);
  const auto& plans = f.log->plans;
  REQUIRE(plans.size() >= 10);
  REQUIRE(plans[0].added.size() == 1);
  CHECK(plans[0].added[0].token_ids == prompt);
  CHECK(plans[0].seqs[0].num_new == 16);
  CHECK_FALSE(plans[0].seqs[0].needs_logits);
  CHECK(plans[1].seqs[0].num_computed == 16);
  CHECK(plans[1].seqs[0].num_new == 4);
  CHECK(plans[1].seqs[0].needs_logits);
  size_t table_blocks = 0;
  for (size_t i = 0; i < plans.size(); ++i) {
    if (i > 0)
      CHECK(plans[i].added.empty()); // never sent twice
    for (const auto& t : plans[i].tables) {
      CHECK(t.start == int32_t(table_blocks)); // only appended blocks travel
      table_blocks += t.blocks.size();
    }
  }
  // 20 prompt + 8 computed outputs = 28 tokens in 4-token blocks.
  CHECK(table_blocks == 7);
}

TEST_CASE("cancel reaches the executor as a drop", "[protocol]") {
  fixture f(-1, 1ms);
  caf::scoped_actor self{*f.sys};
  submit_result res;
  self->request(f.h.scheduler, 5s, generate_atom_v, req({3, 4, 5}, 400), caf::actor{self})
      .receive([&](submit_result& r) { res = r; }, [](caf::error&) {});
  REQUIRE(res);
  // Once a token arrived the executor knows the sequence.
  self->receive([](request_output&) {}, caf::after(std::chrono::seconds(10)) >> [] { FAIL("no first token"); });
  self->send(f.h.scheduler, cancel_atom_v, res.request_id, int32_t(engine_errc::cancelled), std::string("test"));
  auto outs = receive_all(self);
  CHECK(outs.back().error == engine_errc::cancelled);
  // A later request makes the scheduler iterate; its first plan drops the cancelled sequence.
  self->request(f.h.scheduler, 5s, generate_atom_v, req({3, 4, 5}, 2), caf::actor{self}).receive([](submit_result&) {}, [](caf::error&) {});
  receive_all(self);
  std::lock_guard<std::mutex> lock(f.log->mutex);
  bool dropped = false;
  for (const auto& p : f.log->plans)
    for (uint64_t id : p.dropped)
      dropped = dropped || id == 1;
  CHECK(dropped);
}

TEST_CASE("a lost executor fails live requests with a clear error", "[protocol]") {
  fixture f(3); // the executor dies on its third step
  caf::scoped_actor self{*f.sys};
  self->request(f.h.scheduler, 5s, generate_atom_v, req({3, 4, 5}, 50), caf::actor{self}).receive([](submit_result&) {}, [](caf::error&) {});
  auto outs = receive_all(self);
  CHECK(outs.back().error == engine_errc::executor_failed);
  CHECK_FALSE(outs.back().error_message.empty());
  // New requests are refused with the same reason instead of hanging.
  self->request(f.h.scheduler, 5s, generate_atom_v, req({3, 4, 5}, 5), caf::actor{self}).receive([](submit_result&) {}, [](caf::error&) {});
  outs = receive_all(self);
  CHECK(outs.back().error == engine_errc::executor_failed);
  CHECK(outs.back().error_message.find("executor is gone") != std::string::npos);
}

TEST_CASE("messages survive serialization, -inf logprobs included", "[protocol]") {
  caf::actor_system_config cfg;
  register_engine_types(cfg);
  caf::actor_system sys{cfg};
  step_result r;
  r.step_id = 3;
  sampled_wire w;
  w.seq_id = 9;
  w.token = 4;
  w.logprob_bits = float_bits(-std::numeric_limits<float>::infinity());
  r.sampled.push_back(w);
  request_output o;
  o.request_id = 5;
  choice_delta d;
  d.logprobs.push_back({7, -std::numeric_limits<float>::infinity(), {{7, -std::numeric_limits<float>::infinity()}}});
  o.choices.push_back(d);
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE_FALSE(sink(r, o));
  step_result r2;
  request_output o2;
  caf::binary_deserializer source{sys, buf};
  REQUIRE_FALSE(source(r2, o2));
  CHECK(std::isinf(bits_float(r2.sampled[0].logprob_bits)));
  CHECK(r2.sampled[0].token == 4);
  REQUIRE(o2.choices.size() == 1);
  CHECK(std::isinf(o2.choices[0].logprobs[0].logprob));
  CHECK(std::isinf(o2.choices[0].logprobs[0].top[0].second));
}

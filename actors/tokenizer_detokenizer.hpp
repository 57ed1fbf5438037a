#pragma once
// The engine's detokenizer for a tokenizer.json tokenizer: streams through the tokenizer's
// incremental_detokenizer (byte-fallback runs, decoders that edit the end of the text).

#include "actors/engine.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace actorserve {

std::shared_ptr<const detokenizer> make_detokenizer(tokenizer tok);

} // namespace actorserve

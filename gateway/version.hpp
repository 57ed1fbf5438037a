#pragma once

namespace actorserve {

/// The release version printed by `actorserve --version` and reported in /v1/models.
const char* version();

} // namespace actorserve

#include "gateway/version.hpp"

namespace actorserve {

const char* version() { return "0.1.0"; }

} // namespace actorserve

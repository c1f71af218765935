// How imported lists look to an admin (`smtpfence lists`, `lists --json`):
// one line per list, never one per prefix.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fence/lists.h"

namespace smtpfence {

std::string lists_text(const std::vector<ListStatus>& lists, uint64_t now_unix);
nlohmann::ordered_json lists_json(const std::vector<ListStatus>& lists, uint64_t now_unix);

}  // namespace smtpfence

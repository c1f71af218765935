// JSON the way every output prints it. Text typed today is checked to be
// UTF-8, but a state or list file written by an older version may hold a
// reason that is not: its bad bytes become U+FFFD, so that no rule can make
// `list --json`, `status --json` or `serve` fail for every other rule.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace smtpfence {

// `j` as text: indented by `indent` spaces, or on one line (-1).
inline std::string json_text(const nlohmann::ordered_json& j, int indent = 2) {
    return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// One indented document, as every `--json` prints it.
inline void print_json(std::ostream& out, const nlohmann::ordered_json& j) {
    out << json_text(j) << '\n';
}

}  // namespace smtpfence

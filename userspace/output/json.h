// JSON on a stream the way every `--json` prints it: indented, one document.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>

namespace smtpfence {

inline void print_json(std::ostream& out, const nlohmann::ordered_json& j) {
    out << j.dump(2) << '\n';
}

}  // namespace smtpfence

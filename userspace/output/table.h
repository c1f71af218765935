// Aligned text tables, the shape of every listing smtpfence prints.
#pragma once

#include <string>
#include <vector>

namespace smtpfence {

// Rows as aligned columns, two spaces apart: `numeric` columns right-aligned,
// the last column unpadded.
std::string table(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& numeric);

}  // namespace smtpfence

#include "output/table.h"

#include <algorithm>
#include <sstream>

namespace smtpfence {

std::string table(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& numeric) {
    std::vector<size_t> width(rows.front().size(), 0);
    for (const auto& row : rows) {
        for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    std::ostringstream out;
    for (const auto& row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
            bool last = i + 1 == row.size();
            std::string pad(width[i] - row[i].size(), ' ');
            line += numeric[i] ? pad + row[i] : (last ? row[i] : row[i] + pad);
            if (!last) line += "  ";
        }
        line.erase(line.find_last_not_of(' ') + 1);
        out << line << '\n';
    }
    return out.str();
}

}  // namespace smtpfence

#include "cli/commands.h"

namespace smtpfence {

std::vector<Cidr> parse_cidrs(const std::vector<std::string>& texts, std::ostream& err) {
    std::vector<Cidr> out;
    for (const auto& t : texts) {
        ParsedCidr parsed = parse_cidr(t);
        if (!parsed.note.empty()) err << "note: " << parsed.note << '\n';
        out.push_back(parsed.cidr);
    }
    return out;
}

}  // namespace smtpfence

#include "text/rule_set.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "base/errors.h"
#include "text/durations.h"
#include "text/limit_options.h"
#include "text/line_files.h"
#include "text/rule_options.h"

namespace smtpfence {

namespace {

// Quoted when it would not survive as one bare word.
std::string word(const std::string& text) {
    bool bare = !text.empty() && text.find_first_of(" \t\"\\#'") == std::string::npos;
    if (bare) return text;
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// Splits a line into words: blanks separate, "..." groups (with \" and \\),
// and a word starting with # begins a comment.
std::vector<std::string> split_words(std::string_view line) {
    std::vector<std::string> words;
    size_t i = 0;
    while (i < line.size()) {
        if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
            ++i;
            continue;
        }
        if (line[i] == '#') break;
        std::string w;
        bool quoted = false;
        while (i < line.size() && (quoted || (line[i] != ' ' && line[i] != '\t' && line[i] != '\r'))) {
            char c = line[i++];
            if (c == '"') {
                quoted = !quoted;
            } else if (quoted && c == '\\') {
                if (i == line.size()) throw UsageError("a \\ ends the line inside quotes");
                w += line[i++];
            } else {
                w += c;
            }
        }
        if (quoted) throw UsageError("a quote is not closed");
        words.push_back(std::move(w));
    }
    return words;
}

}  // namespace

RuleSpec parse_rule_words(const std::vector<std::string>& words) {
    RuleSpec spec;
    spec.exact = true;
    if (words[0] == "block") {
        spec.action = Action::Block;
    } else if (words[0] == "allow") {
        spec.action = Action::Allow;
    } else {
        spec.action = Action::Limit;
    }
    if (words.size() < 2) throw UsageError(words[0] + " needs a prefix, e.g. " + words[0] + " 203.0.113.0/24");
    ParsedCidr parsed = parse_cidr(words[1]);
    if (!parsed.note.empty()) throw UsageError(parsed.note + ": write it as " + format_cidr(parsed.cidr));
    spec.cidr = parsed.cidr;
    LimitTexts limit;
    std::set<std::string> seen;
    for (size_t i = 2; i < words.size(); ++i) {
        const std::string& option = words[i];
        if (!seen.insert(option).second) throw UsageError(option + " is given twice");
        if (option == "--dry-run") {
            spec.dry_run = true;
            continue;
        }
        if (i + 1 == words.size()) throw UsageError(option + " needs a value");
        const std::string& value = words[++i];
        if (option == "--reason") {
            check_stored_reason(value);
            spec.reason = value;
        } else if (option == "--by") {
            if (value.size() >= FENCE_USER_LEN)
                throw UsageError("--by is longer than " + std::to_string(FENCE_USER_LEN - 1));
            spec.created_by = value;
        } else if (option == "--origin") {
            if (value.size() >= FENCE_ORIGIN_LEN) {
                throw UsageError("--origin is longer than " + std::to_string(FENCE_ORIGIN_LEN - 1));
            }
            spec.origin = value;
        } else if (option == "--created") {
            spec.created_unix = parse_deadline(value);
        } else if (option == "--until") {
            spec.expires_unix = parse_deadline(value);
        } else if (option == "--for") {
            throw UsageError("a saved rule names its deadline with --until (an absolute time), not --for");
        } else if (spec.action == Action::Limit && option == "--rate") {
            limit.rate = value;
        } else if (spec.action == Action::Limit && option == "--burst") {
            limit.burst = value;
        } else if (spec.action == Action::Limit && option == "--max-conns") {
            limit.max_conns = value;
        } else if (spec.action == Action::Limit && option == "--messages") {
            limit.messages = value;
        } else if (spec.action == Action::Limit && option == "--per") {
            limit.per = value;
        } else {
            throw UsageError("unknown option " + option + " for " + words[0]);
        }
    }
    if (spec.action == Action::Limit) spec.limit = limit_spec_of(limit, spec.cidr);
    check_dry_run(spec);
    return spec;
}

std::string rule_command(const RuleSpec& spec) {
    std::string line = std::string(action_name(spec.action)) + " " + format_cidr(spec.cidr);
    if (spec.action == Action::Limit) {
        const LimitSpec& l = spec.limit;
        if (l.interval_ns) line += " --rate " + format_rate(l.interval_ns) + " --burst " + std::to_string(l.burst);
        if (l.max_conns) line += " --max-conns " + std::to_string(l.max_conns);
        if (l.message_interval_ns) line += " --messages " + format_rate(l.message_interval_ns);
        line += " --per " + describe_key(l.key_prefixlen, spec.cidr);
    }
    if (spec.dry_run) line += " --dry-run";
    if (spec.expires_unix) line += " --until " + format_utc(spec.expires_unix);
    if (!spec.reason.empty()) line += " --reason " + word(spec.reason);
    if (!spec.created_by.empty()) line += " --by " + word(spec.created_by);
    if (!spec.origin.empty()) line += " --origin " + word(spec.origin);
    if (spec.created_unix) line += " --created " + format_utc(spec.created_unix);
    return line;
}

std::string format_rule_set(const PortSet& ports, const std::vector<Rule>& rules) {
    std::vector<const Rule*> sorted;
    for (const auto& r : rules) sorted.push_back(&r);
    std::sort(sorted.begin(), sorted.end(), [](const Rule* a, const Rule* b) { return a->cidr < b->cidr; });
    std::ostringstream out;
    out << "# smtpfence rule set (map layout " << FENCE_LAYOUT_VERSION << "): " << rules.size()
        << (rules.size() == 1 ? " rule" : " rules") << ".\n"
        << "# Re-apply with `smtpfence restore FILE`: it makes the kernel equal to this file.\n"
        << "# Times are UTC; --until is when a rule stops applying.\n"
        << "ports " << format_port_list(ports) << '\n';
    for (const Rule* r : sorted) out << rule_command(spec_of(*r)) << '\n';
    return out.str();
}

RuleSet parse_rule_set(std::string_view text, const std::string& source) {
    RuleSet set;
    std::set<Cidr> seen;
    for_each_line(text, source, [&](std::string_view line) {
        std::vector<std::string> words = split_words(line);
        if (words.empty()) return;
        if (words[0] == "ports") {
            if (words.size() != 2) throw UsageError("ports takes one list, e.g. ports 25,465,587");
            if (set.ports) throw UsageError("ports is given twice");
            set.ports = parse_port_list(words[1]);
        } else if (words[0] == "block" || words[0] == "allow" || words[0] == "limit") {
            RuleSpec spec = parse_rule_words(words);
            if (!seen.insert(spec.cidr).second) {
                throw UsageError("a second rule for " + format_cidr(spec.cidr) + ": a prefix has one rule");
            }
            set.rules.push_back(std::move(spec));
        } else {
            throw UsageError("'" + words[0] + "' is not a rule: lines are block, allow, limit or ports");
        }
    });
    return set;
}

}  // namespace smtpfence

#include "state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "durations.h"
#include "errors.h"
#include "line_files.h"
#include "limit_options.h"
#include "output.h"
#include "rule_options.h"

namespace smtpfence {

namespace fs = std::filesystem;

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
            check_reason(value);
            spec.reason = value;
        } else if (option == "--by") {
            if (value.size() >= FENCE_USER_LEN) throw UsageError("--by is longer than " + std::to_string(FENCE_USER_LEN - 1));
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

void write_all(int fd, const std::string& content, const std::string& path) {
    size_t done = 0;
    while (done < content.size()) {
        ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw RuntimeError(describe_errno("write " + path, errno));
        }
        done += static_cast<size_t>(n);
    }
}

}  // namespace

std::string state_file_path(const std::string& state_dir, const std::string& pin_dir) {
    std::string name = fs::path(pin_dir).lexically_normal().filename().string();
    if (name.empty()) name = fs::path(pin_dir).lexically_normal().parent_path().filename().string();
    if (name.empty()) name = "smtpfence";
    return (fs::path(state_dir) / (name + ".rules")).string();
}

std::string audit_log_path(const std::string& state_dir) {
    fs::path dir = fs::path(state_dir).lexically_normal();
    if (!dir.has_filename()) dir = dir.parent_path();  // "/var/lib/smtpfence/"
    if (dir == fs::path(kDefaultStateDir)) return kDefaultAuditLog;
    return (fs::path(state_dir) / "audit.log").string();
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

StateFileHealth check_state_file(const std::string& path, const PortSet& ports, const std::vector<Rule>& rules) {
    StateFileHealth health;
    health.path = path;
    std::optional<std::string> text;
    try {
        text = read_file(path);
    } catch (const RuntimeError& e) {
        health.exists = true;
        health.error = e.what();
        return health;
    }
    if (!text) return health;
    health.exists = true;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) health.written_unix = static_cast<uint64_t>(st.st_mtime);
    RuleSet set;
    try {
        set = parse_rule_set(*text, path);
    } catch (const UsageError& e) {
        health.error = e.what();
        return health;
    }
    health.rules = set.rules.size();
    health.ports_differ = set.ports && *set.ports != ports;
    std::map<Cidr, const Rule*> in_kernel;
    for (const auto& r : rules) in_kernel[r.cidr] = &r;
    for (const auto& spec : set.rules) {
        auto it = in_kernel.find(spec.cidr);
        if (it == in_kernel.end() || !matches_spec(*it->second, spec)) health.differing++;
        if (it != in_kernel.end()) in_kernel.erase(it);
    }
    health.differing += in_kernel.size();
    return health;
}

void make_directories(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw RuntimeError("create " + dir + ": " + ec.message());
}

void write_file_atomically(const std::string& path, const std::string& content) {
    fs::path target(path);
    fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    std::string tmp = (dir / ("." + target.filename().string() + ".tmp")).string();
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) throw RuntimeError(describe_errno("create " + tmp, errno));
    write_all(fd.get(), content, tmp);
    if (::fsync(fd.get()) != 0) throw RuntimeError(describe_errno("fsync " + tmp, errno));
    fd = UniqueFd();
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw RuntimeError(describe_errno("rename " + tmp + " to " + path, errno));
    // The rename is durable once the directory is.
    UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd || ::fsync(dir_fd.get()) != 0) throw RuntimeError(describe_errno("fsync " + dir.string(), errno));
}

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (errno == ENOENT) return std::nullopt;
        throw RuntimeError(describe_errno("read " + path, errno));
    }
    std::ostringstream content;
    content << in.rdbuf();
    if (in.bad()) throw RuntimeError(describe_errno("read " + path, errno));
    return content.str();
}

}  // namespace smtpfence

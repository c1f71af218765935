#include "fence/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "base/errors.h"
#include "base/unique_fd.h"
#include "text/defaults.h"
#include "text/rule_set.h"

namespace smtpfence {

namespace fs = std::filesystem;

namespace {

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

std::string list_store_dir(const std::string& state_dir, const std::string& pin_dir) {
    std::string rules = state_file_path(state_dir, pin_dir);
    return rules.substr(0, rules.size() - std::string_view(".rules").size()) + ".lists";
}

std::string audit_log_path(const std::string& state_dir) {
    fs::path dir = fs::path(state_dir).lexically_normal();
    if (!dir.has_filename()) dir = dir.parent_path();  // "/var/lib/smtpfence/"
    if (dir == fs::path(kDefaultStateDir)) return kDefaultAuditLog;
    return (fs::path(state_dir) / "audit.log").string();
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
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        throw RuntimeError(describe_errno("rename " + tmp + " to " + path, errno));
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

#include "fence/audit.h"

#include <fcntl.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <filesystem>

#include "base/errors.h"
#include "base/unique_fd.h"
#include "fence/provenance.h"
#include "text/durations.h"

namespace smtpfence {

AuditLog::AuditLog(std::string path, bool to_syslog, std::ostream& err)
    : path_(std::move(path)), to_syslog_(to_syslog), err_(err),
      actor_("by " + invoking_user() + " on " + invoking_origin()) {}

void AuditLog::record(const std::string& event, const std::string& detail) {
    std::string message = event + " " + actor_ + ": " + detail;
    if (to_syslog_) {
        openlog("smtpfence", LOG_PID, LOG_DAEMON);
        syslog(LOG_NOTICE, "%s", message.c_str());
    }
    std::string line = format_utc(static_cast<uint64_t>(std::time(nullptr))) + " " + message + "\n";
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
    UniqueFd fd(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
    if (fd && ::write(fd.get(), line.data(), line.size()) == static_cast<ssize_t>(line.size())) return;
    if (!warned_) {
        err_ << "warning: " << describe_errno("append to the audit log " + path_, errno)
             << "; the change itself was made\n";
        warned_ = true;
    }
}

}  // namespace smtpfence

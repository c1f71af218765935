// The audit trail: one line per change to the rules (add, update, remove,
// expire, restore, ports), appended to a file and sent to syslog (journald
// picks it up), so that "who blocked this, and when?" has an answer after the
// rule is long gone.
#pragma once

#include <ostream>
#include <string>

namespace smtpfence {

class AuditLog {
public:
    // `path`: the file lines are appended to (its directory is created);
    // `to_syslog`: also syslog(3) them (LOG_DAEMON, notice); `err`: where a
    // failure to record is reported (the change itself stands).
    AuditLog(std::string path, bool to_syslog, std::ostream& err);

    // Appends "TIME EVENT by USER on ORIGIN: DETAIL", e.g.
    // "2026-11-26T01:00:00Z add by alice on mx1: block 203.0.113.0/24 --reason ...".
    // One write(2) with O_APPEND: lines of concurrent runs never interleave.
    void record(const std::string& event, const std::string& detail);

    const std::string& path() const { return path_; }

private:
    std::string path_;
    bool to_syslog_;
    std::ostream& err_;
    std::string actor_;  // "by USER on ORIGIN", the same for every line of a run
    bool warned_ = false;
};

}  // namespace smtpfence

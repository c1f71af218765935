// A CLI run that may change the rules, the way every such run makes its
// changes: under the pin-dir lock for the whole run, with expired rules reaped
// (and audited) first, every change audited, and the state file rewritten
// from the kernel at the end, so that the file always holds a whole rule set
// that was in force.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "bpf/pin_dir.h"
#include "fence/audit.h"
#include "fence/lists.h"
#include "fence/rule_store.h"

namespace smtpfence {

class FenceSession {
public:
    // Opens the fence of `pin_dir` (RuntimeError when there is none), locks
    // it (waiting as `wait` says; RuntimeError when that is too long), and
    // reaps expired rules and lists.
    FenceSession(const std::string& pin_dir, const std::string& state_dir, bool to_syslog, std::ostream& err,
                 const LockWait& wait = {});
    // A session that made changes but did not commit (a command failed
    // halfway) still saves what is in the kernel; a failure is only reported.
    ~FenceSession();
    FenceSession(const FenceSession&) = delete;
    FenceSession& operator=(const FenceSession&) = delete;

    Fence& fence() { return fence_; }
    FenceLists& lists() { return lists_; }
    // The rules this session found expired and removed.
    const std::vector<Rule>& reaped() const { return reaped_; }
    // The lists this session found expired and removed.
    const std::vector<std::string>& reaped_lists() const { return reaped_lists_; }
    const std::string& state_file() const { return state_file_; }

    // Audits one change (see AuditLog::record); the state file is due.
    void record(const std::string& event, const std::string& detail);
    // Audits one change to a rule, named by the command that re-creates it.
    void record(const std::string& event, const Rule& rule);

    // Writes the state file from the kernel, atomically. NotSavedError (the
    // changes stay in force) when it cannot be written.
    void commit();
    // commit() when the session changed something (a reap, for a command
    // that only reads), else nothing.
    void commit_if_changed();

private:
    Fence fence_;
    PinDirLock lock_;
    FenceLists lists_;
    AuditLog audit_;
    std::string state_dir_;
    std::string state_file_;
    std::ostream& err_;
    std::vector<Rule> reaped_;
    std::vector<std::string> reaped_lists_;
    bool changed_ = false;
};

}  // namespace smtpfence

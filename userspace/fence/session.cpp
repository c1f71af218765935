#include "fence/session.h"

#include "base/errors.h"
#include "fence/state_file.h"
#include "text/durations.h"
#include "text/rule_set.h"

namespace smtpfence {

FenceSession::FenceSession(const std::string& pin_dir, const std::string& state_dir, bool to_syslog, std::ostream& err,
                           const LockWait& wait)
    : fence_(Fence::open(pin_dir)), lock_(pin_dir, wait),
      lists_(FenceLists::open(pin_dir, list_store_dir(state_dir, pin_dir))),
      audit_(audit_log_path(state_dir), to_syslog, err), state_dir_(state_dir),
      state_file_(state_file_path(state_dir, pin_dir)), err_(err) {
    reaped_ = fence_.reap_expired();
    for (const auto& rule : reaped_) record("expire", rule);
    reaped_lists_ = lists_.reap_expired(unix_now());
    for (const auto& name : reaped_lists_) record("expire", "list " + name);
}

FenceSession::~FenceSession() {
    if (!changed_) return;
    try {
        commit();
    } catch (const std::exception& e) {
        err_ << "smtpfence: " << e.what() << '\n';
    }
}

void FenceSession::record(const std::string& event, const std::string& detail) {
    changed_ = true;
    audit_.record(event, detail);
}

void FenceSession::record(const std::string& event, const Rule& rule) {
    record(event, rule_command(spec_of(rule)));
}

void FenceSession::commit() {
    // Pacing's qdisc classes follow the rules; the rules themselves are in
    // force already, and are saved even when tc fails.
    std::string pacing_error;
    try {
        fence_.sync_pacing();
    } catch (const std::exception& e) {
        pacing_error = e.what();
    }
    try {
        make_directories(state_dir_);
        write_file_atomically(state_file_, format_rule_set(fence_.ports(), fence_.rules()));
    } catch (const RuntimeError& e) {
        changed_ = false;
        throw NotSavedError("the change is in force, but the state file was not saved (" + std::string(e.what()) +
                            "): the rules will not survive a reboot until it is. Make " + state_dir_ +
                            " writable (a read-only or full disk?), then save them with `smtpfence save " +
                            state_file_ + "` (or pass a writable --state-dir)");
    }
    changed_ = false;
    if (!pacing_error.empty()) {
        throw RuntimeError(pacing_error + " (the rules are in force and saved, but --messages does not pace)");
    }
}

void FenceSession::commit_if_changed() {
    if (changed_) commit();
}

}  // namespace smtpfence

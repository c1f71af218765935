// What a rule command may ask for, checked the same way whether it comes from
// the command line or from a line of a state file: reasons, limit terms,
// dry runs, and the safety rails around very broad rules.
#pragma once

#include <string>
#include <vector>

#include "text/cidr.h"
#include "text/rule.h"

namespace smtpfence {

// The texts of `limit`'s options as typed ("" = not given).
struct LimitTexts {
    std::string rate, burst, max_conns, messages, per;  // per: "" is source
};

// A --reason as typed: UTF-8 (see check_utf8), one printable line, at most
// FENCE_REASON_LEN - 1 bytes (what the kernel's rule_info holds; fewer
// characters outside ASCII); else UsageError.
void check_reason(const std::string& reason);
// A reason read back from a file: one printable line of at most
// FENCE_REASON_LEN - 1 bytes. Not checked for UTF-8: files written before
// input was checked may hold other bytes, and must still load (the JSON
// outputs replace what is not UTF-8).
void check_stored_reason(const std::string& reason);

// The LimitSpec the options mean for `cidr`; UsageError when they are
// incomplete or out of range.
LimitSpec limit_spec_of(const LimitTexts& texts, const Cidr& cidr);

// A dry run counts what a rule would drop: allow drops nothing, and
// --max-conns is counted by the sock_ops program for live rules only.
// UsageError when `spec` asks for a dry run that cannot count.
void check_dry_run(const RuleSpec& spec);

// True when blocking or limiting `cidr` needs --force: shorter than /8
// (IPv4) or /32 (IPv6), which includes /0.
bool needs_force(const Cidr& cidr);
// UsageError naming the breadth of the prefix when it needs --force and
// `force` is false (allow rules never do).
void check_breadth(const Cidr& cidr, Action action, bool force);

// An address of this host, as a /32 or /128 prefix, and its interface.
struct HostAddress {
    Cidr address;
    std::string interface;
};

// What an admin should hear before a block or limit on `cidr` takes effect:
// that it covers one of this host's own addresses, or an allow rule (which
// keeps letting its sources in). Empty for allow rules.
std::vector<std::string> coverage_warnings(const Cidr& cidr, Action action, const std::vector<Rule>& rules,
                                           const std::vector<HostAddress>& host);

}  // namespace smtpfence
